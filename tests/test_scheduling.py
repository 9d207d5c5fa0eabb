"""The one scheduling helper behind recurring notices and reminder plans: a job an older version left in
the job store still does its work when it fires. (A reminder plan's job firing for real: tests/test_surveys.py,
"/tiendo → nhắc ngay".)"""

from __future__ import annotations

import asyncio

from bot.scheduler import JOB_PREFIX
from tests.harness import HEAD, Harness


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

