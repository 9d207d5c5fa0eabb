"""Bad input never crashes a turn: whatever a person types or a forged button carries (NUL and other
control characters, NFD Vietnamese, "²", "５", "٣", a 5,000-digit number, emoji, zero-width
characters), every step of every conversation answers politely, and a re-ask stores nothing.

End-to-end cases run the real bot against the fake Telegram server; the property test drives
`handlers.router.route` with a real Turn on a real database, each example in a transaction that is
rolled back, so every example starts from the same seeded state."""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

import handlers.context
from bot.config import Settings
from handlers import admin, announcements, following, invitations, roles, villages
from handlers.chat import ChatKind, Event, Incoming
from handlers.context import Turn
from handlers.conversation import Flow
from handlers.handbook import asking, entries
from handlers.handbook.search import Handbook
from handlers.people import person_for
from handlers.router import FLOWS, route
from handlers.surveys import answering, campaigns, households, my_data
from handlers.surveys.catalog import Catalog
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import (
    Announcement,
    Campaign,
    ChatGroup,
    Conversation,
    Follower,
    HandbookEntry,
    HandbookQuestion,
    Household,
    Identity,
    Person,
    Place,
    QuestionStatus,
    Role,
    SurveyResponse,
)
from tests.conftest import _postgres_database, settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, RESIDENT, TECH, VILLAGE_GROUPS, Harness

NFD_BACK = unicodedata.normalize("NFD", "quay lại")
HUGE = "9" * 5000
NASTY = ("²", "５", "٣", "1²", "99999999999", HUGE, "😀👨‍👩‍👧", "\u200b\u200d", "\x00", "1\x00", "ack:" + HUGE, NFD_BACK, "")


# --- end to end, against the fake Telegram server ------------------------------------------------------


async def test_nfd_back_word_while_editing_a_notice_returns_to_the_preview(harness: Harness) -> None:
    [preview] = await harness.send(HEAD, "/thongbao Họp thôn tối thứ Bảy")
    [ask] = await harness.send(HEAD, "3")  # edit
    assert "nội dung mới" in ask.text
    [preview] = await harness.send(HEAD, NFD_BACK)
    assert "Họp thôn tối thứ Bảy" in preview.text
    assert "quay" not in preview.text.split("Họp thôn")[1][:40]
    async with harness.app.sessions() as session:
        texts = (await session.exec(select(Announcement.text))).all()
    assert texts == ["Họp thôn tối thứ Bảy"]


@pytest.mark.parametrize("number", ["²", "５", "٣", "1²", HUGE])
async def test_numbers_of_other_scripts_are_asked_again(harness: Harness, number: str) -> None:
    await harness.send(HEAD, "/thongbao Họp thôn")
    [again] = await harness.send(HEAD, number)
    assert "trả lời bằng một số từ 1 đến 6" in again.text
    [queued] = await harness.send(HEAD, "1")  # the preview is still there
    assert "Đã nhận thông báo số" in queued.text


async def test_staff_question_numbers_of_other_scripts_are_asked_again(harness: Harness) -> None:
    for number in ("²", "５", HUGE):
        [usage] = await harness.send(TECH, f"/traloi {number} Bạn vào Cài đặt")
        assert "/traloi" in usage.text
        assert "trục trặc" not in usage.text


async def test_emoji_only_message_is_not_a_question_for_the_tech_team(harness: Harness) -> None:
    for text in ("😀🙏", "??? ..."):  # small talk, or a puzzled resident: a friendly hello saying what the bot does
        [hello] = await harness.send(RESIDENT, text)
        assert "Làng số bot" in hello.text
        assert "/trogiup" in hello.text
    [reply] = await harness.send(RESIDENT, "\u200b\u200d")  # nothing visible at all
    assert "chưa hiểu" in reply.text
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(HandbookQuestion))).one() == 0
    assert harness.fake.messages_to(TECH) == []


async def test_nul_byte_and_control_characters_are_dropped_on_postgresql(fake: FakeTelegram, postgres_url: str) -> None:
    h = Harness(fake, settings_for(postgres_url, fake.url))
    await h.start()
    try:
        await h.seed_commune()
        [preview] = await h.send(HEAD, "/thongbao Họp\x00 thôn\x07 tối nay\r\nở nhà văn hóa")
        assert "Họp thôn tối nay\nở nhà văn hóa" in preview.text
        async with h.app.sessions() as session:
            assert (await session.exec(select(Announcement.text))).all() == ["Họp thôn tối nay\nở nhà văn hóa"]
    finally:
        await h.stop()


# --- every step of every conversation, with arbitrary text ---------------------------------------------

TEST_SURVEY = """
code = "thu"
title = "Khảo sát thử"
purpose = "Thử mọi loại câu hỏi."

[choices]
yes_no = [{ value = "yes", label = "Có" }, { value = "no", label = "Không" }]
ways = [{ value = "a", label = "Một" }, { value = "b", label = "Hai" }, { value = "c", label = "Ba" }]

[[questions]]
name = "members"
type = "integer"
label = "Mấy người?"
required = true
constraint = ". >= 1 and . <= 30"

[[questions]]
name = "area"
type = "decimal"
label = "Bao nhiêu sào?"

[[questions]]
name = "born"
type = "date"
label = "Ngày sinh?"

[[questions]]
name = "note"
type = "text"
label = "Ghi chú?"

[[questions]]
name = "wifi"
type = "select_one"
label = "Có wifi không?"
required = true
choices = "yes_no"

[[questions]]
name = "ways"
type = "select_multiple"
label = "Cách nào?"
choices = "ways"

[[questions]]
name = "phone"
type = "phone"
label = "Số điện thoại?"
"""

# a reply made of one of these asks the same step again: nothing may have been stored
RE_ASKS = frozenset(
    {
        "choice_not_understood", "survey_invalid", "time_not_understood", "time_in_past", "survey_ask_expected",
        "survey_ask_head_name", "survey_ask_which", "survey_bad_join_code", "announce_ask_text", "not_understood",
        "status_usage", "handbook_reply_usage", "handbook_ask_usage",
    }
)  # fmt: skip
SCRATCH = frozenset({"conversation", "attempt_counter"})  # where a re-ask may write: the step's own state
NOW = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


@dataclass
class World:
    sessions: Callable[[], AsyncSession]
    settings: Settings
    handbook: Handbook
    surveys: Catalog
    engine: AsyncEngine


async def _build_world(url: str) -> World:
    settings = settings_for(url)
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        for n, code in enumerate(VILLAGE_GROUPS, 1):
            await admin.add_place(session, "village", code, f"Thôn {n}", "XA1")
        for code in VILLAGE_GROUPS:
            await admin.grant_role(session, "telegram", str(HEAD), "village_head", code)
        await admin.grant_role(session, "telegram", str(TECH), "tech_team", "THON-1")
        for code, chat in VILLAGE_GROUPS.items():
            place = (await session.exec(select(Place).where(Place.code == code))).one()
            session.add(ChatGroup(platform="telegram", chat_id=str(chat), title=f"Nhóm {code}", place_id=place.id))
        await admin.import_survey(session, "thu.toml", TEST_SURVEY.encode())
        await session.commit()
        surveys = Catalog()
        await surveys.refresh(session)
        book = await Handbook.load(session)
    return World(sessions, settings, book, surveys, engine)


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture(scope="module")
def world(runner: asyncio.Runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = runner.run(_build_world(f"sqlite:///{tmp_path_factory.mktemp('input') / 'langso.db'}"))
    yield built
    runner.run(built.engine.dispose())


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The templates a turn renders, in order (Turn.say and Turn.toast render through this name)."""
    names: list[str] = []
    real = handlers.context.render

    def spy(template: str, /, **values: object) -> str:
        names.append(template)
        return real(template, **values)

    monkeypatch.setattr(handlers.context, "render", spy)
    return names


# --- the states a person can be in ---------------------------------------------------------------------

Setup = Callable[[AsyncSession, Person, "World"], Awaitable[tuple[str, str, dict[str, Any]] | None]]


async def _place(session: AsyncSession, code: str = "THON-1") -> Place:
    return (await session.exec(select(Place).where(Place.code == code))).one()


async def _draft(session: AsyncSession, person: Person) -> int:
    draft = Announcement(author_id=person.id, text="Họp thôn")
    session.add(draft)
    await session.flush()
    assert draft.id is not None
    return draft.id


async def _campaign(session: AsyncSession, person: Person) -> Campaign:
    village = await _place(session)
    campaign = Campaign(survey_code="thu", place_id=village.id, opened_by=person.id, opened_at=NOW)
    session.add(campaign)
    await session.flush()
    return campaign


async def _member(session: AsyncSession, person: Person) -> Campaign:
    """`person` belongs to a household of THON-1, which has answered the first question."""
    campaign = await _campaign(session, person)
    household = Household(place_id=campaign.place_id, head_name="Nguyễn Văn A", join_code="123456")
    session.add(household)
    await session.flush()
    person.household_id = household.id
    session.add(person)
    session.add(SurveyResponse(campaign_id=campaign.id, household_id=household.id, answers={"members": 4}))
    await session.flush()
    return campaign


def announce(step: str, **extra: Any) -> Setup:
    async def setup(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
        return announcements.FLOW.name, step, {"announcement_id": await _draft(session, person), **extra}

    return setup


def survey(step: str, member: bool = False, **extra: Any) -> Setup:
    async def setup(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
        campaign = await (_member if member else _campaign)(session, person)
        return answering.FLOW.name, step, {"campaign_id": campaign.id, **extra}

    return setup


def campaign_step(step: str, **extra: Any) -> Setup:
    async def setup(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
        data = dict(extra)
        if step == "expected":
            data["village_id"] = (await _place(session)).id
        if step in ("progress", "remind_time"):
            data["campaign_id"] = (await _campaign(session, person)).id
        return campaigns.FLOW.name, step, data

    return setup


async def _mydata(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
    await _member(session, person)
    return my_data.FLOW.name, "delete", {"household_id": person.household_id}


async def _mydata_own(_session: AsyncSession, _person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
    return my_data.FLOW.name, "delete_own", {}


def handbook_step(step: str) -> Setup:
    async def setup(session: AsyncSession, person: Person, world: World) -> tuple[str, str, dict[str, Any]]:
        question = HandbookQuestion(
            platform="telegram", chat_id=str(person.id), user_id="", person_id=person.id, text="cài VNeID", decision="offer"
        )
        session.add(question)
        await session.flush()
        offered = [hit.article.id for hit in world.handbook.decide("cài VNeID").hits]
        return asking.FLOW.name, step, {"question_id": question.id, "offered": offered}

    return setup


async def _no_conversation(session: AsyncSession, person: Person, _world: World) -> None:
    return None


def village_step(step: str, member: bool = False) -> Setup:
    async def setup(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
        places = (await session.exec(select(Place).order_by(col(Place.id)))).all()
        if member:
            await villages.join_village(session, person, await _place(session, "THON-1"), "command")
        if step == "move":
            return villages.FLOW.name, step, {"place_id": (await _place(session, "THON-2")).id, "source": "link"}
        kind = "commune" if step == "commune" else "village"
        return villages.FLOW.name, step, {"offered": [p.id for p in places if p.kind == kind], "source": "command"}

    return setup


async def _answered_question(session: AsyncSession, person: Person) -> HandbookQuestion:
    question = HandbookQuestion(
        platform="telegram", chat_id="200", user_id="200", person_id=person.id, place_id=(await _place(session)).id,
        text="quên mật khẩu VNeID", decision="handoff", status=QuestionStatus.ANSWERED, answer="Vào mục Quên mật khẩu.",
    )
    session.add(question)
    await session.flush()
    return question


async def _entry(session: AsyncSession, person: Person) -> HandbookEntry:
    question = await _answered_question(session, person)
    entry = HandbookEntry(title="Quên mật khẩu", body=question.answer, question_id=question.id, created_by=person.id)
    session.add(entry)
    await session.flush()
    return entry


async def _tech_role(session: AsyncSession) -> int:
    return (await session.exec(select(Role.id).where(Role.role == "tech_team"))).one()


def at(flow: Flow, step: str, data: Callable[[AsyncSession, Person], Awaitable[dict[str, Any]]]) -> Setup:
    """`step` of `flow`, its data made by `data`."""
    async def setup(session: AsyncSession, person: Person, _world: World) -> tuple[str, str, dict[str, Any]]:
        return flow.name, step, await data(session, person)

    return setup


async def _villages(session: AsyncSession, _person: Person) -> dict[str, Any]:
    return {"villages": [(await _place(session, code)).id for code in VILLAGE_GROUPS]}


async def _households(session: AsyncSession, person: Person) -> dict[str, Any]:
    await _member(session, person)
    assert person.household_id is not None
    return {"village_id": (await _place(session)).id, "households": [person.household_id]}


async def _household(session: AsyncSession, person: Person) -> dict[str, Any]:
    await _member(session, person)
    return {"household_id": person.household_id}


async def _to_title(session: AsyncSession, person: Person) -> dict[str, Any]:
    return {"question_id": (await _answered_question(session, person)).id, "suggestion": "Quên mật khẩu VNeID"}


async def _to_save(session: AsyncSession, person: Person) -> dict[str, Any]:
    return {**await _to_title(session, person), "title": "Quên mật khẩu VNeID"}


async def _entries(session: AsyncSession, person: Person) -> dict[str, Any]:
    return {"entries": [(await _entry(session, person)).id]}


async def _an_entry(session: AsyncSession, person: Person) -> dict[str, Any]:
    return {"entry_id": (await _entry(session, person)).id}


async def _invite_roles(_session: AsyncSession, _person: Person) -> dict[str, Any]:
    return {"roles": ["tech_team", "village_head"], "pending": []}


async def _invite_places(session: AsyncSession, _person: Person) -> dict[str, Any]:
    return {"role": "tech_team", "places": [(await _place(session, code)).id for code in VILLAGE_GROUPS]}


async def _removable(session: AsyncSession, _person: Person) -> dict[str, Any]:
    return {"roles": [await _tech_role(session)]}


async def _removing(session: AsyncSession, _person: Person) -> dict[str, Any]:
    return {"role_id": await _tech_role(session)}


async def _asked_to_follow(session: AsyncSession, person: Person) -> dict[str, Any]:
    """Asked right after joining THON-1, as /thamgia leaves them."""
    village = await _place(session, "THON-1")
    await villages.join_village(session, person, village, "command")
    identity = (await session.exec(select(Identity).where(Identity.person_id == person.id))).one()
    session.add(Follower(platform=identity.platform, chat_id=identity.user_id, asked_at=NOW))
    return {"place_id": village.id}


async def _unseen(session: AsyncSession, person: Person) -> dict[str, Any]:
    return {"announcement_id": await _draft(session, person)}


@dataclass(frozen=True)
class Step:
    name: str
    user: int
    setup: Setup
    prefix: str = ""  # a command the arbitrary text follows


STEPS = [
    *(Step(f"announce:{s}", HEAD, announce(s)) for s in ("text", "edit", "preview", "when", "targets")),
    Step("announce:confirm_when", HEAD, announce("confirm_when", send_at=(NOW + timedelta(days=1)).isoformat())),
    Step("announce:confirm_when:recurring", HEAD, announce("confirm_when", recurrence="sun 19 0")),
    Step("survey:campaign", RESIDENT, survey("campaign", place_code="")),
    *(Step(f"survey:{s}", RESIDENT, survey(s)) for s in ("consent", "household", "head_name", "join_code")),
    Step("survey:hamlet", RESIDENT, survey("hamlet", head_name="Nguyễn Văn A")),
    Step("survey:language", RESIDENT, survey("language", member=True)),
    *(
        Step(f"survey:question:{q}", RESIDENT, survey("question", member=True, question=q, picked=[]))
        for q in ("members", "area", "born", "note", "wifi", "ways", "phone")
    ),
    *(Step(f"survey:{s}", RESIDENT, survey(s, member=True)) for s in ("summary", "correct", "submitted")),
    *(Step(f"campaign:{s}", HEAD, campaign_step(s)) for s in ("menu", "survey", "progress", "remind_time")),
    Step("campaign:village", HEAD, campaign_step("village", survey="thu")),
    Step("campaign:expected", HEAD, campaign_step("expected", survey="thu")),
    Step("mydata:delete", RESIDENT, _mydata),
    Step("mydata:delete_own", RESIDENT, _mydata_own),
    *(Step(f"handbook:{s}", RESIDENT, handbook_step(s)) for s in ("offer", "confirm", "feedback")),
    Step("free text", RESIDENT, _no_conversation),
    Step("village:commune", RESIDENT, village_step("commune")),
    Step("village:village", RESIDENT, village_step("village")),
    Step("village:move", RESIDENT, village_step("move", member=True)),
    Step("follow:ask", RESIDENT, at(following.FLOW, "ask", _asked_to_follow)),
    *(Step(f"/{c}", RESIDENT, _no_conversation, prefix=f"/{c} ") for c in ("nhantin", "dunglai")),
    *(Step(f"/{c}", RESIDENT, _no_conversation, prefix=f"/{c} ") for c in ("thamgia", "roithon", "moi", "cuatoi")),
    Step("/start thon_", RESIDENT, _no_conversation, prefix="/start thon_"),
    Step("/start moi_", RESIDENT, _no_conversation, prefix="/start moi_"),
    *(
        Step(f"/{c}", HEAD, _no_conversation, prefix=f"/{c} ")
        for c in ("tinhtrang", "huythongbao", "khaosat", "start", "lienket", "ganthon", "xuat", "baocao", "tiendo",
                  "hoi", "moi", "thuhoi", "doimaho", "poster")
    ),
    *(Step(f"/{c}", TECH, _no_conversation, prefix=f"/{c} ") for c in ("traloi", "luuhuongdan")),
    Step("announce:unseen", HEAD, at(announcements.FLOW, "unseen", _unseen)),
    Step("household_code:village", HEAD, at(households.FLOW, "village", _villages)),
    Step("household_code:household", HEAD, at(households.FLOW, "household", _households)),
    Step("household_code:confirm", HEAD, at(households.FLOW, "confirm", _household)),
    Step("handbook_entry:title", TECH, at(entries.FLOW, "title", _to_title)),
    Step("handbook_entry:save", TECH, at(entries.FLOW, "save", _to_save)),
    Step("handbook_entry:pick", TECH, at(entries.FLOW, "pick", _entries)),
    Step("handbook_entry:remove", TECH, at(entries.FLOW, "remove", _an_entry)),
    Step("invitation:pick", HEAD, at(invitations.FLOW, "pick", _invite_roles)),
    Step("invitation:place", HEAD, at(invitations.FLOW, "place", _invite_places)),
    Step("role_removal:pick", HEAD, at(roles.FLOW, "pick", _removable)),
    Step("role_removal:confirm", HEAD, at(roles.FLOW, "confirm", _removing)),
]


def test_every_step_of_every_flow_is_driven() -> None:
    driven = {step.name.split(":")[0] + ":" + step.name.split(":")[1] for step in STEPS if ":" in step.name}
    assert {f"{flow.name}:{step}" for flow in FLOWS for step in flow.steps} <= driven

class Writes:
    """The tables a session writes to, through the ORM or with statements (INSERT … ON CONFLICT, bulk
    UPDATE and DELETE)."""

    def __init__(self, session: AsyncSession) -> None:
        self.tables: set[str] = set()
        event.listen(session.sync_session, "before_flush", self._flush)
        event.listen(session.sync_session, "do_orm_execute", self._statement)

    def _flush(self, session: Session, _context: object, _instances: object) -> None:
        changed = [*session.new, *session.deleted, *(o for o in session.dirty if session.is_modified(o))]
        self.tables.update(type(o).__tablename__ for o in changed)

    def _statement(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            self.tables.add(state.statement.table.name)  # type: ignore[attr-defined]


async def _turn(world: World, step: Step, text: str, button: bool, rendered: list[str]) -> None:
    """One message at `step`: it must not raise, must answer, and a re-ask must store nothing."""
    async with world.sessions() as session:
        person = await person_for(session, "telegram", str(step.user), "")
        state = await step.setup(session, person, world)
        if state is not None:
            flow, name, data = state
            chat = str(step.user)
            session.add(Conversation(platform="telegram", chat_id=chat, user_id=chat, flow=flow, step=name, data=data))
        await session.flush()
        writes = Writes(session)
        incoming = Incoming(
            platform="telegram",
            chat_id=str(step.user),
            chat_kind=ChatKind.PRIVATE,
            user_id=str(step.user),
            text="" if button else step.prefix + text,
            event=Event.BUTTON if button else Event.MESSAGE,
            button_data=text if button else None,
            callback_id="1" if button else None,
        )
        turn = Turn(
            incoming=incoming, session=session, person=person, settings=world.settings.handler, now=NOW,
            handbook=world.handbook, surveys=world.surveys,
        )  # fmt: skip
        rendered.clear()
        try:
            await route(turn)
            forged_ack = button and incoming.answer.startswith(announcements.ACK_PREFIX)  # ignored silently
            assert turn.reply.messages or turn.reply.toast is not None or forged_ack, f"no reply at {step.name}"
            await session.flush()
            if RE_ASKS.intersection(rendered):
                assert writes.tables <= SCRATCH, f"{step.name}: {rendered} wrote to {writes.tables}"
        finally:
            await session.rollback()


def _texts() -> st.SearchStrategy[str]:
    unicode = st.text(st.characters(codec="utf-8"), max_size=30)  # every script, controls and NUL included
    digits = st.text(st.characters(categories=["Nd", "No"]), min_size=1, max_size=12)
    huge = st.integers(10, 6000).map(lambda n: "9" * n)
    emoji = st.sampled_from(["😀", "🌾", "👨‍👩‍👧", "\u200b", "\u200d", "\ufeff", "🙏🏽"])
    words = st.sampled_from(["quay lại", "bỏ qua", "Có", "Không", "Gửi ngay", "số 2", "câu 1", "Hai"])
    nfd = words.map(lambda w: unicodedata.normalize("NFD", w))
    controls = st.sampled_from(["\x00", "\x07", "\r\n", "\x1b", "\x85", "\t"])
    typed = st.sampled_from(["1", "2", "-1", "0", "1, 3", "1 và 2", "7h sáng mai", "mỗi chủ nhật 19h", "ngay", "5,5"])
    pieces = st.one_of(unicode, digits, huge, emoji, words, nfd, controls, typed, st.just("ack:"), st.just("+"))
    return st.one_of(st.sampled_from(NASTY), st.lists(pieces, max_size=4).map("".join))


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=_texts(), button=st.booleans())
def test_any_text_at_any_step_gets_a_polite_answer(
    runner: asyncio.Runner, world: World, rendered: list[str], step: Step, text: str, button: bool
) -> None:
    runner.run(_turn(world, step, text, button and not step.prefix, rendered))


@pytest.fixture(scope="module")
def pg_world(runner: asyncio.Runner) -> Iterator[World]:
    for url in _postgres_database():
        built = runner.run(_build_world(url))
        yield built
        runner.run(built.engine.dispose())


@pytest.mark.parametrize("step", STEPS, ids=lambda step: step.name)
def test_nasty_texts_at_every_step_on_postgresql(
    runner: asyncio.Runner, pg_world: World, rendered: list[str], step: Step
) -> None:
    """PostgreSQL refuses NUL in text and overflows on huge ids: the same steps, the worst inputs."""
    for text in NASTY:
        for button in (False, True) if not step.prefix else (False,):
            runner.run(_turn(pg_world, step, text, button, rendered))
