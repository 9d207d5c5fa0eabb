"""Recurring notices ("mỗi chủ nhật 19h") on apscheduler with a persistent job store in our database.

One-off scheduled notices need no scheduler: their outbox rows wait with `not_before`, which survives
any restart by construction. A recurring notice is a template; each firing queues a fresh occurrence.
The jobs are reconciled with the templates in the database (`sync`), so the database stays the truth.

apscheduler 3's job store makes blocking database calls, so it runs as a BackgroundScheduler: its own
thread reads and writes the store, our calls into it go through a worker thread, and a job that fires
hands its coroutine to our event loop. A slow or frozen database never stalls the chats.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.announcements import occur
from handlers.context import HandlerSettings
from handlers.when import Recurrence
from storage.db import sync_url
from storage.models import Announcement, AnnouncementStatus, utcnow
from storage.outage import kind_of, retried

log = logging.getLogger(__name__)

JOB_PREFIX = "announcement-"


class JobSpec(NamedTuple):
    func: Callable[..., None]
    trigger: BaseTrigger
    args: list[Any]


class Jobs:
    """The scheduler shared by recurring notices and survey reminders."""

    def __init__(self, database_url: str, timezone: tzinfo) -> None:
        store = SQLAlchemyJobStore(
            url=sync_url(database_url),
            tablename="apscheduler_jobs",
            # a connection an outage broke is replaced, not used; errors never quote the values
            engine_options={"pool_pre_ping": True, "hide_parameters": True},
        )
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store},
            timezone=timezone,
            job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runs: set[asyncio.Task[None]] = set()  # fired jobs' work, which the app does not own

    async def start(self) -> None:
        """Open the job store; jobs fire only after `resume`, once their owners are ready for them."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self.scheduler.start, paused=True)

    def resume(self) -> None:
        self.scheduler.resume()

    async def stop(self) -> None:
        """No job starts after this, and none is left using the database after the app has closed it."""
        self._loop = None
        if self.scheduler.running:
            await asyncio.to_thread(self.scheduler.shutdown, wait=False)
        for task in self._runs:
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def reconcile(self, prefix: str, wanted: Mapping[str, JobSpec]) -> list[str]:
        """Make the jobs whose id starts with `prefix` exactly `wanted`; returns the ids added."""
        return await asyncio.to_thread(self._reconcile, prefix, wanted)

    def _reconcile(self, prefix: str, wanted: Mapping[str, JobSpec]) -> list[str]:
        have = {job.id for job in self.scheduler.get_jobs() if job.id.startswith(prefix)}
        for job_id in sorted(have - wanted.keys()):
            try:
                self.scheduler.remove_job(job_id)
            except JobLookupError:
                pass  # a one-off job that ran meanwhile
        added = sorted(wanted.keys() - have)
        for job_id in added:
            spec = wanted[job_id]
            self.scheduler.add_job(spec.func, spec.trigger, id=job_id, args=spec.args, replace_existing=True)
        return added

    def run(self, work: Callable[[], Awaitable[object]], what: str) -> None:
        """In the scheduler's thread, when a job fires: `work()` runs on our loop, retried while the
        database is away, and the thread waits for it (so max_instances keeps its meaning)."""
        loop = self._loop
        if loop is None:
            log.warning("%s fired with no bot running", what)
            return
        try:
            asyncio.run_coroutine_threadsafe(self._tracked(work, what), loop).result()
        except (concurrent.futures.CancelledError, RuntimeError):  # stopped meanwhile, or the loop closed
            log.warning("%s: stopped before it finished", what)

    async def _tracked(self, work: Callable[[], Awaitable[object]], what: str) -> None:
        task = asyncio.current_task()
        if self._loop is None or task is None:
            return
        self._runs.add(task)
        try:
            await retried(work, what)
        except Exception as exc:
            log.error("%s failed: %s", what, kind_of(exc))
        finally:
            self._runs.discard(task)


class RecurringNotices:
    def __init__(
        self,
        jobs: Jobs,
        sessions: async_sessionmaker[AsyncSession],
        settings: HandlerSettings,
        on_outbox: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._jobs = jobs
        self._sessions = sessions
        self._settings = settings
        self._on_outbox = on_outbox
        self._clock = clock

    @property
    def scheduler(self) -> BackgroundScheduler:
        return self._jobs.scheduler

    async def start(self) -> None:
        _running[0] = self
        await self.sync()

    def stop(self) -> None:
        if _running[0] is self:
            _running[0] = None

    async def sync(self) -> None:
        """Make the jobs match the recurring templates in the database."""
        async with self._sessions() as session:
            rows = await session.exec(select(Announcement).where(Announcement.status == AnnouncementStatus.RECURRING))
            templates = {f"{JOB_PREFIX}{a.id}": a for a in rows.all()}
        wanted = {job_id: JobSpec(fire, self._trigger(a), [a.id]) for job_id, a in templates.items()}
        for job_id in await self._jobs.reconcile(JOB_PREFIX, wanted):
            log.info("recurring notice %d scheduled (%s)", templates[job_id].id, templates[job_id].recurrence)

    def _trigger(self, template: Announcement) -> CronTrigger:
        rule = Recurrence.decode(template.recurrence or "")
        return CronTrigger(
            day_of_week=rule.day_of_week, hour=rule.hour, minute=rule.minute, timezone=self._settings.timezone
        )

    def fired(self, announcement_id: int) -> None:
        self._jobs.run(lambda: self.occur(announcement_id), f"recurring notice {announcement_id}")

    async def occur(self, announcement_id: int) -> int:
        async with self._sessions() as session:
            template = await session.get(Announcement, announcement_id)
            if template is None or template.status != AnnouncementStatus.RECURRING:
                return 0
            queued = await occur(session, template, self._clock(), self._settings)
            await session.commit()
        self._on_outbox()
        log.info("recurring notice %d: queued to %d groups", announcement_id, queued)
        return queued


# apscheduler's persistent store keeps jobs as "module:function" plus arguments, so the function it
# calls back must be importable; it reaches the running instance through this one slot.
_running: list[RecurringNotices | None] = [None]


def fire(announcement_id: int) -> None:
    """Called in the scheduler's thread."""
    notices = _running[0]
    if notices is None:
        log.warning("recurring notice %d fired with no bot running", announcement_id)
        return
    notices.fired(announcement_id)
