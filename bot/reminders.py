"""Survey reminders: "/tiendo → nhắc các hộ chưa xong" plans one run at a set time (an apscheduler job in
the same persistent store as recurring notices). A run writes one reminder row per household not yet
reminded that day, committed before anything is sent, then sends them paced as private messages; rows
a crash left unsent go out at the next start, while it is still the same day."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.dispatcher import Route
from handlers.chat import ChatKind, ChatRef, Outcome, Outgoing
from handlers.context import HandlerSettings
from handlers.surveys.campaigns import plan_reminders, reminder_text
from handlers.surveys.catalog import Catalog
from storage.models import Campaign, Place, Reminder, ReminderPlan, ReminderStatus, utcnow

log = logging.getLogger(__name__)

JOB_PREFIX = "survey-reminder-"


class SurveyReminders:
    def __init__(
        self,
        scheduler: AsyncIOScheduler,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, Route],
        surveys: Catalog,
        settings: HandlerSettings,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._scheduler = scheduler
        self._sessions = sessions
        self._routes = routes
        self._surveys = surveys
        self._settings = settings
        self._clock = clock
        self._runs: set[asyncio.Task[object]] = set()  # apscheduler's tasks, which the app does not own

    async def start(self) -> None:
        _running[0] = self
        await self.sync()

    async def stop(self) -> None:
        """No new runs, and none left using the database after the app has closed it."""
        if _running[0] is self:
            _running[0] = None
        for task in self._runs:
            task.cancel()
        await asyncio.gather(*self._runs, return_exceptions=True)

    async def sync(self) -> None:
        """A job for every plan not yet run; a plan whose time passed while the bot was down runs now."""
        async with self._sessions() as session:
            rows = await session.exec(select(ReminderPlan).where(col(ReminderPlan.done_at).is_(None)))
            plans = {f"{JOB_PREFIX}{p.id}": p for p in rows.all()}
        jobs = {job.id for job in self._scheduler.get_jobs() if job.id.startswith(JOB_PREFIX)}
        for job_id in jobs - plans.keys():
            self._scheduler.remove_job(job_id)
        now = self._clock()
        for job_id in plans.keys() - jobs:
            plan = plans[job_id]
            self._scheduler.add_job(
                fire, DateTrigger(run_date=max(plan.run_at, now)), id=job_id, args=[plan.id], replace_existing=True
            )

    async def run(self, plan_id: int) -> int:
        task = asyncio.current_task()
        assert task is not None
        self._runs.add(task)
        try:
            return await self._run(plan_id)
        finally:
            self._runs.discard(task)

    async def _run(self, plan_id: int) -> int:
        async with self._sessions() as session:
            plan = await session.get(ReminderPlan, plan_id)
            if plan is None or plan.done_at is not None:
                return 0
            planned = await plan_reminders(session, plan, self._clock(), self._settings)
            await session.commit()
        log.info("reminder plan %d: %d households to remind", plan_id, planned)
        return await self.send_pending()

    async def send_pending(self) -> int:
        """Send today's unsent reminders; a day-old one would only confuse, so it is dropped."""
        now = self._clock()
        today = now.astimezone(self._settings.timezone).date()
        async with self._sessions() as session:
            rows = await session.exec(
                select(Reminder, Campaign, Place)
                .join(Campaign, col(Campaign.id) == Reminder.campaign_id)
                .join(Place, col(Place.id) == Campaign.place_id)
                .where(Reminder.status == ReminderStatus.PENDING)
                .order_by(col(Reminder.id))
            )
            pending = list(rows.all())
        sent = 0
        for reminder, campaign, place in pending:
            route = self._routes.get(reminder.platform)
            outcome = ReminderStatus.FAILED
            if reminder.day == today and route is not None:
                text = reminder_text(self._surveys.title(campaign.survey_code), place.name, place.code)
                out = Outgoing(ChatRef(reminder.platform, reminder.chat_id), text)
                if await send_direct(route.channel, route.pacer, out, ChatKind.PRIVATE, urgent=False) is Outcome.SENT:
                    outcome = ReminderStatus.SENT
                    sent += 1
            async with self._sessions() as session:
                row = await session.get(Reminder, reminder.id)
                if row is not None:  # the household may have deleted its data meanwhile
                    row.status, row.sent_at = outcome, self._clock()
                    session.add(row)
                    await session.commit()
        return sent


# apscheduler's persistent store keeps "module:function" and arguments: the callback reaches the
# running instance through this slot, as the recurring notices do.
_running: list[SurveyReminders | None] = [None]


async def fire(plan_id: int) -> None:
    reminders = _running[0]
    if reminders is None:
        log.warning("reminder plan %d fired with no bot running", plan_id)
        return
    sent = await reminders.run(plan_id)
    log.info("reminder plan %d: %d reminders sent", plan_id, sent)
