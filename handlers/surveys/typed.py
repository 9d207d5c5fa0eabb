"""Answers to the survey question kinds a chat has no widget for, as residents type them: dates
("15/3/2024", "hôm qua", "ngay 15 thang 3"), times ("8h30", "2 giờ chiều"), places (typed coordinates, map
links, a shared location), ranges, ranks, acknowledgements and barcodes. Plain functions: text in, the
value in the survey model's format out (definition.py's docstring), or None when the text is not one.

Text is compared without case or diacritics, Telex leftovers undone ("hoom qua", "thangs"); only ASCII
digits count ("５" is no number). Everything here runs on every answer: regular expressions, no
dateparser (a survey date must mean one day, and quickly)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import date, timedelta
from urllib.parse import unquote_plus

from handlers.handbook.normalize import plain
from handlers.surveys import choosing
from handlers.surveys.definition import Option

_MAX_TYPED = 120  # a date or a time is short; a longer text is something else, and costs nothing to refuse
_MAX_WORDS = 16  # "ngày 15 tháng 3 năm 2024 lúc 8 giờ 30 phút sáng" is 13; a datetime tries every cut
_MAX_PLACE = 2000  # map links are long
MAX_BARCODE = 200

# --- words ---------------------------------------------------------------------------------------------

_WORDS = frozenset({
    "hom", "nay", "qua", "kia", "bua", "ngay", "mai", "mot", "thang", "nam", "mung", "truoc", "nua", "sau",
    "gio", "phut", "giay", "ruoi", "kem", "sang", "trua", "chieu", "toi", "dem", "luc", "vao", "buoi",
    "khoang", "h", "g", "p", "t", "am", "pm",
})  # fmt: skip
_SHORT = {"thg": "thang", "th": "thang", "ng": "ngay", "hqua": "hom qua"}
_TELEX_DOUBLE = (("dd", "d"), ("aa", "a"), ("aw", "a"), ("ee", "e"), ("oo", "o"), ("ow", "o"), ("uw", "u"))
_TOKEN = re.compile(r"[0-9]+|[a-z]+|[^\sa-z0-9]")
_FILLER = frozenset({"luc", "vao", "buoi", "khoang", ","})  # "lúc 8 giờ", "buổi sáng", "khoảng 7h"
_END_MARKS = frozenset(".!?")


def _fold(text: str) -> str:
    """Lower case without diacritics (đ→d); punctuation kept, unlike plain()."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _word(token: str) -> str:
    """A word of our vocabulary typed with Telex leftovers ("hoom", "thangs", "giowf") or shortened ("thg")
    as the word."""
    if token in _WORDS or not token.isalpha():
        return token
    if token in _SHORT:
        return _SHORT[token]
    undone = token
    for telex, letter in _TELEX_DOUBLE:
        undone = undone.replace(telex, letter)
    if undone in _WORDS:
        return undone
    if undone[-1] in "sfrxj" and undone[:-1] in _WORDS:  # the tone letter typed last
        return undone[:-1]
    return token


def _tokens(text: str) -> list[str]:
    """"Hôm qua, 7g tối" -> ["hom", "qua", "7", "g", "toi"]: words, digit runs and single marks."""
    if len(text) > _MAX_TYPED:
        return []
    words = [w for w in (_word(t) for t in _TOKEN.findall(_fold(text))) if w not in _FILLER]
    while words and words[-1] in _END_MARKS:  # "15/3/2024."
        words.pop()
    return words if len(words) <= _MAX_WORDS else []


# --- dates ---------------------------------------------------------------------------------------------

_DAYS_FROM_TODAY = {
    "nay": 0, "hom nay": 0, "bua nay": 0, "ngay nay": 0,
    "hom qua": -1, "bua qua": -1, "ngay hom qua": -1,
    "hom kia": -2,  # the day before yesterday
    "mai": 1, "ngay mai": 1, "mai nay": 1,
    "ngay kia": 2, "ngay mot": 2,  # the day after tomorrow (north, south)
}  # fmt: skip
_DAYS_AGO = re.compile(r"([0-9]{1,4}) ngay (truoc|nua|sau)")
_NUMERIC = re.compile(r"(?:ngay |mung )?([0-9]{1,2}) ([/.-]) ([0-9]{1,2})(?: \2 ([0-9]{4}|[0-9]{2}))?")
_SPACED = re.compile(r"(?:ngay |mung )?([0-9]{1,2}) ([0-9]{1,2}) ([0-9]{4})")  # "15 3 2024": the year says it is a date
_ISO = re.compile(r"([0-9]{4}) ([/.-]) ([0-9]{1,2}) \2 ([0-9]{1,2})")
_SPELLED = re.compile(r"(?:ngay |mung )*([0-9]{1,2}) thang ([0-9]{1,2})(?: (?:nam )?([0-9]{4}))?")
_YEARS = range(1900, 2101)
_CENTURY_AHEAD = 10  # "15/3/30" is 2030 in 2026; "25/12/60" is 1960, a birth date, not 2060


def parse_date(text: str, today: date) -> str | None:
    """"YYYY-MM-DD" for a typed date: 15/3/2024, 15-3-2024, 15.3.2024, 2024-03-15, 15/3 (this year),
    15/03/24, "hôm nay", "hôm qua", "hôm kia", "ngày mai", "3 ngày trước", "ngày 15 tháng 3 năm 2024"."""
    found = _date_of(" ".join(_tokens(text)), today)
    return found.isoformat() if found else None


def _date_of(words: str, today: date) -> date | None:
    if words in _DAYS_FROM_TODAY:
        return today + timedelta(days=_DAYS_FROM_TODAY[words])
    if found := _DAYS_AGO.fullmatch(words):
        days = int(found.group(1))
        return _shifted(today, -days if found.group(2) == "truoc" else days)
    if found := _NUMERIC.fullmatch(words):
        return _calendar(found.group(4), found.group(3), found.group(1), today)
    if found := _SPACED.fullmatch(words):
        return _calendar(found.group(3), found.group(2), found.group(1), today)
    if found := _ISO.fullmatch(words):
        return _calendar(found.group(1), found.group(3), found.group(4), today)
    if found := _SPELLED.fullmatch(words):
        return _calendar(found.group(3), found.group(2), found.group(1), today)
    return None


def _shifted(today: date, days: int) -> date | None:
    try:
        return today + timedelta(days=days)
    except OverflowError:
        return None


def _calendar(year: str | None, month: str, day: str, today: date) -> date | None:
    """The day, or None for one no calendar has (31/2) or a year nobody in a survey means."""
    if year is None:
        number = today.year
    elif len(year) == 2:
        number = 2000 + int(year)
        if number > today.year + _CENTURY_AHEAD:
            number -= 100
    else:
        number = int(year)
    if number not in _YEARS:
        return None
    try:
        return date(number, int(month), int(day))
    except ValueError:
        return None


# --- times ---------------------------------------------------------------------------------------------

_PERIOD = r"sang|trua|chieu|toi|dem|am|pm"
_TIME = re.compile(
    rf"(?:(?P<before>{_PERIOD}) )?(?:"
    r"(?P<h1>[0-9]{1,2}) : (?P<m1>[0-9]{2})(?: : (?P<s1>[0-9]{2}))?"  # 8:30, 20:15:00
    r"|(?P<h2>[0-9]{1,2}) (?:h|g|gio)"  # 8h, then 8h30, 8 giờ 30 phút, 8 giờ rưỡi, 8 giờ kém 15
    r"(?: (?P<m2>[0-9]{1,2})(?: (?:p|phut))?| (?P<half>ruoi)| kem (?P<to>[0-9]{1,2})(?: (?:p|phut))?)?"
    r"|(?P<h3>[0-9]{1,2}) \. (?P<m3>[0-9]{2})"  # 8.30
    rf"|(?P<h4>[0-9]{{1,2}})(?= (?:{_PERIOD}))"  # 8 sáng
    rf")(?: (?P<after>{_PERIOD}))?"
)


def parse_time(text: str) -> str | None:
    """"HH:MM:SS" for a typed time: 8h, 8 giờ, 8h30, 8:30, 20:15, 8 giờ rưỡi, 8 giờ kém 15 (7:45),
    2 giờ chiều (14:00), 7 giờ tối (19:00), 12 giờ trưa. A bare "8" is no time (8 or 20?)."""
    found = _time_of(" ".join(_tokens(text)))
    return f"{found[0]:02d}:{found[1]:02d}:{found[2]:02d}" if found else None


def _time_of(words: str) -> tuple[int, int, int] | None:
    found = _TIME.fullmatch(words)
    if not found or (found["before"] and found["after"]):  # "sáng 8 giờ tối"
        return None
    hour_text = found["h1"] or found["h2"] or found["h3"] or found["h4"]
    minute = 30 if found["half"] else int(found["m1"] or found["m2"] or found["m3"] or 0)
    second, to = int(found["s1"] or 0), int(found["to"] or 0)
    hour = _in_day(int(hour_text), found["before"] or found["after"])
    if hour is None or minute > 59 or second > 59 or to > 59:
        return None
    if to:  # "8 giờ kém 15": a quarter to eight
        hour, minute = hour - 1, 60 - to
    return (hour, minute, second) if hour >= 0 else None


def _in_day(hour: int, period: str | None) -> int | None:
    """The 24-hour hour for "8 giờ tối" (20); None where the part of the day does not fit the hour."""
    if period is None:
        return hour if hour <= 23 else None
    if hour > 12:  # already on a 24-hour clock: "14 giờ chiều" is 14:00, "14 giờ sáng" nothing
        late = {"trua": range(12, 15), "chieu": range(12, 19), "toi": range(17, 24), "dem": range(21, 24)}
        return hour if hour in late.get(period, ()) else None
    match period:
        case "am":  # 12 am is midnight
            return 0 if hour == 12 else hour
        case "pm":
            return hour if hour == 12 else hour + 12
        case "sang":
            return hour if hour <= 11 else None
        case "trua":
            return hour if hour in (11, 12) else hour + 12 if 1 <= hour <= 2 else None
        case "chieu":
            return hour if hour == 12 else hour + 12 if 1 <= hour <= 6 else None
        case "toi":
            return hour + 12 if 5 <= hour <= 11 else None
        case _:  # đêm: 10 giờ đêm is 22:00, 12 giờ đêm midnight, 2 giờ đêm 02:00
            return hour + 12 if 9 <= hour <= 11 else 0 if hour == 12 else hour if hour <= 4 else None


# --- date and time -------------------------------------------------------------------------------------


def parse_datetime(text: str, today: date) -> str | None:
    """"YYYY-MM-DDTHH:MM:SS" for a date and a time typed in either order: "8h sáng 15/3/2024",
    "15/3/2024 8:30", "hôm qua 7 giờ tối", "2024-03-15T08:30"."""
    words = [w for w in _tokens(text) if w != "t"]  # ISO's separator (folded to lower case)
    for cut in range(1, len(words)):
        head, tail = " ".join(words[:cut]), " ".join(words[cut:])
        for date_part, time_part in ((head, tail), (tail, head)):
            day, clock = _date_of(date_part, today), _time_of(time_part)
            if day and clock:
                return f"{day.isoformat()}T{clock[0]:02d}:{clock[1]:02d}:{clock[2]:02d}"
    return None


# --- places ---------------------------------------------------------------------------------------------

_NUM = r"([-+]?[0-9]{1,3}(?:\.[0-9]{1,15})?)"
_LINK = re.compile(r"https?://|geo:|www\.|maps\.|\.[a-z]{2,3}/", re.IGNORECASE)
# in the order a link is read: a place's own pin before the map's centre (Google's @ is the view)
_LINK_PATTERNS = (
    re.compile(rf"!3d{_NUM}!4d{_NUM}"),
    re.compile(rf"geo:{_NUM},{_NUM}"),
    re.compile(rf"[?&;](?:q|query|ll|sll|daddr|destination|center|coordinate|loc)=(?:loc:)?\s*{_NUM}\s*,\s*{_NUM}"),
    re.compile(rf"[?&]m?lat={_NUM}&m?(?:lon|lng|long)={_NUM}"),
    re.compile(rf"#map=[0-9]{{1,2}}/{_NUM}/{_NUM}"),
    re.compile(rf"/(?:search|place|dir)/{_NUM},\s*{_NUM}"),  # google.com/maps/search/22.43,+104.12
    re.compile(rf"@{_NUM},{_NUM}"),
)
_GEO_ACCURACY = re.compile(r"geo:[^?]*;u=([0-9]{1,6}(?:\.[0-9]{1,6})?)")
_DOT = r"[-+]?[0-9]{1,3}\.[0-9]{1,15}"
_COMMA = r"[-+]?[0-9]{1,3},[0-9]{1,15}"
_PAIRS = (
    # "22.43, 104.12", "22.43 104.12", ODK's own "22.43 104.12 350 5"
    re.compile(rf"({_DOT})\s*(?:[,;/]|\s)\s*({_DOT})(?:\s+(-?[0-9]{{1,5}}(?:\.[0-9]{{1,6}})?)\s+([0-9]{{1,5}}(?:\.[0-9]{{1,6}})?))?"),
    # decimal commas, told apart from the separator: "22,43; 104,12", "22,43 104,12"
    re.compile(rf"({_COMMA})\s*(?:;|,\s|\s)\s*({_COMMA})"),
)
_DMS_PART = (
    r"([0-9]{1,3}(?:[.,][0-9]{1,10})?)\s*[°º]\s*"  # degrees
    "(?:([0-9]{1,2}(?:[.,][0-9]{1,10})?)\\s*['\u2032\u2019]\\s*"  # minutes: ' or a prime or a closing quote
    "(?:([0-9]{1,2}(?:[.,][0-9]{1,10})?)\\s*(?:\"|\u2033|\u201d|''|\u2019\u2019)\\s*)?)?"  # seconds: " or a double prime
    r"([nsewbdt])?"  # N S E W, or Vietnamese B(ắc) Đ(ông) T(ây)
)
_DMS = re.compile(rf"{_DMS_PART}[\s,;]*{_DMS_PART}")
_LABELS = re.compile(r"\b(?:toa do|vi tri|vi do|kinh do|latitude|longitude|lat|lng|lon|long)\b\s*[:=]?")
_EAST_WEST = frozenset("ewdt")


def parse_geopoint(text: str) -> str | None:
    """ODK's "lat lon alt acc" for a typed place: "22.43, 104.12", "22,43; 104,12", 22°25'48"N 104°07'12"E,
    a Google Maps, OpenStreetMap, Apple Maps or geo: link that carries its coordinates. A short link
    (maps.app.goo.gl/…) does not: it is refused, not guessed."""
    if not text or len(text) > _MAX_PLACE:
        return None
    if _LINK.search(text):
        return _from_link(unquote_plus(text))
    folded = _fold(text)
    lon_first = _lon_named_first(folded)
    folded = " ".join(_LABELS.sub(" ", folded).split())  # one space between parts: no backtracking over runs
    for pattern in _PAIRS:
        if found := pattern.fullmatch(folded):
            first, second = (float(n.replace(",", ".")) for n in found.group(1, 2))
            altitude, accuracy = (float(n) if n else 0.0 for n in (*found.groups()[2:], None, None)[:2])
            lat, lon = (second, first) if lon_first else (first, second)
            if abs(lat) > 90 >= abs(lon):  # "104.12, 22.43": only longitude first reads as a place
                lat, lon = lon, lat
            return _point(lat, lon, altitude, accuracy)
    if found := _DMS.fullmatch(folded):
        return _from_dms(found.groups())
    return None


def _lon_named_first(folded: str) -> bool:
    """"Kinh độ 104.12, vĩ độ 22.43": the labels say which number is which."""
    names = [m.group(0).rstrip(":= ") for m in _LABELS.finditer(folded)]
    names = [n for n in names if n not in ("toa do", "vi tri")]
    return bool(names) and names[0] in ("kinh do", "longitude", "lng", "lon", "long")


def _from_link(link: str) -> str | None:
    for pattern in _LINK_PATTERNS:
        for found in pattern.finditer(link):
            lat, lon = float(found.group(1)), float(found.group(2))
            if lat == lon == 0 and found.group(0).startswith("geo:") and "q=" in link:  # geo:0,0?q=22.43,104.12
                continue
            accuracy = _GEO_ACCURACY.search(link)
            return _point(lat, lon, 0.0, float(accuracy.group(1)) if accuracy else 0.0)
    return None


def _from_dms(groups: Sequence[str | None]) -> str | None:
    coordinates: list[float] = []
    hemispheres: list[str] = []
    for degrees, minutes, seconds, hemisphere in (groups[:4], groups[4:]):
        assert degrees is not None  # the pattern requires them
        parts = [float(p.replace(",", ".")) if p else 0.0 for p in (degrees, minutes, seconds)]
        if parts[1] >= 60 or parts[2] >= 60:
            return None
        value = parts[0] + parts[1] / 60 + parts[2] / 3600
        coordinates.append(-value if hemisphere in ("s", "w", "t") else value)
        hemispheres.append(hemisphere or "")
    lat, lon = coordinates
    if hemispheres[0] in _EAST_WEST and hemispheres[1] not in _EAST_WEST:  # 104°07'E 22°25'N
        lat, lon = lon, lat
    return _point(lat, lon, 0.0, 0.0)


def _point(lat: float, lon: float, altitude: float, accuracy: float) -> str | None:
    if not (abs(lat) <= 90 and abs(lon) <= 180):
        return None
    return " ".join(_number(n) for n in (lat, lon, altitude, accuracy))


def _number(value: float) -> str:
    """22.43, 104.12, 0: as few digits as the value has (seven decimals are 1 cm)."""
    text = f"{value:.7f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def geopoint_of(latitude: float, longitude: float, accuracy: float | None) -> str:
    """ODK's "lat lon alt acc" for a location shared in the chat (the platform gives no altitude)."""
    point = _point(latitude, longitude, 0.0, accuracy or 0.0)
    if point is None:
        raise ValueError(f"no place on Earth: {latitude}, {longitude}")
    return point


# --- traces and shapes: several points, one message at a time ------------------------------------------

_DONE = frozenset({
    "xong", "xong roi", "het", "het roi", "du roi", "du", "ket thuc", "dung", "dung lai", "done", "end", "finish",
})  # fmt: skip


def is_done_word(text: str) -> bool:
    """"xong": the person has sent every point of a line or an area."""
    return plain(text) in _DONE


def parse_points(text: str) -> list[str]:
    """The points in one message: one, or several on their own lines or between ";" ("22,43; 104,12" is
    one point, with decimal commas). [] if any of them is no place: nothing half-taken."""
    points: list[str] = []
    for line in filter(None, (line.strip() for line in text.splitlines())):
        if whole := parse_geopoint(line):
            points.append(whole)
            continue
        for part in filter(None, (part.strip() for part in line.split(";"))):
            point = parse_geopoint(part)
            if point is None:
                return []
            points.append(point)
    return points


def shape_of(points: Sequence[str], closed: bool) -> str | None:
    """ODK's geotrace (≥ 2 points) or geoshape (≥ 3 points, the first repeated at the end) value; None
    when there are too few different points to draw it."""
    places = [" ".join(p.split()[:2]) for p in points]
    if closed and len(places) > 1 and places[-1] == places[0]:
        points, places = points[:-1], places[:-1]
    if len(set(places)) < (3 if closed else 2):
        return None
    return ";".join([*points, points[0]] if closed else points)


# --- range, rank, acknowledge, barcode ------------------------------------------------------------------

_RANGE_NUMBER = re.compile(r"[^0-9-]*?(-?[0-9]{1,9}(?:[.,][0-9]{1,6})?)[^0-9]*")
_STEP_TOLERANCE = 1e-9


def parse_range(text: str, start: float, end: float, step: float) -> int | float | None:
    """The number typed ("7", "7 điểm", "2,5") if it lies between start and end on a step from start.
    Whole when the range is (start and step whole), as ODK stores it."""
    typed = text.strip()
    if len(typed) > _MAX_TYPED or any(c.isdigit() and not c.isascii() for c in typed):  # "５" is no 5
        return None
    found = _RANGE_NUMBER.fullmatch(typed)
    if not found or step == 0:
        return None
    value = float(found.group(1).replace(",", "."))
    if not min(start, end) <= value <= max(start, end):
        return None
    steps = (value - start) / step
    if abs(steps - round(steps)) > _STEP_TOLERANCE:
        return None
    whole = float(start).is_integer() and float(step).is_integer()
    return int(value) if whole else value


_RANK_NUMBERS = re.compile(r"[0-9]{1,3}(?:\s*(?:[,;>.\-]|\s)\s*[0-9]{1,3})*")


def parse_rank(text: str, choices: Sequence[Option]) -> list[str] | None:
    """The choices' values in the order typed: their numbers ("2 1 3", "2, 1, 3", "2>1>3", "213" when
    every number is one digit) or their labels between commas. Every choice exactly once, as ODK requires."""
    typed = text.strip()
    if _RANK_NUMBERS.fullmatch(typed):
        numbers = [int(n) for n in re.findall(r"[0-9]+", typed)]
        if len(numbers) == 1 and len(typed) == len(choices) <= 9:  # "213"
            numbers = [int(d) for d in typed]
        if sorted(numbers) != list(range(1, len(choices) + 1)):
            return None
        return [choices[n - 1].value for n in numbers]
    picked = choosing.pick(choices, typed, several=True)
    if not isinstance(picked, list) or sorted(picked) != sorted(c.value for c in choices):
        return None
    return picked


_ACKNOWLEDGED = frozenset({
    "ok", "oke", "okay", "okie", "oki", "1", "dong y", "da", "vang", "da vang", "vang a", "da a", "roi", "xong",
    "da doc", "doc roi", "biet roi", "da biet", "nhat tri", "co", "duoc", "dung", "yes", "u", "uh", "um",
})  # fmt: skip


def parse_acknowledge(text: str) -> str | None:
    """"OK" for "ok", "đồng ý", "dạ", "vâng", "rồi", "xong", "1"."""
    return "OK" if plain(text) in _ACKNOWLEDGED else None


def parse_barcode(text: str) -> str | None:
    """The code as typed, trimmed: 1 to 200 printable characters on one line."""
    code = text.strip()
    return code if 0 < len(code) <= MAX_BARCODE and code.isprintable() else None
