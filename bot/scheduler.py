"""Jobs on apscheduler with a persistent job store in our database: recurring notices ("mỗi chủ nhật
19h") here, survey reminder plans in `bot.reminders`, both as a `Schedule`.

One-off scheduled notices need no scheduler: their outbox rows wait with `not_before`, which survives
any restart by construction. A recurring notice is a template; each firing queues a fresh occurrence.
A `Schedule`'s jobs are reconciled with its rows in the database (`sync`), so the database stays the truth.

apscheduler 3's job store makes blocking database calls, so it runs as a BackgroundScheduler: its own
thread reads and writes the store, our calls into it go through a worker thread, and a job that fires
hands its coroutine to our event loop. A slow or frozen database never stalls the chats.

Several processes on one database each run a scheduler on the shared store, so each fires every job:
the work is claimed per (job, due time) in `job_run` (storage/job_runs.py), and only the winner does it.
A run missed for longer than the grace (every process was down) is claimed as missed and reported.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, tzinfo
from typing import ClassVar

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import obj_to_ref
from sqlalchemy.exc import DatabaseError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.announcements import occur
from handlers.context import HandlerSettings
from handlers.vietnamese_time import Recurrence
from messages import render
from storage import job_runs
from storage.db import sync_url
from storage.models import Announcement, AnnouncementStatus, utcnow
from storage.outage import kind_of, retried

log = logging.getLogger(__name__)

JOB_PREFIX = "announcement-"
GRACE_SECONDS = 3600  # a run missed by longer (every process down) is reported, not done late
RESCAN_SECONDS = 30.0  # how soon a scheduler sees a job another process added


class SharedJobStore(SQLAlchemyJobStore):
    """The store every process's scheduler reads and writes: a job another process removed meanwhile
    (a notice cancelled, a one-off job that ran there) is gone, which is no reason to stop scheduling
    (apscheduler lets the JobLookupError end its thread)."""

    def start(self, scheduler: object, alias: str) -> None:
        try:
            super().start(scheduler, alias)
        except DatabaseError:  # processes started together on a new database: another created the table first
            super().start(scheduler, alias)  # now it is there, and left alone

    def update_job(self, job: object) -> None:
        try:
            super().update_job(job)
        except JobLookupError:
            log.debug("job %s was removed by another process", getattr(job, "id", "?"))

    def remove_job(self, job_id: str) -> None:
        try:
            super().remove_job(job_id)
        except JobLookupError:
            log.debug("job %s was removed by another process", job_id)


class SharedScheduler(BackgroundScheduler):
    """Looks at the store at least every RESCAN_SECONDS: a job another process added is fired here too,
    on time, so it still goes out if that process dies before its time."""

    def _process_jobs(self) -> float:
        wait = super()._process_jobs()
        return RESCAN_SECONDS if wait is None else min(wait, RESCAN_SECONDS)


class Jobs:
    """The scheduler shared by every `Schedule`."""

    def __init__(self, database_url: str, timezone: tzinfo) -> None:
        store = SharedJobStore(
            url=sync_url(database_url),
            tablename="apscheduler_jobs",
            # a connection an outage broke is replaced, not used; errors never quote the values
            engine_options={"pool_pre_ping": True, "hide_parameters": True},
        )
        self.scheduler = SharedScheduler(
            jobstores={"default": store},
            timezone=timezone,
            job_defaults={"coalesce": True, "misfire_grace_time": GRACE_SECONDS, "max_instances": 1},
        )
        self.scheduler.add_listener(_missed, EVENT_JOB_MISSED)
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

    async def reconcile(self, prefix: str, triggers: Mapping[int, BaseTrigger]) -> list[int]:
        """Make the jobs whose id starts with `prefix` exactly one `fire(prefix, key)` per key of
        `triggers`; returns the keys added."""
        return await asyncio.to_thread(self._reconcile, prefix, triggers)

    def _reconcile(self, prefix: str, triggers: Mapping[int, BaseTrigger]) -> list[int]:
        wanted = {f"{prefix}{key}": key for key in triggers}
        have = {job.id: job for job in self.scheduler.get_jobs() if job.id.startswith(prefix)}
        # a job an older version stored with another callback or arguments would fail when it fires
        stale = {
            job_id for job_id, job in have.items()
            if job_id in wanted and (job.func_ref, tuple(job.args)) != (_FIRE, (prefix, wanted[job_id]))
        }
        for job_id in sorted((have.keys() - wanted.keys()) | stale):
            with contextlib.suppress(JobLookupError):  # a one-off job that ran meanwhile
                self.scheduler.remove_job(job_id)
        added = sorted(wanted[job_id] for job_id in (wanted.keys() - have.keys()) | stale)
        for key in added:
            self.scheduler.add_job(fire, triggers[key], id=f"{prefix}{key}", args=[prefix, key], replace_existing=True)
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


class Schedule(ABC):
    """One kind of job kept in step with rows in the database: the job `{prefix}{key}` calls
    `work(key)` on our loop when it fires. Subclasses say which rows want a job, and when (`triggers`)."""

    prefix: ClassVar[str]
    what: ClassVar[str]  # a job in the logs: "{what} {key}"

    def __init__(self, jobs: Jobs, work: Callable[[int], Awaitable[object]]) -> None:
        self._jobs = jobs
        self._work = work

    @property
    def scheduler(self) -> BackgroundScheduler:
        return self._jobs.scheduler

    async def start(self) -> None:
        _running[self.prefix] = self
        await self.sync()

    def stop(self) -> None:
        if _running.get(self.prefix) is self:
            del _running[self.prefix]

    async def sync(self) -> None:
        """Make the jobs match the database."""
        triggers = await self.triggers()
        for key in await self._jobs.reconcile(self.prefix, triggers):
            log.info("%s %d scheduled (%s)", self.what, key, triggers[key])

    @abstractmethod
    async def triggers(self) -> dict[int, BaseTrigger]:
        """When each row that wants a job fires, by the row's id."""

    def fired(self, key: int) -> None:
        self._jobs.run(lambda: self._work(key), f"{self.what} {key}")

    def missed(self, key: int, due: datetime) -> None:
        """In the scheduler's thread: the run at `due` was missed by more than the grace."""
        self._jobs.run(lambda: self.report_missed(key, due), f"{self.what} {key} (missed)")

    async def report_missed(self, key: int, due: datetime) -> None:
        log.warning("%s %d: the run due at %s was missed (no process was running)", self.what, key, due)


class RecurringNotices(Schedule):
    prefix = JOB_PREFIX
    what = "recurring notice"

    def __init__(
        self,
        jobs: Jobs,
        sessions: async_sessionmaker[AsyncSession],
        settings: HandlerSettings,
        on_outbox: Callable[[], None],
        tell: Callable[[int, str], Awaitable[object]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        super().__init__(jobs, self.occur)
        self._sessions = sessions
        self._settings = settings
        self._on_outbox = on_outbox
        self._tell = tell
        self._clock = clock

    async def triggers(self) -> dict[int, BaseTrigger]:
        async with self._sessions() as session:
            rows = await session.exec(select(Announcement).where(Announcement.status == AnnouncementStatus.RECURRING))
            return {a.id: self._trigger(a) for a in rows.all() if a.id is not None}  # saved: all have one

    def _trigger(self, template: Announcement) -> CronTrigger:
        rule = Recurrence.decode(template.recurrence or "")
        return CronTrigger(
            day_of_week=rule.day_of_week, hour=rule.hour, minute=rule.minute, timezone=self._settings.timezone
        )

    async def occur(self, announcement_id: int) -> int:
        """One occurrence, queued by the one process whose claim of this due time wins."""
        now = self._clock()
        async with self._sessions() as session:
            template = await session.get(Announcement, announcement_id)
            if template is None or template.status != AnnouncementStatus.RECURRING:
                return 0
            due = job_runs.last_due(self._trigger(template), now)
            if due is not None and not await job_runs.claim(session, f"{self.prefix}{announcement_id}", due):
                log.info("recurring notice %d: the run due at %s is queued already", announcement_id, due)
                return 0
            queued = await occur(session, template, now, self._settings)
            await session.commit()
        self._on_outbox()
        log.info("recurring notice %d: queued to %d groups", announcement_id, queued)
        return queued

    async def report_missed(self, announcement_id: int, due: datetime) -> None:
        """Logged, and told to the notice's author, once whichever processes saw it missed."""
        async with self._sessions() as session:
            template = await session.get(Announcement, announcement_id)
            if template is None or template.status != AnnouncementStatus.RECURRING:
                return
            if not await job_runs.claim(session, f"{self.prefix}{announcement_id}", due, job_runs.MISSED):
                return  # done in time, or reported, by another process
            await session.commit()
        await super().report_missed(announcement_id, due)
        zone = self._settings.timezone
        upcoming = self._trigger(template).get_next_fire_time(None, self._clock())
        text = render(
            "notice_missed",
            number=announcement_id,
            due=due.astimezone(zone),
            next=upcoming.astimezone(zone) if upcoming else None,
            grace_minutes=GRACE_SECONDS // 60,
        )
        await self._tell(template.author_id, text)


# apscheduler's persistent store keeps jobs as "module:function" plus arguments, so the function it
# calls back must be importable; it reaches the running schedules through this registry, by prefix.
_running: dict[str, Schedule] = {}


def fire(prefix: str, key: int) -> None:
    """Called in the scheduler's thread."""
    schedule = _running.get(prefix)
    if schedule is None:
        log.warning("job %s%d fired with no bot running", prefix, key)
        return
    schedule.fired(key)


def _missed(event: JobExecutionEvent) -> None:
    """apscheduler's listener for a run missed by more than its grace, in the scheduler's thread."""
    for prefix, schedule in list(_running.items()):
        key = event.job_id.removeprefix(prefix)
        if key != event.job_id and key.isdigit():
            schedule.missed(int(key), event.scheduled_run_time)
            return
    log.warning("job %s: its run due at %s was missed", event.job_id, event.scheduled_run_time)


_FIRE = obj_to_ref(fire)
