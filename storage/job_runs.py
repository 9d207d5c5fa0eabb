"""Claimed job runs: a scheduled job's work at one due time is done once however many processes fire it.

The claim is an insert of (job id, due time) into `job_run` in the same transaction as the work; the
insert that loses (the unique key is taken, or taken meanwhile by a transaction that then commits) does
nothing and says so. If the winner rolls back, its claim goes with it and the next firing may take it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_if_absent
from storage.models import JobRun

DONE = "done"
MISSED = "missed"


async def claim(session: AsyncSession, job_id: str, due_at: datetime, outcome: str = DONE) -> bool:
    """True if this transaction is the one to act on `job_id` at `due_at`; commit to keep the claim."""
    return await insert_if_absent(session, JobRun, job_id=job_id, due_at=due_at, outcome=outcome)


def last_due(trigger: BaseTrigger, now: datetime, within: timedelta = timedelta(days=8)) -> datetime | None:
    """The trigger's latest fire time at or before `now` (looking back `within`): what a firing at `now`
    is for, the same in every process whatever moment each fired at (apscheduler coalesces missed runs
    into the latest one)."""
    latest = None
    at = trigger.get_next_fire_time(None, now - within)
    while at is not None and at <= now:
        latest = at
        at = trigger.get_next_fire_time(at, at + timedelta(microseconds=1))
    return latest
