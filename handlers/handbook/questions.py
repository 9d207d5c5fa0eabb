"""Questions the handbook could not answer: who is told (the permission core's tiers: tech team, else
village head, else commune officials), the staff's /cauhoi list and their /traloi answer."""

from __future__ import annotations

import re

from sqlmodel import col, func, or_, select

from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.context import Turn
from handlers.groups import this_group
from handlers.invitations import private_chats
from handlers.numbers import whole_number
from handlers.permissions import Spot, may_answer_question, question_answerers, question_places
from handlers.villages import village_of
from messages import render
from storage.models import Household, Person, Place, HandbookQuestion, QuestionStatus

LISTED = 20  # /cauhoi shows the oldest this many; the rest wait their turn
_LONG_DIGITS = re.compile(r"\d{6,}")


def shown_name(name: str) -> str:
    """A display name as staff and groups may read it: a name that carries a phone number or an account
    number is not shown at all."""
    return "" if _LONG_DIGITS.search(name) else name.strip()


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


async def open_questions(turn: Turn, _args: str) -> None:
    """/cauhoi: questions waiting for the places this person serves, oldest first, with who asked, from
    where and when."""
    places = await question_places(turn.session, await turn.actor())
    if not places:
        turn.say("handbook_staff_only")
        return
    waiting = (
        HandbookQuestion.status == QuestionStatus.OPEN,
        or_(col(HandbookQuestion.place_id).is_(None), col(HandbookQuestion.place_id).in_(places)),
    )
    rows = await turn.session.exec(
        select(HandbookQuestion, Person.display_name, Place.name)
        .join(Person, col(Person.id) == HandbookQuestion.person_id)
        .outerjoin(Place, col(Place.id) == HandbookQuestion.place_id)
        .where(*waiting)
        .order_by(col(HandbookQuestion.id))
        .limit(LISTED)
    )
    listed = [
        {"id": q.id, "text": q.text, "asker": shown_name(name), "place": place, "at": turn.local(q.created_at)}
        for q, name, place in rows.all()
    ]
    total = (await turn.session.exec(select(func.count()).select_from(HandbookQuestion).where(*waiting))).one()
    turn.say("handbook_open_questions", questions=listed, more=total - len(listed))


async def reply(turn: Turn, args: str) -> None:
    """/traloi N nội dung: the answer goes to the person who asked."""
    number, _, text = args.strip().partition(" ")
    question = await staff_question(turn, number)
    if question is None:
        return
    if not text.strip():
        turn.say("handbook_reply_usage")
        return
    question.answer, question.status = text.strip(), QuestionStatus.ANSWERED
    question.answered_by, question.answered_at = turn.person.id, turn.now
    turn.reply.messages.append(
        Outgoing(
            ChatRef(question.platform, question.chat_id),
            render("handbook_answer_from_team", question=question.text, answer=question.answer),
        )
    )
    turn.say("handbook_reply_sent", number=question.id)


async def staff_question(turn: Turn, number: str) -> HandbookQuestion | None:
    """The question numbered `number`, if this person may answer it; otherwise says why not."""
    question_id = whole_number(number)
    question = await turn.session.get(HandbookQuestion, question_id) if question_id is not None else None
    if question is None:
        turn.say("handbook_reply_usage")
        return None
    place = await turn.session.get(Place, question.place_id) if question.place_id else None
    if not may_answer_question(await turn.actor(), Spot.of(place) if place else None):
        turn.say("handbook_staff_only")
        return None
    return question
