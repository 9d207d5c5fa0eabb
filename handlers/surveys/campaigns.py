"""Village heads open a survey for their village (/khaosat), follow its progress (/tiendo) and have the
bot remind the households that have not finished, once, at a set time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import conversation, vietnamese_time
from handlers.audience import active_groups, queue, release_time
from handlers.chat import ChatKind
from handlers.choices import Menu, menu
from handlers.context import HandlerSettings, Turn
from handlers.conversation import Data, Flow
from handlers.handbook import asking
from handlers.numbers import whole_number
from handlers.people import place_by_code, villages_of
from handlers.permissions import Actor, Spot, may_open_survey, villages_where
from handlers.surveys import answering, engine
from handlers.surveys.definition import Survey
from messages import render
from storage.models import (
    Announcement,
    AnnouncementStatus,
    Campaign,
    Household,
    Identity,
    Person,
    Place,
    Reminder,
    ReminderPlan,
    ResponseStatus,
    SurveyResponse,
)


async def start(turn: Turn, args: str) -> None:
    """/khaosat: staff choose between opening a survey and answering for their own household."""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("survey_private_only")
        return
    if args or not await _villages_managed(turn):
        await answering.choose(turn, args)
        return
    choices = _staff_menu()
    await conversation.move(turn, FLOW, "menu")
    turn.say("survey_staff_menu", buttons=choices.buttons, choices=choices.lines)


def _staff_menu() -> Menu:
    return menu("open_survey", "answer_survey", "enough")


def _with_way_out(items: dict[str, str]) -> Menu:
    """Items whose labels are data (surveys, villages), then "Thôi": every staff menu has a way out."""
    return Menu(menu(**items).choices + menu("enough").choices)


async def _leave(turn: Turn) -> None:
    """"Thôi" in any of these menus: nothing was started, nothing is kept."""
    await conversation.finish(turn)
    turn.say("survey_menu_left")


async def _villages_managed(turn: Turn) -> list[Place]:
    """The villages this person may open a survey in."""
    return await villages_where(turn.session, await turn.actor(), "open")


async def _on_menu(turn: Turn, _data: Data) -> None:
    picked = _staff_menu().pick(turn.incoming.answer)
    if picked == "answer_survey":
        await conversation.finish(turn)
        await answering.choose(turn)
    elif picked == "open_survey":
        await _ask_survey(turn)
    elif picked == "enough":
        await _leave(turn)
    else:
        _staff_menu().ask_again(turn)


# --- opening a campaign ---------------------------------------------------------------------------------


async def _survey_menu(turn: Turn) -> Menu:
    await turn.surveys.refresh(turn.session)
    return _with_way_out({f"s:{s.code}": s.title for s in turn.surveys.all()})


async def _ask_survey(turn: Turn) -> None:
    choices = await _survey_menu(turn)
    await conversation.move(turn, FLOW, "survey")
    turn.say("survey_pick", buttons=choices.buttons, choices=choices.lines)


async def _on_survey(turn: Turn, _data: Data) -> None:
    answer = turn.incoming.answer
    choices = await _survey_menu(turn)
    picked = choices.pick(answer)
    if picked is None:
        choices.ask_again(turn)
        return
    if picked == "enough":
        await _leave(turn)
        return
    code = picked.removeprefix("s:")
    villages = await _villages_managed(turn)
    if len(villages) == 1:
        await _on_village_chosen(turn, code, villages[0])
        return
    places = _village_menu(villages)
    await conversation.move(turn, FLOW, "village", survey=code)
    turn.say("survey_pick_village", buttons=places.buttons, choices=places.lines)


async def _on_village(turn: Turn, data: Data) -> None:
    answer = turn.incoming.answer
    villages = await _villages_managed(turn)
    places = _village_menu(villages)
    picked = places.pick(answer)
    if picked == "enough":
        await _leave(turn)
        return
    village = next((v for v in villages if f"p:{v.id}" == picked), None)
    if village is None:
        places.ask_again(turn)
        return
    await _on_village_chosen(turn, data["survey"], village)


def _village_menu(villages: list[Place]) -> Menu:
    return _with_way_out({f"p:{v.id}": v.name for v in villages})


async def campaign_of(session: AsyncSession, code: str, village: Place) -> Campaign | None:
    """One campaign per survey and village: opening a closed one again reopens it."""
    rows = await session.exec(select(Campaign).where(Campaign.survey_code == code, Campaign.place_id == village.id))
    return rows.first()


async def _on_village_chosen(turn: Turn, code: str, village: Place) -> None:
    earlier = await campaign_of(turn.session, code, village)
    if earlier is not None and earlier.closed_at is None:
        await conversation.finish(turn)
        turn.say("survey_already_open", village=village.name, since=turn.local(earlier.opened_at))
        return
    await conversation.move(turn, FLOW, "expected", survey=code, village_id=village.id)
    turn.say("survey_ask_expected", village=village.name)


EXPECTED_MAX = 100_000


def expected_count(text: str) -> int | None:
    """The households a head expects, as typed, if a village can have that many."""
    number = whole_number(text)
    return number if number is not None and 1 <= number <= EXPECTED_MAX else None


async def _on_expected(turn: Turn, data: Data) -> None:
    answer = turn.incoming.answer
    expected: int | None = None
    if not engine.is_skip(answer):
        expected = expected_count(answer)
        if expected is None:
            turn.say("survey_ask_expected", village="", again=True)
            return
    village = await turn.session.get(Place, data["village_id"])
    survey = turn.surveys.get(data["survey"])
    if village is None or survey is None:
        await conversation.finish(turn)
        turn.say("survey_gone")
        return
    opened = await open_campaign(turn.session, await turn.actor(), survey, village, expected, turn.now, turn.settings)
    await conversation.finish(turn)
    if opened.verdict is OpenVerdict.NOT_ALLOWED:  # the role was taken away meanwhile
        turn.say("survey_staff_only")
    elif opened.verdict is OpenVerdict.ALREADY_OPEN:
        turn.say("survey_already_open", village=village.name, since=turn.local(opened.campaign.opened_at))
    else:
        turn.outbox_changed = bool(opened.groups)
        turn.say("survey_opened", title=survey.title, village=village.name, code=village.code, groups=opened.groups,
                 notice=opened.notice_id)


class OpenVerdict(StrEnum):
    OPENED = "opened"
    ALREADY_OPEN = "already_open"
    NOT_ALLOWED = "not_allowed"


@dataclass(frozen=True)
class Opened:
    verdict: OpenVerdict
    campaign: Campaign
    groups: int = 0  # the village's groups the invitation was queued for
    notice_id: int | None = None


async def open_campaign(
    session: AsyncSession, actor: Actor, survey: Survey, village: Place, expected: int | None, now: datetime,
    settings: HandlerSettings,
) -> Opened:
    """Open (or reopen) `survey` in `village` and queue its invitation to the village's groups: /khaosat's
    last step and the web console's "Mở khảo sát". Refused where the person may not, and while it is open."""
    campaign = await campaign_of(session, survey.code, village) or Campaign(
        survey_code=survey.code, place_id=village.id, opened_by=actor.person_id
    )
    if not may_open_survey(actor, Spot.of(village)):
        return Opened(OpenVerdict.NOT_ALLOWED, campaign)
    if campaign.id is not None and campaign.closed_at is None:
        return Opened(OpenVerdict.ALREADY_OPEN, campaign)
    campaign.expected_households, campaign.opened_at, campaign.closed_at = expected, now, None
    session.add(campaign)
    await session.flush()
    author = await session.get(Person, actor.person_id)
    invitation = Announcement(
        author_id=actor.person_id,
        author_name=author.display_name if author else "",
        from_place=village.name,
        text=render("survey_invitation_body", title=survey.title, purpose=survey.purpose, code=village.code),
        status=AnnouncementStatus.QUEUED,
        target_place_id=village.id,
        campaign_id=campaign.id,
        send_at=now,
    )
    session.add(invitation)
    await session.flush()
    groups = await active_groups(session, [village])
    await queue(session, invitation, groups, release_time(invitation, now, settings))
    return Opened(OpenVerdict.OPENED, campaign, len(groups), invitation.id)


# --- progress and reminders ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    campaign: Campaign
    village: Place
    submitted: int
    in_progress: int
    registered: int  # households known in the village


async def staff_villages(session: AsyncSession, actor: Actor, rule: str, code: str = "") -> list[Place] | None:
    """Villages a survey rule ("follow", "export") lets this person see, narrowed to the place `code`
    names. None when `code` names a place they may not see."""
    villages = {p.id: p for p in await villages_where(session, actor, rule)}
    if code:
        place = await place_by_code(session, code)
        if place is None:
            return None
        wanted = {place.id} | {v.id for v in await villages_of(session, place)}
        if not wanted & villages.keys():
            return None
        villages = {i: v for i, v in villages.items() if i in wanted}
    return sorted(villages.values(), key=lambda v: (v.name, v.id))


async def progress(session: AsyncSession, villages: list[Place]) -> list[Progress]:
    """The open campaigns of these villages with their counts: three queries however many villages
    (the web console shows a whole commune)."""
    ids = [v.id for v in villages]
    by_id = {v.id: v for v in villages}
    campaigns = list((await session.exec(
        select(Campaign).where(col(Campaign.place_id).in_(ids), col(Campaign.closed_at).is_(None)).order_by(col(Campaign.id))
    )).all())
    counts = await session.exec(
        select(SurveyResponse.campaign_id, SurveyResponse.status, func.count())
        .where(col(SurveyResponse.campaign_id).in_([c.id for c in campaigns]))
        .group_by(col(SurveyResponse.campaign_id), col(SurveyResponse.status))
    )
    by_status = {(campaign_id, status): n for campaign_id, status, n in counts.all()}
    registered = dict((await session.exec(
        select(Household.place_id, func.count()).where(col(Household.place_id).in_(ids)).group_by(col(Household.place_id))
    )).all())
    return [
        Progress(c, by_id[c.place_id], by_status.get((c.id, ResponseStatus.SUBMITTED), 0),
                 by_status.get((c.id, ResponseStatus.IN_PROGRESS), 0), registered.get(c.place_id, 0))
        for c in campaigns
    ]


async def show_progress(turn: Turn, args: str) -> None:
    """/tiendo [MÃ]"""
    villages = await staff_villages(turn.session, await turn.actor(), "follow", args.strip())
    if not villages:
        turn.say("survey_staff_only")
        return
    found = await progress(turn.session, villages)
    if not found:
        turn.say("survey_no_campaign")
        return
    choices = _progress_menu(found, await turn.actor())
    await conversation.move(turn, FLOW, "progress")
    turn.say(
        "survey_progress",
        buttons=choices.buttons,
        rows=[(turn.surveys.title(p.campaign.survey_code), p.village.name, p.submitted, p.in_progress, p.registered,
               p.campaign.expected_households) for p in found],
        choices=choices.lines,
    )


def _progress_menu(found: list[Progress], actor: Actor) -> Menu:
    """For each campaign: remind its unfinished households, or close it (opening it again reopens it),
    where this person may."""
    items = {}
    for p in found:
        items[f"remind:{p.campaign.id}"] = render("survey_remind_item", village=p.village.name)
        if may_open_survey(actor, Spot.of(p.village)):
            items[f"close:{p.campaign.id}"] = render("survey_close_item", village=p.village.name)
    return _with_way_out(items)


async def _on_progress_choice(turn: Turn, _data: Data) -> None:
    answer = turn.incoming.answer
    actor = await turn.actor()
    villages = await staff_villages(turn.session, actor, "follow") or []
    found = await progress(turn.session, villages)
    picked = _progress_menu(found, actor).pick(answer)
    if picked is None:
        # the person moved on: whatever they wrote is handled as if no menu were open
        await conversation.finish(turn)
        await asking.ask(turn, answer) if answer else turn.say("not_understood")
        return
    if picked == "enough":
        await _leave(turn)
        return
    action, campaign_id = picked.split(":")
    if action == "remind":
        await conversation.move(turn, FLOW, "remind_time", campaign_id=int(campaign_id))
        turn.say("survey_ask_remind_time")
        return
    campaign = next(p for p in found if p.campaign.id == int(campaign_id))
    campaign.campaign.closed_at = turn.now
    turn.session.add(campaign.campaign)
    await conversation.finish(turn)
    turn.say("survey_closed", title=turn.surveys.title(campaign.campaign.survey_code), village=campaign.village.name,
             submitted=campaign.submitted)


async def _on_remind_time(turn: Turn, data: Data) -> None:
    answer = turn.incoming.answer
    campaign = await turn.session.get(Campaign, data.get("campaign_id"))
    if campaign is None or campaign.closed_at is not None:
        await conversation.finish(turn)
        turn.say("survey_gone")
        return
    if engine.is_back(answer):
        await conversation.finish(turn)
        await show_progress(turn, "")
        return
    try:
        moment = turn.now if vietnamese_time.is_now(answer) else vietnamese_time.parse(answer, turn.now, turn.settings.timezone)
    except vietnamese_time.InThePast:
        turn.say("time_in_past")
        return
    except vietnamese_time.NotUnderstood:
        turn.say("time_not_understood")
        return
    if isinstance(moment, vietnamese_time.Recurrence):  # "once, at a set time": a repeating reminder is not offered
        turn.say("survey_remind_once")
        return
    turn.session.add(ReminderPlan(campaign_id=campaign.id, created_by=turn.person.id, run_at=moment))
    turn.schedule_changed = True
    await conversation.finish(turn)
    village = await turn.session.get(Place, campaign.place_id)
    turn.say("survey_remind_planned", at=turn.local(moment), now=moment <= turn.now,
             village=village.name if village else "")


async def plan_reminders(session: AsyncSession, plan: ReminderPlan, now: datetime, settings: HandlerSettings) -> int:
    """Reminder rows for the households of the plan's village that have not submitted, except those
    already reminded today (any campaign): the (household, day) key makes that a rule of the database."""
    campaign = await session.get(Campaign, plan.campaign_id)
    plan.done_at = now
    session.add(plan)
    if campaign is None or campaign.closed_at is not None:
        return 0
    day = now.astimezone(settings.timezone).date()
    submitted = select(SurveyResponse.household_id).where(
        SurveyResponse.campaign_id == campaign.id, SurveyResponse.status == ResponseStatus.SUBMITTED
    )
    reminded = select(Reminder.household_id).where(Reminder.day == day)
    households = await session.exec(
        select(Household.id).where(
            Household.place_id == campaign.place_id,
            col(Household.id).not_in(submitted),
            col(Household.id).not_in(reminded),
        )
    )
    count = 0
    for household_id in households.all():
        target = await _reachable_member(session, campaign, household_id)
        if target is None:
            continue
        session.add(Reminder(campaign_id=campaign.id, household_id=household_id, day=day,
                             platform=target[0], chat_id=target[1]))
        count += 1
    plan.reminded = count
    return count


async def _reachable_member(session: AsyncSession, campaign: Campaign, household_id: int) -> tuple[str, str] | None:
    """The member who last answered for the household, else any member: their private chat."""
    response = await session.exec(
        select(SurveyResponse.updated_by).where(
            SurveyResponse.campaign_id == campaign.id, SurveyResponse.household_id == household_id
        )
    )
    last = response.first()
    rows = await session.exec(
        select(Identity.platform, Identity.user_id, Identity.person_id)
        .join(Person, col(Person.id) == Identity.person_id)
        .where(Person.household_id == household_id)
        .order_by(col(Identity.id))
    )
    members = list(rows.all())
    preferred = [m for m in members if m[2] == last] or members
    return (preferred[0][0], preferred[0][1]) if preferred else None


def reminder_text(title: str, village: str, place_code: str) -> str:
    return render("survey_reminder", title=title, village=village, code=place_code)


FLOW = Flow(
    "campaign",
    {
        "menu": _on_menu,
        "survey": _on_survey,
        "village": _on_village,
        "expected": _on_expected,
        "progress": _on_progress_choice,
        "remind_time": _on_remind_time,
    },
)
