"""Texts measured as each platform measures them: Telegram counts UTF-16 code units, so an emoji is two
of its 4,096. A notice full of emoji is previewed and delivered in parts; a notice a platform refuses is
reported to its author, once."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from handlers.chat import utf16_units
from handlers.textsplit import split_text
from storage.models import Delivery, DeliveryStatus
from tests.harness import HEAD, VILLAGE_GROUPS, Harness

VILLAGE_CHATS = list(VILLAGE_GROUPS.values())
TELEGRAM_LIMIT = 4096

# 2,118 characters, most of them emoji outside the BMP: over 4,096 UTF-16 units, well under 4,096 characters
EMOJI_NOTICE = ("Họp thôn 🙏\n" + ("🌾🎉📢" * 30 + "\n") * 30)[:2118]

def emoji_count(texts: list[str | None]) -> int:
    return sum((t or "").count("🌾") for t in texts)


def test_split_by_utf16_units_keeps_every_part_within_the_limit_and_loses_nothing() -> None:
    parts = split_text(EMOJI_NOTICE * 3, TELEGRAM_LIMIT, utf16_units)
    assert len(parts) > 1
    assert all(utf16_units(p) <= TELEGRAM_LIMIT for p in parts)
    assert "".join("".join(parts).split()) == "".join((EMOJI_NOTICE * 3).split())
    run = split_text("😀" * 5000, TELEGRAM_LIMIT, utf16_units)  # no boundary at all: cut between emoji
    assert [utf16_units(p) for p in run] == [4096, 4096, 1808]
    assert "".join(run) == "😀" * 5000


def test_the_notice_is_over_telegrams_limit_only_in_utf16_units() -> None:
    assert len(EMOJI_NOTICE) == 2118
    assert utf16_units(EMOJI_NOTICE) > TELEGRAM_LIMIT


async def test_emoji_notice_is_previewed_and_delivered_in_every_group(harness: Harness) -> None:
    fake = harness.fake
    await harness.send(HEAD, "/thongbao")
    preview = await harness.send(HEAD, EMOJI_NOTICE, expect=2)
    assert emoji_count([p.text for p in preview]) == EMOJI_NOTICE.count("🌾")
    assert preview[-1].reply_markup is not None  # the choices end the preview, where the author reads on

    await harness.send(HEAD, "1")  # send now
    await harness.wait_groups(VILLAGE_CHATS, count=2)
    await harness.eventually(harness.sent_count, 3)
    for chat in VILLAGE_CHATS:
        parts = fake.messages_to(chat)
        assert emoji_count([p.text for p in parts]) == EMOJI_NOTICE.count("🌾")
        assert all(utf16_units(p.text or "") <= TELEGRAM_LIMIT for p in parts)
        assert parts[-1].reply_markup is not None
    assert not [e for e in fake.errors if e["error_code"] == 400]


@pytest.mark.parametrize(
    ("fault", "reason"), [("400", "Lý do: Telegram không nhận tin nhắn này."), ("too_long", "dài hơn mức Telegram")]
)
async def test_refused_notice_is_reported_to_its_author_once(harness: Harness, fault: str, reason: str) -> None:
    fake = harness.fake
    for chat in VILLAGE_CHATS:
        fake.fail_next(chat, fault)
    await harness.send(HEAD, "/thongbao Họp thôn lúc 19h tối thứ Bảy")
    [queued] = await harness.send(HEAD, "1")
    number = queued.text.split("số ", 1)[1].split(":", 1)[0]

    async def refused() -> int:
        async with harness.app.sessions() as session:
            return (
                await session.exec(
                    select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.FAILED)
                )
            ).one()

    await harness.eventually(refused, 3)
    await fake.wait_for(lambda: any("không gửi được" in (m.text or "") for m in fake.messages_to(HEAD)))
    await harness.settle()
    told = [m.text or "" for m in fake.messages_to(HEAD) if "không gửi được" in (m.text or "")]
    assert len(told) == 1, told  # three groups refused it; the author hears once
    assert f'Thông báo số {number} không gửi được vào nhóm "Nhóm THON-' in told[0]
    assert reason in told[0]
    assert f"/tinhtrang {number}" in told[0]
    assert all(fake.messages_to(chat) == [] for chat in VILLAGE_CHATS)
