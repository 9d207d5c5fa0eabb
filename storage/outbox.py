"""Outbox queries: claim due deliveries, record what happened to them.

Claiming is one short transaction: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so several bot
processes share the outbox without sending a row twice; SQLite has one writer and ignores the clause.
A claimed row carries a lease: if its process dies, the row is claimed again once the lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChatGroup, Delivery, DeliveryStatus


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    announcement_id: int
    group_id: int
    chat_id: str
    parts_sent: int
    attempts: int


async def claim_due(
    session: AsyncSession, platform: str, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    due = (
        select(Delivery, ChatGroup.chat_id)
        .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id)
        .where(
            ChatGroup.platform == platform,
            or_(
                (col(Delivery.status) == DeliveryStatus.PENDING) & (col(Delivery.not_before) <= now),
                (col(Delivery.status) == DeliveryStatus.SENDING) & (col(Delivery.lease_until) < now),
            ),
        )
        .order_by(col(Delivery.not_before), col(Delivery.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    rows = list((await session.exec(due)).all())
    for row, _chat in rows:
        row.status = DeliveryStatus.SENDING
        row.lease_until = now + lease
        session.add(row)
    await session.commit()
    return [Claimed(r.id, r.announcement_id, r.group_id, chat, r.parts_sent, r.attempts) for r, chat in rows]


async def next_due(session: AsyncSession, platform: str) -> datetime | None:
    """When the earliest waiting delivery becomes due, so the worker can sleep until then."""
    row = await session.exec(
        select(Delivery.not_before)
        .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id)
        .where(ChatGroup.platform == platform, col(Delivery.status) == DeliveryStatus.PENDING)
        .order_by(col(Delivery.not_before))
        .limit(1)
    )
    return row.first()


async def release_all_claims(session: AsyncSession) -> int:
    """At start-up of the only process (SQLite): whatever was being sent when it died is due again."""
    result = await session.exec(
        update(Delivery).where(col(Delivery.status) == DeliveryStatus.SENDING).values(status=DeliveryStatus.PENDING)
    )
    await session.commit()
    return result.rowcount


async def record(session: AsyncSession, delivery_id: int, **values: object) -> None:
    await session.exec(update(Delivery).where(col(Delivery.id) == delivery_id).values(**values))
    await session.commit()


async def stop_group(session: AsyncSession, group_id: int, reason: str) -> None:
    """The platform says the bot is no longer in this group: stop every delivery waiting for it."""
    await session.exec(update(ChatGroup).where(col(ChatGroup.id) == group_id).values(active=False))
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.group_id) == group_id,
            col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        )
        .values(status=DeliveryStatus.STOPPED, last_error=reason, lease_until=None)
    )


async def move_chat(session: AsyncSession, group: ChatGroup, new_chat_id: str) -> None:
    """The group became a supergroup with a new id. If the new id already has a row (the supergroup
    wrote to us first), that twin is retired so the linked group keeps its place and history."""
    twin = (
        await session.exec(
            select(ChatGroup).where(ChatGroup.platform == group.platform, ChatGroup.chat_id == new_chat_id)
        )
    ).first()
    if twin is not None and twin.id != group.id:
        twin.chat_id = f"{twin.chat_id}:merged-into:{group.id}"
        twin.active = False
        session.add(twin)
        await session.flush()
    group.chat_id = new_chat_id
    session.add(group)
