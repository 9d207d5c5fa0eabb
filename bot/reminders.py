"""Survey reminders: "/tiendo → nhắc các hộ chưa xong" plans one run at a set time (an apscheduler job in
the same persistent store as recurring notices). A run writes one reminder row per household not yet
reminded that day, committed before anything is sent, then sends them paced as private messages; rows
a crash left unsent go out at the next start, while it is still the same day. A run is retried while the
database is away (`Jobs.run`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.dispatcher import Route
from bot.metrics import Metrics
from bot.scheduler import Jobs, Schedule
from handlers.chat import ChatKind, ChatRef, Outcome, Outgoing
from handlers.context import HandlerSettings
from handlers.surveys.campaigns import plan_reminders, reminder_text
from handlers.surveys.catalog import Catalog
from storage.models import Campaign, Place, Reminder, ReminderPlan, ReminderStatus, utcnow

log = logging.getLogger(__name__)

JOB_PREFIX = "survey-reminder-"


class SurveyReminders(Schedule):
    prefix = JOB_PREFIX
    what = "reminder plan"

    def __init__(
        self,
        jobs: Jobs,
        sessions: async_sessionmaker[AsyncSession],
        routes: Mapping[str, Route],
        surveys: Catalog,
        settings: HandlerSettings,
        clock: Callable[[], datetime] = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(jobs, self.run)
        self._sessions = sessions
        self._routes = routes
        self._surveys = surveys
        self._settings = settings
        self._clock = clock
        self._metrics = metrics or Metrics()

    async def triggers(self) -> dict[int, BaseTrigger]:
        """A job for every plan not yet run; a plan whose time passed while the bot was down runs now."""
        now = self._clock()
        async with self._sessions() as session:
            rows = await session.exec(select(ReminderPlan).where(col(ReminderPlan.done_at).is_(None)))
            return {p.id: DateTrigger(run_date=max(p.run_at, now)) for p in rows.all() if p.id is not None}  # saved: all have one

    async def run(self, plan_id: int) -> int:
        """Plan the run's reminders once, then send what is pending: a run retried after a database
        error half-way sends the rest."""
        async with self._sessions() as session:
            plan = await session.get(ReminderPlan, plan_id)
            if plan is None:
                return 0
            if plan.done_at is None:
                planned = await plan_reminders(session, plan, self._clock(), self._settings)
                await session.commit()
                log.info("reminder plan %d: %d households to remind", plan_id, planned)
        sent = await self.send_pending()
        log.info("reminder plan %d: %d reminders sent", plan_id, sent)
        return sent

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
                    self._metrics.reminder_sent()
            async with self._sessions() as session:
                row = await session.get(Reminder, reminder.id)
                if row is not None:  # the household may have deleted its data meanwhile
                    row.status, row.sent_at = outcome, self._clock()
                    session.add(row)
                    await session.commit()
        return sent

