"""The inbox's statements on the path of every message: keep an update, take a chat's oldest unhandled
one, mark it handled, clear its replies once sent, and find updates nobody is handling.

Core statements on a bare connection (or the turn's own): an ORM unit of work per update costs more than
the statement, and the dispatcher never needs the row as an object."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col

from storage.models import Identity, InboxUpdate

_UNHANDLED = col(InboxUpdate.processed_at).is_(None)


# The statements run for every message are built once, with their values as parameters: building one
# and computing its cache key cost 0.1-0.35 ms of CPU each time, about as much as running it. (A
# parameter may not bear a column's name in an INSERT or UPDATE: hence the trailing underscores.)
_KEEP = {
    name: insert(InboxUpdate)
    .values(platform=bindparam("platform_"), key=bindparam("key_"), chat_id=bindparam("chat_"),
            payload=bindparam("payload_"), received_at=bindparam("now"), error="", reply_pending=False)
    .on_conflict_do_nothing(index_elements=["platform", "key"])
    .returning(col(InboxUpdate.id))
    for name, insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}
_OLDEST = (
    select(col(InboxUpdate.id))
    .where(col(InboxUpdate.platform) == bindparam("platform_"), col(InboxUpdate.chat_id) == bindparam("chat_"),
           _UNHANDLED)
    .order_by(col(InboxUpdate.id))
    .limit(1)
    .with_for_update()
)
_TAKE = _OLDEST.add_columns(col(InboxUpdate.person_id))
_TAKE_STAMPED = (
    update(InboxUpdate)
    .where(col(InboxUpdate.id) == _OLDEST.scalar_subquery())
    .values(person_id=select(col(Identity.person_id)).where(
        col(Identity.platform) == bindparam("platform_"), col(Identity.user_id) == bindparam("user_")
    ).scalar_subquery())
    .returning(col(InboxUpdate.id), col(InboxUpdate.person_id))
)
_STAMP = update(InboxUpdate).where(col(InboxUpdate.id) == bindparam("row_")).values(person_id=bindparam("person_"))
_SENT = (
    update(InboxUpdate)
    .where(col(InboxUpdate.id).in_(bindparam("rows_", expanding=True)))
    .values(replies=None, reply_pending=False)
)


async def keep(
    connection: AsyncConnection, platform: str, key: str, chat_id: str | None, payload: dict[str, Any], now: datetime
) -> int | None:
    """The new row's id; None if the update was kept already (a replayed webhook, a re-polled batch)."""
    values = {"platform_": platform, "key_": key, "chat_": chat_id, "payload_": payload, "now": now}
    return (await connection.execute(_KEEP[connection.dialect.name], values)).scalar()


def _of_chat(platform: str, chat_id: str) -> ColumnElement[bool]:
    return and_(col(InboxUpdate.platform) == platform, col(InboxUpdate.chat_id) == chat_id, _UNHANDLED)


async def take_oldest(
    connection: AsyncConnection, platform: str, chat_id: str, user_id: str | None
) -> tuple[int, int | None] | None:
    """The chat's oldest unhandled update, locked until the transaction ends, and its person as stamped.
    It is stamped with the person of `user_id`'s account on `platform` when the caller could tell (it
    expects a given update): a person found later than the lock would cost a statement more per turn.
    `stamp` again if another update came, or the account is new."""
    chat = {"platform_": platform, "chat_": chat_id}
    if user_id is None:
        found = (await connection.execute(_TAKE, chat)).first()
    else:
        found = (await connection.execute(_TAKE_STAMPED, {**chat, "user_": user_id})).first()
    return None if found is None else (found[0], found[1])


async def read(connection: AsyncConnection, row_id: int) -> tuple[str, str, dict[str, Any]]:
    """platform, key and payload of an update this process did not read when it was kept."""
    statement = select(col(InboxUpdate.platform), col(InboxUpdate.key), col(InboxUpdate.payload))
    platform, key, payload = (await connection.execute(statement.where(col(InboxUpdate.id) == row_id))).one()
    return platform, key, payload


async def stamp(connection: AsyncConnection, row_id: int, person_id: int | None) -> None:
    """Whose update it is: /xoadulieu blanks a household's members' updates by it."""
    await connection.execute(_STAMP, {"row_": row_id, "person_": person_id})


async def finish(
    connection: AsyncConnection,
    row_id: int,
    now: datetime,
    error: str,
    replies: list[dict[str, Any]] | None,
    *,
    only_if: ColumnElement[bool] | None = None,
) -> bool:
    """The update handled, with the replies still to send; False (nothing changed) when `only_if` does
    not hold: the chat's lease is no longer this process's."""
    statement = (
        update(InboxUpdate)
        .where(col(InboxUpdate.id) == row_id, *([] if only_if is None else [only_if]))
        .values(processed_at=now, error=error, replies=replies, reply_pending=bool(replies))
    )
    return bool((await connection.execute(statement)).rowcount)


async def keep_unsent(connection: AsyncConnection, row_id: int, replies: list[dict[str, Any]]) -> None:
    """The replies that did not go out stay for the next start."""
    await connection.execute(update(InboxUpdate).where(col(InboxUpdate.id) == row_id).values(replies=replies))


async def mark_sent(connection: AsyncConnection, row_ids: list[int]) -> None:
    await connection.execute(_SENT, {"rows_": row_ids})


async def has_unhandled(connection: AsyncConnection, platform: str, chat_id: str) -> bool:
    return (await connection.execute(select(col(InboxUpdate.id)).where(_of_chat(platform, chat_id)).limit(1))).first() is not None


async def left_over(
    connection: AsyncConnection, kept_before: datetime | None, free: ColumnElement[bool], limit: int | None
) -> list[tuple[int, str, str | None]]:
    """Unhandled updates (id, platform, chat) whose chat is `free` (nobody holds it) or who have none,
    kept before `kept_before` (None: whenever), oldest first: one walk of the pending index."""
    statement = (
        select(col(InboxUpdate.id), col(InboxUpdate.platform), col(InboxUpdate.chat_id))
        .where(_UNHANDLED, or_(col(InboxUpdate.chat_id).is_(None), free))
        .order_by(col(InboxUpdate.processed_at), col(InboxUpdate.id))
        .limit(limit)
    )
    if kept_before is not None:
        statement = statement.where(col(InboxUpdate.received_at) < kept_before)
    rows = (await connection.execute(statement)).all()
    return [(row_id, platform, chat_id) for row_id, platform, chat_id in rows if row_id is not None]
