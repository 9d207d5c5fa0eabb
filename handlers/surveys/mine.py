"""/cuatoi: a resident sees their household's answers; /xoadulieu deletes them, for real."""

from __future__ import annotations

from sqlalchemy import delete, update
from sqlmodel import col, select

from handlers import conversation
from handlers.chat import ChatKind
from handlers.choices import menu
from handlers.context import Turn
from handlers.surveys.answering import summary_lines
from storage.models import Campaign, Household, Person, Place, Reminder, SurveyResponse

FLOW = "mydata"


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
            answers.append((survey.title, place.name, response.status, summary_lines(survey, response, today)))
    turn.say("survey_mine", head=household.head_name, hamlet=household.hamlet, code=household.join_code,
             members=len(members.all()), answers=answers)


async def ask_delete(turn: Turn, _args: str) -> None:
    household = await _household_here(turn)
    if household is None:
        return
    choices = menu("delete_confirm", "keep")
    await conversation.move(turn, FLOW, "delete", household_id=household.id)
    turn.say("survey_delete_confirm", buttons=choices.buttons, head=household.head_name, choices=choices.lines)


async def resume(turn: Turn, step: str, data: dict) -> None:
    choices = menu("delete_confirm", "keep")
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
        return
    await conversation.finish(turn)
    household = await _household(turn)
    if picked == "keep" or household is None or household.id != data.get("household_id"):
        turn.say("survey_delete_kept")
        return
    # the rows go, not a flag on them: answers, reminders, the household; members are simply unlinked
    session = turn.session
    answers = await session.exec(delete(SurveyResponse).where(col(SurveyResponse.household_id) == household.id))
    await session.exec(delete(Reminder).where(col(Reminder.household_id) == household.id))
    await session.exec(update(Person).where(col(Person.household_id) == household.id).values(household_id=None))
    await session.delete(household)
    turn.person.household_id = None
    turn.say("survey_deleted", surveys=answers.rowcount)
