"""Typed answers to the survey kinds a chat has no widget for, as residents of a mountain village type
them on a phone (often without diacritics, with Telex leftovers): what is taken, what it is stored as,
and what is refused, so that the bot asks again instead of storing a wrong day or place."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.surveys.definition import Option
from handlers.surveys.typed import (
    geopoint_of,
    is_done_word,
    parse_acknowledge,
    parse_barcode,
    parse_date,
    parse_datetime,
    parse_geopoint,
    parse_points,
    parse_range,
    parse_rank,
    parse_time,
    shape_of,
)
from messages import render

TODAY = date(2026, 3, 20)


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("15/3/2024", "2024-03-15"),
        ("15-3-2024", "2024-03-15"),
        ("15.3.2024", "2024-03-15"),
        ("15 / 03 / 2024", "2024-03-15"),
        ("2024-03-15", "2024-03-15"),
        ("15/3", "2026-03-15"),  # this year
        ("15/03/24", "2024-03-15"),
        ("25/12/60", "1960-12-25"),  # a birth year, not 2060
        ("1/1/36", "2036-01-01"),  # ten years ahead is still this century
        ("29/2/2024", "2024-02-29"),
        ("15/3/2024.", "2024-03-15"),
        ("hôm nay", "2026-03-20"),
        ("Hom nay", "2026-03-20"),
        ("hôm qua", "2026-03-19"),
        ("hom qua", "2026-03-19"),
        ("hoom qua", "2026-03-19"),  # Telex left on: ô typed as "oo"
        ("bữa qua", "2026-03-19"),
        ("hôm kia", "2026-03-18"),
        ("ngày mai", "2026-03-21"),
        ("ngay kia", "2026-03-22"),
        ("3 ngày trước", "2026-03-17"),
        ("3 ngay truoc", "2026-03-17"),
        ("10 ngày nữa", "2026-03-30"),
        ("ngày 15 tháng 3 năm 2024", "2024-03-15"),
        ("ngay 15 thang 3 nam 2024", "2024-03-15"),
        ("15 thangs 3 nawm 2024", "2024-03-15"),
        ("15 tháng 3", "2026-03-15"),
        ("mùng 5 tháng 1", "2026-01-05"),
        ("ngày 15/3/2024", "2024-03-15"),
        ("15 thg 3 2024", "2024-03-15"),
        ("15 3 2024", "2024-03-15"),  # spaces: the four-digit year says it is a date
        ("15 tháng 3, 2024", "2024-03-15"),
    ],
)
def test_a_date_as_typed_is_stored_as_the_day_it_means(typed: str, stored: str) -> None:
    assert parse_date(typed, TODAY) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "31/2/2024",  # no such day
        "29/2/2025",
        "15/13/2024",
        "0/3/2024",
        "15/3/1850",  # a year nobody in a survey means
        "15/3/202",
        "1５/3/2024",  # full-width digits
        "15/3-2024",  # two kinds of separator
        "2024",
        "15",
        "tuần trước",  # which day of it?
        "hôm",
        "",
        "15/3/2024 8:30",  # a date question takes a date
        "9999 ngày trước" * 10,
    ],
)
def test_a_text_that_is_no_single_day_is_refused(typed: str) -> None:
    assert parse_date(typed, TODAY) is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("8h", "08:00:00"),
        ("8H", "08:00:00"),
        ("8 giờ", "08:00:00"),
        ("8g", "08:00:00"),
        ("8 giờ sáng", "08:00:00"),
        ("8 gio sang", "08:00:00"),
        ("8 giowf sangs", "08:00:00"),  # Telex tone letters left on
        ("8 sáng", "08:00:00"),
        ("sáng 8h", "08:00:00"),
        ("8h30", "08:30:00"),
        ("8h30p", "08:30:00"),
        ("8 giờ 30 phút", "08:30:00"),
        ("8 giờ rưỡi", "08:30:00"),
        ("8 giờ kém 15", "07:45:00"),
        ("8:30", "08:30:00"),
        ("8.30", "08:30:00"),
        ("20:15", "20:15:00"),
        ("20:15:30", "20:15:30"),
        ("0:05", "00:05:00"),
        ("2 giờ chiều", "14:00:00"),
        ("2 gio chieu", "14:00:00"),
        ("14 giờ chiều", "14:00:00"),
        ("7 giờ tối", "19:00:00"),
        ("lúc 7g tối", "19:00:00"),
        ("12 giờ trưa", "12:00:00"),
        ("1 giờ trưa", "13:00:00"),
        ("10 giờ đêm", "22:00:00"),
        ("12 giờ đêm", "00:00:00"),
        ("2 giờ đêm", "02:00:00"),
        ("khoảng 9h sáng", "09:00:00"),
        ("8am", "08:00:00"),
        ("8:30 PM", "20:30:00"),
        ("12pm", "12:00:00"),
        ("12 am", "00:00:00"),
    ],
)
def test_a_time_as_typed_is_stored_on_the_24_hour_clock(typed: str, stored: str) -> None:
    assert parse_time(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "8",  # 8 or 20?
        "trưa",  # noon only with a number: "12 giờ trưa"
        "buổi sáng",
        "24h",
        "25:00",
        "8:60",
        "8:5",
        "20 giờ sáng",  # the part of the day contradicts the hour
        "9 giờ tối sáng",
        "sáng 8 giờ tối",
        "8 giờ kém 75",
        "0 giờ kém 15",
        "13pm",
        "５:30",
        "",
    ],
)
def test_a_text_that_is_no_time_of_day_is_refused(typed: str) -> None:
    assert parse_time(typed) is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("8h sáng 15/3/2024", "2024-03-15T08:00:00"),
        ("15/3/2024 8:30", "2024-03-15T08:30:00"),
        ("15/3/2024, 8:30", "2024-03-15T08:30:00"),
        ("ngày 15/3 lúc 8h", "2026-03-15T08:00:00"),
        ("hôm qua 7 giờ tối", "2026-03-19T19:00:00"),
        ("7 giờ tối hôm qua", "2026-03-19T19:00:00"),
        ("hom qua 7 gio toi", "2026-03-19T19:00:00"),
        ("8h sáng nay", "2026-03-20T08:00:00"),
        ("2024-03-15T08:30", "2024-03-15T08:30:00"),
        ("2024-03-15 08:30:15", "2024-03-15T08:30:15"),
        ("ngày 15 tháng 3 năm 2024 lúc 8 giờ 30 phút sáng", "2024-03-15T08:30:00"),
    ],
)
def test_a_date_and_time_typed_in_either_order_are_stored_together(typed: str, stored: str) -> None:
    assert parse_datetime(typed, TODAY) == stored


@pytest.mark.parametrize("typed", ["15/3/2024", "8h30", "31/2/2024 8h", "15/3/2024 25:00", "hôm qua tối", ""])
def test_a_datetime_needs_both_a_real_day_and_a_real_time(typed: str) -> None:
    assert parse_datetime(typed, TODAY) is None


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("22.43, 104.12", "22.43 104.12 0 0"),
        ("22.43 104.12", "22.43 104.12 0 0"),
        ("22.43,104.12", "22.43 104.12 0 0"),
        ("  22.43 ,  104.12 ", "22.43 104.12 0 0"),
        ("22,43; 104,12", "22.43 104.12 0 0"),  # decimal commas, a semicolon between
        ("22,43 104,12", "22.43 104.12 0 0"),
        ("-33.8688, 151.2093", "-33.8688 151.2093 0 0"),
        ("22.43 104.12 350 5", "22.43 104.12 350 5"),  # ODK's own format, altitude and accuracy kept
        ("104.12, 22.43", "22.43 104.12 0 0"),  # 104 can only be the longitude
        ("Vĩ độ: 22.43, Kinh độ: 104.12", "22.43 104.12 0 0"),
        ("kinh do 104.12 vi do 22.43", "22.43 104.12 0 0"),
        ("Kinh độ: 2.35, vĩ độ: 48.85", "48.85 2.35 0 0"),  # the labels, not the sizes, tell which is which
        ("toạ độ 22.43, 104.12", "22.43 104.12 0 0"),
        ("22°25'48\"N 104°07'12\"E", "22.43 104.12 0 0"),
        ("22°25'48.0\"N 104°07'12.0\"E", "22.43 104.12 0 0"),  # as Google Maps writes it
        ("22°25\u203248\u2033B 104°07\u203212\u2033Đ", "22.43 104.12 0 0"),  # primes; Vietnamese: vĩ Bắc, kinh Đông
        ("104°07'12\"E 22°25'48\"N", "22.43 104.12 0 0"),
        ("33°52'S 151°12'E", "-33.8666667 151.2 0 0"),
        ("22.43°N 104.12°E", "22.43 104.12 0 0"),
        ("https://www.google.com/maps/@22.43,104.12,15z", "22.43 104.12 0 0"),
        ("https://maps.google.com/?q=22.43,104.12", "22.43 104.12 0 0"),
        ("https://www.google.com/maps/search/?api=1&query=22.43%2C104.12", "22.43 104.12 0 0"),
        ("https://www.google.com/maps/search/22.43,+104.12?entry=tts", "22.43 104.12 0 0"),
        # a place's page: its pin (!3d!4d), not the map's centre (@)
        (
            "https://www.google.com/maps/place/Sa+Pa/@22.3363,103.8438,14z/data=!3m1!4b1!4m6!3m5!8m2!3d22.3402!4d103.8448",
            "22.3402 103.8448 0 0",
        ),
        ("Nhà tôi đây https://maps.google.com/maps?q=22.43,104.12&z=17 nhé", "22.43 104.12 0 0"),
        ("geo:22.43,104.12", "22.43 104.12 0 0"),
        ("geo:22.43,104.12,350;u=35", "22.43 104.12 0 35"),
        ("geo:0,0?q=22.43,104.12(Nhà văn hoá)", "22.43 104.12 0 0"),
        ("https://www.openstreetmap.org/#map=15/22.43/104.12", "22.43 104.12 0 0"),
        ("https://www.openstreetmap.org/?mlat=22.43&mlon=104.12#map=17/22.43/104.12", "22.43 104.12 0 0"),
        ("https://maps.apple.com/?ll=22.43,104.12&q=Ghim", "22.43 104.12 0 0"),
        ("https://maps.apple.com/?q=Nha&sll=22.43,104.12", "22.43 104.12 0 0"),
    ],
)
def test_a_place_typed_or_pasted_is_stored_as_an_odk_geopoint(typed: str, stored: str) -> None:
    assert parse_geopoint(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "22,43,104,12",  # four numbers or two? nobody can tell
        "22, 104",  # whole degrees: a slip, not a place 100 km wide
        "95.1, 104.12",  # no latitude is beyond 90
        "22.43, 200.5",
        "22.43",
        "22.43 104.12 22.44 104.13 1",
        "https://maps.app.goo.gl/AbCd123",  # a short link carries no coordinates: refused, not fetched
        "https://zalo.me/g/abc123",
        "https://www.google.com/maps/place/Sa+Pa",
        "22°75'00\"N 104°07'12\"E",  # 75 minutes
        "nhà ông Páo",
        "2５.43, 104.12",
        "",
    ],
)
def test_a_text_that_is_no_place_is_refused(typed: str) -> None:
    assert parse_geopoint(typed) is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789.,;:-+ °'\"NSEWBĐnsew@/?&=#qlatmonz!d\n geo:https"), max_size=80))
def test_any_text_gives_a_place_on_earth_or_nothing_never_an_error(text: str) -> None:
    point = parse_geopoint(text)
    if point is not None:
        lat, lon, _alt, _acc = map(float, point.split(" "))
        assert -90 <= lat <= 90
        assert -180 <= lon <= 180


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_unicode_text_gives_a_place_on_earth_or_nothing(text: str) -> None:
    point = parse_geopoint(text)
    if point is not None:
        lat, lon, _alt, _acc = map(float, point.split(" "))
        assert abs(lat) <= 90
        assert abs(lon) <= 180


@settings(max_examples=200, deadline=None)
@given(st.floats(-90, 90), st.floats(-180, 180))
def test_coordinates_typed_or_in_a_link_come_back_as_the_same_place(lat: float, lon: float) -> None:
    typed = f"{lat:.6f}, {lon:.6f}"
    for text in (typed, f"https://www.google.com/maps?q={lat:.6f},{lon:.6f}", f"geo:{lat:.6f},{lon:.6f}"):
        point = parse_geopoint(text)
        assert point is not None, text
        got_lat, got_lon = map(float, point.split(" ")[:2])
        assert got_lat == pytest.approx(round(lat, 6), abs=1e-9)
        assert got_lon == pytest.approx(round(lon, 6), abs=1e-9)


def test_a_location_shared_in_the_chat_is_an_odk_geopoint_with_its_accuracy() -> None:
    assert geopoint_of(22.43000001, 104.12, 12.5) == "22.43 104.12 0 12.5"  # to the centimetre
    assert geopoint_of(-0.00000001, 0.0, None) == "0 0 0 0"
    with pytest.raises(ValueError, match="no place"):
        geopoint_of(91.0, 104.12, None)
    with pytest.raises(ValueError, match="no place"):
        geopoint_of(float("nan"), 104.12, None)


@pytest.mark.parametrize(
    ("typed", "points"),
    [
        ("22.43, 104.12", ["22.43 104.12 0 0"]),
        ("22,43; 104,12", ["22.43 104.12 0 0"]),  # one point with decimal commas, not two halves
        ("22.43 104.12\n22.44 104.13", ["22.43 104.12 0 0", "22.44 104.13 0 0"]),
        ("22.43 104.12; 22.44 104.13", ["22.43 104.12 0 0", "22.44 104.13 0 0"]),
        ("22.43 104.12; nhà ông Páo", []),  # nothing half-taken
        ("https://maps.google.com/?q=22.43,104.12", ["22.43 104.12 0 0"]),
        ("xong", []),
    ],
)
def test_one_message_may_bring_one_point_or_several(typed: str, points: list[str]) -> None:
    assert parse_points(typed) == points


@pytest.mark.parametrize("typed", ["xong", "Xong", "xong rồi", "XONG ROI", "hết", "dừng", "done"])
def test_a_line_or_an_area_ends_with_a_word(typed: str) -> None:
    assert is_done_word(typed)


@pytest.mark.parametrize("typed", ["22.43, 104.12", "chưa xong", "ok", ""])
def test_other_messages_do_not_end_a_line(typed: str) -> None:
    assert not is_done_word(typed)


A, B, C = "22.43 104.12 0 0", "22.44 104.12 0 0", "22.44 104.13 0 5"


def test_a_trace_needs_two_different_points_and_keeps_their_order() -> None:
    assert shape_of([A, B, C], closed=False) == f"{A};{B};{C}"
    assert shape_of([A, B], closed=False) == f"{A};{B}"
    assert shape_of([A], closed=False) is None
    assert shape_of([A, "22.43 104.12 0 9"], closed=False) is None  # the same place twice
    assert shape_of([], closed=False) is None


def test_a_shape_needs_three_different_points_and_is_closed_on_its_first() -> None:
    assert shape_of([A, B, C], closed=True) == f"{A};{B};{C};{A}"
    assert shape_of([A, B, C, A], closed=True) == f"{A};{B};{C};{A}"  # closed by the resident already
    assert shape_of([A, B, A], closed=True) is None
    assert shape_of([A, B], closed=True) is None


@pytest.mark.parametrize(
    ("typed", "start", "end", "step", "stored"),
    [
        ("7", 0, 10, 1, 7),
        ("7 điểm", 0, 10, 1, 7),
        ("0", 0, 10, 1, 0),
        ("10", 0, 10, 1, 10),
        ("2,5", 0, 5, 0.5, 2.5),
        ("2.5", 0, 5, 0.5, 2.5),
        ("0.3", 0, 1, 0.1, 0.3),
        ("-2", -5, 5, 1, -2),
        ("4", 10, 0, 2, 4),  # a range may count down
    ],
)
def test_a_number_on_the_range_and_its_steps_is_taken(typed: str, start: float, end: float, step: float, stored: float) -> None:
    value = parse_range(typed, start, end, step)
    assert value == stored
    assert type(value) is type(stored)  # whole on a whole range, as ODK stores it


@pytest.mark.parametrize(
    ("typed", "start", "end", "step"),
    [
        ("11", 0, 10, 1),
        ("-1", 0, 10, 1),
        ("3", 0, 10, 2),  # off the steps
        ("2.5", 0, 10, 1),
        ("5-7", 0, 10, 1),
        ("５", 0, 10, 1),
        ("５ 3", 0, 10, 1),
        ("bảy", 0, 10, 1),
        ("", 0, 10, 1),
        ("3", 0, 10, 0),
    ],
)
def test_a_number_off_the_range_is_refused(typed: str, start: float, end: float, step: float) -> None:
    assert parse_range(typed, start, end, step) is None


CHANNELS = (Option("zalo", "Zalo"), Option("fb", "Facebook"), Option("loa", "Loa phát thanh xã"))


@pytest.mark.parametrize(
    ("typed", "ranked"),
    [
        ("2 1 3", ["fb", "zalo", "loa"]),
        ("2,1,3", ["fb", "zalo", "loa"]),
        ("2, 1, 3", ["fb", "zalo", "loa"]),
        ("3>1>2", ["loa", "zalo", "fb"]),
        ("213", ["fb", "zalo", "loa"]),
        ("facebook, zalo, loa phat thanh", ["fb", "zalo", "loa"]),
    ],
)
def test_a_rank_is_every_choice_in_the_order_typed(typed: str, ranked: list[str]) -> None:
    assert parse_rank(typed, CHANNELS) == ranked


@pytest.mark.parametrize("typed", ["2 1", "2 1 3 4", "2 2 1", "1 2 3 3", "0 1 2", "21", "zalo", "", "loa, zalo"])
def test_a_rank_missing_or_repeating_a_choice_is_refused(typed: str) -> None:
    assert parse_rank(typed, CHANNELS) is None


@settings(max_examples=100, deadline=None)
@given(st.permutations(list(range(1, 8))), st.sampled_from([" ", ",", ", ", ";"]))
def test_any_order_of_the_numbers_is_that_order(order: list[int], separator: str) -> None:
    choices = tuple(Option(f"c{n}", f"Lựa chọn {n}") for n in range(1, 8))
    assert parse_rank(separator.join(map(str, order)), choices) == [f"c{n}" for n in order]


@pytest.mark.parametrize("typed", ["ok", "OK", "oke", "đồng ý", "dong y", "dạ", "da", "vâng", "rồi", "xong", "1", "Ừ"])
def test_an_acknowledgement_is_stored_as_ok(typed: str) -> None:
    assert parse_acknowledge(typed) == "OK"


@pytest.mark.parametrize("typed", ["không", "khong dong y", "2", "chưa", ""])
def test_anything_else_is_no_acknowledgement(typed: str) -> None:
    assert parse_acknowledge(typed) is None


def test_a_barcode_is_the_code_as_typed_on_one_line() -> None:
    assert parse_barcode("  8934567890123 ") == "8934567890123"
    assert parse_barcode("SP-0042 A") == "SP-0042 A"
    assert parse_barcode("x" * 200) == "x" * 200
    assert parse_barcode("x" * 201) is None
    assert parse_barcode("   ") is None
    assert parse_barcode("893\n456") is None


@settings(max_examples=200, deadline=None)
@given(st.dates(date(1900, 1, 1), date(2100, 12, 31)), st.sampled_from(["/", "-", "."]))
def test_every_day_typed_day_first_is_that_day(day: date, separator: str) -> None:
    typed = separator.join((str(day.day), str(day.month), str(day.year)))
    assert parse_date(typed, TODAY) == day.isoformat()
    assert parse_date(f"ngay {day.day} thang {day.month} nam {day.year}", TODAY) == day.isoformat()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 23), st.integers(0, 59))
def test_every_minute_of_the_day_typed_as_hh_mm_or_h_is_that_minute(hour: int, minute: int) -> None:
    assert parse_time(f"{hour}:{minute:02d}") == f"{hour:02d}:{minute:02d}:00"
    assert parse_time(f"{hour}h{minute}") == f"{hour:02d}:{minute:02d}:00"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=130))
def test_any_text_is_a_date_time_or_nothing_never_an_error(text: str) -> None:
    day = parse_date(text, TODAY)
    if day is not None:
        date.fromisoformat(day)
    clock = parse_time(text)
    if clock is not None:
        assert len(clock) == 8
    moment = parse_datetime(text, TODAY)
    if moment is not None:
        assert moment[:10] >= "1900"


def test_relative_days_count_from_the_village_today() -> None:
    new_year = date(2027, 1, 1)
    assert parse_date("hôm qua", new_year) == "2026-12-31"
    assert parse_date("30 ngày trước", new_year) == (new_year - timedelta(days=30)).isoformat()


# --- what the resident reads when an answer is refused ---------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "example"),
    [
        ("date", "25/12/1960"),
        ("time", "8h30"),
        ("datetime", "15/3/2024 8h30"),
        ("geotrace", "ít nhất 2 điểm"),
        ("geoshape", "ít nhất 3 điểm"),
        ("rank", "2 1 3 4"),
        ("acknowledge", "ok"),
        ("barcode", "8934567890123"),
        ("image", "📎"),
        ("audio", "🎤"),
        ("video", "📎"),
        ("file", "📎"),
        ("typed", "gõ câu trả lời"),  # a photo sent to a text question
    ],
)
def test_each_refusal_explains_with_an_example(reason: str, example: str) -> None:
    text = render("survey_invalid", reason=reason, message="", count=4, among=[])
    assert example in text
    assert "dài quá" not in text  # not the text fallback


def test_a_refused_place_tells_each_platform_how_to_send_one() -> None:
    on_telegram = render("survey_invalid", reason="geopoint", message="", count=0, among=[], platform="telegram")
    on_zalo = render("survey_invalid", reason="geopoint", message="", count=0, among=[], platform="zalo")
    assert "Vị trí" in on_telegram
    assert "22.43, 104.12" in on_telegram
    assert "22.43, 104.12" in on_zalo
    assert "đường dẫn bản đồ" in on_zalo
    assert "📎" not in on_zalo  # Zalo's bot gets no shared location


def test_a_refused_range_names_its_bounds_when_given() -> None:
    text = render("survey_invalid", reason="range", message="", count=0, among=[], start="1", end="5", step="1")
    assert "từ 1 đến 5" in text
    assert "bước" not in text
    halves = render("survey_invalid", reason="range", message="", count=0, among=[], start="0", end="2.5", step="0.5")
    assert "từ 0 đến 2,5, theo bước 0,5" in halves  # the form's parameters, written as Vietnamese write numbers
    assert "khoảng" in render("survey_invalid", reason="range", message="", count=0, among=[])
