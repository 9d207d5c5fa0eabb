"""/cuatoi: a resident sees their household's answers; /xoadulieu erases them, for real: every row that
holds or points back to what the household told the bot, and, if asked, the person's handbook questions."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import and_, delete, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit, conversation
from handlers.chat import ChatKind
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.followers import end_following
from handlers.surveys import answering
from handlers.surveys.answer_files import erase_files
from handlers.surveys.answering import summary_lines
from handlers.surveys.households import shown
from handlers.surveys.languages import chosen_language
from handlers.villages import leave_village
from storage.models import (
    Campaign,
    Conversation,
    HandbookEntry,
    HandbookQuestion,
    Household,
    Identity,
    InboxUpdate,
    Person,
    Place,
    Reminder,
    SurveyResponse,
)

ERASED = {"erased": True}  # what is left of an erased update: the row stays so a replay is still ignored


@dataclass(frozen=True)
class Erased:
    """How many rows of each kind went: the confirmation and the audit event say exactly this."""

    answers: int
    reminders: int
    messages: int
    questions: int
    files: int = 0  # photos, voice notes, files sent as answers (their stored bytes)


async def _household(turn: Turn) -> Household | None:
    if turn.person.household_id is None:
        return None
    return await turn.session.get(Household, turn.person.household_id)


async def _household_here(turn: Turn) -> Household | None:
    """The person's household, asked for in a private chat; otherwise says why there is none."""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("survey_private_data")
        return None
    household = await _household(turn)
    if household is None:
        turn.say("survey_mine_none")
    return household


async def show(turn: Turn, _args: str) -> None:
    household = await _household_here(turn)
    if household is None:
        return
    rows = await turn.session.exec(
        select(SurveyResponse, Campaign, Place)
        .join(Campaign, col(Campaign.id) == SurveyResponse.campaign_id)
        .join(Place, col(Place.id) == Campaign.place_id)
        .where(SurveyResponse.household_id == household.id)
        .order_by(col(SurveyResponse.id))
    )
    members = await turn.session.exec(select(Person.id).where(Person.household_id == household.id))
    today = turn.local(turn.now).date().isoformat()
    answers = []
    for response, campaign, place in rows.all():
        survey = turn.surveys.get(campaign.survey_code)
        if survey is not None:
            language = chosen_language(response, turn.person.id)
            answers.append((survey.title, place.name, response.status, summary_lines(survey, response, today, language)))
    turn.say("survey_mine", head=household.head_name, hamlet=household.hamlet, code=shown(household.join_code),
             members=len(members.all()), answers=answers)


def _delete_menu() -> Menu:
    return menu("delete_confirm", "keep", "delete_with_questions")


def _own_menu() -> Menu:
    return menu("delete_confirm", "keep")


async def ask_delete(turn: Turn, _args: str) -> None:
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("survey_private_data")
        return
    household = await _household(turn)
    if household is None:  # no survey answers, but what they wrote to the bot is still theirs to erase
        choices = _own_menu()
        await conversation.move(turn, FLOW, "delete_own")
        turn.say("mydata_delete_confirm", buttons=choices.buttons, choices=choices.lines)
        return
    choices = _delete_menu()
    await conversation.move(turn, FLOW, "delete", household_id=household.id)
    turn.say("survey_delete_confirm", buttons=choices.buttons, head=household.head_name, choices=choices.lines)


async def _picked(turn: Turn, choices: Menu) -> str | None:
    """The item picked, with the conversation over; None when the same question was asked again."""
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
    else:
        await conversation.finish(turn)
    return picked


async def _on_delete_own(turn: Turn, _data: Data) -> None:
    picked = await _picked(turn, _own_menu())
    if picked is not None:
        await _erase_own(turn, picked == "delete_confirm")


async def _on_delete(turn: Turn, data: Data) -> None:
    picked = await _picked(turn, _delete_menu())
    if picked is None:
        return
    household = await _household(turn)
    if picked == "keep" or household is None or household.id != data.get("household_id"):
        turn.say("survey_delete_kept")
        return
    place_id = household.place_id
    gone = await erase(turn.session, household, turn.person, questions=picked == "delete_with_questions")
    await audit.record(turn.session, "household_erased", actor_id=turn.person.id, at=turn.now, place_id=place_id,
                       **asdict(gone))
    turn.say("survey_deleted", **asdict(gone))


async def erase(session: AsyncSession, household: Household, person: Person, *, questions: bool) -> Erased:
    """Delete the household's answers, reminders, survey conversations and the household itself, and
    blank every update its members sent (and the replies kept with them); with `questions`, the
    person's handbook questions go too. Members stay people of the bot, in no household."""
    members = list((await session.exec(select(Person.id).where(Person.household_id == household.id))).all())
    accounts = (await session.exec(select(Identity.platform, Identity.user_id).where(col(Identity.person_id).in_(members)))).all()
    assert household.id is not None
    files = await erase_files(session, household.id)
    answers = await session.exec(delete(SurveyResponse).where(col(SurveyResponse.household_id) == household.id))
    reminders = await session.exec(delete(Reminder).where(col(Reminder.household_id) == household.id))
    if accounts:  # where they are in the survey holds what they typed last (a head's name, an answer)
        await session.exec(delete(Conversation).where(
            col(Conversation.flow) == answering.FLOW.name,
            or_(*(and_(col(Conversation.platform) == p, col(Conversation.user_id) == u) for p, u in accounts)),
        ))
    # the updates lose their person too: a later erasure does not count them again
    messages = await session.exec(
        update(InboxUpdate).where(col(InboxUpdate.person_id).in_(members))
        .values(payload=ERASED, replies=None, reply_pending=False, person_id=None)
    )
    asked = await _erase_questions(session, person) if questions else 0
    await end_following(session, person)  # no more private notices: they asked to be forgotten
    await session.exec(update(Person).where(col(Person.household_id) == household.id).values(household_id=None))
    await session.delete(household)
    person.household_id = None
    return Erased(answers.rowcount, reminders.rowcount, messages.rowcount, asked, files)


async def _erase_own(turn: Turn, confirmed: bool) -> None:
    """Someone in no household: their messages to the bot are blanked, their handbook questions and
    their village membership go."""
    if not confirmed:
        turn.say("survey_delete_kept")
        return
    person = turn.person
    messages = await turn.session.exec(
        update(InboxUpdate).where(col(InboxUpdate.person_id) == person.id)
        .values(payload=ERASED, replies=None, reply_pending=False, person_id=None)
    )
    gone = Erased(0, 0, messages.rowcount, await _erase_questions(turn.session, person))
    left = await leave_village(turn.session, person)
    await audit.record(turn.session, "person_erased", actor_id=person.id, at=turn.now, **asdict(gone))
    turn.say("mydata_deleted", messages=gone.messages, questions=gone.questions, village=left.name if left else None)


async def _erase_questions(session: AsyncSession, person: Person) -> int:
    """The person's handbook questions, with the tech team's answers to them. A handbook entry made
    from one stays in the handbook (the team wrote it), no longer pointing back to the question."""
    mine = select(HandbookQuestion.id).where(HandbookQuestion.person_id == person.id)
    await session.exec(update(HandbookEntry).where(col(HandbookEntry.question_id).in_(mine)).values(question_id=None))
    return (await session.exec(delete(HandbookQuestion).where(col(HandbookQuestion.person_id) == person.id))).rowcount


FLOW = Flow("mydata", {"delete_own": _on_delete_own, "delete": _on_delete})
