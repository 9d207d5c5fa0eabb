"""Recurring notices ("mỗi chủ nhật 19h") on apscheduler with a persistent job store in our database.

One-off scheduled notices need no scheduler: their outbox rows wait with `not_before`, which survives
any restart by construction. A recurring notice is a template; each firing queues a fresh occurrence.
The jobs are reconciled with the templates in the database (`sync`), so the database stays the truth.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.announcements import occur
from handlers.context import HandlerSettings
from handlers.when import Recurrence
from storage.db import sync_url
from storage.models import Announcement, AnnouncementStatus, utcnow

log = logging.getLogger(__name__)

JOB_PREFIX = "announcement-"


class RecurringNotices:
    def __init__(
        self,
        database_url: str,
        sessions: async_sessionmaker[AsyncSession],
        settings: HandlerSettings,
        on_outbox: Callable[[], None],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._on_outbox = on_outbox
        self._clock = clock
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(url=sync_url(database_url), tablename="apscheduler_jobs")},
            timezone=settings.timezone,
            job_defaults={"coalesce": True, "misfire_grace_time": 3600, "max_instances": 1},
        )

    async def start(self) -> None:
        _running[0] = self
        self.scheduler.start()
        await self.sync()

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if _running[0] is self:
            _running[0] = None

    async def sync(self) -> None:
        """Make the jobs match the recurring templates in the database."""
        async with self._sessions() as session:
            rows = await session.exec(select(Announcement).where(Announcement.status == AnnouncementStatus.RECURRING))
            templates = {f"{JOB_PREFIX}{a.id}": a for a in rows.all()}
        jobs = {job.id for job in self.scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
        for job_id in jobs - templates.keys():
            self.scheduler.remove_job(job_id)
        for job_id in templates.keys() - jobs:
            template = templates[job_id]
            rule = Recurrence.decode(template.recurrence or "")
            self.scheduler.add_job(
                fire,
                CronTrigger(
                    day_of_week=rule.day_of_week, hour=rule.hour, minute=rule.minute, timezone=self._settings.timezone
                ),
                id=job_id,
                args=[template.id],
                replace_existing=True,
            )
            log.info("recurring notice %d scheduled (%s)", template.id, rule.encode())

    async def occur(self, announcement_id: int) -> int:
        async with self._sessions() as session:
            template = await session.get(Announcement, announcement_id)
            if template is None or template.status != AnnouncementStatus.RECURRING:
                return 0
            queued = await occur(session, template, self._clock(), self._settings)
            await session.commit()
        self._on_outbox()
        return queued


# apscheduler's persistent store keeps jobs as "module:function" plus arguments, so the function it
# calls back must be importable; it reaches the running instance through this one slot.
_running: list[RecurringNotices | None] = [None]


async def fire(announcement_id: int) -> None:
    notices = _running[0]
    if notices is None:
        log.warning("recurring notice %d fired with no bot running", announcement_id)
        return
    queued = await notices.occur(announcement_id)
    log.info("recurring notice %d: queued to %d groups", announcement_id, queued)
