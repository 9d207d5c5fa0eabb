"""Privacy and household codes, through the fake Telegram server and the real bot: /xoadulieu leaves
nothing of a household in any table; handled updates are deleted after the retention period; a
household code cannot be guessed, never leaves in an export, and a staff reset reaches only the
household's members; every export records the places whose households are in the file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import SQLModel

from bot.config import ConfigError, PrivacySettings
from bot.retention import InboxRetention
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import AuditEvent, ExportRecord, HandbookQuestion, Household, InboxUpdate, Person, Place, VillageMember
from tests.cli_helpers import langso
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, Harness
from tests.survey_answers import ANSWERS

SPOUSE = 202  # joins RESIDENT's household
NEIGHBOUR = 201  # another household
STRANGER = 203  # guesses codes

NAME = "Đinh Thị Hoa Ban"  # the household head as typed by the resident
HAMLET = "Xóm Cây Gạo Đỏ"  # a free-text answer
PHONE = "0987654321"
QUESTION = "Con trâu nhà tôi bỏ ăn ba hôm nay thì gọi thú y xã ở đâu"
CODE = re.compile(r"(\d{3} \d{3} \d{3})")


class Clock:
    """Real time, moved forward by tests."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def bot(fake: FakeTelegram, database_url: str, clock: Clock) -> AsyncIterator[Harness]:
    """The bot on SQLite and on PostgreSQL, with a clock the test can move."""
    h = Harness(fake, settings_for(database_url, fake.url), clock=clock)
    await h.start()
    await h.seed_commune()
    yield h
    await h.stop()


# --- helpers ----------------------------------------------------------------------------------------------


async def open_survey(h: Harness, village: str) -> None:
    """The village head opens the household survey for `village` through the chat."""
    await h.send(HEAD, "/khaosat")
    await h.send(HEAD, "1")  # open a survey
    [villages] = await h.send(HEAD, "1")  # the household survey
    number = next(line.split(".")[0] for line in villages.text.splitlines() if line.endswith(f"Thôn {village[-1]}"))
    await h.send(HEAD, number)
    [opened] = await h.send(HEAD, "40")
    assert "Đã mở" in opened.text


async def register(h: Harness, user: int, village: str, head: str, hamlet: str = "Xóm Trên") -> str:
    """A resident consents and registers a new household; returns its code as shown ("123 456 789")."""
    h.fake.add_private(user)
    for text in (f"/khaosat {village}", "1", "1", head):
        await h.send(user, text)
    created, _first = await h.send(user, hamlet, expect=2)
    return CODE.search(created.text).group(1)


async def answer_and_submit(h: Harness, user: int, phone: str = "bỏ qua") -> None:
    for text in [*ANSWERS[:-1], phone]:
        await h.send(user, text)
    [thanks] = await h.send(user, "1")
    assert "Cảm ơn" in thanks.text


async def start_joining(h: Harness, user: int) -> None:
    h.fake.add_private(user)
    for text in ("/khaosat THON-1", "1", "2"):  # consent, "I have the household code"
        await h.send(user, text)


async def scan(h: Harness, needles: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, needle) where a needle appears in any value of any table."""
    found = []
    async with h.app.sessions() as session:
        for table in SQLModel.metadata.sorted_tables:
            for row in (await session.exec(select(table))).mappings().all():
                for column, value in row.items():
                    if isinstance(value, bytes):
                        text = value.decode("utf-8", "ignore")
                    else:
                        text = json.dumps(value, ensure_ascii=False, default=str)
                    found += [(table.name, column, n) for n in needles if n.lower() in text.lower()]
    return found


async def audit_events(h: Harness, action: str) -> list[AuditEvent]:
    async with h.app.sessions() as session:
        rows = await session.exec(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id))
        return list(rows.scalars().all())


# --- /xoadulieu --------------------------------------------------------------------------------------------


async def test_erasure_leaves_nothing_of_the_household_in_any_table(bot: Harness) -> None:
    await open_survey(bot, "THON-1")
    code = await register(bot, RESIDENT, "THON-1", NAME, HAMLET)
    for text in [*ANSWERS[:-1], "0987 654 321"]:  # everything answered; the summary is waiting
        await bot.send(RESIDENT, text)
    await start_joining(bot, SPOUSE)
    await bot.send(SPOUSE, code, expect=2)  # joined, and the summary
    [thanks] = await bot.send(SPOUSE, "1")  # the spouse sends the answers
    assert "Cảm ơn" in thanks.text
    await bot.send(SPOUSE, QUESTION)  # a handbook question, in the spouse's own words
    needles = [NAME, HAMLET, PHONE, "0987 654 321", QUESTION]
    before = await scan(bot, needles)
    assert {needle for _table, _column, needle in before} == set(needles)  # the scan finds them
    assert ("conversation", "data", NAME) in before  # the resident's place in the survey holds the name

    [confirm] = await bot.send(SPOUSE, "/xoadulieu")
    assert "3. Xóa hẳn, cả những câu hỏi" in confirm.text
    [deleted] = await bot.send(SPOUSE, "3")
    await bot.settle()
    assert await scan(bot, needles) == []

    assert "1 bộ câu trả lời" in deleted.text
    assert "0 lời nhắc" in deleted.text
    assert "1 câu hỏi" in deleted.text
    messages = int(re.search(r"nội dung (\d+) tin nhắn", deleted.text).group(1))
    assert messages >= 20  # the resident's and the spouse's updates: every answer, the name, the code
    async with bot.app.sessions() as session:
        for model in (Household, HandbookQuestion):
            assert (await session.exec(select(func.count()).select_from(model))).scalar_one() == 0
        members = (await session.exec(select(Person).where(Person.household_id.is_not(None)))).scalars().all()
        assert members == []
        rows = (await session.exec(select(InboxUpdate))).scalars().all()
        assert sum(row.payload == {"erased": True} for row in rows) == messages
    [event] = await audit_events(bot, "household_erased")
    assert event.details == {"answers": 1, "reminders": 0, "messages": messages, "questions": 1, "files": 0}
    [mine] = await bot.send(RESIDENT, "/cuatoi")
    assert "chưa khai hộ nào" in mine.text


async def test_erasure_without_questions_keeps_them(harness: Harness) -> None:
    await open_survey(harness, "THON-1")
    await register(harness, RESIDENT, "THON-1", NAME)
    await harness.send(RESIDENT, "/huy")
    await harness.send(RESIDENT, QUESTION)
    await harness.send(RESIDENT, "/xoadulieu")
    [deleted] = await harness.send(RESIDENT, "1")
    assert "không có câu hỏi nào" in deleted.text
    async with harness.app.sessions() as session:
        [kept] = (await session.exec(select(HandbookQuestion))).scalars().all()
    assert kept.text == QUESTION


async def test_someone_in_no_household_can_erase_what_they_wrote(harness: Harness) -> None:
    """No survey answers, but messages, a handbook question and a village: /xoadulieu erases those."""
    await harness.send(NEIGHBOUR, "/thamgia THON-1")
    await harness.send(NEIGHBOUR, QUESTION)
    await harness.settle()
    assert {needle for _t, _c, needle in await scan(harness, [QUESTION])} == {QUESTION}
    [confirm] = await harness.send(NEIGHBOUR, "/xoadulieu")
    assert "chưa khai hộ nào" in confirm.text
    assert "1. Xóa hẳn" in confirm.text
    [deleted] = await harness.send(NEIGHBOUR, "1")
    await harness.settle()
    assert "1 câu hỏi" in deleted.text
    assert "Thôn 1" in deleted.text
    assert await scan(harness, [QUESTION]) == []
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(VillageMember))).scalar_one() == 0
    [event] = await audit_events(harness, "person_erased")
    assert event.details["questions"] == 1
    assert event.details["messages"] >= 3


# --- household codes ---------------------------------------------------------------------------------------


async def test_a_household_code_cannot_be_guessed_and_the_lock_hides_the_right_code(bot: Harness, clock: Clock) -> None:
    await open_survey(bot, "THON-1")
    code = await register(bot, RESIDENT, "THON-1", NAME)
    assert len(code.replace(" ", "")) == 9
    await start_joining(bot, STRANGER)
    answers = set()
    for guess in ("111 111 111", "222222222", "333-333-333", "444444444", "555555555"):
        [wrong] = await bot.send(STRANGER, guess)
        answers.add(wrong.text)
    [refused] = await bot.send(STRANGER, code)  # the right code, during the lock
    answers.add(refused.text)
    assert len(answers) == 1
    assert "không tìm thấy hộ nào" in refused.text
    await start_joining(bot, STRANGER)  # /khaosat again: a new conversation, the same lock
    [refused] = await bot.send(STRANGER, code)
    assert refused.text in answers
    async with bot.app.sessions() as session:
        joined = (await session.exec(select(Person).where(Person.household_id.is_not(None)))).scalars().all()
    assert len(joined) == 1  # only the resident who registered

    await start_joining(bot, SPOUSE)  # another person in another chat is not locked out
    joined, _question = await bot.send(SPOUSE, code, expect=2)
    assert NAME in joined.text
    clock.offset = timedelta(hours=1, minutes=1)  # the lock is over
    joined, _question = await bot.send(STRANGER, code.replace(" ", ""), expect=2)
    assert NAME in joined.text


async def test_staff_reset_sends_the_new_code_to_the_members_and_not_to_the_staff(harness: Harness) -> None:
    await open_survey(harness, "THON-1")
    old = await register(harness, RESIDENT, "THON-1", NAME, HAMLET)
    await start_joining(harness, SPOUSE)
    await harness.send(SPOUSE, old, expect=2)
    await register(harness, NEIGHBOUR, "THON-1", "Lò Văn Pọm")

    for user in (TECH, RESIDENT):
        [refused] = await harness.send(user, "/doimaho")
        assert "dành cho trưởng thôn và cán bộ xã" in refused.text
    [villages] = await harness.send(HEAD, "/doimaho")  # the head of three villages picks one
    number = next(line.split(".")[0] for line in villages.text.splitlines() if line.endswith("Thôn 1"))
    [households] = await harness.send(HEAD, number)
    assert f"{NAME} — {HAMLET}" in households.text
    assert "Lò Văn Pọm" in households.text
    number = next(line.split(".")[0] for line in households.text.splitlines() if NAME in line)
    [confirm] = await harness.send(HEAD, number)
    assert "2 người trong hộ" in confirm.text
    seen = {user: len(harness.fake.messages_to(user)) for user in (RESIDENT, SPOUSE, NEIGHBOUR)}
    [done] = await harness.send(HEAD, "1")
    assert "gửi mã mới cho 2 thành viên" in done.text
    await harness.fake.wait_for(lambda: all(len(harness.fake.messages_to(u)) > seen[u] for u in (RESIDENT, SPOUSE)))
    [to_resident] = harness.fake.messages_to(RESIDENT)[seen[RESIDENT]:]
    [to_spouse] = harness.fake.messages_to(SPOUSE)[seen[SPOUSE]:]
    new = CODE.search(to_resident.text).group(1)
    assert new != old
    assert new in to_spouse.text
    assert "đổi mã hộ" in to_resident.text
    assert len(harness.fake.messages_to(NEIGHBOUR)) == seen[NEIGHBOUR]
    assert not [m for m in harness.fake.messages_to(HEAD) if new in m.text or new.replace(" ", "") in m.text]

    await start_joining(harness, STRANGER)  # the old code is dead, the new one works
    [refused] = await harness.send(STRANGER, old)
    assert "không tìm thấy hộ nào" in refused.text
    joined, _question = await harness.send(STRANGER, new, expect=2)
    assert NAME in joined.text
    [event] = await audit_events(harness, "household_code_reset")
    assert event.details["members"] == 2
    assert old.replace(" ", "") not in json.dumps(event.details)


# --- exports -------------------------------------------------------------------------------------------------


async def test_exports_carry_no_join_code_and_record_the_places_in_the_file(
    harness: Harness, sqlite_url: str, tmp_path: Path
) -> None:
    await open_survey(harness, "THON-1")
    await open_survey(harness, "THON-2")
    codes = [await register(harness, RESIDENT, "THON-1", NAME)]
    await answer_and_submit(harness, RESIDENT)
    codes.append(await register(harness, NEIGHBOUR, "THON-2", "Lò Văn Pọm"))
    await answer_and_submit(harness, NEIGHBOUR)

    _ready, document = await harness.send(OFFICIAL, "/xuat XA1 csv", expect=2)
    text = document.params["document"].content.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["Thôn", "Số hộ", "Chủ hộ"]
    assert len(rows) == 3
    for code in codes:
        assert code.replace(" ", "") not in text
        assert code not in text
    async with harness.app.sessions() as session:
        places = {p.code: p.id for p in (await session.exec(select(Place))).scalars().all()}
        households = {h.head_name: h.id for h in (await session.exec(select(Household))).scalars().all()}
    assert {(row[2], int(row[1])) for row in rows[1:]} == set(households.items())

    out = tmp_path / "thon2.csv"
    done = langso("export", "--survey", "ho-gia-dinh", "--place", "THON-2", "--format", "csv", "--out", str(out),
                  env={"LANGSO_DATABASE_URL": sqlite_url})
    assert done.returncode == 0, done.stderr
    assert codes[1].replace(" ", "") not in out.read_text(encoding="utf-8-sig")

    async with harness.app.sessions() as session:
        records = (await session.exec(select(ExportRecord).order_by(ExportRecord.id))).scalars().all()
    assert [(r.via, r.place_id, r.place_ids, r.households) for r in records] == [
        ("telegram", places["XA1"], sorted([places["THON-1"], places["THON-2"]]), 2),
        ("cli", places["THON-2"], [places["THON-2"]], 1),
    ]
    events = await audit_events(harness, "export")
    assert [(e.actor_id is None, e.place_id, e.details["places"], e.details["households"]) for e in events] == [
        (False, places["XA1"], sorted([places["THON-1"], places["THON-2"]]), 2),
        (True, places["THON-2"], [places["THON-2"]], 1),
    ]


# --- inbox retention -------------------------------------------------------------------------------------------


def _update(n: int, processed: datetime | None, pending: bool = False) -> InboxUpdate:
    return InboxUpdate(platform="telegram", key=f"r{n}", payload={"text": "x"}, received_at=processed or datetime.now(UTC),
                       processed_at=processed, reply_pending=pending, replies=[{"text": "y"}] if pending else None)


async def test_retention_deletes_old_handled_updates_in_batches_and_keeps_the_rest(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    async with sessions() as session:
        session.add_all([_update(n, now - timedelta(days=31)) for n in range(1_203)])
        session.add(_update(2_000, now - timedelta(days=40), pending=True))  # its replies never went out
        session.add(_update(2_001, None))  # never handled (a crash)
        session.add(_update(2_002, now - timedelta(days=29)))  # recent
        await session.commit()
    try:
        pruned = await InboxRetention(sessions, PrivacySettings(inbox_retention_days=30), lambda: now, pause=0).prune()
        async with sessions() as session:
            left = sorted((await session.exec(select(InboxUpdate.key))).scalars().all())
    finally:
        await engine.dispose()
    assert pruned == 1_203
    assert left == ["r2000", "r2001", "r2002"]


async def test_the_bot_prunes_the_inbox_when_it_starts(fake: FakeTelegram, sqlite_url: str) -> None:
    await asyncio.to_thread(upgrade, sqlite_url)
    engine = create_engine(sqlite_url)
    async with session_factory(engine)() as session:
        session.add(_update(1, datetime.now(UTC) - timedelta(days=3)))
        await session.commit()
    await engine.dispose()
    clock = Clock()
    clock.offset = timedelta(days=5)  # five days later, with a retention of two
    h = Harness(fake, settings_for(sqlite_url, fake.url, privacy={"inbox_retention_days": 2}), clock=clock)
    await h.start()
    try:
        async def count() -> int:
            async with h.app.sessions() as session:
                return (await session.exec(select(func.count()).select_from(InboxUpdate))).scalar_one()

        await h.eventually(count, 0)
    finally:
        await h.stop()


@pytest.mark.parametrize("days", [0, -3, 1.5, "30", True])
def test_a_bad_retention_period_is_named(days: object, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"privacy\.inbox_retention_days"):
        settings_for(sqlite_url, privacy={"inbox_retention_days": days})


def test_the_retention_period_defaults_to_thirty_days(sqlite_url: str) -> None:
    assert settings_for(sqlite_url).privacy.inbox_retention_days == 30
