"""Residents join their village (/thamgia, the village's deep link, a household registered in a survey),
move, leave (/roithon); membership sends their handbook questions to that village's tech team."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import select

from bot.app import App
from handlers import admin
from handlers.people import person_for
from handlers.villages import (
    join_if_none,
    join_village,
    leave_village,
    village_link_payload,
    village_of,
)
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Place, VillageMember
from tests.fake_zalo import FakeZalo
from tests.harness import RESIDENT, TECH, VILLAGE_GROUPS, Harness
from tests.test_surveys import open_survey, register

TECH_2 = 151  # tech team of THON-2 (TECH serves THON-1)
NEIGHBOUR = 201
UNANSWERABLE = "giá phân bón hôm nay bao nhiêu"
ZALO_RESIDENT = "zl-resident"
ZALO_TECH = {"THON-1": "zl-tech-1", "THON-2": "zl-tech-2"}
TEXT = "message.text.received"


async def _membership(h: Harness | App, user: str, platform: str = "telegram") -> tuple[str, str] | None:
    """(village code, source) of the person behind a platform account, or None."""
    app = h.app if isinstance(h, Harness) else h
    async with app.sessions() as session:
        person = await person_for(session, platform, user)
        row = await session.exec(
            select(Place.code, VillageMember.source).join(Place).where(VillageMember.person_id == person.id)
        )
        found = row.first()
        await session.rollback()
    return tuple(found) if found else None


async def _member_rows(h: Harness) -> int:
    async with h.app.sessions() as session:
        return len((await session.exec(select(VillageMember))).all())


async def test_thamgia_lists_the_villages_and_joins_the_one_picked(harness: Harness) -> None:
    [listing] = await harness.send(RESIDENT, "/thamgia")
    assert "Xã Hòa Bình" in listing.text
    assert all(f"{n}. Thôn {n}" in listing.text for n in (1, 2, 3))
    assert [b["callback_data"] for row in listing.reply_markup["inline_keyboard"] for b in row] == ["1", "2", "3"]
    await harness.press(RESIDENT, RESIDENT, listing, "2")
    joined = harness.fake.messages_to(RESIDENT)[-1].text
    assert "Bạn đã tham gia Thôn 2 (Xã Hòa Bình)" in joined
    assert "Tổ công nghệ số của Thôn 2" in joined
    assert "/roithon" in joined  # what joining means
    assert await _membership(harness, str(RESIDENT)) == ("THON-2", "command")


async def test_thamgia_with_a_code_and_the_village_link(harness: Harness) -> None:
    [joined] = await harness.send(RESIDENT, "/thamgia thon-3")  # typed in lower case
    assert "Bạn đã tham gia Thôn 3" in joined.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-3", "command")

    harness.fake.add_private(NEIGHBOUR)
    async with harness.app.sessions() as session:
        village = (await session.exec(select(Place).where(Place.code == "THON-1"))).one()
    assert village_link_payload(village) == "thon_THON-1"
    [joined] = await harness.send(NEIGHBOUR, f"/start {village_link_payload(village)}")
    assert "Bạn đã tham gia Thôn 1" in joined.text
    assert await _membership(harness, str(NEIGHBOUR)) == ("THON-1", "link")
    [again] = await harness.send(NEIGHBOUR, "/start thon_THON-1")
    assert "đã là người của Thôn 1 rồi" in again.text


async def test_a_village_code_a_link_cannot_carry_gets_a_link_by_number(harness: Harness) -> None:
    async with harness.app.sessions() as session:
        village = await admin.add_place(session, "village", "THÔN ĐÔNG", "Thôn Đông", "XA1")
        await session.commit()
    payload = village_link_payload(village)
    assert payload == f"thonid_{village.id}"
    assert payload.isascii()
    [joined] = await harness.send(RESIDENT, f"/start {payload}")
    assert "Bạn đã tham gia Thôn Đông" in joined.text
    assert await _membership(harness, str(RESIDENT)) == ("THÔN ĐÔNG", "link")


async def test_joining_another_village_says_so_first_and_moves(harness: Harness) -> None:
    await harness.send(RESIDENT, "/thamgia THON-1")
    [ask] = await harness.send(RESIDENT, "/thamgia THON-2")
    assert "đang là người của Thôn 1" in ask.text
    assert "chuyển sang Thôn 2" in ask.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-1", "command")  # nothing moved yet
    [stayed] = await harness.send(RESIDENT, "2")
    assert "vẫn là người của Thôn 1" in stayed.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-1", "command")

    harness.fake.add_private(NEIGHBOUR)
    await harness.send(RESIDENT, "/thamgia THON-2")
    [moved] = await harness.send(RESIDENT, "1")
    assert "Bạn đã chuyển sang Thôn 2" in moved.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-2", "command")
    assert await _member_rows(harness) == 1  # one village per person


async def test_roithon_leaves_in_one_step(harness: Harness) -> None:
    await harness.send(RESIDENT, "/thamgia THON-1")
    [left] = await harness.send(RESIDENT, "/roithon")
    assert "Bạn đã rời Thôn 1" in left.text
    assert "/thamgia" in left.text
    assert await _membership(harness, str(RESIDENT)) is None
    [nothing] = await harness.send(RESIDENT, "/roithon")
    assert "chưa tham gia thôn nào" in nothing.text


async def test_a_handbook_hand_off_after_thamgia_reaches_that_villages_tech_team_only(harness: Harness) -> None:
    async with harness.app.sessions() as session:
        await admin.grant_role(session, "telegram", str(TECH_2), "tech_team", "THON-2")
        await session.commit()
    harness.fake.add_private(TECH_2)
    await harness.send(RESIDENT, "/thamgia THON-2")
    [handed] = await harness.send(RESIDENT, UNANSWERABLE)
    assert "đã chuyển cho Tổ công nghệ số" in handed.text
    await harness.fake.wait_for(lambda: any("Câu hỏi mới số" in (m.text or "") for m in harness.fake.messages_to(TECH_2)))
    assert not any("Câu hỏi mới số" in (m.text or "") for m in harness.fake.messages_to(TECH))
    [listed] = await harness.send(TECH_2, "/cauhoi")
    assert UNANSWERABLE in listed.text
    [not_theirs] = await harness.send(TECH, "/cauhoi")
    assert UNANSWERABLE not in not_theirs.text


async def test_membership_comes_before_the_group_the_question_is_asked_in(harness: Harness) -> None:
    async with harness.app.sessions() as session:
        await admin.grant_role(session, "telegram", str(TECH_2), "tech_team", "THON-2")
        await session.commit()
    harness.fake.add_private(TECH_2)
    await harness.send(RESIDENT, "/thamgia THON-2")
    await harness.send(RESIDENT, f"/hoi {UNANSWERABLE}", chat=VILLAGE_GROUPS["THON-1"])
    await harness.fake.wait_for(lambda: any("Câu hỏi mới số" in (m.text or "") for m in harness.fake.messages_to(TECH_2)))
    assert not any("Câu hỏi mới số" in (m.text or "") for m in harness.fake.messages_to(TECH))


async def test_registering_a_household_joins_its_village_unless_one_was_chosen(harness: Harness) -> None:
    campaign = await open_survey(harness, "THON-1")
    await register(harness, NEIGHBOUR, campaign)
    created = next(m.text for m in harness.fake.messages_to(NEIGHBOUR) if "Mã hộ của bạn" in (m.text or ""))
    assert "người của Thôn 1" in created
    assert await _membership(harness, str(NEIGHBOUR)) == ("THON-1", "household")

    await harness.send(RESIDENT, "/thamgia THON-2")  # chose a village already: a household does not move them
    await register(harness, RESIDENT, campaign, head="Lò Thị Ơn")
    created = [m.text for m in harness.fake.messages_to(RESIDENT) if "Mã hộ của bạn" in (m.text or "")][-1]
    assert "người của" not in created
    assert await _membership(harness, str(RESIDENT)) == ("THON-2", "command")


async def test_a_member_joining_a_household_by_code_joins_its_village(harness: Harness) -> None:
    campaign = await open_survey(harness, "THON-1")
    code = await register(harness, NEIGHBOUR, campaign)
    await harness.send(RESIDENT, "/khaosat THON-1")
    await harness.send(RESIDENT, "1")  # consent
    await harness.send(RESIDENT, "2")  # a family member has the code
    joined, _question = await harness.send(RESIDENT, code, expect=2)
    assert "người của Thôn 1" in joined.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-1", "household")


@pytest.mark.parametrize("bad", ["9", "0", "😀", "-1", "1 2", "٣"])
async def test_bad_answers_are_asked_again_and_change_nothing(harness: Harness, bad: str) -> None:
    [unknown] = await harness.send(RESIDENT, "/thamgia KHONG-CO")
    assert "Không tìm thấy thôn có mã KHONG-CO" in unknown.text
    assert "1. Thôn 1" in unknown.text
    [again] = await harness.send(RESIDENT, bad)
    assert "chưa hiểu" in again.text
    assert "3. Thôn 3" in again.text
    assert await _member_rows(harness) == 0
    [joined] = await harness.send(RESIDENT, "1")  # still at the same list
    assert "Bạn đã tham gia Thôn 1" in joined.text

    await harness.send(RESIDENT, "/thamgia THON-3")
    [again] = await harness.send(RESIDENT, bad)
    assert "chưa hiểu" in again.text
    assert await _membership(harness, str(RESIDENT)) == ("THON-1", "command")


async def test_an_unknown_link_a_commune_link_and_a_group_change_nothing(harness: Harness) -> None:
    [unknown] = await harness.send(RESIDENT, "/start thon_KHONG-CO")
    assert "Không tìm thấy thôn có mã KHONG-CO" in unknown.text
    assert "2. Thôn 2" in unknown.text
    [unknown] = await harness.send(RESIDENT, "/start thonid_99999999999999999999")
    assert "Không tìm thấy thôn." in unknown.text
    async with harness.app.sessions() as session:
        commune = (await session.exec(select(Place).where(Place.code == "XA1"))).one()
    [listing] = await harness.send(RESIDENT, f"/start {village_link_payload(commune)}")  # a commune: its villages
    assert "Bạn ở thôn nào của Xã Hòa Bình" in listing.text
    [listing] = await harness.send(RESIDENT, f"/start thonid_{commune.id}")
    assert "Bạn ở thôn nào của Xã Hòa Bình" in listing.text
    [private] = await harness.send(RESIDENT, "/thamgia THON-1", chat=VILLAGE_GROUPS["THON-1"])
    assert "trò chuyện riêng" in private.text
    assert await _member_rows(harness) == 0


async def test_many_villages_ask_for_the_commune_first(harness: Harness) -> None:
    async with harness.app.sessions() as session:
        await admin.add_place(session, "commune", "XA2", "Xã An Phú", None)
        for n in range(1, 15):
            await admin.add_place(session, "village", f"AP-{n}", f"Bản {n:02d}", "XA2")
        await session.commit()
    [communes] = await harness.send(RESIDENT, "/thamgia")
    assert "1. Xã An Phú" in communes.text
    assert "2. Xã Hòa Bình" in communes.text
    [villages] = await harness.send(RESIDENT, "2")
    assert "của Xã Hòa Bình" in villages.text
    assert "3. Thôn 3" in villages.text
    assert "Bản" not in villages.text
    [joined] = await harness.send(RESIDENT, "3")
    assert "Bạn đã tham gia Thôn 3" in joined.text
    [listing] = await harness.send(RESIDENT, "/thamgia XA2")  # a commune's code lists its villages
    assert "1. Bản 01" in listing.text
    assert "đang là người của Thôn 3" in listing.text


# --- Zalo: numbered choices, no buttons, no deep links -----------------------------------------------


@pytest.fixture
async def zalo_app(app_on_both: App, zalo: FakeZalo) -> tuple[App, FakeZalo]:
    async with app_on_both.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        for n in (1, 2, 3):
            await admin.add_place(session, "village", f"THON-{n}", f"Thôn {n}", "XA1")
        for code, user in ZALO_TECH.items():
            await admin.grant_role(session, "zalo", user, "tech_team", code)
        await session.commit()
    return app_on_both, zalo


async def _zalo(zalo: FakeZalo, user: str, text: str, expect: int = 1) -> list[str]:
    before = len(zalo.messages_to(user))
    zalo.push(TEXT, user, user, text)
    await zalo.wait_for(lambda: len(zalo.messages_to(user)) >= before + expect)
    return [m.text for m in zalo.messages_to(user)[before:]]


async def test_on_zalo_a_resident_picks_by_number_and_their_question_reaches_their_tech_team(
    zalo_app: tuple[App, FakeZalo],
) -> None:
    app, zalo = zalo_app
    [listing] = await _zalo(zalo, ZALO_RESIDENT, "/thamgia")
    assert "2. Thôn 2" in listing
    [again] = await _zalo(zalo, ZALO_RESIDENT, "🌾")
    assert "chưa hiểu" in again
    assert await _membership(app, ZALO_RESIDENT, "zalo") is None
    [joined] = await _zalo(zalo, ZALO_RESIDENT, "2")
    assert "Bạn đã tham gia Thôn 2" in joined
    [handed] = await _zalo(zalo, ZALO_RESIDENT, UNANSWERABLE)
    assert "đã chuyển cho Tổ công nghệ số" in handed
    await zalo.wait_for(lambda: any("Câu hỏi mới số" in m.text for m in zalo.messages_to(ZALO_TECH["THON-2"])))
    assert not any("Câu hỏi mới số" in m.text for m in zalo.messages_to(ZALO_TECH["THON-1"]))
    [left] = await _zalo(zalo, ZALO_RESIDENT, "/roithon")
    assert "Bạn đã rời Thôn 2" in left
    assert await _membership(app, ZALO_RESIDENT, "zalo") is None


# --- the plain operations, without a chat ------------------------------------------------------------


async def test_join_move_leave_without_a_chat(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session:
            await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
            one = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
            two = await admin.add_place(session, "village", "THON-2", "Thôn 2", "XA1")
            person = await person_for(session, "telegram", "42")
            assert await village_of(session, person) is None
            assert await join_if_none(session, person, one.id)
            await join_village(session, person, two, "link")
            assert (await village_of(session, person)).code == "THON-2"
            assert not await join_if_none(session, person, one.id)  # a village chosen is kept
            await session.commit()
        async with sessions() as session:
            person = await person_for(session, "telegram", "42")
            [member] = (await session.exec(select(VillageMember))).all()
            assert member.source == "link"
            assert (await leave_village(session, person)).code == "THON-2"
            assert await leave_village(session, person) is None
            await session.commit()
            assert await village_of(session, person) is None
    finally:
        await engine.dispose()
