"""Household join codes. Whoever types a household's code joins it, reads its answers and may delete
them, so a code is a credential: long, guessed only a few times an hour, never exported, never shown to
staff. A member who lost it asks another member (/cuatoi), or staff reset it (/doimaho): the new code
goes to the household's members only, and staff learn how many got it. A member who leaves takes what
was theirs alone in its answers with them (`leave_household`)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit, codes, conversation
from handlers.attempts import Limit, charge, locked_until, scopes
from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.choices import Menu, confirm_menu, confirmed, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.permissions import Spot, may_reset_household_code, villages_where
from handlers.surveys.languages import forget_language
from messages import render
from storage.models import Household, Identity, Person, Place, SurveyResponse

CODE_DIGITS = 9  # digits read out over the phone; ~10⁹ codes against 5 guesses an hour per person and chat
MAX_TYPED = 12  # longer is not a code (codes made before CODE_DIGITS are 6 digits)
GUESSES = Limit("household", failures=5, window=timedelta(hours=1), lockout=timedelta(hours=1))
MAX_BUTTONS = 10  # a longer list is answered by typing its number


# --- codes -----------------------------------------------------------------------------------------------


async def new_join_code(session: AsyncSession) -> str:
    while True:  # collisions are retried
        code = f"{secrets.randbelow(9 * 10 ** (CODE_DIGITS - 1)) + 10 ** (CODE_DIGITS - 1)}"
        taken = await session.exec(select(Household.id).where(Household.join_code == code))
        if taken.first() is None:
            return code


def shown(code: str) -> str:
    """"123 456 789"."""
    return codes.grouped(code, 3)


async def household_by_code(turn: Turn, text: str, place_id: int) -> Household | None:
    """The village's household with the code typed, unless this person or chat guessed too often lately.
    A locked-out guesser gets None even for the right code, so the answer teaches them nothing."""
    msg = turn.incoming
    keys = scopes(GUESSES, turn.person.id, msg.platform, msg.chat_id)
    if await locked_until(turn.session, keys, turn.now) is not None:
        return None
    code = codes.typed(text, MAX_TYPED)
    if code is None:  # not a code at all: nothing was guessed
        return None
    rows = await turn.session.exec(select(Household).where(Household.join_code == code, Household.place_id == place_id))
    household = rows.first()
    if household is None:
        await charge(turn.session, GUESSES, keys, turn.now)
    return household


# --- leaving --------------------------------------------------------------------------------------------


async def leave_household(session: AsyncSession, person: Person) -> None:
    """The person is in no household any more, and the household stays with its other members: the
    choice of language they made for the form's texts leaves its answers with them (a language such as
    Tày can hint at who they are); the other members' choices stay. Every way out of a household that
    stays comes here: undoing an account join (identity) and joining another household in a survey
    (answering); an erased household (my_data.erase) takes its answers with it."""
    household_id = person.household_id
    person.household_id = None
    session.add(person)
    if household_id is None:
        return
    rows = await session.exec(
        select(SurveyResponse).where(SurveyResponse.household_id == household_id)
        .order_by(col(SurveyResponse.id))
        .with_for_update()  # as a member answering locks it: their answer is not overwritten
        .execution_options(populate_existing=True)
    )
    for response in rows.all():
        if forget_language(response, person.id):
            session.add(response)


# --- /doimaho: staff reset a household's code --------------------------------------------------------------


async def _villages(turn: Turn) -> list[Place]:
    """The villages whose households' codes this person may reset, by name."""
    return await villages_where(turn.session, await turn.actor(), "reset_code")


def _village_menu(villages: list[Place]) -> Menu:
    return menu(**{f"v{v.id}": v.name for v in villages})


async def start(turn: Turn, _args: str) -> None:
    """/doimaho"""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("survey_private_data")
        return
    villages = await _villages(turn)
    if not villages:
        turn.say("household_code_not_allowed")
    elif len(villages) == 1:
        await _ask_household(turn, villages[0])
    else:
        choices = _village_menu(villages)
        await conversation.move(turn, FLOW, "village", villages=[v.id for v in villages])
        turn.say("survey_pick_village", buttons=choices.buttons, choices=choices.lines)


async def _ask_household(turn: Turn, village: Place) -> None:
    rows = await turn.session.exec(
        select(Household).where(Household.place_id == village.id).order_by(Household.head_name, col(Household.id))
    )
    households = list(rows.all())
    if not households:
        await conversation.finish(turn)
        turn.say("household_code_none", village=village.name)
        return
    # the numbers shown are kept as ids: a household added meanwhile does not shift them
    await conversation.move(turn, FLOW, "household", village_id=village.id, households=[h.id for h in households])
    choices = _household_menu(households)
    turn.say("household_code_pick", buttons=choices.buttons if len(households) <= MAX_BUTTONS else (),
             village=village.name, choices=choices.lines)


def _household_menu(households: Sequence[Household | None]) -> Menu:
    """Head and hamlet by number; a household deleted since the list was shown keeps its number."""
    return menu(**{
        f"h{n}": f"{h.head_name}{' — ' + h.hamlet if h.hamlet else ''}" if h else "…"
        for n, h in enumerate(households)
    })


async def _on_village(turn: Turn, data: Data) -> None:
    villages = [v for v in [await turn.session.get(Place, i) for i in data.get("villages", [])] if v]
    picked = _village_menu(villages).pick(turn.incoming.answer)
    village = next((v for v in villages if f"v{v.id}" == picked), None)
    if village is None:
        _village_menu(villages).ask_again(turn)
    else:
        await _ask_household(turn, village)


async def _on_household(turn: Turn, data: Data) -> None:
    ids = list(data.get("households", []))
    found = {h.id: h for h in (await turn.session.exec(select(Household).where(col(Household.id).in_(ids)))).all()}
    households = [found.get(i) for i in ids]
    choices = _household_menu(households)
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
        return
    household = households[int(picked.removeprefix("h"))]
    if household is None:
        await conversation.finish(turn)
        turn.say("household_code_gone")
        return
    village = await turn.session.get(Place, household.place_id)
    confirm = confirm_menu()
    await conversation.move(turn, FLOW, "confirm", household_id=household.id)
    turn.say("household_code_confirm", buttons=confirm.buttons, head=household.head_name, hamlet=household.hamlet,
             village=village.name if village else "", members=_people(await _accounts(turn.session, household)),
             choices=confirm.lines)


async def _on_confirm(turn: Turn, data: Data) -> None:
    answer = await confirmed(turn)
    if answer is None:
        return
    household = await turn.session.get(Household, data.get("household_id"))
    village = await turn.session.get(Place, household.place_id) if household else None
    if not answer:
        turn.say("household_code_kept")
    elif household is None or village is None:
        turn.say("household_code_gone")
    elif not may_reset_household_code(await turn.actor(), Spot.of(village)):  # the role went meanwhile
        turn.say("household_code_not_allowed")
    else:
        members = await reset_code(turn, household, village)
        turn.say("household_code_reset", members=members)


async def _accounts(session: AsyncSession, household: Household) -> list[tuple[int, str, str]]:
    """(person, platform, user id) of every account of every member, oldest account first."""
    rows = await session.exec(
        select(Identity.person_id, Identity.platform, Identity.user_id)
        .join(Person, col(Person.id) == Identity.person_id)
        .where(Person.household_id == household.id)
        .order_by(col(Identity.id))
    )
    return list(rows.all())


def _people(accounts: list[tuple[int, str, str]]) -> int:
    return len({person for person, _, _ in accounts})


async def reset_code(turn: Turn, household: Household, village: Place) -> int:
    """A new code for the household, sent to each member's private chats; returns how many members."""
    household.join_code = await new_join_code(turn.session)
    turn.session.add(household)
    text = render("household_code_new", head=household.head_name, village=village.name, code=shown(household.join_code))
    accounts = await _accounts(turn.session, household)
    for _person, platform, user_id in accounts:
        turn.reply.messages.append(Outgoing(ChatRef(platform, user_id), text))
    members = _people(accounts)
    await audit.record(turn.session, "household_code_reset", actor_id=turn.person.id, at=turn.now,
                       place_id=village.id, household_id=household.id, members=members)
    return members


FLOW = Flow("household_code", {"village": _on_village, "household": _on_household, "confirm": _on_confirm})
