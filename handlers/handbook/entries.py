"""The handbook's own entries, made from the tech team's answers: /luuhuongdan SỐ asks for a title
(suggesting one), shows the entry and saves it after a yes; /xoahuongdan [SỐ] takes one out of the
database and of the live search, after a yes. Both audited; both for staff of the question's place
(the permission core's `may_answer_question`). An entry's number is its id, as the saved reply says."""

from __future__ import annotations

from sqlmodel import col, select

from handlers import audit, conversation
from handlers.chat import Button, ChatKind
from handlers.choices import Menu, confirmed, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.handbook import inbox
from handlers.handbook.inbox import TITLE_MAX, Verdict, good_title, suggest_title
from handlers.handbook.search import entry_article
from handlers.numbers import whole_number
from handlers.permissions import Spot, may_answer_question
from storage.models import HandbookEntry, HandbookQuestion, Place

KEEP_SUGGESTION = ("1", "ok")  # what keeps the suggested title
LISTED = 30  # /xoahuongdan lists the newest this many; older ones are removed by number


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
    found = await inbox.saveable(turn.session, await turn.actor(), whole_number(number))
    _say_refused(turn, found)
    return found.question if found.verdict is Verdict.DONE else None


def _say_refused(turn: Turn, found: inbox.Outcome) -> None:
    if found.verdict is Verdict.NOT_ALLOWED:
        turn.say("handbook_staff_only")
    elif found.verdict is Verdict.NOT_ANSWERED and found.question is not None:
        turn.say("handbook_save_needs_answer", number=found.question.id)
    elif found.verdict is Verdict.EXISTS and found.question is not None and found.entry is not None:
        turn.say("handbook_save_exists", number=found.question.id, entry=found.entry.id)
    elif found.verdict is not Verdict.DONE:
        turn.say("handbook_reply_usage")


async def _on_title(turn: Turn, data: Data) -> None:
    answer = turn.incoming.answer.strip()
    suggestion = str(data.get("suggestion", ""))
    title = good_title(suggestion if answer.casefold() in KEEP_SUGGESTION else answer)
    if title is None:
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
    # answered, or saved, meanwhile? the operation judges again
    saved = await inbox.save_entry(turn.session, await turn.actor(), int(data.get("question_id", 0)),
                                   str(data["title"]), turn.handbook, turn.now)
    if saved.verdict is not Verdict.DONE or saved.question is None or saved.entry is None:
        _say_refused(turn, saved)
        return
    turn.say("handbook_saved", number=saved.question.id, entry=saved.entry.id, title=saved.entry.title)


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
