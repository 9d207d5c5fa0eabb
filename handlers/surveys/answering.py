"""A resident answers a survey in a private chat: consent, which household, then one question at a
time, a summary to confirm or correct. Everything is in the database after each message, so an answer
is never lost and a conversation picks up at the next unanswered question, a day or a restart later."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import bindparam
from sqlmodel import col, select

from handlers import conversation
from handlers.chat import Attachment, Button, ChatKind, Event
from handlers.choices import Choice, Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow, StepHandler
from handlers.handbook.normalize import plain
from handlers.numbers import whole_number
from handlers.people import place_by_code, villages_of
from handlers.surveys import answer_files, engine, typed
from handlers.surveys import answers as answer_tree
from handlers.surveys.definition import MEDIA, Group, Item, Question, QuestionType, Repeat, Survey, flatten, translated
from handlers.surveys.households import household_by_code, leave_household, new_join_code, shown
from handlers.surveys.languages import chosen_language, keep_language
from handlers.surveys.limits import limits
from handlers.villages import join_if_none
from messages import label, render
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
    """A step of the household's answer set, locked for this turn. The set, its campaign and household
    come in one statement (three at every answer otherwise); when it finds none (no set yet, the campaign
    gone, the household gone or in another village), the checks one at a time say what to do."""

    async def in_household(turn: Turn, campaign: Campaign, survey: Survey, data: Data) -> None:
        household = await _household_in(turn, campaign)
        if household is None:  # the household was deleted (/xoadulieu by a member) meanwhile
            await conversation.finish(turn)
            turn.say("survey_household_gone")
            return
        await step(turn, survey, await locked_response(turn, campaign, household), data)

    checked = _in_campaign(in_household)

    async def handler(turn: Turn, data: Data) -> None:
        found = await _locked_set(turn, data.get("campaign_id"))
        survey = turn.surveys.get(found[1].survey_code) if found else None
        if found is None or survey is None or found[1].closed_at is not None:
            await checked(turn, data)
            return
        await step(turn, survey, found[0], data)

    return handler


# built once, with parameters: building it costs about as much CPU as running it (storage/inbox.py)
_LOCKED_SET = (
    select(SurveyResponse, Campaign, Household)
    .join(Campaign, col(Campaign.id) == col(SurveyResponse.campaign_id))
    .join(Household, col(Household.id) == col(SurveyResponse.household_id))
    .where(col(SurveyResponse.campaign_id) == bindparam("campaign_id"),
           col(SurveyResponse.household_id) == bindparam("household_id"),
           col(Household.place_id) == col(Campaign.place_id))
    .with_for_update(of=SurveyResponse)
    .execution_options(populate_existing=True)
)


async def _locked_set(turn: Turn, campaign_id: object) -> tuple[SurveyResponse, Campaign] | None:
    """The household's answer set in the campaign, locked as `locked_response` locks it, with the
    campaign; None when there is none, or the household is not in the campaign's village."""
    household_id = turn.person.household_id
    if household_id is None or not isinstance(campaign_id, int):
        return None
    params = {"campaign_id": campaign_id, "household_id": household_id}
    row = (await turn.session.exec(_LOCKED_SET, params=params)).first()
    return (row[0], row[1]) if row else None


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
    await _move_to(turn, household)
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
    await _move_to(turn, household)
    turn.say("survey_household_joined", head=household.head_name, hamlet=household.hamlet,
             village=await _join_village(turn, household))
    await _continue(turn, campaign, survey, household, greet=False)


async def _move_to(turn: Turn, household: Household) -> None:
    """The person is now in `household`; one in a household of another village leaves that one first."""
    if turn.person.household_id not in (None, household.id):
        await leave_household(turn.session, turn.person)
    turn.person.household_id = household.id
    turn.session.add(turn.person)


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
    if not _sent_in_full(turn, survey, response):
        several = len(survey.languages) > 1
        kept = _language(turn, response) if several else ""
        answered = len(engine.answered_slots(survey, response.answers, _today(turn))) if greet else 0
        if answered:
            turn.say("survey_welcome_back", count=answered, language=_language_name(kept) if kept in survey.languages else "")
        if several and kept not in survey.languages:  # asked once (again if the form changed), before the first question
            await _ask_language(turn, survey, None)
            return
    await _resume(turn, survey, response)


def _sent_in_full(turn: Turn, survey: Survey, response: SurveyResponse) -> bool:
    """A sent set is not carried on (see, correct or leave it) unless a question lost its answer (a file
    that could not be fetched): that one is asked, then the sent set's menu comes back."""
    return response.status == ResponseStatus.SUBMITTED and engine.next_slot(survey, response.answers, _today(turn)) is None


async def _resume(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    """Where the household's set stands: its next unanswered question, else its summary or its sent menu."""
    if _sent_in_full(turn, survey, response):
        await _offer_submitted(turn, survey, response)
    else:
        await _ask_next(turn, survey, response)


def _today(turn: Turn) -> str:
    return turn.local(turn.now).date().isoformat()


def _language(turn: Turn, response: SurveyResponse) -> str:
    # a conversation begun before the choice was kept with the answers still holds it
    kept = turn.conversation.data.get("language", "") if turn.conversation else ""
    return chosen_language(response, turn.person.id) or str(kept)


def _keep_language(turn: Turn, response: SurveyResponse, language: str) -> None:
    keep_language(response, turn.person.id, language)
    turn.session.add(response)


async def _ask_next(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    slot = engine.next_slot(survey, response.answers, _today(turn))
    if slot is None:
        await _all_answered(turn, survey, response)
    else:
        await _ask(turn, survey, response, slot)


async def _all_answered(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    """A sent answer set stays sent when corrected; one still being written goes to its summary."""
    if response.status == ResponseStatus.SUBMITTED:
        await _offer_submitted(turn, survey, response, saved=True)
    else:
        await _summary(turn, survey, response)


# --- the language of the form's texts -----------------------------------------------------------------

_LANGUAGE_CODE = re.compile(r"\s*\(([^()]*)\)\s*$")


def _language_name(name: str) -> str:
    """A form's language as a resident reads it: "Vietnamese (vi)" is Tiếng Việt, "Tày (tay)" is Tày, the
    plain `label` column is the form's own language."""
    found = _LANGUAGE_CODE.search(name)
    bare = (name[: found.start()] if found else name).strip()
    if plain(bare) in ("vietnamese", "tieng viet", "vi") or (found and plain(found.group(1)) == "vi"):
        return label("language_vietnamese")
    if bare == "default":  # pyxform's name for the label column without a language
        return label("language_default")
    return bare or name


def _language_menu(survey: Survey) -> Menu:
    return Menu(tuple(Choice(name, _language_name(name)) for name in survey.languages))


def _wants_language(survey: Survey, answer: str) -> bool:
    """"đổi ngôn ngữ", typed at a question, the summary or a sent set's menu."""
    return len(survey.languages) > 1 and plain(answer) == plain(label("change_language"))


async def _ask_language(turn: Turn, survey: Survey, slot: engine.Slot | None) -> None:
    """Which language; then `slot` again, or (None: at the start or a menu) where the set stands."""
    choices = _language_menu(survey)
    await conversation.move(turn, FLOW, "language", **_slot_data(slot))
    turn.say("survey_ask_language", buttons=choices.buttons, choices=choices.lines, title=survey.title)


async def _on_language(turn: Turn, survey: Survey, response: SurveyResponse, data: Data) -> None:
    choices = _language_menu(survey)
    picked = _pick(choices, turn.incoming.answer) if len(survey.languages) > 1 else ""  # the form changed: one left
    if picked is None:
        choices.ask_again(turn)
        return
    _keep_language(turn, response, picked)
    slot = _slot_in(survey, data)
    if slot is None:
        await _resume(turn, survey, response)
    else:
        await _ask(turn, survey, response, slot, editing=bool(data.get("editing")))


def _pick(choices: Menu, answer: str) -> str | None:
    """A menu's item by number or label, the label also typed without diacritics ("khong")."""
    typed = plain(answer)
    return choices.pick(answer) or next((c.key for c in choices.choices if plain(c.label) == typed), None)


# --- one question ---------------------------------------------------------------------------------------


def _slot_data(slot: engine.Slot | None) -> Data:
    """The slot as the conversation keeps it: a restart asks the same question of the same member."""
    if slot is None:
        return {"question": "", "at": [], "repeat": ""}
    if slot.question is None:
        return {"question": "", "at": list(slot.at), "repeat": slot.repeat.name if slot.repeat else ""}
    return {"question": slot.question.name, "at": list(slot.at), "repeat": ""}


def _slot_in(survey: Survey, data: Data) -> engine.Slot | None:
    """The slot the conversation is at; None when the form changed under it."""
    at = tuple(int(i) for i in data.get("at", []))
    repeat = survey.repeats.get(data.get("repeat") or "")
    if repeat is not None:
        return engine.Slot(None, at, repeat) if len(at) == len(repeat.scope) else None
    question = survey.by_name.get(data.get("question") or "")
    return engine.Slot(question, at) if question is not None and len(at) == len(question.scope) else None


def _group_of(items: tuple[Item, ...], question: Question) -> Group | None:
    """The innermost group with a label that holds `question`."""
    for item in items:
        if isinstance(item, Question):
            continue
        inner = _group_of(item.children, question)
        if inner is not None:
            return inner
        if isinstance(item, Group) and item.label and question in flatten(item.children):
            return item
    return None


def _entered_group(turn: Turn, survey: Survey, slot: engine.Slot, language: str) -> tuple[str, str]:
    """The heading to show when the resident enters a group (its key kept in the conversation), or ""."""
    group = _group_of(survey.items, slot.question) if slot.question is not None else None
    if group is None:
        return "", ""
    key = f"{group.name}@{list(slot.at)}"
    shown_before = turn.conversation is not None and turn.conversation.data.get("group") == key
    return key, "" if shown_before else translated(group.label, group.labels, language)


def _scope_view(answers: engine.Answers, question: Question, at: engine.At) -> dict[str, object]:
    """The answers a question in a repeat instance sees by name: the household's, then each enclosing
    instance's (the number limits read `${hh_size}` or a member's own answers)."""
    view = dict(answers)
    for depth in range(1, len(question.scope) + 1):
        view.update(answer_tree.box_at(answers, question.scope[:depth], at[:depth]) or {})
    return view


async def _ask(
    turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, *, editing: bool = False
) -> None:
    if slot.question is None:
        await _ask_more(turn, survey, response, slot, editing=editing)
        return
    question, answers = slot.question, response.answers
    today, language = _today(turn), _language(turn, response)
    options = engine.choices_of(survey, slot, answers, today, language)
    numbered = Menu(tuple(Choice(o.value, translated(o.label, o.labels, language)) for o in options))
    buttons = numbered.buttons if question.kind in (QuestionType.SELECT_ONE, QuestionType.SELECT_MULTIPLE) else ()
    if question.kind is QuestionType.SELECT_MULTIPLE:  # a button adds or removes its choice until "done"
        buttons = tuple(Button(b.label, f"{PICK_PREFIX}{b.data}") for b in buttons)
        buttons += (Button(label("done_choosing"), DONE),)
    if question.kind is QuestionType.ACKNOWLEDGE:  # the button sends what typing "ok" does
        buttons = (Button(label("acknowledge_ok"), "ok"),)
    stored = engine.value_at(answers, question, slot.at)
    previous = None if stored is engine.MISSING else _shown(question, stored, language)
    default = _default_value(survey, slot, answers, today) if stored is engine.MISSING else None
    slots = engine.numbered_slots(survey, answers, today)  # as the summary numbers them
    group_key, group = _entered_group(turn, survey, slot, language)
    await conversation.move(turn, FLOW, "question", **_slot_data(slot), editing=editing, picked=[], points=[],
                            group=group_key)
    hint = engine.hint_of(survey, slot, answers, today, language)
    turn.say(
        "survey_question",
        **_limit_values(survey, question, _scope_view(answers, question, slot.at), slots, slot.at),
        buttons=buttons,
        notes=engine.notes_before(survey, slot, answers, today, language),
        instances=engine.instance_labels(survey, slot, answers, today, language),
        group=group,
        number=engine.number_of(slots, slot),
        total=len(slots),
        label=engine.label_of(survey, slot, answers, today, language),
        hint=hint,
        kind=question.kind.value,
        choices=numbered.lines,
        required=question.required,
        skip_in_hint=engine.SKIP in plain(hint),  # the form's hint already says "bỏ qua"
        previous=previous,
        default=None if default is None else engine.display(question, default, language),
        parameters=dict(question.parameters),
        platform=turn.incoming.platform,
        languages=len(survey.languages) > 1,
        first=engine.previous_slot(survey, answers, slot, today) is None,
    )


def _shown(question: Question, value: object, language: str) -> str | None:
    """An answer as the resident reads it back; a file as what was sent ("📷 đã gửi ảnh"); None: skipped."""
    if isinstance(value, Mapping) and question.kind in MEDIA:
        return label(f"sent_{question.kind.value}")
    if isinstance(value, str) and question.kind in (QuestionType.GEOTRACE, QuestionType.GEOSHAPE):
        points = value.split(";")  # a shape repeats its first point at the end: not one more to count
        return render("survey_points_shown", count=len(points) - (question.kind is QuestionType.GEOSHAPE))
    return engine.display(question, value, language)


def _default_value(survey: Survey, slot: engine.Slot, answers: engine.Answers, today: str) -> object:
    """The form's `default` as this question's value ("ok" keeps it), None when it has none that parses."""
    text = engine.default_of(survey, slot, answers, today)  # the form's own value: never in another language
    if not text or slot.question is None:
        return None
    value = engine.parse_answer(survey, slot, text, answers, today)
    return None if isinstance(value, engine.Invalid) else value


def _limit_values(
    survey: Survey, question: Question, view: engine.Answers, numbered: engine.Numbered, at: engine.At
) -> dict[str, object]:
    """What survey_question says of the allowed range: each bound, and the number of the question it is the
    answer to (in the same member's instance), if that one was asked."""
    found = limits(question, view)
    values: dict[str, object] = {}
    for side, bound in (("low", found.low), ("high", found.high)):
        values[side] = engine.number_text(bound.value) if bound else None
        source = survey.by_name.get(bound.source) if bound and bound.source else None
        values[f"{side}_from"] = engine.number_of(numbered, engine.Slot(source, at[: len(source.scope)])) if source else None
    return values


async def _on_answer(turn: Turn, survey: Survey, response: SurveyResponse, data: Data) -> None:
    slot = _slot_in(survey, data)
    if slot is None:  # the survey file changed under a running conversation
        await _ask_next(turn, survey, response)
        return
    answer = turn.incoming.answer
    if engine.is_back(answer):
        await _back(turn, survey, response, slot)
        return
    if _wants_language(survey, answer):
        await _ask_language(turn, survey, slot)
        return
    if slot.question is None:
        await _on_more(turn, survey, response, slot, data)
        return
    if slot.question.kind in (QuestionType.GEOTRACE, QuestionType.GEOSHAPE) and not engine.is_skip(answer):
        await _on_point(turn, survey, response, slot, data)
        return
    if turn.incoming.event is Event.BUTTON and answer.startswith(PICK_PREFIX):
        if answer != DONE:
            await _toggle(turn, survey, response, slot, answer.removeprefix(PICK_PREFIX), data)
            return
        answer = ", ".join(str(n) for n in data.get("picked", [])) or "bỏ qua"
    value = _value_sent(turn, survey, response, slot, answer)
    if isinstance(value, engine.Invalid):
        _explain(turn, survey, response, slot, value)
        await _ask(turn, survey, response, slot, editing=bool(data.get("editing")))
        return
    await _keep(turn, survey, response, slot, value, data)


def _value_sent(turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, answer: str) -> object:
    """What the message answers: a file for a media question, a shared location for a geopoint, else the
    typed text through the engine (type, then constraint in the member's instance)."""
    question, incoming, today = slot.question, turn.incoming, _today(turn)
    assert question is not None
    if question.kind in MEDIA and incoming.attachment is not None:
        return _file_answer(question, incoming.attachment)
    if question.kind is QuestionType.GEOPOINT and incoming.location is not None:
        place = incoming.location
        return typed.geopoint_of(place.latitude, place.longitude, place.accuracy)
    if (question.kind in MEDIA or incoming.attachment or incoming.location) and not engine.is_skip(answer):
        return engine.Invalid(_WANTED.get(question.kind, question.kind.value))  # a photo for a number, a word for a photo
    if plain(answer) == "ok" and question.kind is not QuestionType.ACKNOWLEDGE:
        default = _default_value(survey, slot, response.answers, today)
        if default is not None and engine.value_at(response.answers, question, slot.at) is engine.MISSING:
            return default
    return engine.parse_answer(survey, slot, answer, response.answers, today)


def _file_answer(question: Question, attachment: Attachment) -> object:
    """The media answer's value, when the file is of the kind asked (a photo sent as a file counts)."""
    if attachment.size > answer_files.limit_of(attachment.kind):
        return engine.Invalid("too_big")
    wanted = _FILE_KINDS.get(question.kind)
    mime = attachment.mime.split("/")[0]
    if wanted is not None and attachment.kind not in wanted and not (attachment.kind == "document" and mime in wanted):
        return engine.Invalid(question.kind.value)
    return answer_files.answer_of(attachment)


# what survey_invalid says when a file or a location comes for a question answered otherwise
_WANTED = {QuestionType.SELECT_ONE: "choice", QuestionType.SELECT_MULTIPLE: "choices", QuestionType.TEXT: "typed",
           QuestionType.BARCODE: "barcode"}

# the attachment kinds (and, for a file sent as a document, the MIME type's first part) each media
# question takes; a FILE question takes anything
_FILE_KINDS = {
    QuestionType.IMAGE: frozenset({"photo", "image"}),
    QuestionType.AUDIO: frozenset({"voice", "audio"}),
    QuestionType.VIDEO: frozenset({"video"}),
}


def _explain(turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, invalid: engine.Invalid) -> None:
    language = _language(turn, response)
    options = engine.choices_of(survey, slot, response.answers, _today(turn), language)
    question = slot.question
    bounds = dict(question.parameters) if question is not None else {}  # a range's, pyxform's defaults else
    turn.say("survey_invalid", reason=invalid.reason, message=invalid.message, count=len(options),
             among=[(n, translated(options[n - 1].label, options[n - 1].labels, language)) for n in invalid.among],
             platform=turn.incoming.platform, start=bounds.get("start", "1"), end=bounds.get("end", "10"),
             step=bounds.get("step", "1"))


async def _keep(
    turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, value: object, data: Data
) -> None:
    """The answer stored (calculations and metadata recomputed, answers it made irrelevant dropped), then
    the next question; a correction of a finished set goes back to the summary."""
    assert slot.question is not None
    today = _today(turn)
    await _change(turn, response, engine.record(
        survey, response.answers, slot, value, today,
        **_who(turn),
    ))
    if slot.question.kind in MEDIA and value is not None and turn.incoming.attachment is not None:
        assert response.id is not None
        assert turn.person.id is not None
        await answer_files.remember_file(turn.session, response.id, slot.question.name, slot.at, turn.incoming.attachment,
                                         turn.person.id)
    await _go_on(turn, survey, response, data)


def _who(turn: Turn) -> dict[str, str]:
    """What the form's metadata (end, username, deviceid) records of this answer."""
    return {"now": turn.local(turn.now).strftime("%Y-%m-%dT%H:%M:%S"),
            "person": turn.incoming.user_name or turn.person.display_name, "device": f"langso:{turn.incoming.platform}"}


async def _change(turn: Turn, response: SurveyResponse, answers: dict[str, object]) -> None:
    """The answers as the turn changed them; a file they no longer hold (sent again, skipped, pruned)
    is deleted with the change."""
    before, response.answers = response.answers, answers
    response.updated_at, response.updated_by = turn.now, turn.person.id
    turn.session.add(response)
    assert response.id is not None
    await answer_files.forget_dropped(turn.session, response.id, before, answers)


async def _go_on(turn: Turn, survey: Survey, response: SurveyResponse, data: Data) -> None:
    if data.get("editing") and engine.next_slot(survey, response.answers, _today(turn)) is None:
        await _all_answered(turn, survey, response)
    else:
        await _ask_next(turn, survey, response)


async def _on_point(turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, data: Data) -> None:
    """geotrace / geoshape: one point (a shared location or typed coordinates) per message until "xong"."""
    assert slot.question is not None
    closed = slot.question.kind is QuestionType.GEOSHAPE
    points = list(data.get("points", []))
    incoming = turn.incoming
    if typed.is_done_word(incoming.answer):
        shape = typed.shape_of(points, closed=closed)
        if shape is None:
            _explain(turn, survey, response, slot, engine.Invalid(slot.question.kind.value))
            return
        await _keep(turn, survey, response, slot, shape, data)
        return
    place = incoming.location
    added = [typed.geopoint_of(place.latitude, place.longitude, place.accuracy)] if place else typed.parse_points(incoming.answer)
    if not added:
        _explain(turn, survey, response, slot, engine.Invalid(slot.question.kind.value))
        return
    points += added
    await conversation.move(turn, FLOW, "question", points=points)
    turn.say("survey_point_kept", count=len(points), needed=3 if closed else 2)


async def _toggle(
    turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, number: str, data: Data
) -> None:
    language = _language(turn, response)
    options = engine.choices_of(survey, slot, response.answers, _today(turn), language)
    picked = list(data.get("picked", []))
    n = whole_number(number)
    if n is not None and 1 <= n <= len(options):
        picked = [p for p in picked if p != n] if n in picked else sorted([*picked, n])
        await conversation.move(turn, FLOW, "question", picked=picked)
    turn.toast("survey_picked", picked=[translated(options[n - 1].label, options[n - 1].labels, language) for n in picked])


async def _back(turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot) -> None:
    """"quay lại": the answered slot just before this one, across members too, with its answer shown."""
    earlier = engine.previous_slot(survey, response.answers, slot, _today(turn))
    if earlier is None:
        turn.say("survey_at_first")
        await _ask(turn, survey, response, slot)
        return
    await _ask(turn, survey, response, earlier)


# --- "is there another one?" after each instance of an open repeat --------------------------------------


def _more_menu() -> Menu:
    return menu("yes", "no")


async def _ask_more(
    turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, *, editing: bool = False
) -> None:
    assert slot.repeat is not None
    language = _language(turn, response)
    choices = _more_menu()
    await conversation.move(turn, FLOW, "question", **_slot_data(slot), editing=editing, picked=[], points=[])
    turn.say("survey_more", buttons=choices.buttons, choices=choices.lines,
             repeat=slot.repeat.label_in(language) or slot.repeat.name,
             count=_instances_given(survey, response.answers, slot.repeat, slot.at),
             instances=engine.instance_labels(survey, slot, response.answers, _today(turn), language)[:-1])  # the enclosing ones


def _instances_given(survey: Survey, answers: engine.Answers, repeat: Repeat, at: engine.At) -> int:
    """How many instances the resident gave ("Đã có 2 vật nuôi"): one opened by "có" and still empty,
    which "quay lại" came back from, is not one of them."""
    listed = answer_tree.instances(answers, repeat, at)
    opened_empty = len(listed) >= 2 and not answer_tree.answered_in(survey, listed[-1])
    return max(len(listed) - opened_empty, 1)


async def _on_more(turn: Turn, survey: Survey, response: SurveyResponse, slot: engine.Slot, data: Data) -> None:
    picked = _pick(_more_menu(), turn.incoming.answer)
    if picked is None:
        _more_menu().ask_again(turn)
        return
    await _change(turn, response, engine.more(survey, response.answers, slot, picked == "yes", _today(turn), **_who(turn)))
    await _go_on(turn, survey, response, data)


# --- the summary, corrections, a sent answer set -----------------------------------------------------------


def _summary_menu() -> Menu:
    return menu("submit", "correct")


async def _summary(turn: Turn, survey: Survey, response: SurveyResponse) -> None:
    choices = _summary_menu()
    await conversation.move(turn, FLOW, "summary")
    turn.say(
        "survey_summary",
        buttons=choices.buttons,
        title=survey.title,
        lines=summary_lines(survey, response, _today(turn), _language(turn, response)),
        submitted=response.status == ResponseStatus.SUBMITTED,
        languages=len(survey.languages) > 1,
        choices=choices.lines,
    )


def summary_lines(survey: Survey, response: SurveyResponse, today: str, language: str = "") -> list[tuple[int, str, str]]:
    """(number, question, answer) for each answered slot, the member it is about in the question."""
    answers = response.answers
    lines: list[tuple[int, str, str]] = []
    for number, slot in engine.answered_slots(survey, answers, today):  # questions only, never "another one?"
        assert slot.question is not None
        asked = render("survey_slot_label", label=engine.label_of(survey, slot, answers, today, language),
                       instances=engine.instance_labels(survey, slot, answers, today, language))
        value = _shown(slot.question, engine.value_at(answers, slot.question, slot.at), language)
        lines.append((number, asked, value or label("skipped")))
    return lines


def _answered_slots(survey: Survey, response: SurveyResponse, today: str) -> dict[int, engine.Slot]:
    return dict(engine.answered_slots(survey, response.answers, today))


async def _on_summary(turn: Turn, survey: Survey, response: SurveyResponse, _data: Data) -> None:
    answer = turn.incoming.answer
    if _wants_language(survey, answer):
        await _ask_language(turn, survey, None)
        return
    if engine.is_back(answer):
        answered = engine.answered_slots(survey, response.answers, _today(turn))
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
        turn.say("survey_ask_which", total=_last_number(survey, response, _today(turn)), lines=[])
    else:
        _summary_menu().ask_again(turn)


def _last_number(survey: Survey, response: SurveyResponse, today: str) -> int:
    return max(_answered_slots(survey, response, today), default=0)


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
    if _wants_language(survey, turn.incoming.answer):
        await _ask_language(turn, survey, None)
        return
    choices = _submitted_menu()
    picked = choices.pick(turn.incoming.answer)
    today, language = _today(turn), _language(turn, response)
    if picked == "view_answers":
        turn.say("survey_summary", buttons=choices.buttons, title=survey.title, submitted=True,
                 lines=summary_lines(survey, response, today, language), choices=choices.lines,
                 languages=len(survey.languages) > 1)
    elif picked == "correct":
        await conversation.move(turn, FLOW, "correct")
        turn.say("survey_ask_which", total=_last_number(survey, response, today),
                 lines=summary_lines(survey, response, today, language))
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
    answered = _answered_slots(survey, response, _today(turn))
    text = answer.strip().removeprefix("câu").removeprefix("Câu").strip(" .")
    number = whole_number(text)
    slot = answered.get(number) if number is not None else None
    if slot is None:
        turn.say("survey_ask_which", total=max(answered, default=0), again=True, lines=[])
        return
    await _ask(turn, survey, response, slot, editing=True)


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
        "language": _in_response(_on_language),
        "question": _in_response(_on_answer),
        "summary": _in_response(_on_summary),
        "correct": _in_response(_on_correct),
        "submitted": _in_response(_on_submitted),
    },
    on_cancel=_pause,
)
