"""Residents join their village: /thamgia (a numbered list, or the village's code), the village's deep
link (`/start thon_<CODE>`, the poster's QR), /roithon. A household registered in a survey joins its
village too. Membership is where a resident's handbook questions go (that village's tech team), and
whose notices a follower receives in private (handlers/following.py asks right after joining).

Village codes are printed on posters, so they are not secrets: an unknown code is simply asked again.
One village per person (`village_member.person_id` is unique): joining another one moves them, after
they said yes."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from handlers import conversation
from handlers.chat import ChatKind
from handlers.choices import Choice, Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.followers import end_following
from handlers.numbers import whole_number
from handlers.people import place_by_code
from storage.db import insert_if_absent
from storage.models import Person, Place, PlaceKind, VillageMember, utcnow

LINK_PREFIX = "thon_"  # /start thon_<CODE>
ID_LINK_PREFIX = "thonid_"  # /start thonid_<id>: a code that a Telegram link cannot carry
LINK_PREFIXES = (LINK_PREFIX, ID_LINK_PREFIX)
MAX_LISTED = 15  # more villages than this: the commune is asked first
_LINK_SAFE = re.compile(r"[A-Za-z0-9_-]+")
_PAYLOAD_MAX = 64  # Telegram's limit on a /start payload


class Source(StrEnum):
    COMMAND = "command"
    LINK = "link"
    HOUSEHOLD = "household"


# --- plain operations (no chat needed) ------------------------------------------------------------------


async def village_of(session: AsyncSession, person: Person) -> Place | None:
    rows = await session.exec(
        select(Place).join(VillageMember, col(VillageMember.place_id) == Place.id).where(VillageMember.person_id == person.id)
    )
    return rows.first()


async def join_village(
    session: AsyncSession, person: Person, place: Place, source: str, *, at: datetime | None = None
) -> None:
    """Make `person` a member of the village `place`, moving them from any other village."""
    assert place.kind == PlaceKind.VILLAGE
    assert place.id is not None
    assert person.id is not None
    at = at or utcnow()
    # two accounts of one person joining at once: one row either way
    await insert_if_absent(session, VillageMember, person_id=person.id, place_id=place.id, source=source, joined_at=at)
    member = (await session.exec(_member_query(person.id).with_for_update())).one()
    if member.place_id != place.id:
        member.place_id, member.source, member.joined_at = place.id, source, at
        session.add(member)
        await end_following(session, person)  # their yes was for the village they left


async def join_if_none(session: AsyncSession, person: Person, place_id: int, *, at: datetime | None = None) -> bool:
    """A household's village for someone who registered or joined it, unless they chose a village already.
    True when they joined."""
    assert person.id is not None
    if (await session.exec(_member_query(person.id))).first() is not None:
        return False
    await insert_if_absent(session, VillageMember, person_id=person.id, place_id=place_id,
                           source=Source.HOUSEHOLD, joined_at=at or utcnow())
    return True


async def leave_village(session: AsyncSession, person: Person) -> Place | None:
    """The village they left, if they were in one."""
    assert person.id is not None
    member = (await session.exec(_member_query(person.id))).first()
    if member is None:
        return None
    place = await session.get(Place, member.place_id)
    await session.delete(member)
    await end_following(session, person)
    return place


def village_link_payload(place: Place) -> str:
    """What follows /start in the village's deep link: `thon_<CODE>`, or the place's number when its code
    has characters a Telegram link cannot carry (diacritics, spaces) or is too long."""
    payload = f"{LINK_PREFIX}{place.code}"
    if _LINK_SAFE.fullmatch(place.code) and len(payload) <= _PAYLOAD_MAX:
        return payload
    return f"{ID_LINK_PREFIX}{place.id}"


def _member_query(person_id: int) -> SelectOfScalar[VillageMember]:
    return select(VillageMember).where(VillageMember.person_id == person_id)


# --- the chat -------------------------------------------------------------------------------------------


async def join_command(turn: Turn, args: str) -> None:
    """/thamgia [MÃ-THÔN]."""
    if not _private(turn):
        return
    code = args.strip()
    if code:
        await _by_code(turn, code, Source.COMMAND)
    else:
        await _offer(turn, Source.COMMAND)


async def from_link(turn: Turn, payload: str) -> None:
    """/start thon_<CODE> (or thonid_<id>): the village's link or the poster's QR."""
    if not _private(turn):
        return
    if payload.startswith(ID_LINK_PREFIX):
        number = whole_number(payload.removeprefix(ID_LINK_PREFIX))
        place = await turn.session.get(Place, number) if number is not None else None
        await _go_to(turn, place, Source.LINK, unknown="")
    else:
        await _by_code(turn, payload.removeprefix(LINK_PREFIX), Source.LINK)


async def leave_command(turn: Turn, _args: str) -> None:
    """/roithon: one tap, no questions."""
    if not _private(turn):
        return
    left = await leave_village(turn.session, turn.person)
    if left is None:
        turn.say("village_none_joined")
    else:
        turn.say("village_left", village=left.name)


def _private(turn: Turn) -> bool:
    """Which village someone lives in is said in their private chat, not in a group."""
    if turn.incoming.chat_kind is ChatKind.PRIVATE:
        return True
    turn.say("village_private_only")
    return False


async def _on_commune(turn: Turn, data: Data) -> None:
    communes = await _places(turn, data.get("offered", []))
    commune = await _picked(turn, communes, _commune_menu(communes))
    if commune is not None:
        await _offer_villages(turn, await _villages(turn, commune.id), data.get("source", Source.COMMAND))


async def _on_village(turn: Turn, data: Data) -> None:
    villages = await _places(turn, data.get("offered", []))
    village = await _picked(turn, villages, _menu(villages, await _communes_of(turn, villages)))
    if village is not None:
        await _chosen(turn, village, data.get("source", Source.COMMAND))


async def _picked(turn: Turn, places: list[Place], choices: Menu) -> Place | None:
    """The place picked from `choices`; None when the same question was asked again."""
    picked = choices.pick(turn.incoming.answer)
    place = next((p for p in places if f"p{p.id}" == picked), None)
    if place is None:
        choices.ask_again(turn)
    return place


async def _by_code(turn: Turn, code: str, source: str) -> None:
    place = await place_by_code(turn.session, code)
    await _go_to(turn, place, source, unknown=code[:40])  # echoed to show a typo, never a whole essay


async def _go_to(turn: Turn, place: Place | None, source: str, unknown: str) -> None:
    """A village is joined; a commune lists its villages; a place unknown lists them all."""
    if place is None:
        await _offer(turn, source, unknown=unknown)
    elif place.kind == PlaceKind.COMMUNE:
        await _offer_villages(turn, await _villages(turn, place.id), source)
    else:
        await _chosen(turn, place, source)


async def _offer(turn: Turn, source: str, unknown: str | None = None) -> None:
    """Every village the bot serves, or its communes first when that list would be long."""
    villages = await _villages(turn)
    communes = await _communes_of(turn, villages)
    if len(villages) > MAX_LISTED and len(communes) > 1:
        choices = _commune_menu(communes)
        await conversation.move(turn, FLOW, "commune", offered=[c.id for c in communes], source=source)
        turn.say("village_pick_commune", buttons=choices.buttons, choices=choices.lines, unknown=unknown)
    else:
        await _offer_villages(turn, villages, source, unknown=unknown)


async def _offer_villages(turn: Turn, villages: list[Place], source: str, unknown: str | None = None) -> None:
    if not villages:
        await conversation.finish(turn)
        turn.say("village_none_served", unknown=unknown)
        return
    communes = await _communes_of(turn, villages)
    choices = _menu(villages, communes)
    current = await village_of(turn.session, turn.person)
    await conversation.move(turn, FLOW, "village", offered=[v.id for v in villages], source=source)
    turn.say("village_pick", buttons=choices.buttons, choices=choices.lines, unknown=unknown,
             commune=communes[0].name if len(communes) == 1 else None, current=current.name if current else None)


async def _chosen(turn: Turn, place: Place, source: str) -> None:
    current = await village_of(turn.session, turn.person)
    if current is not None and current.id == place.id:
        await conversation.finish(turn)
        turn.say("village_already", village=place.name)
        return
    if current is not None:  # moving: say so, and move only on a yes
        choices = _move_menu()
        await conversation.move(turn, FLOW, "move", place_id=place.id, source=source)
        turn.say("village_confirm_move", buttons=choices.buttons, choices=choices.lines,
                 current=current.name, village=place.name)
        return
    await _join(turn, place, source)


async def _on_move(turn: Turn, data: Data) -> None:
    choices = _move_menu()
    picked = choices.pick(turn.incoming.answer)
    place = await turn.session.get(Place, data.get("place_id"))
    if place is None:  # the village was removed meanwhile
        await _offer(turn, data.get("source", Source.COMMAND))
    elif picked is None:
        choices.ask_again(turn)
    elif picked == "village_stay":
        await conversation.finish(turn)
        current = await village_of(turn.session, turn.person)
        turn.say("village_stayed", village=current.name if current else None)
    else:
        await _join(turn, place, data.get("source", Source.COMMAND), moved=True)


async def _join(turn: Turn, place: Place, source: str, *, moved: bool = False) -> None:
    await conversation.finish(turn)
    await join_village(turn.session, turn.person, place, source, at=turn.now)
    commune = await turn.session.get(Place, place.parent_id) if place.parent_id else None
    # the router then asks whether to follow the village (handlers/following.py), in the same reply
    turn.say("village_joined", village=place.name, commune=commune.name if commune else None, moved=moved)


# --- lists and menus ------------------------------------------------------------------------------------


async def _villages(turn: Turn, commune_id: int | None = None) -> list[Place]:
    """Villages the bot serves (of one commune, or of all), by commune name, then name, then id."""
    query = select(Place).where(Place.kind == PlaceKind.VILLAGE)
    if commune_id is not None:
        query = query.where(Place.parent_id == commune_id)
    villages = list((await turn.session.exec(query)).all())
    communes = {c.id: c.name for c in await _communes_of(turn, villages)}
    return sorted(villages, key=lambda v: (communes.get(v.parent_id, ""), v.parent_id or 0, v.name, v.id or 0))


async def _communes_of(turn: Turn, villages: list[Place]) -> list[Place]:
    ids = sorted({v.parent_id for v in villages if v.parent_id is not None})
    rows = await turn.session.exec(select(Place).where(col(Place.id).in_(ids)))
    return sorted(rows.all(), key=lambda c: (c.name, c.id or 0))


async def _places(turn: Turn, ids: list[int]) -> list[Place]:
    """The places offered at the previous step, in the order they were offered."""
    rows = await turn.session.exec(select(Place).where(col(Place.id).in_(ids)))
    by_id = {p.id: p for p in rows.all()}
    return [by_id[i] for i in ids if i in by_id]


def _menu(villages: list[Place], communes: list[Place]) -> Menu:
    """Village names; with several communes in the list, each says its commune."""
    names = {c.id: c.name for c in communes}
    several = len(communes) > 1
    return Menu(tuple(Choice(f"p{v.id}", f"{v.name} — {names.get(v.parent_id, '')}" if several else v.name)
                      for v in villages))


def _commune_menu(communes: list[Place]) -> Menu:
    return Menu(tuple(Choice(f"p{c.id}", c.name) for c in communes))


def _move_menu() -> Menu:
    return menu("village_move", "village_stay")


FLOW = Flow("village", {"commune": _on_commune, "village": _on_village, "move": _on_move})
