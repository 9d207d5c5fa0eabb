"""Vietnamese times as people type them: "7h sáng mai", "19:30 thứ bảy", "20/12 8:00",
"mỗi chủ nhật 19h". dateparser does the parsing; this module only rewrites the colloquial forms it
does not know ("7h", "sáng/chiều/tối", "mai", "5 phút nữa", words without diacritics) into ones it does.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

import dateparser
from apscheduler.triggers.cron import CronTrigger

from handlers.handbook.normalize import plain

_UNACCENTED = {  # whole words typed without diacritics -> the form dateparser's Vietnamese data knows
    "thu hai": "thứ hai", "thu ba": "thứ ba", "thu tu": "thứ tư", "thu nam": "thứ năm",
    "thu sau": "thứ sáu", "thu bay": "thứ bảy", "chu nhat": "chủ nhật", "thu": "thứ",
    "ngay mai": "ngày mai", "ngay": "ngày", "gio": "giờ", "phut": "phút", "giay": "giây",
    "sang": "sáng", "trua": "trưa", "chieu": "chiều", "toi": "tối", "dem": "đêm",
    "moi": "mỗi", "hang": "hằng", "nua": "nữa", "luc": "lúc", "vao": "vào",
}
_WEEKDAYS = {  # Vietnamese weekday -> cron day_of_week
    "thứ hai": "mon", "thứ 2": "mon", "thứ ba": "tue", "thứ 3": "tue", "thứ tư": "wed", "thứ 4": "wed",
    "thứ năm": "thu", "thứ 5": "thu", "thứ sáu": "fri", "thứ 6": "fri", "thứ bảy": "sat",
    "thứ 7": "sat", "chủ nhật": "sun", "cn": "sun",
}
_AFTERNOON = ("chiều", "tối", "đêm")
# ASCII digits only ("５", "٣" are no time), and few of them: "99999999 ngày nữa" is no time either
_CLOCK = re.compile(r"\b([0-9]{1,2})\s*(?:h|giờ|:)(?:\s*([0-9]{2})(?:\s*phút)?)?")
_IN = re.compile(r"^(?:sau\s+)?([0-9]{1,4})\s*(giây|phút|giờ|ngày)(?:\s+nữa)?$")
_FILLER = re.compile(r"\b(?:lúc|vào)\b")
_TODAY = re.compile(r"\b(?:sáng|trưa|chiều|tối|đêm) nay\b")


@dataclass(frozen=True)
class Recurrence:
    """Cron fields for apscheduler: every `day_of_week` ("*" for every day) at hour:minute local time."""

    day_of_week: str
    hour: int
    minute: int

    def encode(self) -> str:
        return f"{self.day_of_week} {self.hour} {self.minute}"

    @classmethod
    def decode(cls, text: str) -> Recurrence:
        dow, hour, minute = text.split()
        return cls(dow, int(hour), int(minute))

    def trigger(self, tz: tzinfo) -> CronTrigger:
        """The trigger the scheduler fires this rule with."""
        return CronTrigger(day_of_week=self.day_of_week, hour=self.hour, minute=self.minute, timezone=tz)

    def next_after(self, now_utc: datetime, tz: tzinfo) -> datetime:
        """The first firing from `now_utc` on (aware, UTC), computed by the trigger itself, so what people
        are told is when the scheduler's job runs."""
        fire = self.trigger(tz).get_next_fire_time(None, now_utc)
        assert fire is not None  # a cron rule without an end date always fires again
        return fire.astimezone(UTC)


class NotUnderstood(ValueError):
    """The text is not a time we can read; the handler asks again with examples."""


class InThePast(ValueError):
    pass


_NOW = {"ngay", "bay gio", "ngay bay gio", "luon", "ngay luon", "gui ngay", "nhac ngay"}


def is_now(text: str) -> bool:
    """"ngay", "bây giờ": no time to parse, the moment is now."""
    return plain(text) in _NOW


def parse(text: str, now_utc: datetime, tz: ZoneInfo) -> datetime | Recurrence:
    """A future moment (aware, UTC) or a weekly/daily recurrence."""
    cleaned = _normalise(text)
    if cleaned.startswith(("mỗi ", "hằng ", "hàng ")):
        return _recurrence(cleaned)
    local_now = now_utc.astimezone(tz)
    relative = _IN.match(cleaned)
    if relative:  # dateparser knows "trong 5 phút" but not "5 phút nữa"
        cleaned = f"trong {relative.group(1)} {relative.group(2)}"
    afternoon = any(word in cleaned.split() for word in _AFTERNOON)
    cleaned = _TODAY.sub("hôm nay", cleaned)
    cleaned = _CLOCK.sub(lambda m: f"{m.group(1)}:{m.group(2) or '00'}", cleaned)
    cleaned = re.sub(r"\b(?:sáng|trưa|chiều|tối|đêm)\b", " ", cleaned)
    cleaned = re.sub(r"(^|\s)mai\b", r"\1ngày mai", cleaned)
    cleaned = " ".join(_FILLER.sub(" ", cleaned).split())
    found = dateparser.parse(
        cleaned,
        languages=["vi"],
        settings={
            "TIMEZONE": str(tz),
            "RETURN_AS_TIMEZONE_AWARE": True,
            "PREFER_DATES_FROM": "future",
            "RELATIVE_BASE": local_now.replace(tzinfo=None),
            "DATE_ORDER": "DMY",
        },
    )
    if found is None:
        raise NotUnderstood(text)
    if afternoon and found.hour < 12:
        found += timedelta(hours=12)
    moment = found.astimezone(UTC)
    if moment <= now_utc:
        raise InThePast(text)
    return moment


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower().strip()
    for bare in sorted(_UNACCENTED, key=len, reverse=True):
        text = re.sub(rf"\b{bare}\b", _UNACCENTED[bare], text)
    return " ".join(text.split())


def _recurrence(text: str) -> Recurrence:
    day = "*" if re.search(r"\bngày\b", text) else None
    for name in sorted(_WEEKDAYS, key=len, reverse=True):
        if re.search(rf"\b{name}\b", text):
            day = _WEEKDAYS[name]
            break
    clock = _CLOCK.search(text)
    if day is None or clock is None:
        raise NotUnderstood(text)
    hour, minute = int(clock.group(1)), int(clock.group(2) or 0)
    if any(word in text.split() for word in _AFTERNOON) and hour < 12:
        hour += 12
    if hour > 23 or minute > 59:
        raise NotUnderstood(text)
    return Recurrence(day, hour, minute)
