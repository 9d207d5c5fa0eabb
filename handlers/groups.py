"""Group chats: linking a group to a place (/ganthon), and keeping records right when the bot is
added, removed, or the group becomes a supergroup with a new id."""

from __future__ import annotations

from typing import Literal, overload

from sqlmodel import select

from handlers.chat import ChatKind
from handlers.context import Turn
from handlers.people import place_by_code
from handlers.permissions import Spot, may_link_group, may_unlink_group
from messages import label
from storage.models import ChatGroup, Place
from storage.outbox import move_chat, stop_group


@overload
async def this_group(turn: Turn, create: Literal[True] = True) -> ChatGroup: ...


@overload
async def this_group(turn: Turn, create: Literal[False]) -> ChatGroup | None: ...


async def this_group(turn: Turn, create: bool = True) -> ChatGroup | None:
    """The group of this turn's chat; created unless `create` is false, and then None if unknown."""
    msg = turn.incoming
    rows = await turn.session.exec(
        select(ChatGroup).where(ChatGroup.platform == msg.platform, ChatGroup.chat_id == msg.chat_id)
    )
    group = rows.first()
    if group is None and create:
        group = ChatGroup(platform=msg.platform, chat_id=msg.chat_id, title=msg.chat_title)
        turn.session.add(group)
        await turn.session.flush()
    elif group is not None and msg.chat_title and group.title != msg.chat_title:
        group.title = msg.chat_title
    return group


async def link(turn: Turn, args: str) -> None:
    if turn.incoming.chat_kind is not ChatKind.GROUP:
        turn.say("link_in_group_only")
        return
    code = args.strip().split()[0] if args.strip() else ""
    if not code:
        turn.say("link_usage")
        return
    place = await place_by_code(turn.session, code)
    if place is None:
        turn.say("link_unknown_place", code=code)
        return
    known = await this_group(turn, create=False)
    current = await turn.session.get(Place, known.place_id) if known and known.place_id else None
    actor = await turn.actor()
    if not may_link_group(actor, Spot.of(place), None):
        turn.say("link_not_allowed", place=place.name)
        return
    if current is not None and not may_link_group(actor, Spot.of(place), Spot.of(current)):
        turn.say("link_taken", place=place.name, current=current.name)
        return
    group = known or await this_group(turn)
    assert group is not None
    group.place_id, group.active, group.linked_at = place.id, True, turn.now
    parent = await turn.session.get(Place, place.parent_id) if place.parent_id else None
    turn.say("link_done", place=place.name, parent=parent.name if parent else None, kind=place.kind)
    if not turn.incoming.joins_groups:  # Zalo's getMe says no: this group may never receive a notice
        turn.say("link_platform_keeps_out", platform=label(turn.incoming.platform), place=place.name)


async def unlink(turn: Turn, _args: str) -> None:
    if turn.incoming.chat_kind is not ChatKind.GROUP:
        turn.say("link_in_group_only")
        return
    group = await this_group(turn, create=False)
    place = await turn.session.get(Place, group.place_id) if group and group.place_id else None
    if place is None:
        turn.say("unlink_not_linked")
        return
    if not may_unlink_group(await turn.actor(), Spot.of(place)):
        turn.say("link_not_allowed", place=place.name)
        return
    group.place_id = None
    turn.say("unlink_done", place=place.name)


async def bot_added(turn: Turn) -> None:
    group = await this_group(turn)
    group.active = True
    turn.say("group_welcome", linked=group.place_id is not None)


async def bot_removed(turn: Turn) -> None:
    group = await this_group(turn, create=False)
    if group is None:
        return
    await stop_group(turn.session, group.id, "bot removed from group")


async def migrated(turn: Turn) -> None:
    """The group became a supergroup: same group, new chat id."""
    new_id = turn.incoming.new_chat_id
    group = await this_group(turn, create=False)
    if group is None or new_id is None:
        return
    await move_chat(turn.session, group, new_id)
