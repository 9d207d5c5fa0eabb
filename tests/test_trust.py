"""Trust, end to end: nobody gets into someone else's role by guessing a code, moving a group, cancelling
a notice or forging a button."""

from __future__ import annotations

import pytest
from sqlmodel import func, select

from bot.app import App
from handlers import admin
from storage.models import Acknowledgement, AuditEvent, ChatGroup, Place
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, VILLAGE_GROUPS, Harness
from tests.trust import link_code

TEXT = "message.text.received"
ZALO_HEAD = "zl-head-1"
ATTACKER = 666
BYSTANDER = "zl-other"


@pytest.fixture
async def both(app_on_both: App, fake: FakeTelegram, zalo: FakeZalo) -> tuple[App, FakeTelegram, FakeZalo]:
    """A village head on Zalo; on Telegram, someone who would like to be them."""
    async with app_on_both.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
        await session.commit()
    fake.add_private(ATTACKER)
    return app_on_both, fake, zalo


async def _zalo(zalo: FakeZalo, user: str, text: str) -> str:
    before = len(zalo.messages_to(user))
    zalo.push(TEXT, user, user, text)
    await zalo.wait_for(lambda: len(zalo.messages_to(user)) > before)
    return zalo.messages_to(user)[-1].text


async def _telegram(fake: FakeTelegram, user: int, text: str) -> str:
    before = len(fake.messages_to(user))
    fake.message(user, user, text)
    await fake.wait_for(lambda: len(fake.messages_to(user)) > before)
    return fake.messages_to(user)[-1].text


async def test_guessing_a_link_code_is_locked_out_before_it_can_succeed(
    both: tuple[App, FakeTelegram, FakeZalo],
) -> None:
    _app, telegram, zalo = both
    code = link_code(await _zalo(zalo, ZALO_HEAD, "/lienket"))
    wrong = [f"{(int(code) + n) % 10**len(code):0{len(code)}d}" for n in range(1, 5)]
    answers = [await _telegram(telegram, ATTACKER, f"/lienket {guess}") for guess in wrong]
    assert len(set(answers)) == 1
    assert "không dùng được" in answers[0]  # one answer for every wrong code
    locked = await _telegram(telegram, ATTACKER, "/lienket 0000 0000 0000")
    assert "nhập sai mã liên kết nhiều lần" in locked
    # the right code, during the lock-out: refused without being looked at
    assert "nhập sai mã liên kết nhiều lần" in await _telegram(telegram, ATTACKER, f"/lienket {code}")
    assert "chỉ trưởng thôn" in (await _telegram(telegram, ATTACKER, "/thongbao Giả danh trưởng thôn")).lower()


async def test_a_valid_code_on_the_wrong_platform_looks_like_any_wrong_code(
    both: tuple[App, FakeTelegram, FakeZalo],
) -> None:
    _app, _telegram, zalo = both
    code = link_code(await _zalo(zalo, ZALO_HEAD, "/lienket"))
    on_same_platform = await _zalo(zalo, BYSTANDER, f"/lienket {code}")
    made_up = await _zalo(zalo, BYSTANDER, "/lienket 1234 5678 9012")
    assert on_same_platform == made_up


async def test_the_code_giver_is_told_of_a_join_and_can_undo_it(both: tuple[App, FakeTelegram, FakeZalo]) -> None:
    app, telegram, zalo = both
    code = link_code(await _zalo(zalo, ZALO_HEAD, "/lienket"))
    before = len(zalo.messages_to(ZALO_HEAD))
    assert "Đã liên kết" in await _telegram(telegram, ATTACKER, f"/lienket {code}")
    await zalo.wait_for(lambda: len(zalo.messages_to(ZALO_HEAD)) > before)
    notice = zalo.messages_to(ZALO_HEAD)[-1].text
    assert "Telegram" in notice
    assert "/lienket tach" in notice
    assert "XEM TRƯỚC" in await _telegram(telegram, ATTACKER, "/thongbao Thử sau khi liên kết")
    await _telegram(telegram, ATTACKER, "/huy")

    assert "Đã tách" in await _zalo(zalo, ZALO_HEAD, "/lienket tach")
    assert "chỉ trưởng thôn" in (await _telegram(telegram, ATTACKER, "/thongbao Lại thử")).lower()
    assert "XEM TRƯỚC" in await _zalo(zalo, ZALO_HEAD, "/thongbao Trưởng thôn vẫn là trưởng thôn")
    async with app.sessions() as session:
        actions = (await session.exec(select(AuditEvent.action).order_by(AuditEvent.id))).all()
    assert actions == ["accounts_joined", "accounts_separated"]


async def _group_place(h: Harness, chat: int) -> str | None:
    async with h.app.sessions() as session:
        row = await session.exec(
            select(Place.code).join(ChatGroup, ChatGroup.place_id == Place.id).where(ChatGroup.chat_id == str(chat))
        )
        return row.first()


async def test_a_linked_group_moves_only_by_someone_with_a_role_on_its_place(harness: Harness) -> None:
    group = VILLAGE_GROUPS["THON-2"]
    [refused] = await harness.send(TECH, "/ganthon THON-1", chat=group)  # tech team of THON-1 only
    assert "đang gắn với Thôn 2" in refused.text
    assert await _group_place(harness, group) == "THON-2"
    [moved] = await harness.send(OFFICIAL, "/ganthon THON-1", chat=group)  # the commune above both
    assert "đã được gắn với Thôn 1" in moved.text
    assert await _group_place(harness, group) == "THON-1"
    [refused] = await harness.send(RESIDENT, "/boganthon", chat=group)
    assert await _group_place(harness, group) == "THON-1"


async def _queue_scheduled(h: Harness, author: int, text: str, target: str | None = None) -> int:
    await h.send(author, f"/thongbao {text}")
    if target is not None:
        [menu] = await h.send(author, "4")
        number = next(line.split(".")[0] for line in menu.text.splitlines() if line.endswith(target))
        await h.send(author, number)
    await h.send(author, "2")
    await h.send(author, "8h sáng mai")
    [queued] = await h.send(author, "1")
    return int(queued.text.split("số ")[1].split(":")[0].split()[0])


async def test_only_the_author_or_a_commune_official_cancels_a_notice(harness: Harness) -> None:
    number = await _queue_scheduled(harness, HEAD, "Lịch cắt điện ngày mai", target="Thôn 1")
    [refused] = await harness.send(TECH, f"/huythongbao {number}")  # tech team of a village it reaches
    assert "chỉ người soạn" in refused.text
    [done] = await harness.send(OFFICIAL, f"/huythongbao {number}")
    assert f"Đã dừng thông báo số {number}" in done.text

    # a head of THON-2 alone does not cancel the commune's notice to THON-2
    other_head = 303
    async with harness.app.sessions() as session:
        await admin.grant_role(session, "telegram", str(other_head), "village_head", "THON-2")
        await session.commit()
    harness.fake.add_private(other_head)
    commune_notice = await _queue_scheduled(harness, OFFICIAL, "Thông báo của xã", target="Thôn 2")
    [refused] = await harness.send(other_head, f"/huythongbao {commune_notice}")
    assert "chỉ người soạn" in refused.text
    [kept] = await harness.send(OFFICIAL, f"/tinhtrang {commune_notice}")
    assert "(đã dừng)" not in kept.text


async def test_forged_acknowledgements_are_ignored_silently(harness: Harness) -> None:
    fake = harness.fake
    one, two = VILLAGE_GROUPS["THON-1"], VILLAGE_GROUPS["THON-2"]
    await harness.send(HEAD, "/thongbao Chỉ cho thôn 1")
    [targets] = await harness.send(HEAD, "4")
    await harness.send(HEAD, next(line.split(".")[0] for line in targets.text.splitlines() if line.endswith("Thôn 1")))
    [queued] = await harness.send(HEAD, "1")
    only_one = int(queued.text.split("số ")[1].split(":")[0].split()[0])
    await harness.send(HEAD, "/thongbao Cho cả ba thôn")
    await harness.send(HEAD, "1")
    await harness.wait_groups([one])
    await harness.wait_groups([two])
    in_two = fake.messages_to(two)[0]

    for data in (f"ack:{only_one}", "ack:" + "9" * 40, "ack:²", "ack:-1"):
        answered = len(fake.answered_callbacks)
        fake.callback(two, RESIDENT, data, in_two.message_id)
        await harness.settle()
        await fake.wait_for(lambda answered=answered: len(fake.answered_callbacks) > answered)
    assert len(fake.messages_to(two)) == 1  # no apology, no error posted into the group
    async with harness.app.sessions() as session:
        counted = (await session.exec(select(func.count()).select_from(Acknowledgement))).one()
    assert counted == 0
