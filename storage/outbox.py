"""Outbox queries: claim due deliveries, record what happened to them.

Claiming is one short transaction: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, so several bot
processes share the outbox without sending a row twice; SQLite has one writer and ignores the clause.
A claimed row carries a lease: if its process dies, the row is claimed again once the lease runs out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import ColumnElement, TextClause, Update, bindparam, func, or_, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import ChatGroup, Delivery, DeliveryStatus, Follower


@dataclass(frozen=True)
class Claimed:
    delivery_id: int
    announcement_id: int
    group_id: int | None  # None: a follower's private chat
    follower_id: int | None
    chat_id: str
    parts_sent: int
    attempts: int


def _of_platform(platform: str) -> ColumnElement[bool]:
    """The delivery's chat is on `platform`: its group's, or its follower's private chat's."""
    group = select(ChatGroup.id).where(col(ChatGroup.id) == col(Delivery.group_id), col(ChatGroup.platform) == platform)
    follower = select(Follower.id).where(col(Follower.id) == col(Delivery.follower_id), col(Follower.platform) == platform)
    return or_(group.exists(), follower.exists())


async def claim_due(
    connection: AsyncConnection, platform: str, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """The earliest due deliveries, marked as being sent, in one statement and one round trip: the
    rows are picked walking ix_delivery_due in order (a claim costs the same with ten or ten thousand
    rows waiting; FOR UPDATE SKIP LOCKED on PostgreSQL, so two processes never pick one row), set
    `sending` with a lease and returned. A bare connection and Core, no ORM session: this runs for
    every few sends."""
    due = (
        select(col(Delivery.id))
        .where(
            col(Delivery.status) == DeliveryStatus.PENDING,
            col(Delivery.not_before) <= now,
            _of_platform(platform),
        )
        .order_by(col(Delivery.status), col(Delivery.not_before))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Delivery)
    )
    # the chat as subqueries: SQLite's RETURNING may not name a joined table's columns
    chat = func.coalesce(
        select(col(ChatGroup.chat_id)).where(col(ChatGroup.id) == col(Delivery.group_id)).scalar_subquery(),
        select(col(Follower.chat_id)).where(col(Follower.id) == col(Delivery.follower_id)).scalar_subquery(),
    )
    claim = (
        update(Delivery)
        .where(col(Delivery.id).in_(due.scalar_subquery()))
        .values(status=DeliveryStatus.SENDING, lease_until=now + lease)
        .returning(
            col(Delivery.id), col(Delivery.announcement_id), col(Delivery.group_id), col(Delivery.follower_id), chat,
            col(Delivery.parts_sent), col(Delivery.attempts), col(Delivery.not_before),
        )
    )
    rows = (await connection.execute(claim)).all()
    await connection.commit()
    # in the order they were due (RETURNING keeps none), so the earliest go out first
    return [Claimed(*row[:7]) for row in sorted(rows, key=lambda row: (row[7], row[0]))]


async def renew(connection: AsyncConnection, delivery_ids: list[int], until: datetime) -> None:
    """The process is still sending these (some wait in the pacer, after a 429 maybe for minutes): no
    other process may take them while it lives. A row already recorded is no longer `sending`."""
    await connection.execute(
        update(Delivery)
        .where(col(Delivery.id).in_(delivery_ids), col(Delivery.status) == DeliveryStatus.SENDING)
        .values(lease_until=until)
    )


def _due_again(*where: ColumnElement[bool]) -> Update:
    """Rows being sent (and matching `where`) back to waiting, their lease gone."""
    return (
        update(Delivery)
        .where(col(Delivery.status) == DeliveryStatus.SENDING, *where)
        .values(status=DeliveryStatus.PENDING, lease_until=None)
    )


async def release(connection: AsyncConnection, delivery_ids: list[int]) -> None:
    """Claims this process will not send after all (it is stopping): due again now, not at the lease's end."""
    await connection.execute(_due_again(col(Delivery.id).in_(delivery_ids)))


async def reclaim_expired(session: AsyncSession, now: datetime) -> int:
    """Deliveries whose process died while sending them (its lease ran out) are due again."""
    result = await session.exec(_due_again(col(Delivery.lease_until) < now))
    await session.commit()
    return result.rowcount


async def next_due(session: AsyncSession, platform: str) -> datetime | None:
    """When the earliest waiting delivery becomes due, so the worker can sleep until then."""
    row = await session.exec(
        select(Delivery.not_before)
        .where(col(Delivery.status) == DeliveryStatus.PENDING, _of_platform(platform))
        .order_by(col(Delivery.not_before))
        .limit(1)
    )
    return row.first()


async def release_all_claims(session: AsyncSession) -> int:
    """At start-up of the only process (SQLite): whatever was being sent when it died is due again."""
    result = await session.exec(_due_again())
    await session.commit()
    return result.rowcount


async def record_many(connection: AsyncConnection, changes: list[dict[str, object]]) -> None:
    """Many deliveries' new values (the same columns in each dict, plus "delivery_id") in one go: at
    hundreds of sends a second, a transaction per send costs more than the send."""
    if not changes:
        return
    columns = tuple(c for c in changes[0] if c != "delivery_id")
    if connection.dialect.name == "postgresql":
        # one statement over arrays: psycopg's executemany costs a statement (and its Python) per row
        arrays = {c: [change[c] for change in changes] for c in ("delivery_id", *columns)}
        await connection.execute(_update_from_arrays(columns), arrays)
        return
    statement = (
        update(Delivery).where(col(Delivery.id) == bindparam("delivery_id")).values({c: bindparam(c) for c in columns})
    )
    await connection.execute(statement, changes)


@cache
def _update_from_arrays(columns: tuple[str, ...]) -> TextClause:
    """UPDATE delivery SET … FROM unnest(one array per column), each array cast to its column's type
    (an array of NULLs has none of its own)."""
    table = Delivery.metadata.tables["delivery"]
    types = {"delivery_id": "INTEGER", **{c: table.c[c].type.compile(dialect=postgresql.dialect()) for c in columns}}
    arrays = ", ".join(f"CAST(:{c} AS {types[c]}[])" for c in types)
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    # names are the table's own columns (table.c refuses any other); every value is bound
    return text(f"UPDATE delivery SET {assignments} FROM unnest({arrays}) AS v({', '.join(types)}) "  # noqa: S608
                "WHERE delivery.id = v.delivery_id")


async def stop_group(session: AsyncSession, group_id: int, reason: str) -> None:
    """The platform says the bot is no longer in this group: stop every delivery waiting for it."""
    await session.exec(update(ChatGroup).where(col(ChatGroup.id) == group_id).values(active=False))
    await _stop_waiting(session, col(Delivery.group_id) == group_id, reason)


async def stop_follower(session: AsyncSession, follower_id: int, reason: str, now: datetime) -> None:
    """The follower blocked the bot (or their account is gone): their waiting deliveries stop, and they
    are not targeted again until they write to the bot."""
    await session.exec(update(Follower).where(col(Follower.id) == follower_id).values(stopped_at=now))
    await _stop_waiting(session, col(Delivery.follower_id) == follower_id, reason)


async def _stop_waiting(session: AsyncSession, chat: ColumnElement[bool], reason: str) -> None:
    await session.exec(
        update(Delivery)
        .where(chat, col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]))
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
