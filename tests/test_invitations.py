"""Role invitations and taking roles back, end to end through the fake Telegram and Zalo servers: the
first invitation from the shell, /moi from chat within what the permission core allows, one polite line
for every invitation that does not work, a lock-out for guessers, and /thuhoi."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from bot.app import App
from bot.config import DEFAULT_CONFIG
from handlers import admin, invitations, roles
from handlers.people import person_for, place_by_code
from handlers.permissions import actor_for
from storage.models import AttemptCounter, AuditEvent, Conversation, Invitation, Place, Role, utcnow
from tests.cli_helpers import langso
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo

TEXT = "message.text.received"
OFFICIAL = 100  # Telegram: commune official of XA1
HEAD = 101  # Telegram: village head of THON-1
NEWCOMER = 300  # Telegram: nobody yet
ZALO_NEWCOMER = "zl-new"
ZALO_OTHER = "zl-other"
REFUSED = "Lời mời này không dùng được nữa"
CODE = re.compile(r"/moi ((?:\d{4} ){2}\d{4})")


@dataclass
class Village:
    app: App
    telegram: FakeTelegram
    zalo: FakeZalo

    async def tg(self, user: int, text: str, expect: int = 1) -> list[str]:
        before = len(self.telegram.messages_to(user))
        self.telegram.message(user, user, text)
        await self.telegram.wait_for(lambda: len(self.telegram.messages_to(user)) >= before + expect)
        return [m.text for m in self.telegram.messages_to(user)[before:]]

    async def zl(self, user: str, text: str, expect: int = 1) -> list[str]:
        before = len(self.zalo.messages_to(user))
        self.zalo.push(TEXT, user, user, text)
        await self.zalo.wait_for(lambda: len(self.zalo.messages_to(user)) >= before + expect)
        return [m.text for m in self.zalo.messages_to(user)[before:]]


@pytest.fixture
async def village(app_on_both: App, fake: FakeTelegram, zalo: FakeZalo) -> Village:
    """Commune XA1 (villages THON-1, THON-2) with an official and a head on Telegram; commune XA2 with
    THON-9 and nobody."""
    async with app_on_both.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.add_place(session, "village", "THON-2", "Thôn 2", "XA1")
        await admin.add_place(session, "commune", "XA2", "Xã Bình An", None)
        await admin.add_place(session, "village", "THON-9", "Thôn 9", "XA2")
        await admin.grant_role(session, "telegram", str(OFFICIAL), "commune_official", "XA1")
        await admin.grant_role(session, "telegram", str(HEAD), "village_head", "THON-1")
        await session.commit()
    fake.add_private(OFFICIAL, "Chị Lan")
    fake.add_private(HEAD, "Bác Tư")
    fake.add_private(NEWCOMER, "Anh Minh")
    return Village(app_on_both, fake, zalo)


def _code(text: str) -> str:
    found = CODE.search(text)
    assert found, f"no invitation code in {text!r}"
    return found.group(1)


async def _held(v: Village, platform: str, user: str) -> list[tuple[str, str]]:
    """(role, place code) this account's person holds, in the order given."""
    async with v.app.sessions() as session:
        person = await person_for(session, platform, user)
        rows = await session.exec(select(Role).where(Role.person_id == person.id).order_by(col(Role.id)))
        held = []
        for role in rows.all():
            place = await session.get(Place, role.place_id)
            assert place is not None
            held.append((role.role, place.code))
        await session.commit()
    return held


async def _audit(v: Village) -> list[str]:
    async with v.app.sessions() as session:
        return list((await session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id)))).all())


def _shell_invite(sqlite_url: str, tmp_path: Path, username: str, role: str, place: str) -> str:
    config = tmp_path / "config.toml"
    config.write_text(DEFAULT_CONFIG.read_text(encoding="utf-8").replace('username = ""', f'username = "{username}"'),
                      encoding="utf-8")
    done = langso("admin", "invite", "--role", role, "--place", place,
                  env={"LANGSO_CONFIG": str(config), "LANGSO_DATABASE_URL": sqlite_url})
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_first_invitation_from_the_shell_is_accepted_on_telegram_by_its_link(
    village: Village, sqlite_url: str, tmp_path: Path
) -> None:
    printed = await asyncio.to_thread(_shell_invite, sqlite_url, tmp_path, "langso_test_bot", "commune_official", "XA2")
    link = re.search(r"https://t\.me/langso_test_bot\?start=(moi_[\w-]+)", printed)
    assert link, printed
    assert "Cán bộ xã — Xã Bình An" in printed
    assert _code(printed)
    answer = await village.tg(NEWCOMER, f"/start {link.group(1)}", expect=2)
    assert "Từ nay bạn là Cán bộ xã — Xã Bình An" in answer[0]
    assert "/thongbao" in answer[1]
    assert "Cán bộ xã — Xã Bình An" in answer[1]  # what they can do now
    assert await _held(village, "telegram", str(NEWCOMER)) == [("commune_official", "XA2")]
    # it worked once: the same invitation's code is now refused
    assert REFUSED in (await village.zl(ZALO_OTHER, f"/moi {_code(printed)}"))[0]
    assert await _audit(village) == ["invitation_created", "invitation_accepted"]


async def test_the_first_invitation_from_the_shell_is_accepted_on_zalo_by_its_code(
    village: Village, sqlite_url: str, tmp_path: Path
) -> None:
    printed = await asyncio.to_thread(_shell_invite, sqlite_url, tmp_path, "", "commune_official", "XA2")
    assert "t.me" not in printed  # no username configured: the code alone
    answer = await village.zl(ZALO_NEWCOMER, f"/moi {_code(printed)}", expect=2)
    assert "Từ nay bạn là Cán bộ xã — Xã Bình An" in answer[0]
    preview = (await village.zl(ZALO_NEWCOMER, "/thongbao Họp xã tối nay"))[0]
    assert "XEM TRƯỚC" in preview
    assert "Xã Bình An" in preview


async def test_an_official_invites_a_village_head_who_then_broadcasts_to_their_village(village: Village) -> None:
    [menu] = await village.tg(OFFICIAL, "/moi")
    assert "1. Cán bộ xã" in menu
    assert "2. Trưởng thôn" in menu
    assert "3. Tổ công nghệ số" in menu
    [places] = await village.tg(OFFICIAL, "2")
    assert "Thôn 1" in places
    assert "Thôn 2" in places
    assert "Thôn 9" not in places  # not another commune
    number = next(line.split(".")[0] for line in places.splitlines() if line.endswith("Thôn 2"))
    created, card = await village.tg(OFFICIAL, number, expect=2)
    assert "Trưởng thôn — Thôn 2" in created
    assert "Trưởng thôn — Thôn 2" in card
    told = len(village.telegram.messages_to(OFFICIAL))
    accepted = await village.zl(ZALO_NEWCOMER, f"/moi {_code(card)}", expect=2)
    assert "Từ nay bạn là Trưởng thôn — Thôn 2" in accepted[0]
    await village.telegram.wait_for(lambda: len(village.telegram.messages_to(OFFICIAL)) > told)
    notice = village.telegram.messages_to(OFFICIAL)[-1].text
    assert "User zl-new" in notice
    assert "Trưởng thôn — Thôn 2" in notice
    preview = (await village.zl(ZALO_NEWCOMER, "/thongbao Thu tiền điện thứ bảy"))[0]
    assert "XEM TRƯỚC" in preview
    assert "Nơi nhận: Thôn 2" in preview
    assert await _audit(village) == ["invitation_created", "invitation_accepted"]


async def test_a_head_invites_only_tech_team_of_their_own_village(village: Village) -> None:
    [menu] = await village.tg(HEAD, "/moi")
    assert "1. Tổ công nghệ số" in menu
    assert "Trưởng thôn" not in menu
    assert "Cán bộ xã" not in menu
    assert "Xin lỗi, tôi chưa hiểu" in (await village.tg(HEAD, "2"))[0]  # nothing numbered 2
    created, card = await village.tg(HEAD, "1", expect=2)  # one place: no place menu
    assert "Tổ công nghệ số — Thôn 1" in created
    assert _code(card)

    # choices forged into the conversation: the permission core decides again, nothing is created
    async with village.app.sessions() as session:
        head = await person_for(session, "telegram", str(HEAD))
        thon2 = await place_by_code(session, "THON-2")
        assert thon2 is not None
        thon2_id = thon2.id
        head_actor = await actor_for(session, head)
        for role, place in (("village_head", "THON-1"), ("commune_official", "XA1"), ("tech_team", "THON-2")):
            target = await place_by_code(session, place)
            assert target is not None
            with pytest.raises(invitations.NotAllowed):
                await invitations.create_invitation(session, head_actor, role, target, utcnow())
        await session.rollback()
    await village.tg(HEAD, "/moi")
    await _forge(village, HEAD, step="pick", roles=["village_head"], pending=[])
    assert "không thể mời" in (await village.tg(HEAD, "1"))[0]
    await village.tg(HEAD, "/moi")
    await _forge(village, HEAD, step="place", role="tech_team", places=[thon2_id])
    assert "không thể mời" in (await village.tg(HEAD, "1"))[0]
    async with village.app.sessions() as session:
        made = (await session.exec(select(Invitation.role, Invitation.place_id))).all()
    assert len(made) == 1
    assert made[0][0] == "tech_team"


async def _forge(v: Village, user: int, step: str, **data: object) -> None:
    async with v.app.sessions() as session:
        conv = (await session.exec(select(Conversation).where(Conversation.user_id == str(user)))).one()
        conv.step, conv.data = step, data
        session.add(conv)
        await session.commit()


async def test_expired_used_withdrawn_and_made_up_invitations_get_one_polite_line(village: Village) -> None:
    async with village.app.sessions() as session:
        official = await actor_for(session, await person_for(session, "telegram", str(OFFICIAL)))
        thon1 = await place_by_code(session, "THON-1")
        assert thon1 is not None
        expired = await invitations.create_invitation(session, official, "tech_team", thon1, utcnow() - timedelta(days=8))
        used = await invitations.create_invitation(session, official, "tech_team", thon1, utcnow())
        await session.commit()
    told = len(village.telegram.messages_to(OFFICIAL)) + 1  # the inviter hears of it on Telegram
    assert "Từ nay bạn là" in (await village.zl(ZALO_OTHER, f"/moi {used.code}", expect=2))[0]
    await village.telegram.wait_for(lambda: len(village.telegram.messages_to(OFFICIAL)) >= told)
    await village.tg(OFFICIAL, "/moi")
    [places] = await village.tg(OFFICIAL, "3")  # tech team: of the commune or of one of its villages
    assert "1. Xã Hòa Bình" in places
    assert "2. Thôn 1" in places
    _created, card = await village.tg(OFFICIAL, "2", expect=2)
    withdrawn_code = _code(card)
    [menu] = await village.tg(OFFICIAL, "/moi")
    number = next(line.split(".")[0] for line in menu.splitlines() if "Rút lại lời mời" in line)
    assert "Đã rút lại" in (await village.tg(OFFICIAL, number))[0]

    answers = [
        (await village.tg(NEWCOMER, f"/moi {code}"))[0]
        for code in (expired.shown_code, used.shown_code, withdrawn_code, "1234 5678 9012")
    ]
    answers.append((await village.tg(NEWCOMER, "/start moi_not-a-real-token"))[0])
    assert len(set(answers)) == 1
    assert REFUSED in answers[0]
    assert await _held(village, "telegram", str(NEWCOMER)) == []
    assert (await _audit(village)).count("invitation_withdrawn") == 1


async def test_twenty_wrong_codes_lock_the_chat_and_the_right_code_is_refused_meanwhile(village: Village) -> None:
    _created, card = await _head_invites_tech_team(village)
    right = _code(card)
    digits = int(right.replace(" ", ""))
    answers = []
    for n in range(1, 21):
        wrong = f"{(digits + n) % 10**12:012d}"
        answers.extend(await village.zl(ZALO_OTHER, f"/moi {wrong}"))
    answers.extend(await village.zl(ZALO_OTHER, f"/moi {right}"))  # during the lock: not even looked at
    assert len(set(answers)) == 1
    assert REFUSED in answers[0]
    assert await _held(village, "zalo", ZALO_OTHER) == []
    async with village.app.sessions() as session:
        locks = (await session.exec(select(AttemptCounter.key, AttemptCounter.locked_until))).all()
    assert any(key.startswith("invitation:chat:zalo:") and until is not None for key, until in locks)
    # someone else, in another chat, is not locked out by it
    assert "Từ nay bạn là" in (await village.zl(ZALO_NEWCOMER, f"/moi {right}", expect=2))[0]


async def test_thuhoi_takes_a_role_back_and_the_person_can_no_longer_broadcast(village: Village) -> None:
    _created, card = await _head_invites_tech_team(village)
    [listing] = await village.tg(OFFICIAL, "/thuhoi")
    line = next(line for line in listing.splitlines() if "Bác Tư" in line)
    assert "Trưởng thôn — Thôn 1" in line
    assert "Chị Lan" in listing
    [confirm] = await village.tg(OFFICIAL, line.split(".")[0])
    assert "Bác Tư" in confirm
    told = len(village.telegram.messages_to(HEAD))
    [done] = await village.tg(OFFICIAL, "1")
    assert "Đã thu hồi vai trò Trưởng thôn — Thôn 1 của Bác Tư" in done
    await village.telegram.wait_for(lambda: len(village.telegram.messages_to(HEAD)) > told)
    assert "đã được Chị Lan thu hồi" in village.telegram.messages_to(HEAD)[-1].text
    assert "chỉ trưởng thôn" in (await village.tg(HEAD, "/thongbao Vẫn muốn gửi"))[0].lower()
    # what the head handed out before hands out nothing now
    assert REFUSED in (await village.zl(ZALO_NEWCOMER, f"/moi {_code(card)}"))[0]
    assert await _held(village, "zalo", ZALO_NEWCOMER) == []
    assert (await _audit(village))[-1] == "role_removed"


async def _head_invites_tech_team(v: Village) -> list[str]:
    await v.tg(HEAD, "/moi")
    return await v.tg(HEAD, "1", expect=2)


async def test_the_last_commune_official_cannot_be_removed(village: Village) -> None:
    [listing] = await village.tg(OFFICIAL, "/thuhoi")
    own = next(line for line in listing.splitlines() if "Chị Lan" in line)
    [refused] = await village.tg(OFFICIAL, own.split(".")[0])
    assert "cán bộ xã cuối cùng của Xã Hòa Bình" in refused
    async with village.app.sessions() as session:
        official = await person_for(session, "telegram", str(OFFICIAL))
        role = (await session.exec(select(Role).where(Role.person_id == official.id))).one()
        verdict, _ = await roles.remove_role(session, await actor_for(session, official), role.id, utcnow())
        await session.commit()
    assert verdict is roles.Verdict.LAST_OFFICIAL
    assert await _held(village, "telegram", str(OFFICIAL)) == [("commune_official", "XA1")]

    # with a second official, either may step down, but not both
    await village.tg(OFFICIAL, "/moi")
    _created, card = await village.tg(OFFICIAL, "1", expect=2)  # the commune: the only place for officials
    told = len(village.telegram.messages_to(OFFICIAL))
    await village.tg(NEWCOMER, f"/moi {_code(card)}", expect=2)
    await village.telegram.wait_for(lambda: len(village.telegram.messages_to(OFFICIAL)) > told)  # the notice
    [listing] = await village.tg(OFFICIAL, "/thuhoi")
    own = next(line for line in listing.splitlines() if "Chị Lan" in line)
    await village.tg(OFFICIAL, own.split(".")[0])
    assert "Đã thu hồi" in (await village.tg(OFFICIAL, "1"))[0]
    [listing] = await village.tg(NEWCOMER, "/thuhoi")
    own = next(line for line in listing.splitlines() if "Anh Minh" in line)
    assert "cán bộ xã cuối cùng" in (await village.tg(NEWCOMER, own.split(".")[0]))[0]
