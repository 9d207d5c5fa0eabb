"""The one scheduling helper behind recurring notices and reminder plans: what a stored job does when it
fires, for jobs this version stored and for one an older version left in the job store."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.reminders import JOB_PREFIX as REMINDER_JOB
from bot.scheduler import JOB_PREFIX
from storage.models import ReminderPlan
from tests.harness import HEAD, Harness
from tests.test_surveys import ANSWERS, NEIGHBOUR, answer_all, open_survey, register


async def _fire(harness: Harness, job_id: str) -> None:
    """What apscheduler does at the job's time, in a thread as its own would."""
    job = harness.app.jobs.scheduler.get_job(job_id)
    assert job is not None
    await asyncio.to_thread(job.func, *job.args)


async def test_a_weekly_notice_stored_by_the_older_version_still_goes_out(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Nhắc: họp giao ban thôn")
    await harness.send(HEAD, "2")
    await harness.send(HEAD, "moi chu nhat 19h")
    [saved] = await harness.send(HEAD, "1")
    number = int(saved.text.split("số ")[1].split(":")[0])
    await harness.restart()  # the job is in the store
    # the job as the version before the shared helper stored it, with the notice's number only (written
    # to the store directly: apscheduler refuses to add a job whose arguments do not fit its callback)
    store = harness.app.jobs.scheduler._lookup_jobstore("default")
    job = store.lookup_job(f"{JOB_PREFIX}{number}")
    job.args = (number,)
    store.update_job(job)
    await harness.restart()
    await _fire(harness, f"{JOB_PREFIX}{number}")
    await harness.eventually(harness.sent_count, 3)


async def test_a_reminder_plans_job_reminds_the_household_when_it_fires(harness: Harness) -> None:
    campaign = await open_survey(harness)
    await register(harness, NEIGHBOUR, campaign)
    await answer_all(harness, NEIGHBOUR, ANSWERS[:3])
    await harness.send(HEAD, "/tiendo")
    await harness.send(HEAD, "1")
    await harness.send(HEAD, "8h sáng mai")
    async with harness.app.sessions() as session:
        [plan] = (await session.exec(select(ReminderPlan))).all()
    await _fire(harness, f"{REMINDER_JOB}{plan.id}")
    reminders = [m for m in harness.fake.messages_to(NEIGHBOUR) if "Nhắc nhẹ" in (m.text or "")]
    assert len(reminders) == 1
