"""Plain-Python pieces, called without a chat: reading times, splitting texts, quiet hours, pacing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.pacing import Pacer, RateGate, Window
from handlers import vietnamese_time
from handlers.chat import ChatRef
from handlers.context import QuietHours
from handlers.textsplit import split_text

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY_10AM = datetime(2026, 11, 23, 3, 0, tzinfo=UTC)  # 10:00 in Hà Nội


@pytest.mark.parametrize(
    ("typed", "local"),
    [
        ("7h sáng mai", datetime(2026, 11, 24, 7, 0)),
        ("7h sang mai", datetime(2026, 11, 24, 7, 0)),
        ("19:30 thứ bảy", datetime(2026, 11, 28, 19, 30)),
        ("19h30 thu 7", datetime(2026, 11, 28, 19, 30)),
        ("20/12 8:00", datetime(2026, 12, 20, 8, 0)),
        ("7h tối nay", datetime(2026, 11, 23, 19, 0)),
        ("8 giờ 15 sáng mai", datetime(2026, 11, 24, 8, 15)),
        ("9h", datetime(2026, 11, 24, 9, 0)),  # 9:00 has passed today: tomorrow
        ("sau 5 phút", datetime(2026, 11, 23, 10, 5)),
    ],
)
def test_vietnamese_times(typed: str, local: datetime) -> None:
    moment = vietnamese_time.parse(typed, MONDAY_10AM, HCM)
    assert isinstance(moment, datetime)
    assert moment.astimezone(HCM).replace(tzinfo=None) == local


def test_recurring_and_refused_times() -> None:
    assert vietnamese_time.parse("mỗi chủ nhật 19h", MONDAY_10AM, HCM) == vietnamese_time.Recurrence("sun", 19, 0)
    assert vietnamese_time.parse("moi thu 2 7h sang", MONDAY_10AM, HCM) == vietnamese_time.Recurrence("mon", 7, 0)
    assert vietnamese_time.parse("hằng ngày 6h30", MONDAY_10AM, HCM) == vietnamese_time.Recurrence("*", 6, 30)
    with pytest.raises(vietnamese_time.InThePast):
        vietnamese_time.parse("1/1/2020 8:00", MONDAY_10AM, HCM)
    for nonsense in ("khi nào rảnh", "mỗi lúc", ""):
        with pytest.raises(vietnamese_time.NotUnderstood):
            vietnamese_time.parse(nonsense, MONDAY_10AM, HCM)


def test_split_keeps_order_and_limit_and_prefers_paragraphs() -> None:
    paragraphs = [f"Đoạn {n}: " + "chữ " * 120 for n in range(6)]
    parts = split_text("\n\n".join(paragraphs), 2000)
    assert all(len(p) <= 2000 for p in parts)
    assert "".join(parts).replace("\n", "").replace(" ", "") == "".join(paragraphs).replace(" ", "")
    assert all(p.startswith("Đoạn") for p in parts)  # each part starts at a paragraph
    assert [len(p) for p in split_text("x" * 4500, 2000)] == [2000, 2000, 500]
    assert split_text("ngắn", 10) == ["ngắn"]


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours(time(21, 0), time(6, 0))
    assert quiet.contains(time(23, 0))
    assert quiet.contains(time(5, 59))
    assert not quiet.contains(time(6, 0))
    late = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 22:00 local
    assert quiet.release(late, HCM) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)  # 06:00 next day
    early = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)  # 04:00 local on the 24th
    assert quiet.release(early, HCM) == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
    assert quiet.release(MONDAY_10AM, HCM) == MONDAY_10AM
    assert not QuietHours(time(0), time(0)).contains(time(23))


async def test_urgent_callers_go_before_queued_bulk_ones() -> None:
    gate = RateGate(20)
    order: list[str] = []

    async def take(name: str, urgent: bool) -> None:
        await gate.acquire(urgent)
        order.append(name)

    bulk = [asyncio.create_task(take(f"bulk{n}", False)) for n in range(5)]
    await asyncio.sleep(0)  # the bulk callers are queued first
    reply = asyncio.create_task(take("reply", True))
    await asyncio.gather(*bulk, reply)
    assert order.index("reply") <= 1  # at most the slot already being handed out goes first


async def test_a_full_chat_window_holds_only_that_chat() -> None:
    pacer = Pacer(1000, group=Window(2, 0.5), private=Window(1, 0.2))
    busy, other = ChatRef("t", "-1"), ChatRef("t", "-2")
    sent: list[str] = []

    async def send(chat: ChatRef) -> None:
        async with pacer.send_slot(chat, is_group=True):
            sent.append(chat.chat_id)

    await asyncio.gather(*(send(busy) for _ in range(3)), send(other))
    assert sent[-1] == "-1"
    assert sent.count("-1") == 3  # the third send to -1 waited for its window
    assert sent.index("-2") < 3
