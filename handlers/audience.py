"""Who receives an announcement: the groups of the targeted places and their villages' followers (in
private), and the outbox rows for them: one per chat."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import HandlerSettings
from handlers.followers import Following, followers_of
from handlers.people import villages_of
from handlers.permissions import Actor, Spot, aimed_at, broadcast_places, may_broadcast_to
from storage.models import Announcement, ChatGroup, Delivery, Place, PlaceKind

RELAY = "relay"  # Announcement.source of a notice written in a commune's group (#thongbao, /chuyentiep)


@dataclass(frozen=True)
class Reach:
    places: list[Place]  # what the notice speaks for: its signature names the first
    receiving: list[Place]  # the places whose groups receive it
    groups: list[ChatGroup]
    followers: list[Following]  # their private copies: also those who are in a group (no one knows who read it)


async def reach(session: AsyncSession, actor: Actor, notice: Announcement) -> Reach:
    """Where a notice goes, asked again at every sending. One relayed from a commune's group goes down
    to the villages, never back into commune groups."""
    places = await places_reached(session, actor, await aimed_at(session, notice))
    receiving = [p for p in places if p.kind != PlaceKind.COMMUNE] if notice.source == RELAY else places
    place_ids = [p.id for p in receiving if p.id is not None]
    return Reach(places, receiving, await active_groups(session, receiving), await followers_of(session, place_ids))


async def places_reached(session: AsyncSession, actor: Actor, target_ids: list[int] | None) -> list[Place]:
    """The target places and, for a commune, its villages (each once); no target means all the author
    manages. Asked again at every sending (a recurring notice, a relay): a place the author may no
    longer send to is dropped, so an author who lost the role reaches no one."""
    if target_ids is None:
        return await broadcast_places(session, actor)
    reached: dict[int | None, Place] = {}
    for target_id in target_ids:
        place = await session.get(Place, target_id)
        if place is None or not may_broadcast_to(actor, Spot.of(place)):
            continue
        below = await villages_of(session, place) if place.kind == PlaceKind.COMMUNE else []
        for each in (place, *below):
            reached.setdefault(each.id, each)
    return list(reached.values())


async def active_groups(session: AsyncSession, places: Sequence[Place]) -> list[ChatGroup]:
    ids = [p.id for p in places]
    rows = await session.exec(
        select(ChatGroup).where(col(ChatGroup.place_id).in_(ids), ChatGroup.active == True).order_by(col(ChatGroup.id))  # noqa: E712
    )
    return list(rows.all())


def release_time(announcement: Announcement, due: datetime, settings: HandlerSettings) -> datetime:
    """Urgent notices go when due; others wait for the end of quiet hours."""
    if announcement.urgent:
        return due
    return settings.quiet_hours.release(due, settings.timezone)


async def queue(
    session: AsyncSession,
    announcement: Announcement,
    groups: Sequence[ChatGroup],
    not_before: datetime,
    followers: Sequence[Following] = (),
) -> int:
    """One outbox row per chat (group or follower), in the caller's transaction: committed before
    anything is sent. Quiet hours hold both alike (`not_before`)."""
    rows: list[dict[str, object]] = [
        {"announcement_id": announcement.id, "group_id": g.id, "not_before": not_before} for g in groups
    ]
    rows += [
        {"announcement_id": announcement.id, "follower_id": f.follower.id, "place_id": f.place_id, "not_before": not_before}
        for f in followers
    ]
    if rows:
        # the same keys in every row: one executemany (a group row's follower is NULL, and the reverse)
        keys = ("group_id", "follower_id", "place_id")
        await session.exec(insert(Delivery), params=[dict.fromkeys(keys) | row for row in rows])
    return len(rows)
