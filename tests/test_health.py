"""The bot's web server in polling mode too: /metrics scraped over HTTP and parsed as Prometheus would,
/healthz answering 503 while the database does not answer or a poller gets no answers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url
from sqlmodel import select

from bot.app import App
from storage.models import Announcement, AnnouncementStatus, ChatGroup, Delivery, Person, Place, utcnow
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.harness import HEAD, RESIDENT, VILLAGE_GROUPS, Harness
from tests.test_db_blips import Outage
from tests.test_surveys import NEIGHBOUR, open_survey, register

VILLAGE_CHATS = list(VILLAGE_GROUPS.values())
MALFORMED = {"message": {"message_id": "not a number", "chat": "nope"}}


async def get(app: App, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{app.web_port}{path}") as answer:
        return answer.status, await answer.text()


async def health(app: App) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{app.web_port}/healthz") as answer:
        return answer.status, await answer.json()


async def scrape(app: App) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by name and labels, parsed with prometheus_client's own parser."""
    status, text = await get(app, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(probe: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, "never became true"
        await asyncio.sleep(0.05)


async def test_metrics_count_updates_turns_and_deliveries_by_outcome(harness: Harness) -> None:
    app, fake = harness.app, harness.fake
    assert app is not None
    before = await scrape(app)
    await harness.send(RESIDENT, "/trogiup")
    await harness.send(RESIDENT, "/trogiup")
    fake.push_update(MALFORMED)
    await harness.settle()
    fake.kick(VILLAGE_GROUPS["THON-3"])  # the bot was removed from one village's group
    [preview] = await harness.send(HEAD, "/thongbao Họp thôn lúc 19h tối nay")
    await harness.press(HEAD, HEAD, preview, "1")  # "Gửi ngay"
    await harness.wait_groups(VILLAGE_CHATS[:2])

    async def all_delivered() -> bool:
        samples = await scrape(app)
        return value(samples, "langso_deliveries_total", platform="telegram", outcome="sent") == 2 and value(
            samples, "langso_deliveries_total", platform="telegram", outcome="stopped") == 1

    await until(all_delivered)
    after = await scrape(app)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # two questions, the notice and its button; one update nobody could read
    assert moved("langso_updates_received_total", platform="telegram") == 5
    assert moved("langso_updates_handled_total", platform="telegram") == 4
    assert moved("langso_updates_failed_total", platform="telegram") == 1
    assert moved("langso_turn_seconds_count", platform="telegram") == 4
    assert moved("langso_turn_seconds_bucket", platform="telegram", le="+Inf") == 4
    assert 0 < moved("langso_turn_seconds_sum", platform="telegram") < 4 * 10
    assert value(after, "langso_deliveries_total", platform="telegram", outcome="failed") == 0
    assert value(after, "langso_outbox_pending", platform="telegram") == 0
    assert value(after, "langso_database_up") == 1
    assert value(after, "langso_last_update_timestamp_seconds", platform="telegram") > 0


async def test_outbox_depth_and_age_show_notices_stuck_for_a_platform_the_bot_no_longer_serves(harness: Harness) -> None:
    app = harness.app
    assert app is not None
    async with app.sessions() as session:  # Zalo groups with notices due; the bot has no Zalo token now
        village = (await session.exec(select(Place).where(Place.code == "THON-1"))).one()
        author = (await session.exec(select(Person))).first()
        notice = Announcement(author_id=author.id, text="Họp thôn", status=AnnouncementStatus.QUEUED)
        groups = [ChatGroup(platform="zalo", chat_id=f"g-{n}", title="Nhóm Zalo", place_id=village.id) for n in range(3)]
        session.add_all([notice, *groups])
        await session.flush()
        for group, due in zip(groups, (timedelta(minutes=-2), timedelta(minutes=-1), timedelta(hours=1)), strict=True):
            session.add(Delivery(announcement_id=notice.id, group_id=group.id, not_before=utcnow() + due))
        await session.commit()
    samples = await scrape(app)
    assert value(samples, "langso_outbox_pending", platform="zalo") == 2  # the one due in an hour is not late
    assert 120 <= value(samples, "langso_outbox_oldest_pending_seconds", platform="zalo") < 180
    assert value(samples, "langso_outbox_pending", platform="telegram") == 0


async def test_reminders_sent_are_counted(harness: Harness) -> None:
    app = harness.app
    assert app is not None
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)  # registered, not finished
    await harness.send(HEAD, "/tiendo")
    await harness.send(HEAD, "1")
    await harness.send(HEAD, "ngay")

    async def counted() -> bool:
        return value(await scrape(app), "langso_reminders_sent_total") == 1

    await until(counted)
    assert [m for m in harness.fake.messages_to(NEIGHBOUR) if "Nhắc nhẹ" in (m.text or "")]


async def test_healthz_answers_503_while_the_database_does_not(fake: FakeTelegram, database_url: str) -> None:
    app = App(settings_for(database_url, fake.url))
    await app.start()
    try:
        fake.add_private(RESIDENT)
        fake.message(RESIDENT, RESIDENT, "/trogiup")
        await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) == 1)
        status, report = await health(app)
        assert status == 200, report
        assert report["database"] == "ok"
        assert report["channels"]["telegram"]["mode"] == "polling"
        assert report["channels"]["telegram"]["last_update"]
        assert report["channels"]["telegram"]["last_poll"]
        assert str(RESIDENT) not in str(report)  # counts and times, nothing about anyone

        with database_away(database_url):
            status, report = await health(app)
            assert status == 503, report
            assert report["database"] == "unavailable", report
            assert value(await scrape(app), "langso_database_up") == 0
        await until(lambda: _healthy(app))
    finally:
        await app.stop()


async def test_healthz_answers_503_when_polling_has_not_succeeded_for_a_long_while(
    fake: FakeTelegram, sqlite_url: str
) -> None:
    app = App(settings_for(sqlite_url, fake.url))
    await app.start()
    try:
        assert app.health is not None
        app.health.poll_stale_after = 1.0  # five minutes in production
        await until(lambda: _healthy(app))
        await fake.stop()  # Telegram unreachable: every getUpdates fails from now on
        await asyncio.sleep(1.5)
        status, report = await health(app)
        assert status == 503, report
        assert report["database"] == "ok", report
        assert report["channels"]["telegram"]["healthy"] is False
    finally:
        await app.stop()


async def test_healthz_in_webhook_mode_tells_when_the_last_update_came(
    fake: FakeTelegram, sqlite_url: str, unused_tcp_port: int
) -> None:
    settings = settings_for(
        sqlite_url, fake.url,
        telegram={"mode": "webhook", "webhook_url": f"http://127.0.0.1:{unused_tcp_port}/telegram/webhook"},
        env={"LANGSO_WEBHOOK_SECRET": "s3cret-token"}, web={"port": unused_tcp_port},
    )
    app = App(settings)
    await app.start()
    try:
        status, report = await health(app)
        assert status == 200
        assert report["channels"]["telegram"] == {"mode": "webhook", "last_update": None, "healthy": True}
        fake.add_private(RESIDENT)
        fake.message(RESIDENT, RESIDENT, "/trogiup")
        await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) == 1)
        status, report = await health(app)
        assert status == 200
        assert report["channels"]["telegram"]["last_update"]
    finally:
        await app.stop()


async def _healthy(app: App) -> bool:
    return (await health(app))[0] == 200


class database_away:
    """SQLite: another process holds the write lock; PostgreSQL: the server refuses the bot's database."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._undo: Any = None

    def __enter__(self) -> None:
        if make_url(self._url).get_backend_name() == "sqlite":
            locker = sqlite3.connect(make_url(self._url).database, isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            self._undo = locker.close  # closing ends the transaction and frees the lock
        else:
            outage = Outage(self._url)
            outage.begin()
            self._undo = outage.close

    def __exit__(self, *_exc: object) -> None:
        self._undo()
