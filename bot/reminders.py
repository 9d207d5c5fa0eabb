"""Survey reminders: "/tiendo → nhắc các hộ chưa xong" plans one run at a set time (an apscheduler job in
the same persistent store as recurring notices). A run writes one reminder row per household not yet
reminded that day, committed before anything is sent, then sends them paced as private messages; rows
a crash left unsent go out at the next start, while it is still the same day. A run is retried while the
database is away (`Jobs.run`).

Several processes fire the same plan: the plan is claimed (its `done_at` set where it was unset) in the
transaction that writes its rows, and each reminder is claimed (pending -> sending, with a lease) just
before it is sent, so two runs at once, in one process or two, never send one twice. A reminder whose
sender died is taken again once its lease has run out."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import ColumnElement, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import and_, col, select
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
LEASE = timedelta(minutes=10)  # a send waits for the pacer at most a few 429s' retry_after


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
        for _ in range(3):
            try:
                await self._plan(plan_id)
                break
            except IntegrityError:  # another plan reminded some of the same households meanwhile
                log.info("reminder plan %d: another run took some households; planning again", plan_id)
        sent = await self.send_pending()
        log.info("reminder plan %d: %d reminders sent", plan_id, sent)
        return sent

    async def _plan(self, plan_id: int) -> None:
        now = self._clock()
        async with self._sessions() as session:
            # the claim: of the processes firing this plan, one sets done_at, the others find it set
            # (PostgreSQL makes them wait for the winner's commit, then skip the row)
            claimed = await session.exec(
                update(ReminderPlan)
                .where(col(ReminderPlan.id) == plan_id, col(ReminderPlan.done_at).is_(None))
                .values(done_at=now)
            )
            if not claimed.rowcount:
                return
            plan = await session.get(ReminderPlan, plan_id)
            assert plan is not None
            planned = await plan_reminders(session, plan, now, self._settings)
            await session.commit()
        log.info("reminder plan %d: %d households to remind", plan_id, planned)

    async def report_missed(self, plan_id: int, due: datetime) -> None:
        """A plan due while no process ran is run now (its reminders still say today's date)."""
        await super().report_missed(plan_id, due)
        await self.run(plan_id)

    async def send_pending(self) -> int:
        """Send today's unsent reminders; a day-old one would only confuse, so it is dropped."""
        now = self._clock()
        today = now.astimezone(self._settings.timezone).date()
        async with self._sessions() as session:
            rows = await session.exec(
                select(Reminder, Campaign, Place)
                .join(Campaign, col(Campaign.id) == Reminder.campaign_id)
                .join(Place, col(Place.id) == Campaign.place_id)
                .where(_takeable(now))
                .order_by(col(Reminder.id))
            )
            pending = list(rows.all())
        sent = 0
        for reminder, campaign, place in pending:
            if not await self._claim(reminder.id):
                continue  # another run, here or in another process, has it
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
                    row.status, row.sent_at, row.lease_until = outcome, self._clock(), None
                    session.add(row)
                    await session.commit()
        return sent

    async def _claim(self, reminder_id: int | None) -> bool:
        now = self._clock()
        async with self._sessions() as session:
            claimed = await session.exec(
                update(Reminder)
                .where(col(Reminder.id) == reminder_id, _takeable(now))
                .values(status=ReminderStatus.SENDING, lease_until=now + LEASE)
            )
            await session.commit()
        return bool(claimed.rowcount)


def _takeable(now: datetime) -> ColumnElement[bool]:
    """Not yet sent: pending, or being sent by a process whose lease ran out (it died)."""
    return or_(
        col(Reminder.status) == ReminderStatus.PENDING,
        and_(col(Reminder.status) == ReminderStatus.SENDING, col(Reminder.lease_until) < now),
    )

