"""The tech team's hand-off queue as plain operations (session, actor, arguments): the questions
waiting, the answered ones found by a word, an answer relayed to the asker, an answer saved into the
handbook. /cauhoi, /traloi and /luuhuongdan in a chat and the web console's inbox both call them; each
asks the permission core (`may_answer_question`) itself."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement
from sqlmodel import col, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit
from handlers.chat import ChatRef, Outgoing
from handlers.handbook.search import Handbook, entry_article
from handlers.permissions import Actor, Spot, may_answer_question, question_places
from messages import render
from storage.models import HandbookEntry, HandbookQuestion, Person, Place, QuestionStatus

TITLE_MAX = 150
_LONG_DIGITS = re.compile(r"\d{6,}")
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # leading and trailing punctuation, emoji, spaces
_SPACES = re.compile(r"\s+")


class Verdict(StrEnum):
    DONE = "done"
    GONE = "gone"  # no such question
    NOT_ALLOWED = "not_allowed"
    EMPTY = "empty"  # an answer with no text
    NOT_ANSWERED = "not_answered"  # saving a question nobody has answered yet
    EXISTS = "exists"  # already saved into the handbook
    BAD_TITLE = "bad_title"


@dataclass(frozen=True)
class Listed:
    """A question as staff see it: who asked (a name carrying a phone number is not shown), from where, when."""

    question: HandbookQuestion
    asker: str
    place: str | None
    entry_id: int | None = None  # saved into the handbook as this entry


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    question: HandbookQuestion | None = None
    relay: Outgoing | None = None  # the answer, to the chat the question came from
    entry: HandbookEntry | None = None  # saved, or the one that already exists


def shown_name(name: str) -> str:
    """A display name as staff and groups may read it: a name that carries a phone number or an account
    number is not shown at all."""
    return "" if _LONG_DIGITS.search(name) else name.strip()


def suggest_title(question: str) -> str:
    """The question as a title: one line, no stray punctuation at either end, a capital first letter,
    cut at a word within TITLE_MAX."""
    text = _EDGES.sub("", _SPACES.sub(" ", question)).strip()
    if len(text) > TITLE_MAX:
        text = text[:TITLE_MAX].rsplit(" ", 1)[0]
    return text[:1].upper() + text[1:]


def good_title(typed: str) -> str | None:
    """A title someone typed, tidied; None when it has no letter or is too long."""
    title = suggest_title(typed)
    return title if any(ch.isalpha() for ch in title) and len(typed) <= TITLE_MAX else None


async def _mine(session: AsyncSession, actor: Actor) -> ColumnElement[bool]:
    """Questions from the actor's places, and those from no known place (any staff's)."""
    places = await question_places(session, actor)
    return or_(col(HandbookQuestion.place_id).is_(None), col(HandbookQuestion.place_id).in_(places))


async def _listed(session: AsyncSession, where: Sequence[ColumnElement[bool]], *, newest_first: bool,
                  limit: int) -> list[Listed]:
    order = col(HandbookQuestion.id).desc() if newest_first else col(HandbookQuestion.id)
    rows = await session.exec(
        select(HandbookQuestion, Person.display_name, Place.name, HandbookEntry.id)
        .join(Person, col(Person.id) == HandbookQuestion.person_id)
        .outerjoin(Place, col(Place.id) == HandbookQuestion.place_id)
        .outerjoin(HandbookEntry, col(HandbookEntry.question_id) == HandbookQuestion.id)
        .where(*where)
        .order_by(order)
        .limit(limit)
    )
    return [Listed(q, shown_name(name), place, entry) for q, name, place, entry in rows.all()]


async def waiting(session: AsyncSession, actor: Actor, limit: int) -> tuple[list[Listed], int]:
    """The oldest `limit` open questions the actor answers, and how many are open in all."""
    if not await question_places(session, actor):
        return [], 0
    where = [col(HandbookQuestion.status) == QuestionStatus.OPEN, await _mine(session, actor)]
    total = (await session.exec(select(func.count()).select_from(HandbookQuestion).where(*where))).one()
    return await _listed(session, where, newest_first=False, limit=limit), total


async def answered(session: AsyncSession, actor: Actor, words: str, limit: int) -> list[Listed]:
    """Answered questions of the actor's places whose question or answer holds `words` (any case),
    newest first."""
    where = [col(HandbookQuestion.status) == QuestionStatus.ANSWERED, await _mine(session, actor)]
    if words.strip():
        pattern = f"%{words.strip()}%"
        where.append(or_(col(HandbookQuestion.text).ilike(pattern), col(HandbookQuestion.answer).ilike(pattern)))
    return await _listed(session, where, newest_first=True, limit=limit)


async def answerable(session: AsyncSession, actor: Actor, question_id: int | None) -> Outcome:
    """The question, if it exists and the actor may answer it."""
    question = await session.get(HandbookQuestion, question_id) if question_id is not None else None
    if question is None:
        return Outcome(Verdict.GONE)
    place = await session.get(Place, question.place_id) if question.place_id is not None else None
    if not may_answer_question(actor, Spot.of(place) if place else None):
        return Outcome(Verdict.NOT_ALLOWED, question)
    return Outcome(Verdict.DONE, question)


async def answer(session: AsyncSession, actor: Actor, question_id: int | None, text: str, now: datetime) -> Outcome:
    """The answer is kept with the question, and `relay` carries it to the chat it was asked in."""
    found = await answerable(session, actor, question_id)
    if found.verdict is not Verdict.DONE or found.question is None:
        return found
    if not text.strip():
        return Outcome(Verdict.EMPTY, found.question)
    question = found.question
    question.answer, question.status = text.strip(), QuestionStatus.ANSWERED
    question.answered_by, question.answered_at = actor.person_id, now
    session.add(question)
    relay = Outgoing(
        ChatRef(question.platform, question.chat_id),
        render("handbook_answer_from_team", question=question.text, answer=question.answer),
    )
    return Outcome(Verdict.DONE, question, relay)


async def saveable(session: AsyncSession, actor: Actor, question_id: int | None) -> Outcome:
    """The question, answered, not saved yet, and the actor's to save."""
    found = await answerable(session, actor, question_id)
    if found.verdict is not Verdict.DONE or found.question is None:
        return found
    if found.question.status != QuestionStatus.ANSWERED:
        return Outcome(Verdict.NOT_ANSWERED, found.question)
    saved = (
        await session.exec(select(HandbookEntry).where(HandbookEntry.question_id == found.question.id))
    ).first()
    return Outcome(Verdict.EXISTS, found.question, entry=saved) if saved is not None else found


async def save_entry(
    session: AsyncSession, actor: Actor, question_id: int | None, title: str, handbook: Handbook, now: datetime
) -> Outcome:
    """The answer saved into the handbook under `title` (already tidied by `good_title`), searchable at
    once; audited."""
    found = await saveable(session, actor, question_id)
    if found.verdict is not Verdict.DONE or found.question is None:
        return found
    if not title.strip():
        return Outcome(Verdict.BAD_TITLE, found.question)
    question = found.question
    entry = HandbookEntry(title=title, body=question.answer, question_id=question.id, created_by=actor.person_id)
    session.add(entry)
    await session.flush()
    handbook.add(entry_article(entry))
    await audit.record(session, "handbook_entry_saved", actor_id=actor.person_id, at=now,
                       place_id=question.place_id, entry=entry.id, question=question.id)
    return Outcome(Verdict.DONE, question, entry=entry)
