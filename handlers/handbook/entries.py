"""The handbook's own entries, made from the tech team's answers: /luuhuongdan SỐ asks for a title
(suggesting one), shows the entry and saves it after a yes; /xoahuongdan [SỐ] takes one out of the
database and of the live search, after a yes. Both audited; both for staff of the question's place
(the permission core's `may_answer_question`). An entry's number is its id, as the saved reply says."""

from __future__ import annotations

import re

from sqlmodel import col, select

from handlers import audit, conversation
from handlers.chat import Button, ChatKind
from handlers.choices import Menu, confirmed, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.handbook.questions import staff_question
from handlers.handbook.search import entry_article
from handlers.numbers import whole_number
from handlers.permissions import Spot, may_answer_question
from storage.models import HandbookEntry, Place, HandbookQuestion, QuestionStatus

TITLE_MAX = 150
KEEP_SUGGESTION = ("1", "ok")  # what keeps the suggested title
LISTED = 30  # /xoahuongdan lists the newest this many; older ones are removed by number
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")  # leading and trailing punctuation, emoji, spaces
_SPACES = re.compile(r"\s+")


def suggest_title(question: str) -> str:
    """The question as a title: one line, no stray punctuation at either end, a capital first letter,
    cut at a word within TITLE_MAX."""
    text = _EDGES.sub("", _SPACES.sub(" ", question)).strip()
    if len(text) > TITLE_MAX:
        text = text[:TITLE_MAX].rsplit(" ", 1)[0]
    return text[:1].upper() + text[1:]


def _menu() -> Menu:
    return menu("confirm", "no")


def _private_only(turn: Turn) -> bool:
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("handbook_entry_private_only")
        return True
    return False


# --- /luuhuongdan ---------------------------------------------------------------------------------------


async def save_command(turn: Turn, args: str) -> None:
    """/luuhuongdan SỐ"""
    if _private_only(turn):
        return
    question = await _answered(turn, args.strip())
    if question is None:
        return
    suggestion = suggest_title(question.text) or suggest_title(question.answer)
    await conversation.move(turn, FLOW, "title", question_id=question.id, suggestion=suggestion)
    turn.say("handbook_save_title", number=question.id, suggestion=suggestion)


async def _answered(turn: Turn, number: str) -> HandbookQuestion | None:
    """The question, answered, not saved yet, and this person's to save; otherwise says why not."""
    question = await staff_question(turn, number)
    if question is None:
        return None
    if question.status != QuestionStatus.ANSWERED:
        turn.say("handbook_save_needs_answer", number=question.id)
        return None
    saved = (await turn.session.exec(select(HandbookEntry.id).where(HandbookEntry.question_id == question.id))).first()
    if saved is not None:
        turn.say("handbook_save_exists", number=question.id, entry=saved)
        return None
    return question


async def _on_title(turn: Turn, data: Data) -> None:
    answer = turn.incoming.answer.strip()
    suggestion = str(data.get("suggestion", ""))
    title = suggestion if answer.casefold() in KEEP_SUGGESTION else suggest_title(answer)
    if not any(ch.isalpha() for ch in title) or len(answer) > TITLE_MAX:
        turn.say("handbook_save_title_bad", suggestion=suggestion, limit=TITLE_MAX)
        return
    question = await turn.session.get(HandbookQuestion, data.get("question_id"))
    if question is None:
        await conversation.finish(turn)
        turn.say("handbook_reply_usage")
        return
    choices = _menu()
    await conversation.move(turn, FLOW, "save", title=title)
    turn.say("handbook_save_confirm", title=title, body=question.answer, buttons=choices.buttons, choices=choices.lines)


async def _on_save(turn: Turn, data: Data) -> None:
    answer = await confirmed(turn, _menu())
    if answer is None:
        return
    if not answer:
        turn.say("handbook_save_kept")
        return
    question = await _answered(turn, str(data.get("question_id", "")))  # answered, or saved, meanwhile?
    if question is None:
        return
    entry = HandbookEntry(title=str(data["title"]), body=question.answer, question_id=question.id,
                          created_by=turn.person.id)
    turn.session.add(entry)
    await turn.session.flush()
    turn.handbook.add(entry_article(entry))
    await audit.record(turn.session, "handbook_entry_saved", actor_id=turn.person.id, at=turn.now,
                       place_id=question.place_id, entry=entry.id, question=question.id)
    turn.say("handbook_saved", number=question.id, entry=entry.id, title=entry.title)


# --- /xoahuongdan ---------------------------------------------------------------------------------------


async def _removable(turn: Turn, entry_id: int | None = None) -> list[HandbookEntry]:
    """The entries this person may take out (or just `entry_id`, if they may), newest first."""
    query = (
        select(HandbookEntry, Place)
        .outerjoin(HandbookQuestion, col(HandbookQuestion.id) == HandbookEntry.question_id)
        .outerjoin(Place, col(Place.id) == HandbookQuestion.place_id)
        .order_by(col(HandbookEntry.id).desc())
    )
    if entry_id is not None:
        query = query.where(HandbookEntry.id == entry_id)
    actor = await turn.actor()
    rows = (await turn.session.exec(query)).all()
    return [entry for entry, place in rows if may_answer_question(actor, Spot.of(place) if place else None)]


def _buttons(entries: list[HandbookEntry]) -> tuple[Button, ...]:
    return tuple(Button(f"{e.id}. {e.title}"[:60], str(e.id)) for e in entries)


async def remove_command(turn: Turn, args: str) -> None:
    """/xoahuongdan [SỐ]"""
    if _private_only(turn):
        return
    if not may_answer_question(await turn.actor(), None):  # no staff role anywhere
        turn.say("handbook_staff_only")
        return
    number = whole_number(args) if args.strip() else None
    if number is not None and (await _removable(turn, number)):
        await _ask_remove(turn, number)
        return
    await _list(turn, unknown=args.strip() or None)


async def _list(turn: Turn, unknown: str | None = None) -> None:
    entries = (await _removable(turn))[:LISTED]
    if not entries:
        await conversation.finish(turn)
        turn.say("handbook_remove_none", unknown=unknown)
        return
    await conversation.move(turn, FLOW, "pick", entries=[e.id for e in entries])
    turn.say("handbook_remove_pick", entries=entries, unknown=unknown, buttons=_buttons(entries))


async def _on_pick(turn: Turn, data: Data) -> None:
    number = whole_number(turn.incoming.answer)
    if number is None or number not in data.get("entries", []) or not await _removable(turn, number):
        await _list(turn, unknown=turn.incoming.answer.strip()[:20] or None)
        return
    await _ask_remove(turn, number)


async def _ask_remove(turn: Turn, entry_id: int) -> None:
    entry = await turn.session.get(HandbookEntry, entry_id)
    assert entry is not None  # just found among the removable ones, in this transaction
    choices = _menu()
    await conversation.move(turn, FLOW, "remove", entry_id=entry_id)
    turn.say("handbook_remove_confirm", entry=entry, buttons=choices.buttons, choices=choices.lines)


async def _on_remove(turn: Turn, data: Data) -> None:
    answer = await confirmed(turn, _menu())
    if answer is None:
        return
    if not answer:
        turn.say("handbook_remove_kept")
        return
    found = await _removable(turn, int(data.get("entry_id", 0)))
    if not found:  # removed meanwhile, or the person's role went
        turn.say("handbook_remove_none", unknown=None)
        return
    entry = found[0]
    question = await turn.session.get(HandbookQuestion, entry.question_id) if entry.question_id else None
    await turn.session.delete(entry)
    await turn.session.flush()
    turn.handbook.remove(entry_article(entry).id)
    await audit.record(turn.session, "handbook_entry_removed", actor_id=turn.person.id, at=turn.now,
                       place_id=question.place_id if question else None, entry=entry.id, question=entry.question_id)
    turn.say("handbook_removed", entry=entry.id, title=entry.title)


FLOW = Flow("handbook_entry", {"title": _on_title, "save": _on_save, "pick": _on_pick, "remove": _on_remove})
