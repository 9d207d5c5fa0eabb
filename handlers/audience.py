"""Who receives an announcement: the groups of the targeted places, and the outbox rows for them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.context import HandlerSettings
from handlers.people import villages_of
from handlers.permissions import Actor, Spot, broadcast_places, may_broadcast_to
from storage.models import Announcement, ChatGroup, Delivery, Place, PlaceKind

RELAY = "relay"  # Announcement.source of a notice written in a commune's group (#thongbao, /chuyentiep)


@dataclass(frozen=True)
class Reach:
    places: list[Place]  # what the notice speaks for: its signature names the first
    receiving: list[Place]  # the places whose groups receive it
    groups: list[ChatGroup]


async def reach(session: AsyncSession, actor: Actor, notice: Announcement) -> Reach:
    """Where a notice goes, asked again at every sending. One relayed from a commune's group goes down
    to the villages, never back into commune groups."""
    places = await places_reached(session, actor, notice.target_place_id)
    receiving = [p for p in places if p.kind != PlaceKind.COMMUNE] if notice.source == RELAY else places
    return Reach(places, receiving, await active_groups(session, receiving))


async def places_reached(session: AsyncSession, actor: Actor, target_place_id: int | None) -> list[Place]:
    """The target place and, for a commune, its villages; no target means all the author manages.
    Asked again at every sending (a recurring notice, a relay): an author who lost the role reaches
    no one."""
    if target_place_id is None:
        return await broadcast_places(session, actor)
    place = await session.get(Place, target_place_id)
    if place is None or not may_broadcast_to(actor, Spot.of(place)):
        return []
    if place.kind == PlaceKind.COMMUNE:
        return [place, *await villages_of(session, place)]
    return [place]


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
    session: AsyncSession, announcement: Announcement, groups: Sequence[ChatGroup], not_before: datetime
) -> int:
    """One outbox row per group, in the caller's transaction: committed before anything is sent."""
    if groups:
        await session.exec(
            insert(Delivery),
            params=[{"announcement_id": announcement.id, "group_id": g.id, "not_before": not_before} for g in groups],
        )
    return len(groups)
