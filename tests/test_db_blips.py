"""Nothing is lost, and no chat stalls, when the database is away for a while.

PostgreSQL outages are real: the test database stops accepting connections and every open one is
ended (`Outage`), the way a restart of the server looks to the bot. A slow database is a table locked
by another connection. SQLite's "database is locked" comes from another connection holding its lock.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import func, select

from bot.app import App
from bot.channels.zalo import ZaloChannel
from bot.scheduler import JOB_PREFIX
from storage.db import async_url
from storage.models import InboxUpdate
from storage.outage import unavailable
from tests.conftest import PG_ADMIN, settings_for
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.harness import HEAD, RESIDENT, Harness

TEXT = "message.text.received"
SECRET_WORDS = "bí mật riêng của bà Lan"  # what people wrote never reaches the logs


class Outage:
    """Cuts the bot off its PostgreSQL database: new connections refused, open ones ended. Usable
    from any thread (a bot that blocks its event loop cannot be rescued from that loop)."""

    def __init__(self, database_url: str) -> None:
        self.name = make_url(database_url).database
        self._admin = psycopg.connect(PG_ADMIN, autocommit=True)

    def begin(self) -> None:
        self._admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS false')
        self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.name],
        )

    def end(self) -> None:
        self._admin.execute(f'ALTER DATABASE "{self.name}" ALLOW_CONNECTIONS true')

    def waiting_on_locks(self) -> int:
        """Connections of the bot's database waiting for a lock another connection holds."""
        return self._admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'", [self.name]
        ).fetchone()[0]

    def wait_for_a_lock_wait(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.waiting_on_locks():
            assert time.monotonic() < deadline, "nothing waited for the lock"
            time.sleep(0.02)

    def has_job(self, job_id: str) -> bool:
        with psycopg.connect(PG_ADMIN, dbname=self.name) as connection:
            return connection.execute("SELECT 1 FROM apscheduler_jobs WHERE id = %s", [job_id]).fetchone() is not None

    def close(self) -> None:
        self.end()
        self._admin.close()


@pytest.fixture
def outage(postgres_url: str) -> Iterator[Outage]:
    cut = Outage(postgres_url)
    yield cut
    cut.close()


def holding(database_url: str, statement: str) -> psycopg.Connection:
    """Another client holding a lock until its connection is rolled back or ended."""
    connection = psycopg.connect(database_url)
    connection.execute(statement)
    return connection


def release_later(connection: psycopg.Connection, seconds: float) -> threading.Timer:
    timer = threading.Timer(seconds, connection.close)  # a thread: the bot's loop may be what is stuck
    timer.start()
    return timer


@pytest.fixture
async def pg(fake: FakeTelegram, postgres_url: str) -> AsyncIterator[Harness]:
    h = Harness(fake, settings_for(postgres_url, fake.url))
    await h.start()
    await h.seed_commune()
    yield h
    await h.stop()


async def _compose_recurring(h: Harness) -> None:
    """The head has written a weekly notice and sees the confirmation; "1" saves it."""
    await h.send(HEAD, "/thongbao Nhắc: họp giao ban thôn")
    await h.send(HEAD, "2")
    [confirm] = await h.send(HEAD, "moi chu nhat 19h")
    assert "19:00 mỗi Chủ nhật" in confirm.text


async def _saved_number(h: Harness) -> int:
    """The number of the notice the head was just told is saved."""
    await h.fake.wait_for(lambda: "số " in (h.fake.messages_to(HEAD)[-1].text or ""))
    saved = h.fake.messages_to(HEAD)[-1].text
    return int(saved.split("số ")[1].split(":")[0])


async def _job_appears(outage: Outage, number: int, timeout: float) -> None:
    """The job is in the job table (read by another client: the job store's own connections are what
    is under test)."""
    deadline = time.monotonic() + timeout
    while not outage.has_job(f"{JOB_PREFIX}{number}"):
        assert time.monotonic() < deadline, f"recurring notice {number} has no job"
        await asyncio.sleep(0.2)


# --- 1. Zalo updates wait in memory until the database keeps them ---------------------------------


async def test_zalo_messages_sent_while_the_database_is_down_are_all_answered(
    postgres_url: str, outage: Outage, caplog: pytest.LogCaptureFixture
) -> None:
    """Zalo hands an update out once. 20 s without a database (the old code gave up after ~15 s):
    polling goes on, and once the database is back every message is kept and answered, in order."""
    caplog.set_level(logging.INFO)
    async with FakeZalo() as zalo:
        env = {"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url}
        app = App(settings_for(postgres_url, None, env=env))
        await app.start()
        try:
            zalo.push(TEXT, "zl-0", "zl-0", "/trogiup")
            await zalo.wait_for(lambda: len(zalo.messages_to("zl-0")) > 0)
            per_help = len(zalo.messages_to("zl-0"))
            users = ["zl-1", "zl-2", "zl-3"]
            outage.begin()
            for user in users:
                zalo.push(TEXT, user, user, "/trogiup")
                zalo.push(TEXT, user, user, f"/hoi {SECRET_WORDS}")
            await zalo.wait_for(lambda: zalo.pending_updates == 0, timeout=5)  # polling did not wait
            await asyncio.sleep(20)
            outage.end()
            await zalo.wait_for(lambda: all(len(zalo.messages_to(u)) >= per_help + 1 for u in users), timeout=45)
            help_texts = [m.text for m in zalo.messages_to("zl-0")]
            for user in users:  # the help first: the order they were written in
                assert [m.text for m in zalo.messages_to(user)][:per_help] == [t.replace("zl-0", user) for t in help_texts]
            async with app.sessions() as session:
                kept = (await session.exec(select(func.count()).select_from(InboxUpdate))).one()
            assert kept == 1 + 2 * len(users)
        finally:
            await app.stop()
    assert SECRET_WORDS not in caplog.text


async def _all_taken(zalo: FakeZalo) -> None:
    """Every pushed update was handed out and the bot came back for more: the last answer has been read
    (an empty queue alone only says the answer was sent)."""
    await zalo.wait_for(lambda: zalo.pending_updates == 0)
    idle = zalo.idle_polls
    await zalo.wait_for(lambda: zalo.idle_polls > idle)


async def test_a_full_backlog_logs_ids_and_sizes_and_a_stop_counts_what_is_left(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite locked by another connection: updates wait in arrival order up to the bound; what goes
    past it, or is still waiting at the stop, is logged by id, size and count, never by content."""
    caplog.set_level(logging.INFO)
    path = tmp_path / "kept.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.05})
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE kept (key TEXT PRIMARY KEY)"))

    async def store(key: str, payload: dict[str, Any]) -> None:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO kept (key) VALUES (:key)"), {"key": key})

    async def kept() -> list[str]:
        async with engine.connect() as connection:
            return [row[0] for row in await connection.execute(text("SELECT key FROM kept ORDER BY rowid"))]

    locker = sqlite3.connect(path, isolation_level=None)
    async with FakeZalo() as zalo:
        channel = ZaloChannel(zalo.token, zalo.url, connections=2)
        channel.poll_timeout = 1
        channel.backlog_limit = 3
        await channel.start()
        polling = asyncio.create_task(channel.poll(store))
        try:
            locker.execute("BEGIN EXCLUSIVE")
            for n in range(5):
                zalo.push(TEXT, "c-1", "u-1", f"{SECRET_WORDS} {n}", message_id=f"m-{n}")
            await _all_taken(zalo)
            locker.execute("ROLLBACK")
            deadline = time.monotonic() + 10
            while len(await kept()) < 3:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            assert await kept() == [f"{TEXT}:m-{n}" for n in range(3)]
            lost = [r.getMessage() for r in caplog.records if "lost" in r.getMessage()]
            assert [f"{TEXT}:m-3" in line and "bytes" in line for line in lost] == [True, False]
            assert f"{TEXT}:m-4" in lost[1]

            locker.execute("BEGIN EXCLUSIVE")
            for n in range(5, 7):
                zalo.push(TEXT, "c-1", "u-1", SECRET_WORDS, message_id=f"m-{n}")
            await _all_taken(zalo)
        finally:
            polling.cancel()
            await asyncio.gather(polling, return_exceptions=True)
            locker.close()
            await channel.stop()
            await engine.dispose()
    assert "stopping with 2 received updates not stored" in caplog.text
    assert SECRET_WORDS not in caplog.text


# --- 2. a turn the database cut off is tried again in the same process -----------------------------


async def test_a_turn_cut_off_by_an_outage_is_answered_without_a_restart(
    pg: Harness, postgres_url: str, outage: Outage
) -> None:
    """The resident's two messages are kept; the first turn is half-way (waiting for a lock) when the
    database goes away for 3 s. Both are answered once it is back, in the order they were written."""
    pg.fake.message(RESIDENT, RESIDENT, "/trogiup")  # a first contact: the person exists from now on
    await pg.fake.wait_for(lambda: len(pg.fake.messages_to(RESIDENT)) > 0)
    await pg.app.dispatcher.drain()
    help_text = pg.fake.messages_to(RESIDENT)[-1].text
    before = len(pg.fake.messages_to(RESIDENT))

    blocker = holding(postgres_url, "BEGIN; LOCK TABLE identity IN ACCESS EXCLUSIVE MODE")
    pg.fake.message(RESIDENT, RESIDENT, "/trogiup")
    pg.fake.message(RESIDENT, RESIDENT, "/hoi cách cài VNeID")
    await asyncio.to_thread(outage.wait_for_a_lock_wait)
    await pg.eventually(lambda: _inbox_count(pg), 3)  # both are kept: only their turns wait
    outage.begin()  # ends the blocker too
    blocker.close()
    await asyncio.sleep(3)
    outage.end()
    await pg.fake.wait_for(lambda: len(pg.fake.messages_to(RESIDENT)) >= before + 2, timeout=30)
    first, second = pg.fake.messages_to(RESIDENT)[before : before + 2]
    assert first.text == help_text
    assert "VNeID" in second.text


async def _inbox_count(h: Harness) -> int:
    async with h.app.sessions() as session:
        return (await session.exec(select(func.count()).select_from(InboxUpdate))).one()


# --- 3. schedule syncs are retried; the job store's connections are checked --------------------------


async def test_a_recurring_notice_saved_after_an_outage_gets_its_job(pg: Harness, outage: Outage) -> None:
    """Every connection the bot had, the job store's included, died in a short outage; the next notice
    saved still gets its job (the old job store used a dead connection and the sync failed silently)."""
    await _compose_recurring(pg)
    outage.begin()
    await asyncio.sleep(0.5)
    outage.end()
    pg.fake.message(HEAD, HEAD, "1")
    number = await _saved_number(pg)
    await _job_appears(outage, number, timeout=15)


async def test_a_sync_that_fails_during_an_outage_is_retried(pg: Harness, postgres_url: str, outage: Outage) -> None:
    """The sync is waiting on the job table when the database goes away for 3 s: it is tried again
    until the job is there, and the database stays the truth."""
    await _compose_recurring(pg)
    blocker = holding(postgres_url, "BEGIN; LOCK TABLE apscheduler_jobs IN ACCESS EXCLUSIVE MODE")

    def cut_while_the_sync_waits() -> None:  # in a thread: the old scheduler blocked the event loop here
        outage.wait_for_a_lock_wait()
        outage.begin()
        time.sleep(3)
        outage.end()

    cutting = threading.Thread(target=cut_while_the_sync_waits)
    cutting.start()
    pg.fake.message(HEAD, HEAD, "1")
    number = await _saved_number(pg)
    await asyncio.to_thread(cutting.join)
    blocker.close()
    await _job_appears(outage, number, timeout=30)


# --- 4. the job store's database calls never block the chats ----------------------------------------


async def test_chats_are_answered_while_the_job_store_waits_for_a_lock(pg: Harness, postgres_url: str, outage: Outage) -> None:
    """The job table is locked by someone else for 8 s while a sync needs it: a resident writing
    meanwhile is answered at once (the old scheduler froze every chat until the lock went)."""
    await _compose_recurring(pg)
    release = release_later(holding(postgres_url, "BEGIN; LOCK TABLE apscheduler_jobs IN ACCESS EXCLUSIVE MODE"), 8)
    loop = asyncio.get_running_loop()
    before = len(pg.fake.messages_to(RESIDENT))
    asked: list[float] = []

    def ask_once_the_sync_waits() -> None:  # in a thread, so that a frozen loop cannot delay the clock
        outage.wait_for_a_lock_wait()
        asked.append(time.monotonic())
        loop.call_soon_threadsafe(pg.fake.message, RESIDENT, RESIDENT, "/trogiup")

    try:
        pg.fake.message(HEAD, HEAD, "1")  # saving the notice asks for a sync
        await asyncio.to_thread(ask_once_the_sync_waits)
        await pg.fake.wait_for(lambda: len(pg.fake.messages_to(RESIDENT)) > before, timeout=20)
        reply = pg.fake.messages_to(RESIDENT)[before]
        assert reply.at - asked[0] < 2.0, f"the reply took {reply.at - asked[0]:.1f} s"
    finally:
        await asyncio.to_thread(release.join)
    await _job_appears(outage, await _saved_number(pg), timeout=15)


# --- what counts as the database being away ---------------------------------------------------------


async def test_a_locked_sqlite_is_an_outage_and_a_missing_table_is_a_bug(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}", connect_args={"timeout": 0.05})
    locker = sqlite3.connect(path, isolation_level=None)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE t (x INTEGER)"))
        with pytest.raises(OperationalError) as missing:
            async with engine.begin() as connection:
                await connection.execute(text("SELECT * FROM no_such_table"))
        assert not unavailable(missing.value)
        locker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(OperationalError) as locked:
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO t VALUES (1)"))
        assert unavailable(locked.value)
    finally:
        locker.close()
        await engine.dispose()


async def test_a_refused_postgresql_connection_is_an_outage(postgres_url: str, outage: Outage) -> None:
    engine = create_async_engine(async_url(postgres_url))
    outage.begin()
    try:
        with pytest.raises(OperationalError) as refused:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        assert unavailable(refused.value)
    finally:
        outage.end()
        await engine.dispose()

