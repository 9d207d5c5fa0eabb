"""Several `langso run` processes on one PostgreSQL database against one fake Telegram server: a
broadcast, a recurring notice and a reminder plan each reach every chat once, also when a process is
killed mid-way, when every process was down at the due time, or when a 429 holds a send for longer
than its lease."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import insert

from bot.scheduler import JOB_PREFIX, SharedJobStore, fire
from handlers import admin
from handlers.people import person_for
from handlers.vietnamese_time import Recurrence
from storage.db import create_engine, session_factory, sync_url
from storage.migrate import upgrade
from storage.models import (
    Announcement,
    AnnouncementStatus,
    Campaign,
    ChatGroup,
    Delivery,
    Household,
    Identity,
    Person,
    ReminderPlan,
    utcnow,
)
from tests.cli_helpers import CONFIG, ROOT, environment
from tests.fake_telegram import FakeTelegram

TOKEN = "515151:SCALE-SENDING-TOKEN"
AUTHOR = 900  # the village head's Telegram id
ZONE = "Asia/Ho_Chi_Minh"


class Bots:
    """`langso run` processes as an operator starts them on one database: webhook mode (no process
    polls; nothing is pushed to them here), each with its own web port and log file."""

    def __init__(self, folder: Path, database_url: str, fake: FakeTelegram, *, lease_seconds: int = 60,
                 max_in_flight: int = 32, per_second: int = 30) -> None:
        text = CONFIG.read_text(encoding="utf-8")
        for old, new in (
            ('start = "21:00"', 'start = "00:00"'),
            ('end = "06:00"', 'end = "00:00"'),
            ('mode = "polling"\nwebhook_url = ""', 'mode = "webhook"\nwebhook_url = "https://bot.example/telegram/webhook"'),
            ("port = 8080", "port = 0"),
            ("lease_seconds = 60", f"lease_seconds = {lease_seconds}"),
            ("max_in_flight = 32", f"max_in_flight = {max_in_flight}"),
            ("per_bot_per_second = 30", f"per_bot_per_second = {per_second}"),
        ):
            assert old in text, old
            text = text.replace(old, new, 1)
        self.folder = folder
        (folder / "config.toml").write_text(text, encoding="utf-8")
        self.env = environment({
            "LANGSO_CONFIG": str(folder / "config.toml"),
            "LANGSO_DATABASE_URL": database_url,
            "LANGSO_TELEGRAM_TOKEN": TOKEN,
            "LANGSO_TELEGRAM_API_URL": fake.url,
            "LANGSO_TELEGRAM_WEBHOOK_SECRET": "scale-test-secret",
        })
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(self, count: int) -> None:
        for _ in range(count):
            log = (self.folder / f"bot-{len(self.processes)}.log").open("wb")
            self.processes.append(await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", cwd=ROOT, env=self.env, stdout=log, stderr=log,
            ))

    def log(self, n: int) -> str:
        return (self.folder / f"bot-{n}.log").read_text(encoding="utf-8", errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- bot {n}\n{self.log(n)[-3000:]}" for n in range(len(self.processes)))

    async def ready(self, timeout: float = 40.0) -> None:
        """Every process serves its web port, which it opens once its scheduler and workers run."""
        for _ in range(int(timeout * 10)):
            if all("web server on" in self.log(n) for n in range(len(self.processes))):
                return
            if any(p.returncode is not None for p in self.processes):
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"the bots did not start\n{self.logs()}")

    def kill(self, n: int) -> None:
        self.processes[n].send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN, group_limit_per_minute=None, private_limit_per_second=None) as server:
        yield server


async def _village(url: str, fake: FakeTelegram, groups: int) -> tuple[int, int]:
    """A commune, its village THON with `groups` groups, and the village head who writes the notices
    (a private chat with the bot): (village id, head's person id)."""
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            await admin.add_place(session, "commune", "XA", "Xã Một", None)
            village = await admin.add_place(session, "village", "THON", "Thôn Một", "XA")
            head = await person_for(session, "telegram", str(AUTHOR), "Trưởng thôn", private=True)
            await admin.grant_role(session, "telegram", str(AUTHOR), "village_head", "THON")
            session.add_all(
                ChatGroup(platform="telegram", chat_id=str(-n), place_id=village.id, title=f"Nhóm {n}")
                for n in range(1, groups + 1)
            )
            await session.commit()
            assert village.id is not None
            assert head.id is not None
            ids = village.id, head.id
    finally:
        await engine.dispose()
    fake.add_private(AUTHOR)
    for n in range(1, groups + 1):
        fake.add_group(-n)
    return ids


async def _add(url: str, *rows: object) -> list[int]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            session.add_all(rows)
            await session.commit()
            return [row.id for row in rows]  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def _queue(url: str, author_id: int, text: str, groups: int) -> None:
    """A notice in the outbox for groups -1 … -groups, as a confirmed /thongbao leaves it."""
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as session:
            notice = Announcement(author_id=author_id, text=text, status=AnnouncementStatus.QUEUED,
                                  author_name="Trưởng thôn", from_place="Thôn Một")
            session.add(notice)
            await session.flush()
            ids = (await session.exec(ChatGroup.__table__.select().with_only_columns(ChatGroup.id))).scalars().all()
            await session.exec(insert(Delivery), params=[{"announcement_id": notice.id, "group_id": g} for g in ids])  # type: ignore[call-overload]
            await session.commit()
    finally:
        await engine.dispose()


def _recurring(author_id: int, village_id: int, text: str, rule: Recurrence) -> Announcement:
    return Announcement(author_id=author_id, text=text, status=AnnouncementStatus.RECURRING, recurrence=rule.encode(),
                        target_place_id=village_id, author_name="Trưởng thôn", from_place="Thôn Một")


def _store_job(url: str, announcement_id: int, rule: Recurrence, next_run: datetime) -> None:
    """The recurring notice's job as the last running process left it in the shared store, next due at
    `next_run` (a cron rule fires on the minute; the test does not wait for one). Written to the store
    directly: a scheduler, even paused, would run it on its way down."""
    scheduler = BackgroundScheduler(timezone=ZONE)  # never started: it only carries the defaults
    store = SharedJobStore(url=sync_url(url))
    store.start(scheduler, "default")
    try:
        store.add_job(Job(
            scheduler, id=f"{JOB_PREFIX}{announcement_id}", func=fire, args=[JOB_PREFIX, announcement_id], kwargs={},
            trigger=rule.trigger(scheduler.timezone), executor="default", name="fire", next_run_time=next_run,
            coalesce=True, misfire_grace_time=3600, max_instances=1,
        ))
    finally:
        store.shutdown()


def _per_chat(fake: FakeTelegram, text: str) -> Counter[int]:
    return Counter(s.chat_id for s in fake.sent if s.text and text in s.text)


async def test_a_broadcast_reaches_every_group_once_when_one_of_three_processes_is_killed(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    _, head = await _village(postgres_url, fake, 300)
    bots = Bots(tmp_path, postgres_url, fake, lease_seconds=3, max_in_flight=8, per_second=25)
    try:
        await bots.start(3)
        await bots.ready()
        await _queue(postgres_url, head, "Lịch tiêm phòng cho trẻ", 300)
        await fake.wait_for(lambda: len(_per_chat(fake, "Lịch tiêm phòng")) >= 60, timeout=30)
        bots.kill(0)  # mid-way: up to max_in_flight of its claims were being sent
        await fake.wait_for(lambda: len(_per_chat(fake, "Lịch tiêm phòng")) == 300, timeout=45)
        await asyncio.sleep(1.0)  # anything sent twice late would show now
    finally:
        await bots.stop()
    counts = _per_chat(fake, "Lịch tiêm phòng")
    assert set(counts) == set(range(-300, 0)), bots.logs()
    assert sum(counts.values()) - 300 <= 8, f"duplicates beyond the killed process's in-flight sends: {counts}"


async def test_a_process_stopped_mid_broadcast_hands_back_at_once_what_it_had_not_sent(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    """A stop (a deploy, a scale-down) lets the sends in flight finish and gives back the rows it had
    claimed ahead: the other process sends them now, not once their 60 s lease has run out."""
    _, head = await _village(postgres_url, fake, 300)
    bots = Bots(tmp_path, postgres_url, fake, max_in_flight=8, per_second=25)
    try:
        await bots.start(2)
        await bots.ready()
        await _queue(postgres_url, head, "Lịch họp thôn", 300)
        await fake.wait_for(lambda: len(_per_chat(fake, "Lịch họp thôn")) >= 60, timeout=30)
        bots.processes[0].send_signal(signal.SIGTERM)
        await fake.wait_for(lambda: len(_per_chat(fake, "Lịch họp thôn")) == 300, timeout=30)
        assert await asyncio.wait_for(bots.processes[0].wait(), 10) == 0, bots.logs()
    finally:
        await bots.stop()
    assert _per_chat(fake, "Lịch họp thôn") == Counter({-n: 1 for n in range(1, 301)}), bots.logs()


async def test_a_recurring_notice_due_while_two_processes_run_reaches_each_group_once(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    village, head = await _village(postgres_url, fake, 20)
    rule = Recurrence("sun", 19, 0)
    [number] = await _add(postgres_url, _recurring(head, village, "Họp giao ban thôn", rule))
    due = utcnow() + timedelta(seconds=20)  # after both have started: each one's scheduler fires it
    await asyncio.to_thread(_store_job, postgres_url, number, rule, due)
    bots = Bots(tmp_path, postgres_url, fake)
    try:
        await bots.start(2)
        await bots.ready()
        assert utcnow() < due, "the bots started too slowly for this test"
        await fake.wait_for(lambda: len(_per_chat(fake, "Họp giao ban")) == 20, timeout=40)
        await asyncio.sleep(3.0)  # the second process's firing, had it queued again, would be sent by now
    finally:
        await bots.stop()
    assert _per_chat(fake, "Họp giao ban") == Counter({-n: 1 for n in range(1, 21)}), bots.logs()
    assert all("queued to 20 groups" in bots.log(n) or "is queued already" in bots.log(n) for n in range(2)), bots.logs()


async def test_processes_back_within_the_grace_queue_a_missed_notice_once_and_report_a_longer_outage_once(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    village, head = await _village(postgres_url, fake, 10)
    rule = Recurrence("sun", 19, 0)
    recent, old = await _add(postgres_url, _recurring(head, village, "Thu gom rác", rule),
                             _recurring(head, village, "Kiểm tra đường điện", rule))
    now = utcnow()
    await asyncio.to_thread(_store_job, postgres_url, recent, rule, now - timedelta(minutes=20))  # within the hour
    await asyncio.to_thread(_store_job, postgres_url, old, rule, now - timedelta(hours=3))
    bots = Bots(tmp_path, postgres_url, fake)
    try:
        await bots.start(2)  # both come back together: each finds both runs missed
        await bots.ready()
        await fake.wait_for(lambda: len(_per_chat(fake, "Thu gom rác")) == 10, timeout=30)
        await fake.wait_for(lambda: bool(_per_chat(fake, "Thông báo nhắc lại số")), timeout=20)
        await asyncio.sleep(3.0)
    finally:
        await bots.stop()
    assert _per_chat(fake, "Thu gom rác") == Counter({-n: 1 for n in range(1, 11)}), bots.logs()
    assert not _per_chat(fake, "Kiểm tra đường điện"), "three hours late: not sent to the groups"
    told = [s.text for s in fake.messages_to(AUTHOR)]
    assert len(told) == 1, told
    assert f"số {old} " in told[0], told
    assert sum(bots.log(n).count(f"recurring notice {old}: the run due at") for n in range(2)) == 1, bots.logs()


async def test_a_reminder_plan_reminds_each_household_once(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    village, head = await _village(postgres_url, fake, 0)
    households = [Household(place_id=village, head_name=f"Hộ {n}", join_code=f"JOIN{n:03d}") for n in range(1, 31)]
    await _add(postgres_url, *households)
    members = [Person(display_name=f"Hộ {n}", household_id=h.id) for n, h in enumerate(households, 1)]
    await _add(postgres_url, *members)
    await _add(postgres_url, *(Identity(platform="telegram", user_id=str(5000 + n), person_id=p.id,
                                        private_chat_at=utcnow()) for n, p in enumerate(members, 1)))
    for n in range(1, 31):
        fake.add_private(5000 + n)
    campaigns = await _add(postgres_url, *(Campaign(survey_code=code, place_id=village, opened_by=head)
                                           for code in ("ho-gia-dinh", "chuyen-doi-so")))
    # two plans due the same minute (two surveys of the village), as every process finds them at its start
    await _add(postgres_url, *(ReminderPlan(campaign_id=c, created_by=head, run_at=utcnow()) for c in campaigns))
    bots = Bots(tmp_path, postgres_url, fake)
    try:
        await bots.start(2)
        await bots.ready()
        await fake.wait_for(lambda: all(fake.messages_to(5000 + n) for n in range(1, 31)), timeout=30)
        await asyncio.sleep(3.0)
    finally:
        await bots.stop()
    assert {n: len(fake.messages_to(5000 + n)) for n in range(1, 31)} == dict.fromkeys(range(1, 31), 1), bots.logs()


async def test_a_send_held_by_a_long_429_is_not_sent_again_by_another_process(
    tmp_path: Path, postgres_url: str, fake: FakeTelegram
) -> None:
    """Each group's first send gets a 429 with retry_after 8 s: the process holds the group's other
    notice in its pacer for 8 s, four times its 2 s lease."""
    _, head = await _village(postgres_url, fake, 12)
    for n in range(1, 13):
        fake.fail_next(-n, "429", retry_after=8)
    bots = Bots(tmp_path, postgres_url, fake, lease_seconds=2)
    try:
        await bots.start(2)
        await bots.ready()
        await _queue(postgres_url, head, "Thông báo thứ nhất", 12)
        await _queue(postgres_url, head, "Thông báo thứ hai", 12)
        every = {-n: 1 for n in range(1, 13)}
        await fake.wait_for(
            lambda: len(_per_chat(fake, "thứ nhất")) == len(_per_chat(fake, "thứ hai")) == 12, timeout=40
        )
        await asyncio.sleep(3.0)
    finally:
        await bots.stop()
    assert (_per_chat(fake, "thứ nhất"), _per_chat(fake, "thứ hai")) == (Counter(every), Counter(every)), bots.logs()
