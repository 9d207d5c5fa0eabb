"""A resident answers a survey in a private chat: consent, which household, then one question at a
time, a summary to confirm or correct. Everything is in the database after each message, so an answer
is never lost and a conversation picks up at the next unanswered question, a day or a restart later."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlmodel import col, select

from handlers import conversation
from handlers.chat import Button, ChatKind, Event
from handlers.choices import Choice, Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow, StepHandler
from handlers.handbook.normalize import plain
from handlers.numbers import whole_number
from handlers.people import place_by_code, villages_of
from handlers.surveys import engine
from handlers.surveys.definition import Question, QuestionType, Survey
from handlers.surveys.households import household_by_code, new_join_code, shown
from handlers.surveys.limits import limits
from handlers.villages import join_if_none
from messages import label
from storage.db import insert_if_absent
from storage.models import Campaign, Household, Place, ResponseStatus, SurveyResponse

LINK_PREFIX = "ks"  # /start ks<campaign id>: the invitation's deep link
PICK_PREFIX = "+"  # a select_multiple button: adds or removes one choice until "done"
DONE = "+done"
MAX_LISTED = 10


# --- which campaign -----------------------------------------------------------------------------------


async def open_campaigns(turn: Turn, place_code: str = "") -> list[tuple[Campaign, Place]]:
    """The campaigns a resident may mean: the village named, else their household's, else all open."""
    query = (
        select(Campaign, Place)
        .join(Place)
        .where(col(Campaign.closed_at).is_(None))
        .order_by(col(Campaign.opened_at).desc(), col(Campaign.id).desc())  # newest first, then by id
    )
    place = await place_by_code(turn.session, place_code) if place_code else None
    if place is not None:
        villages = await villages_of(turn.session, place)
        query = query.where(col(Place.id).in_([place.id, *(v.id for v in villages)]))
    elif turn.person.household_id is not None:
        household = await turn.session.get(Household, turn.person.household_id)
        mine = await turn.session.exec(query.where(Campaign.place_id == household.place_id)) if household else None
        found = list(mine.all()) if mine else []
        if found:
            return found
    rows = await turn.session.exec(query)
    return list(rows.all())


def _campaign_menu(turn: Turn, found: list[tuple[Campaign, Place]]) -> Menu:
    return menu(**{f"c{c.id}": f"{turn.surveys.title(c.survey_code)} — {p.name}" for c, p in found[:MAX_LISTED]})


async def choose(turn: Turn, place_code: str = "") -> None:
    """/khaosat for a resident (or "trả lời cho hộ của tôi" from the staff menu)."""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("survey_private_only")
        return
    await turn.surveys.refresh(turn.session)
    found = await open_campaigns(turn, place_code)
    if not found:
        turn.say("survey_none_open", code=place_code)
        return
    if len(found) == 1:
        await begin(turn, found[0][0])
        return
    choices = _campaign_menu(turn, found)
    await conversation.move(turn, FLOW, "campaign", place_code=place_code)
    turn.say("survey_pick_campaign", buttons=choices.buttons, choices=choices.lines, more=len(found) > MAX_LISTED)


async def from_link(turn: Turn, payload: str) -> None:
    """/start ks<campaign id>: a resident followed the invitation's deep link."""
    number = whole_number(payload)
    campaign = await turn.session.get(Campaign, number) if number is not None else None
    if campaign is None or campaign.closed_at is not None:
        turn.say("survey_link_closed")
        return
    await turn.surveys.refresh(turn.session)
    await begin(turn, campaign)


async def begin(turn: Turn, campaign: Campaign) -> None:
    survey = turn.surveys.get(campaign.survey_code)
    if survey is None:
        turn.say("survey_gone")
        return
    household = await _household_in(turn, campaign)
    if household is not None:
        await _continue(turn, campaign, survey, household)
        return
    choices = menu("agree", "disagree")
    await conversation.move(turn, FLOW, "consent", campaign_id=campaign.id)
    turn.say("survey_consent", buttons=choices.buttons, title=survey.title, purpose=survey.purpose,
             choices=choices.lines)


async def _household_in(turn: Turn, campaign: Campaign) -> Household | None:
    """The person's household, when it is in the campaign's village (they consented when joining it)."""
    if turn.person.household_id is None:
        return None
    household = await turn.session.get(Household, turn.person.household_id)
    return household if household is not None and household.place_id == campaign.place_id else None


# --- the conversation -----------------------------------------------------------------------------------


async def _on_campaign(turn: Turn, data: Data) -> None:
    found = await open_campaigns(turn, data.get("place_code", ""))
    picked = _campaign_menu(turn, found).pick(turn.incoming.answer)
    campaign = next((c for c, _ in found if f"c{c.id}" == picked), None)
    if campaign is None:
        _campaign_menu(turn, found).ask_again(turn)
        return
    await begin(turn, campaign)


CampaignStep = Callable[[Turn, Campaign, Survey, Data], Awaitable[None]]
ResponseStep = Callable[[Turn, Survey, SurveyResponse, Data], Awaitable[None]]


def _in_campaign(step: CampaignStep) -> StepHandler:
    """A step of a campaign still open, whose survey file is still there."""

    async def handler(turn: Turn, data: Data) -> None:
        campaign = await turn.session.get(Campaign, data.get("campaign_id"))
        survey = turn.surveys.get(campaign.survey_code) if campaign else None
        if campaign is None or survey is None or campaign.closed_at is not None:
            await conversation.finish(turn)
            turn.say("survey_gone")
            return
        await step(turn, campaign, survey, data)

    return handler


def _in_response(step: ResponseStep) -> StepHandler:
    """A step of the household's answer set, locked for this turn."""

    async def in_household(turn: Turn, campaign: Campaign, survey: Survey, data: Data) -> None:
        household = await _household_in(turn, campaign)
        if household is None:  # the household was deleted (/xoadulieu by a member) meanwhile
            await conversation.finish(turn)
            turn.say("survey_household_gone")
            return
        await step(turn, survey, await locked_response(turn, campaign, household), data)

    return _in_campaign(in_household)


async def _on_consent(turn: Turn, _campaign: Campaign, _survey: Survey, _data: Data) -> None:
    choices = menu("agree", "disagree")
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
    elif picked == "disagree":
        await conversation.finish(turn)
        turn.say("survey_declined")
    else:
        await _ask_household(turn)


async def _ask_household(turn: Turn) -> None:
    choices = menu("new_household", "join_household")
    await conversation.move(turn, FLOW, "household")
    turn.say("survey_ask_household", buttons=choices.buttons, choices=choices.lines)


async def _on_household_kind(turn: Turn, _campaign: Campaign, _survey: Survey, _data: Data) -> None:
    choices = menu("new_household", "join_household")
    picked = choices.pick(turn.incoming.answer)
    if picked == "new_household":
        await conversation.move(turn, FLOW, "head_name")
        turn.say("survey_ask_head_name")
    elif picked == "join_household":
        await conversation.move(turn, FLOW, "join_code")
        turn.say("survey_ask_join_code")
    else:
        choices.ask_again(turn)


async def _on_head_name(turn: Turn, _campaign: Campaign, _survey: Survey, _data: Data) -> None:
    answer = turn.incoming.answer
    if engine.is_back(answer):
        await _ask_household(turn)
        return
    name = " ".join(answer.split())
    if not 2 <= len(name) <= 100 or turn.incoming.event is Event.BUTTON:
        turn.say("survey_ask_head_name", again=True)
        return
    await conversation.move(turn, FLOW, "hamlet", head_name=name)
    turn.say("survey_ask_hamlet")


async def _on_hamlet(turn: Turn, campaign: Campaign, survey: Survey, data: Data) -> None:
    answer = turn.incoming.answer
    if engine.is_back(answer):
        await conversation.move(turn, FLOW, "head_name")
        turn.say("survey_ask_head_name")
        return
    hamlet = "" if engine.is_skip(answer) else " ".join(answer.split())[:100]
    household = Household(place_id=campaign.place_id, head_name=data["head_name"], hamlet=hamlet,
                          join_code=await new_join_code(turn.session))
    turn.session.add(household)
    await turn.session.flush()
    turn.person.household_id = household.id
    turn.session.add(turn.person)
    turn.say("survey_household_created", head=household.head_name, code=shown(household.join_code),
             village=await _join_village(turn, household))
    await _continue(turn, campaign, survey, household)


async def _on_join_code(turn: Turn, campaign: Campaign, survey: Survey, _data: Data) -> None:
    answer = turn.incoming.answer
    if engine.is_back(answer):
        await _ask_household(turn)
        return
    household = await household_by_code(turn, answer, campaign.place_id)
    if household is None:  # a wrong code, or too many of them lately: one answer for both
        turn.say("survey_bad_join_code")
        return
    turn.person.household_id = household.id
    turn.session.add(turn.person)
    turn.say("survey_household_joined", head=household.head_name, hamlet=household.hamlet,
             village=await _join_village(turn, household))
    await _continue(turn, campaign, survey, household, greet=False)


async def _join_village(turn: Turn, household: Household) -> str | None:
    """A household's member belongs to its village, unless they chose a village themselves: the name of
    the village they just joined, if they did."""
    if not await join_if_none(turn.session, turn.person, household.place_id, at=turn.now):
        return None
    village = await turn.session.get(Place, household.place_id)
    return village.name if village else None


async def locked_response(turn: Turn, campaign: Campaign, household: Household) -> SurveyResponse:
    """The household's answer set, created if need be and locked for this turn: two members answering
    at once must not overwrite each other's answers, nor both create the set (PostgreSQL row lock;
    SQLite has one writer anyway)."""
    query = (
        select(SurveyResponse)
        .where(SurveyResponse.campaign_id == campaign.id, SurveyResponse.household_id == household.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    response = (await turn.session.exec(query)).first()
    if response is None:  # the household's first answer: one statement more, once
        await insert_if_absent(
            turn.session, SurveyResponse, campaign_id=campaign.id, household_id=household.id, answers={},
            status=ResponseStatus.IN_PROGRESS, updated_by=turn.person.id, started_at=turn.now, updated_at=turn.now,
        )
        response = (await turn.session.exec(query)).one()
    return response


async def _continue(
    turn: Turn, campaign: Campaign, survey: Survey, household: Household, *, greet: bool = True
) -> None:
    response = await locked_response(turn, campaign, household)
    await conversation.move(turn, FLOW, "question", campaign_id=campaign.id)
    if response.status == ResponseStatus.SUBMITTED:  # not "carry on": see, correct or leave them
        await _offer_submitted(turn, survey, response)
        return
    if greet and response.answers:
        turn.say("survey_welcome_back", count=len(engine.answered(survey, response.answers, _today(turn))))
    await _ask_next(turn, survey, response)


def _today(turn: Turn) -> str:
    return turn.local(turn.now).date().isoformat()


async def _ask_next(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    question = engine.next_question(survey, response.answers, _today(turn))
    if question is None:
        await _all_answered(turn, survey, response)
    else:
        await _ask(turn, survey, response, question)


async def _all_answered(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    """A sent answer set stays sent when corrected; one still being written goes to its summary."""
    if response.status == ResponseStatus.SUBMITTED:
        await _offer_submitted(turn, survey, response, saved=True)
    else:
        await _summary(turn, survey, response)


async def _ask(
    turn: Turn, survey: Survey, response: SurveyResponse, question: Question, *, editing: bool = False
) -> None:
    today = _today(turn)
    number, total = engine.number_of(survey, question)
    numbered = Menu(tuple(Choice(c.value, c.label) for c in question.choices))
    buttons = numbered.buttons
    if question.kind is QuestionType.SELECT_MULTIPLE:  # a button adds or removes its choice until "done"
        buttons = tuple(Button(b.label, f"{PICK_PREFIX}{b.data}") for b in buttons)
        buttons += (Button(label("done_choosing"), DONE),)
    previous = engine.display(question, response.answers[question.name]) if question.name in response.answers else None
    await conversation.move(turn, FLOW, "question", question=question.name, editing=editing, picked=[])
    turn.say(
        "survey_question",
        **_limit_values(survey, question, response.answers),
        buttons=buttons,
        notes=[n.label for n in engine.notes_before(survey, question, response.answers, today)],
        number=number,
        total=total,
        label=question.label,
        hint=question.hint,
        kind=question.kind.value,
        choices=numbered.lines,
        required=question.required,
        skip_in_hint=engine.SKIP in plain(question.hint),  # the form's hint already says "bỏ qua"
        previous=previous,
        first=number == 1,
    )


def _limit_values(survey: Survey, question: Question, answers: engine.Answers) -> dict[str, object]:
    """What survey_question says of the allowed range: each bound, and the question it comes from."""
    found = limits(question, answers)
    values: dict[str, object] = {}
    for side, bound in (("low", found.low), ("high", found.high)):
        values[side] = engine.number_text(bound.value) if bound else None
        source = survey.by_name.get(bound.source) if bound and bound.source else None
        values[f"{side}_from"] = engine.number_of(survey, source)[0] if source else None
    return values


async def _on_answer(turn: Turn, survey: Survey, response: SurveyResponse, data: Data) -> None:
    question = survey.by_name.get(data.get("question", ""))
    if question is None:  # the survey file changed under a running conversation
        await _ask_next(turn, survey, response)
        return
    answer = turn.incoming.answer
    if engine.is_back(answer):
        await _back(turn, survey, response, question)
        return
    if turn.incoming.event is Event.BUTTON and answer.startswith(PICK_PREFIX):
        if answer != DONE:
            await _toggle(turn, question, answer.removeprefix(PICK_PREFIX), data)
            return
        answer = ", ".join(str(n) for n in data.get("picked", [])) or "bỏ qua"
    today = _today(turn)
    value = engine.parse_answer(question, answer, response.answers, today)
    if isinstance(value, engine.Invalid):
        turn.say("survey_invalid", reason=value.reason, message=value.message, count=len(question.choices),
                 among=[(n, question.choices[n - 1].label) for n in value.among])
        await _ask(turn, survey, response, question, editing=bool(data.get("editing")))
        return
    response.answers = engine.prune(survey, {**response.answers, question.name: value}, today)
    response.updated_at, response.updated_by = turn.now, turn.person.id
    turn.session.add(response)
    if data.get("editing") and engine.next_question(survey, response.answers, today) is None:
        await _all_answered(turn, survey, response)
    else:
        await _ask_next(turn, survey, response)


async def _toggle(turn: Turn, question: Question, number: str, data: dict) -> None:
    picked = list(data.get("picked", []))
    n = whole_number(number)
    if n is not None and 1 <= n <= len(question.choices):
        picked = [p for p in picked if p != n] if n in picked else sorted([*picked, n])
        await conversation.move(turn, FLOW, "question", picked=picked)
    turn.toast("survey_picked", picked=[question.choices[n - 1].label for n in picked])


async def _back(turn: Turn, survey: Survey, response: SurveyResponse, question: Question) -> None:
    """"quay lại": the answered question just before this one, with its answer shown."""
    today = _today(turn)
    earlier = [q for _, q in engine.answered(survey, response.answers, today)]
    position = survey.questions.index(question)
    before = [q for q in earlier if survey.questions.index(q) < position]
    if not before:
        turn.say("survey_at_first")
        await _ask(turn, survey, response, question)
        return
    await _ask(turn, survey, response, before[-1])


def _summary_menu() -> Menu:
    return menu("submit", "correct")


async def _summary(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    choices = _summary_menu()
    await conversation.move(turn, FLOW, "summary")
    turn.say(
        "survey_summary",
        buttons=choices.buttons,
        title=survey.title,
        lines=summary_lines(survey, response, _today(turn)),
        submitted=response.status == ResponseStatus.SUBMITTED,
        choices=choices.lines,
    )


def summary_lines(survey: Survey, response: SurveyResponse, today: str) -> list[tuple[int, str, str]]:
    return [
        (number, q.label, engine.display(q, response.answers[q.name]) or label("skipped"))
        for number, q in engine.answered(survey, response.answers, today)
    ]


async def _on_summary(turn: Turn, survey: Survey, response: SurveyResponse, _data: Data) -> None:
    answer = turn.incoming.answer
    if engine.is_back(answer):
        answered = engine.answered(survey, response.answers, _today(turn))
        if answered:
            await _ask(turn, survey, response, answered[-1][1], editing=True)
            return
    picked = _summary_menu().pick(answer)
    if picked == "submit":
        response.status = ResponseStatus.SUBMITTED
        response.submitted_at = response.updated_at = turn.now
        turn.session.add(response)
        await conversation.finish(turn)
        household = await turn.session.get(Household, response.household_id)
        turn.say("survey_thanks", code=shown(household.join_code) if household else "")
    elif picked == "correct":
        await conversation.move(turn, FLOW, "correct")
        turn.say("survey_ask_which", total=len(engine.askable(survey)), lines=[])
    else:
        _summary_menu().ask_again(turn)


def _submitted_menu() -> Menu:
    return menu("view_answers", "correct", "enough")


async def _offer_submitted(turn: Turn, survey: Survey, response: SurveyResponse, *, saved: bool = False) -> None:
    """A household that has sent its answers: view them, correct one, or leave."""
    choices = _submitted_menu()
    await conversation.move(turn, FLOW, "submitted")
    corrected = response.submitted_at is not None and response.updated_at > response.submitted_at
    turn.say("survey_submitted_menu", buttons=choices.buttons, choices=choices.lines, title=survey.title, saved=saved,
             submitted_at=turn.local(response.submitted_at) if response.submitted_at else None,
             corrected_at=turn.local(response.updated_at) if corrected else None)


async def _on_submitted(turn: Turn, survey: Survey, response: SurveyResponse, _data: Data) -> None:
    choices = _submitted_menu()
    picked = choices.pick(turn.incoming.answer)
    if picked == "view_answers":
        turn.say("survey_summary", buttons=choices.buttons, title=survey.title, submitted=True,
                 lines=summary_lines(survey, response, _today(turn)), choices=choices.lines)
    elif picked == "correct":
        await conversation.move(turn, FLOW, "correct")
        turn.say("survey_ask_which", total=len(engine.askable(survey)),
                 lines=summary_lines(survey, response, _today(turn)))
    elif picked == "enough":
        await conversation.finish(turn)
        turn.say("survey_left_as_sent")
    else:
        choices.ask_again(turn)


async def _on_correct(turn: Turn, survey: Survey, response: SurveyResponse, _data: Data) -> None:
    answer = turn.incoming.answer
    if engine.is_back(answer):
        if response.status == ResponseStatus.SUBMITTED:
            await _offer_submitted(turn, survey, response)
        else:
            await _summary(turn, survey, response)
        return
    questions = engine.askable(survey)
    text = answer.strip().removeprefix("câu").removeprefix("Câu").strip(" .")
    number = whole_number(text)
    question = questions[number - 1] if number is not None and 1 <= number <= len(questions) else None
    if question is None or not engine.is_relevant(question, response.answers, _today(turn)):
        turn.say("survey_ask_which", total=len(questions), again=True, lines=[])
        return
    await _ask(turn, survey, response, question, editing=True)


async def _pause(turn: Turn, _data: Data) -> None:
    """/huy while answering: the answers so far are kept, and /khaosat goes on from there."""
    await conversation.finish(turn)
    turn.say("survey_paused")


FLOW = Flow(
    "survey",
    {
        "campaign": _on_campaign,
        "consent": _in_campaign(_on_consent),
        "household": _in_campaign(_on_household_kind),
        "head_name": _in_campaign(_on_head_name),
        "hamlet": _in_campaign(_on_hamlet),
        "join_code": _in_campaign(_on_join_code),
        "question": _in_response(_on_answer),
        "summary": _in_response(_on_summary),
        "correct": _in_response(_on_correct),
        "submitted": _in_response(_on_submitted),
    },
    on_cancel=_pause,
)
