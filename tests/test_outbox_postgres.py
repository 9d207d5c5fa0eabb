"""Several bot processes on one PostgreSQL database share the outbox: FOR UPDATE SKIP LOCKED means no
delivery is claimed twice, and a dead process's claims come back when their lease runs out."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import admin
from storage import outbox
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import Announcement, AnnouncementStatus, ChatGroup, Delivery, Person, utcnow


async def _queued(sessions: async_sessionmaker[AsyncSession], groups: int) -> list[int]:
    """A notice queued for `groups` groups of a commune: its deliveries' ids, in the groups' order."""
    async with sessions() as session:
        village = await admin.add_place(session, "commune", "XA", "Xã", None)
        person = Person(display_name="A")
        session.add(person)
        await session.flush()
        notice = Announcement(author_id=person.id, text="x", status=AnnouncementStatus.QUEUED)
        session.add(notice)
        chats = [ChatGroup(platform="telegram", chat_id=str(-n), place_id=village.id) for n in range(1, groups + 1)]
        session.add_all(chats)
        await session.flush()
        ids = await session.exec(
            insert(Delivery).returning(Delivery.id), params=[{"announcement_id": notice.id, "group_id": g.id} for g in chats]
        )
        await session.commit()
        return sorted(ids.scalars().all())


async def test_two_workers_never_claim_the_same_delivery(postgres_url: str) -> None:
    await asyncio.to_thread(upgrade, postgres_url)
    engine = create_engine(postgres_url)
    sessions = session_factory(engine)
    try:
        await _queued(sessions, 400)

        async def worker() -> list[int]:
            mine: list[int] = []
            while True:
                async with engine.connect() as connection:
                    claimed = await outbox.claim_due(connection, "telegram", utcnow(), 7, timedelta(seconds=60))
                if not claimed:
                    return mine
                mine += [c.delivery_id for c in claimed]

        batches = await asyncio.gather(*(worker() for _ in range(4)))
        every = [d for batch in batches for d in batch]
        assert len(every) == len(set(every)) == 400
        assert sum(1 for batch in batches if batch) >= 2  # they really did run side by side

        # a process that died holding claims: nothing is due until the lease runs out, then all is
        later = utcnow() + timedelta(seconds=61)
        async with engine.connect() as connection:
            assert await outbox.claim_due(connection, "telegram", utcnow(), 500, timedelta(seconds=60)) == []
        async with sessions() as session:
            assert await outbox.reclaim_expired(session, utcnow()) == 0
            assert await outbox.reclaim_expired(session, later) == 400
        async with engine.connect() as connection:
            assert len(await outbox.claim_due(connection, "telegram", later, 500, timedelta(seconds=60))) == 400
    finally:
        await engine.dispose()


async def test_outcomes_recorded_in_one_statement_land_on_their_own_rows(postgres_url: str) -> None:
    """record_many writes a batch over arrays on PostgreSQL: each row gets its own values, NULLs too."""
    await asyncio.to_thread(upgrade, postgres_url)
    engine = create_engine(postgres_url)
    try:
        ids = await _queued(session_factory(engine), 3)
        sent_at, later = utcnow(), utcnow() + timedelta(minutes=5)
        async with engine.begin() as connection:
            await outbox.record_many(connection, [
                {"delivery_id": ids[0], "status": "sent", "parts_sent": 1, "message_id": "41", "sent_at": sent_at,
                 "lease_until": None},
                {"delivery_id": ids[2], "status": "sent", "parts_sent": 2, "message_id": None, "sent_at": sent_at,
                 "lease_until": None},
            ])
            await outbox.record_many(connection, [
                {"delivery_id": ids[1], "status": "pending", "attempts": 3, "not_before": later, "last_error": "500",
                 "lease_until": None},
            ])
        async with session_factory(engine)() as session:
            got = {d.id: d for d in (await session.exec(select(Delivery).where(col(Delivery.id).in_(ids)))).all()}
    finally:
        await engine.dispose()
    assert [(got[i].status, got[i].parts_sent, got[i].message_id, got[i].attempts) for i in ids] == [
        ("sent", 1, "41", 0), ("pending", 0, None, 3), ("sent", 2, None, 0)]
    assert (got[ids[0]].sent_at, got[ids[1]].not_before, got[ids[1]].last_error) == (sent_at, later, "500")
