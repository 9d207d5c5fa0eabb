"""/thuhoi: taking a role back. Whoever may hand out a role on a place may take it back (the permission
core's `may_remove_role`), after a confirmation; the person is told in their private chats. A commune
never loses its last official, not even by their own hand.

`removable_roles`, `remove_role` and `tell_holder` are plain operations (session, actor, arguments) for the web
console too."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit, conversation
from handlers.chat import ChatKind, Outgoing
from handlers.choices import Menu, confirm_menu, confirmed, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.invitations import private_chats, role_label
from handlers.permissions import Actor, Spot, invite_places, may_invite, may_remove_role, officials_after_removal
from handlers.web_login import end_sessions
from messages import render
from storage.models import Person, Place, Role, RoleName

_ROLE_ORDER = {role.value: n for n, role in enumerate(RoleName)}


class Verdict(StrEnum):
    REMOVED = "removed"
    GONE = "gone"  # no such role any more
    NOT_ALLOWED = "not_allowed"
    LAST_OFFICIAL = "last_official"  # allowed, but the commune would be left without an official


@dataclass(frozen=True)
class Held:
    """One role someone holds, as /thuhoi lists it."""

    role: Role
    person: Person
    place: Place


async def removable_roles(session: AsyncSession, actor: Actor) -> list[Held]:
    """The roles on the places the actor manages that are theirs to take back: by place (communes
    first, then by name), then role, then the holder's name."""
    places = await invite_places(session, actor)
    by_id = {p.id: p for p in places}
    rows = await session.exec(
        select(Role, Person).join(Person, col(Person.id) == Role.person_id).where(col(Role.place_id).in_(list(by_id)))
    )
    held = [Held(role, person, by_id[role.place_id]) for role, person in rows.all()]
    order = {p.id: n for n, p in enumerate(places)}
    held = [h for h in held if may_invite(actor, h.role.role, Spot.of(h.place))]
    return sorted(held, key=lambda h: (order[h.place.id], _ROLE_ORDER.get(h.role.role, 99), h.person.display_name,
                                       h.role.id))


async def judge(session: AsyncSession, actor: Actor, role: Role, place: Place) -> Verdict | None:
    """Why the actor may not take this role back, or None if they may."""
    spot = Spot.of(place)
    if may_remove_role(actor, role.role, spot, await officials_after_removal(session, role)):
        return None
    # the core refused a role the actor may hand out: only the last-official rule does that
    return Verdict.LAST_OFFICIAL if may_invite(actor, role.role, spot) else Verdict.NOT_ALLOWED


async def remove_role(session: AsyncSession, actor: Actor, role_id: int, now: datetime) -> tuple[Verdict, Held | None]:
    """Take one role back; what happened, and the role as it was."""
    role = (await session.exec(select(Role).where(Role.id == role_id).with_for_update())).first()
    place = await session.get(Place, role.place_id) if role else None
    person = await session.get(Person, role.person_id) if role else None
    if role is None or place is None or person is None:
        return Verdict.GONE, None
    held = Held(role, person, place)
    refused = await judge(session, actor, role, place)
    if refused is not None:
        return refused, held
    await session.delete(role)
    await session.flush()
    ended = await end_sessions(session, person.id, now)  # the web console's pages are re-judged on next login
    await audit.record(session, "role_removed", actor_id=actor.person_id, at=now, place_id=place.id,
                       role_id=role_id, person=person.id, role=role.role, console_sessions_ended=ended)
    return Verdict.REMOVED, held


async def tell_holder(session: AsyncSession, held: Held, by: Person) -> list[Outgoing]:
    """What the person whose role `by` took back is told, in each of their private chats (nothing when
    they took back their own: they know)."""
    if held.person.id == by.id:
        return []
    text = render("remove_notice", by=by.display_name, role=role_label(held.role.role), place=held.place.name)
    return [Outgoing(chat, text) for chat in await private_chats(session, held.person.id)]


# --- /thuhoi in a chat -----------------------------------------------------------------------------------


def _line(held: Held | None) -> str:
    if held is None:  # taken back meanwhile: its number stays
        return "…"
    return f"{held.person.display_name or '?'} — {role_label(held.role.role)} — {held.place.name}"


def _list_menu(held: list[Held | None]) -> Menu:
    return menu(**{f"k{n}": _line(h) for n, h in enumerate(held)})


async def start(turn: Turn, _args: str) -> None:
    """/thuhoi"""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("remove_private_only")
        return
    held = await removable_roles(turn.session, await turn.actor())
    if not held:
        turn.say("remove_none")
        return
    # the numbers shown are kept as role ids: a role given meanwhile does not shift them
    await conversation.move(turn, FLOW, "pick", roles=[h.role.id for h in held])
    choices = _list_menu(list(held))
    turn.say("remove_pick", buttons=choices.buttons, choices=choices.lines)


async def _held(session: AsyncSession, role_ids: list[int]) -> list[Held | None]:
    rows = await session.exec(
        select(Role, Person, Place)
        .join(Person, col(Person.id) == Role.person_id)
        .join(Place, col(Place.id) == Role.place_id)
        .where(col(Role.id).in_(role_ids))
    )
    found = {role.id: Held(role, person, place) for role, person, place in rows.all()}
    return [found.get(i) for i in role_ids]


async def _on_pick(turn: Turn, data: Data) -> None:
    held = await _held(turn.session, list(data.get("roles", [])))
    choices = _list_menu(held)
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
        return
    chosen = held[int(picked.removeprefix("k"))]
    refused = await judge(turn.session, await turn.actor(), chosen.role, chosen.place) if chosen else Verdict.GONE
    if refused is not None or chosen is None:  # said now rather than after a confirmation
        await conversation.finish(turn)
        _say_refused(turn, refused or Verdict.GONE, chosen)
        return
    confirm = confirm_menu()
    await conversation.move(turn, FLOW, "confirm", role_id=chosen.role.id)
    turn.say("remove_confirm", buttons=confirm.buttons, name=chosen.person.display_name,
             role=role_label(chosen.role.role), place=chosen.place.name, own=chosen.person.id == turn.person.id,
             choices=confirm.lines)


async def _on_confirm(turn: Turn, data: Data) -> None:
    answer = await confirmed(turn)
    if answer is None:
        return
    if not answer:
        turn.say("remove_kept")
        return
    verdict, held = await remove_role(turn.session, await turn.actor(), int(data.get("role_id", 0)), turn.now)
    if verdict is not Verdict.REMOVED or held is None:
        _say_refused(turn, verdict, held)
        return
    turn.say("remove_done", name=held.person.display_name, role=role_label(held.role.role), place=held.place.name)
    turn.reply.messages.extend(await tell_holder(turn.session, held, turn.person))


def _say_refused(turn: Turn, verdict: Verdict, held: Held | None) -> None:
    if verdict is Verdict.LAST_OFFICIAL and held is not None:
        turn.say("remove_last_official", place=held.place.name)
    elif verdict is Verdict.NOT_ALLOWED:
        turn.say("remove_not_allowed")
    else:
        turn.say("remove_gone")


FLOW = Flow("role_removal", {"pick": _on_pick, "confirm": _on_confirm})
