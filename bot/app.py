"""Assembly: database, channels, dispatcher, one delivery worker per channel, recurring notices,
the way updates come in (long polling or webhooks) and the web server (webhooks, /healthz, /metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TextIO, TypeVar

import alembic.util
from aiohttp import web
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.answer_media import AnswerMedia
from bot.channels import telegram, zalo
from bot.channels.local import LocalChannel
from bot.channels.telegram import TelegramChannel
from bot.channels.zalo import ZaloChannel
from bot.config import ChannelSettings, Settings
from bot.delivery import DeliveryWorker
from bot.dispatcher import Dispatcher, Route
from bot.health import Health
from bot.leasing import LeaseKeeper, Poll
from bot.media import MediaFiles
from bot.metrics import Metrics
from bot.pacing import Pacer, Window
from bot.reminders import SurveyReminders
from bot.retention import InboxRetention
from bot.scheduler import Jobs, RecurringNotices
from bot.startup import StartError
from bot.telling import tell
from bot.web import make_app, webhook_handler
from bot.web.console import Console, mount, sender
from bot.web.media import mount_media
from handlers.handbook.search import Handbook
from handlers.surveys.catalog import Catalog
from storage.db import create_engine, is_sqlite, session_factory, shown
from storage.leases import Leases
from storage.migrate import upgrade
from storage.models import utcnow
from storage.outage import kind_of, retried, unavailable
from storage.sole import InUse, hold_sqlite

log = logging.getLogger(__name__)
T = TypeVar("T")  # what a spawned task returns



@dataclass(frozen=True)
class Remote:
    """What the app needs to know of a platform it reaches over the network."""

    channel: type[TelegramChannel | ZaloChannel]
    update_key: Callable[[dict[str, Any]], str | None]
    secret_header: str


REMOTE = {
    "telegram": Remote(TelegramChannel, telegram.update_key, "X-Telegram-Bot-Api-Secret-Token"),
    "zalo": Remote(ZaloChannel, zalo.update_key, "X-Bot-Api-Secret-Token"),
}


class App:
    def __init__(
        self, settings: Settings, *, local: LocalChannel | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.settings = settings
        self.local = local
        self.clock = clock
        self.remotes: dict[str, TelegramChannel | ZaloChannel] = {}
        self.workers: dict[str, DeliveryWorker] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._workers: set[asyncio.Task[None]] = set()
        self._web: web.AppRunner | None = None
        self.web_port: int | None = None  # the port the server listens on (the setting may say 0: any free one)
        self.metrics = Metrics()
        self.health: Health | None = None
        self._sync_wanted = False
        self._syncing: asyncio.Task[None] | None = None
        self._retention: asyncio.Task[None] | None = None
        self._media_pruning: asyncio.Task[None] | None = None
        self._answer_files: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._sole: TextIO | None = None  # SQLite: the lock that keeps a second process off the file
        self.leases: Leases | None = None  # PostgreSQL: other processes may share the work
        self._keeper: LeaseKeeper | None = None
        self._sweep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Everything up and receiving. A start that fails (a StartError for what the operator can
        fix) has closed whatever it had opened: channels, database, web server, tasks."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        settings = self.settings
        try:
            self._sole = hold_sqlite(settings.database_url)
        except InUse:
            raise StartError("sqlite_busy", database=shown(settings.database_url)) from None
        except OSError as exc:  # its folder cannot be made or written: the database cannot open either
            raise StartError("database", database=shown(settings.database_url), detail=_first_line(exc)) from None
        await _open_database(settings.database_url)
        self.engine = create_engine(settings.database_url)
        self.sessions = session_factory(self.engine)
        if not is_sqlite(settings.database_url):
            self.leases = Leases(self.engine)
            self._keeper = LeaseKeeper(self.leases)

        routes: dict[str, Route] = {}
        if self.local is not None:
            routes[self.local.platform] = Route(self.local, Pacer(1000, Window(1000, 1), Window(1000, 1)))
        for platform, remote in REMOTE.items():
            channel_settings: ChannelSettings = getattr(settings, platform)
            if not channel_settings.token:
                continue
            channel = remote.channel(
                channel_settings.token, channel_settings.api_url, connections=settings.delivery.max_in_flight + 8
            )
            await channel.start()
            self.remotes[platform] = channel
            limits = channel_settings.limits
            routes[platform] = Route(
                channel,
                Pacer(
                    limits.per_bot_per_second,
                    group=Window(limits.per_group_per_minute, 60.0),
                    private=Window(max(1, round(limits.per_private_per_second)), 1.0),
                ),
            )
            log.info("%s: connected", platform)

        telegram_bot = self.remotes.get("telegram")
        if isinstance(telegram_bot, TelegramChannel) and telegram_bot.username:  # getMe knows best
            links = replace(settings.handler.links, telegram_username=telegram_bot.username)
            settings = self.settings = replace(settings, handler=replace(settings.handler, links=links))
        self.media = MediaFiles(
            self.sessions,
            {platform: route.channel for platform, route in routes.items()},
            settings.handler.links.console_url,
            timedelta(days=settings.media_keep_days),
            self.clock,
            partial(tell, self.sessions, routes),
        )
        for platform, route in routes.items():
            self.workers[platform] = DeliveryWorker(
                self.engine,
                route.channel,
                route.pacer,
                settings.delivery,
                sole_process=is_sqlite(settings.database_url),
                clock=self.clock,
                metrics=self.metrics,
                media=self.media,
            )
        self.jobs = Jobs(settings.database_url, settings.handler.timezone)
        self.recurring = RecurringNotices(
            self.jobs, self.sessions, settings.handler, self.wake_delivery, partial(tell, self.sessions, routes), self.clock
        )
        async with self.sessions() as session:
            self.handbook = await Handbook.load(session)
            self.surveys = Catalog()
            await self.surveys.refresh(session)
        self.dispatcher = Dispatcher(
            self.sessions,
            routes,
            settings.handler,
            self.handbook,
            self.surveys,
            on_outbox=self.wake_delivery,
            on_schedule=self._schedule_changed,
            clock=self.clock,
            metrics=self.metrics,
            leases=self.leases,
        )
        self.console = Console(self.sessions, settings.handler, self.handbook, sender(routes), self.clock,
                               self.surveys, self.wake_delivery, self._schedule_changed)
        for worker in self.workers.values():
            task = asyncio.create_task(worker.run())
            task.add_done_callback(_report_crash)
            self._workers.add(task)
        await self.jobs.start()
        await self.recurring.start()
        self.reminders = SurveyReminders(
            self.jobs, self.sessions, routes, self.surveys, settings.handler, self.clock, self.metrics
        )
        await self.reminders.start()
        self.jobs.resume()  # both are ready for their jobs to fire
        self._spawn(self.reminders.send_pending())  # what a crash left unsent: not in the start-up path
        self._retention = self._spawn(InboxRetention(self.sessions, settings.privacy, self.clock).run(self._stopping))
        self._media_pruning = self._spawn(self.media.run(self._stopping))
        self.answer_media = AnswerMedia(self.engine, self.sessions, {p: r.channel for p, r in routes.items()}, self.clock,
                                        sole_process=is_sqlite(settings.database_url), surveys=self.surveys,
                                        timezone=settings.handler.timezone, tell=partial(tell, self.sessions, routes))
        self._answer_files = self._spawn(self.answer_media.run(self._stopping))
        resumed = await self.dispatcher.resume()
        if resumed:
            log.info("%d updates received before the last stop are being handled now", resumed)
        self._poll(await self._receive())

    async def _receive(self) -> dict[str, Poll]:
        """A webhook route on the web server, which runs whenever the bot serves a platform (the local
        demo has none), or long polling: the platforms to poll are returned."""
        polls: dict[str, Poll] = {}
        if not self.remotes:
            return polls
        hooks: list[tuple[TelegramChannel | ZaloChannel, str, str]] = []  # channel, public URL, secret
        modes = {platform: getattr(self.settings, platform).mode for platform in self.remotes}
        self.health = Health(self.engine, self.sessions, self.metrics, modes,
                             polling_since=self._keeper.polling_since if self._keeper else None)
        web_app = make_app(self.health)
        mount_media(web_app, self.media)
        mount(web_app, self.console)
        for platform, channel in self.remotes.items():
            channel_settings: ChannelSettings = getattr(self.settings, platform)
            if channel_settings.mode == "polling":
                polls[platform] = partial(channel.poll, partial(self.dispatcher.receive, platform),
                                          partial(self.metrics.polled, platform))
                continue
            remote = REMOTE[platform]
            secret = channel_settings.webhook_secret or ""  # config refuses webhook mode without one
            web_app.router.add_post(
                f"/{platform}/webhook",
                webhook_handler(platform, secret, remote.secret_header, remote.update_key, self.dispatcher.receive),
            )
            hooks.append((channel, channel_settings.webhook_url, secret))
        await self.serve(web_app)
        for channel, url, secret in hooks:
            await channel.set_webhook(url, secret)
        return polls

    def _poll(self, polls: dict[str, Poll]) -> None:
        """The only process (SQLite) polls; among several, the one holding a platform's poll lease. With
        several, leases are renewed, and chats another process left unhandled are taken up."""
        if self._keeper is None:
            for poll in polls.values():
                self._spawn(poll(lambda: True))
            return
        self._spawn(self._keeper.run(polls))
        self._sweep = self._spawn(self.dispatcher.sweep(self._stopping))

    async def serve(self, app: web.Application) -> None:
        self._web = web.AppRunner(app, access_log=None)  # monitoring asks every few seconds
        await self._web.setup()
        try:
            await web.TCPSite(self._web, self.settings.web_host, self.settings.web_port).start()
        except OSError as exc:  # in use, or an address this machine does not have
            raise StartError("port", host=self.settings.web_host, port=str(self.settings.web_port),
                             detail=exc.strerror or type(exc).__name__) from None
        self.web_port = self._web.addresses[0][1]
        log.info("web server on http://%s:%d (/healthz, /metrics)", self.settings.web_host, self.web_port)

    def _schedule_changed(self) -> None:
        """Sync the jobs with the database, retried until it works. Requests made while a sync runs or
        waits are covered by one more pass (each reads the database afresh); syncs never overlap."""
        if self._stopping.is_set():
            return  # the next start syncs
        self._sync_wanted = True
        if self._syncing is None or self._syncing.done():
            self._syncing = self._spawn(self._sync_schedules())

    async def _sync_schedules(self) -> None:
        try:
            while self._sync_wanted:
                await retried(self._sync_once, "schedule sync", stop=self._stopping)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("schedule sync left to the next start (%s)", kind_of(exc))  # stopping

    async def _sync_once(self) -> None:
        self._sync_wanted = False  # a request from now on needs another pass
        await self.recurring.sync()
        await self.reminders.sync()

    def wake_delivery(self) -> None:
        for worker in self.workers.values():
            worker.wake()

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(coroutine)
        task.add_done_callback(_report_crash)
        task.add_done_callback(self._tasks.discard)
        self._tasks.add(task)
        return task

    async def stop(self) -> None:
        """The graceful stop; it copes with a half-started app, which is how a failed start ends."""
        self._stopping.set()
        # the sync and the retention are let finish, not cancelled: a task cancelled inside a SQLite
        # transaction leaves the database locked for the rest of the process
        await asyncio.gather(*(t for t in (self._syncing, self._retention, self._media_pruning, self._answer_files,
                                         self._sweep)
                               if t is not None),
                             return_exceptions=True)
        for worker in self.workers.values():
            await worker.stop()
        await asyncio.gather(*self._workers, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if hasattr(self, "dispatcher"):
            self.dispatcher.stop()
            await self.dispatcher.drain()
        if self.leases is not None:
            with contextlib.suppress(Exception):  # not given up, they run out within seconds
                await self.leases.release_all()
        if hasattr(self, "jobs"):
            await self.jobs.stop()  # no job fires after this, and no fired job's work is left running
        if hasattr(self, "recurring"):
            self.recurring.stop()
        if hasattr(self, "reminders"):
            self.reminders.stop()
        if self._web is not None:
            await self._web.cleanup()
        if self.health is not None:
            await self.health.close()  # a database check still running finishes before the engine goes
        for channel in self.remotes.values():
            await channel.stop()
        if hasattr(self, "engine"):
            await self.engine.dispose()
        if self._sole is not None:
            self._sole.close()  # the next `langso run` may start


async def _open_database(url: str) -> None:
    """Migrate to the code's schema, which is also the proof that the database opens."""
    try:
        await asyncio.to_thread(upgrade, url)
    except (SQLAlchemyError, OSError, alembic.util.CommandError) as exc:
        raise StartError("database", database=shown(url), detail=_first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    """What the driver said, without SQLAlchemy's statement and parameters (no data leaves)."""
    origin = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(origin, OSError) and origin.strerror:
        return origin.strerror
    return (str(origin).strip().splitlines() or [type(origin).__name__])[0][:200]


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task stopped", exc_info=task.exception())
