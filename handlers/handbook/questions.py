"""Questions the handbook could not answer: who is told (the permission core's tiers: tech team, else
village head, else commune officials), the staff's /cauhoi list and their /traloi answer."""

from __future__ import annotations

from sqlmodel import col, select

from handlers.chat import ChatKind, Outgoing
from handlers.context import Turn
from handlers.groups import this_group
from handlers.handbook import inbox
from handlers.handbook.inbox import Verdict, shown_name
from handlers.invitations import private_chats
from handlers.numbers import whole_number
from handlers.permissions import question_answerers, question_places
from handlers.villages import village_of
from messages import render
from storage.models import HandbookQuestion, Household, Place, QuestionStatus

LISTED = 20  # /cauhoi shows the oldest this many; the rest wait their turn


async def place_of(turn: Turn) -> int | None:
    """The village a question belongs to: the one the asker joined, else the group's place, else the
    asker's household's."""
    village = await village_of(turn.session, turn.person)
    if village is not None:
        return village.id
    if turn.incoming.chat_kind is ChatKind.GROUP:
        group = await this_group(turn, create=False)
        if group is not None and group.place_id is not None:
            return group.place_id
    if turn.person.household_id is not None:
        household = await turn.session.get(Household, turn.person.household_id)
        return household.place_id if household else None
    return None


async def hand_off(turn: Turn, question: HandbookQuestion) -> None:
    """The question waits in /cauhoi; the first tier with somebody in it hears of it now, in their
    private chats, and the asker is told who (or, honestly, that nobody could be)."""
    question.status = QuestionStatus.OPEN
    await turn.session.flush()
    place = await turn.session.get(Place, question.place_id) if question.place_id is not None else None
    told = await question_answerers(turn.session, place, question.person_id)
    text = render("handbook_new_question", number=question.id, text=question.text, role=told.role,
                  asker=shown_name(turn.person.display_name), place=place.name if place else None)
    for person_id in told.person_ids:
        for chat in await private_chats(turn.session, person_id):
            turn.reply.messages.append(Outgoing(chat, text))
    turn.say("handbook_handed_off", number=question.id, told=told.role,
             join_hint=place is None and turn.incoming.chat_kind is ChatKind.PRIVATE)


async def still_waiting(turn: Turn) -> list[HandbookQuestion]:
    """The asker's own questions handed off and not yet answered, oldest first."""
    found = await turn.session.exec(
        select(HandbookQuestion)
        .where(HandbookQuestion.person_id == turn.person.id, HandbookQuestion.status == QuestionStatus.OPEN)
        .order_by(col(HandbookQuestion.id))
    )
    return list(found.all())


async def open_questions(turn: Turn, _args: str) -> None:
    """/cauhoi: questions waiting for the places this person serves, oldest first, with who asked, from
    where and when."""
    actor = await turn.actor()
    if not await question_places(turn.session, actor):
        turn.say("handbook_staff_only")
        return
    found, total = await inbox.waiting(turn.session, actor, LISTED)
    listed = [
        {"id": q.question.id, "text": q.question.text, "asker": q.asker, "place": q.place,
         "at": turn.local(q.question.created_at)}
        for q in found
    ]
    turn.say("handbook_open_questions", questions=listed, more=total - len(listed))


async def reply(turn: Turn, args: str) -> None:
    """/traloi N nội dung: the answer goes to the person who asked."""
    number, _, text = args.strip().partition(" ")
    done = await inbox.answer(turn.session, await turn.actor(), whole_number(number), text, turn.now)
    if done.relay is None or done.question is None:
        turn.say("handbook_staff_only" if done.verdict is Verdict.NOT_ALLOWED else "handbook_reply_usage")
        return
    turn.reply.messages.append(done.relay)
    turn.say("handbook_reply_sent", number=done.question.id)


async def staff_question(turn: Turn, number: str) -> HandbookQuestion | None:
    """The question numbered `number`, if this person may answer it; otherwise says why not."""
    found = await inbox.answerable(turn.session, await turn.actor(), whole_number(number))
    if found.verdict is not Verdict.DONE:
        turn.say("handbook_staff_only" if found.verdict is Verdict.NOT_ALLOWED else "handbook_reply_usage")
        return None
    return found.question
