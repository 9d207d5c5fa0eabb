"""Limits on guessing secrets (link codes, household codes, invitations): every wrong guess counts
against the person and against the chat it came from; past the limit within the window, both are
locked out for a while. A lock is checked before the guess is even looked at, so a locked-out guesser
learns nothing, right code or wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_if_absent
from storage.models import AttemptCounter


@dataclass(frozen=True)
class Limit:
    what: str  # which secret: "link", "household", …
    failures: int  # wrong guesses allowed within `window`
    window: timedelta
    lockout: timedelta


def scopes(limit: Limit, person_id: int | None, platform: str, chat_id: str) -> list[str]:
    """The counters one guess is charged to: the person (on every platform) and the chat."""
    keys = [f"{limit.what}:chat:{platform}:{chat_id}"]
    if person_id is not None:
        keys.insert(0, f"{limit.what}:person:{person_id}")
    return keys


async def locked_until(session: AsyncSession, keys: Sequence[str], now: datetime) -> datetime | None:
    """When the latest lock on any of these counters ends, if one is in force."""
    rows = await session.exec(select(AttemptCounter.locked_until).where(col(AttemptCounter.key).in_(list(keys))))
    ends = [end for end in rows.all() if end is not None and end > now]
    return max(ends) if ends else None


async def charge(session: AsyncSession, limit: Limit, keys: Sequence[str], now: datetime) -> datetime | None:
    """Count one wrong guess on every counter; returns the end of the lock it caused, if any."""
    until = None
    for key in sorted(keys):  # one order for every process: two turns never wait on each other crosswise
        await insert_if_absent(session, AttemptCounter, key=key, failures=0, window_started=now)
        counter = (
            await session.exec(select(AttemptCounter).where(AttemptCounter.key == key).with_for_update())
        ).one()
        if now - counter.window_started > limit.window:
            counter.failures, counter.window_started = 0, now
        counter.failures += 1
        if counter.failures >= limit.failures:
            counter.locked_until, counter.failures, counter.window_started = now + limit.lockout, 0, now
            until = counter.locked_until
        session.add(counter)
    return until
