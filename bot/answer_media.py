"""Files residents send as survey answers, fetched from their platform into the media store.

The chat (handlers/surveys) records such an answer with media_id None and an `answer_file` row in the same
transaction (handlers/surveys/answer_files.py). This worker claims due rows about once a second, fetches
each file once through the channel it came from, keeps it in the media store and writes its media_id into
the answer. A file the platform no longer serves, or one over the limit, fails at once; a network failure
is retried with growing waits, then fails. A failed file is taken out of its answer (the survey asks the
question again) and its sender is told in a private message; the row goes once they are. A file its answer
no longer holds (sent again, skipped) is not kept: its row goes. A claim lasts CLAIM: a process that
stops or crashes mid-fetch leaves the row to be taken again (at once by the next start where it is the
only process), so nothing is lost to a restart. The export links a stored file through `link`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import Attachment, Channel, Fetched, Outcome
from handlers.media import mime_of
from handlers.surveys.answer_files import failed_notice, file_answer, limit_of, unanswer
from handlers.surveys.answers import copied
from handlers.surveys.catalog import Catalog
from handlers.surveys.languages import chosen_language
from storage import media
from storage.autocommit import autocommit
from storage.models import AnswerFile, AnswerFileStatus, Campaign, SurveyResponse
from storage.outage import kind_of

log = logging.getLogger(__name__)

T = TypeVar("T")

POLL_EVERY = 1.0  # seconds between looks for new files when there was nothing to do
BATCH = 4  # files fetched at once by one process
CLAIM = timedelta(minutes=2)  # a 20 MB download on a slow line fits well within it
MAX_ATTEMPTS = 12  # with waits from 10 s doubling to an hour: about seven hours of trying

Tell = Callable[[int, str], Awaitable[Outcome]]  # a private message to a person (bot/telling.py)


class _Stopping(Exception):
    """The process stops: a fetch under way is abandoned, its claim left to run out."""


class AnswerMedia:
    def __init__(
        self,
        engine: AsyncEngine,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        clock: Callable[[], datetime],
        *,
        sole_process: bool,
        surveys: Catalog,
        timezone: ZoneInfo,
        tell: Tell,
    ) -> None:
        self._engine = engine
        self._sessions = sessions
        self._channels = channels
        self._clock = clock
        self._sole_process = sole_process
        self._surveys = surveys
        self._timezone = timezone
        self._tell = tell

    async def run(self, stop: asyncio.Event) -> None:
        """Collect until `stop`; awaited, never cancelled (a task cancelled inside a SQLite transaction
        leaves the database locked), and a fetch under way is given up when `stop` is set."""
        if self._sole_process:
            with contextlib.suppress(Exception):  # the claims then run out by themselves
                await self._release_claims()
        while not stop.is_set():
            try:
                handled = await self.collect(stop)
            except Exception as exc:
                log.warning("answer files: a round failed (%s); the next one tries again", kind_of(exc))
                handled = 0
            if not handled:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_EVERY)

    async def collect(self, stop: asyncio.Event | None = None) -> int:
        """One round: the files due now, fetched and stored; returns how many were claimed."""
        claimed = await self._claim()
        await asyncio.gather(*(self._collect(row, stop) for row in claimed))
        return len(claimed)

    async def _release_claims(self) -> None:
        """The only process starts: a claim still held was left by its previous run."""
        async with autocommit(self._engine) as connection:
            await connection.execute(
                update(AnswerFile).where(col(AnswerFile.claimed_until).is_not(None)).values(claimed_until=None)
            )

    async def _claim(self) -> list[AnswerFile]:
        """Due rows, claimed in one statement: with several processes on PostgreSQL, a row another one
        claimed meanwhile fails the outer condition when it is checked again, so each file has one fetcher.
        A failed row is one whose sender was not told yet (the process stopped before)."""
        now = self._clock()
        unclaimed = or_(col(AnswerFile.claimed_until).is_(None), col(AnswerFile.claimed_until) <= now)
        due = (
            select(AnswerFile.id)
            .where(col(AnswerFile.status).in_([AnswerFileStatus.PENDING, AnswerFileStatus.FAILED]),
                   col(AnswerFile.next_try_at) <= now, unclaimed)
            .order_by(col(AnswerFile.id))
            .limit(BATCH)
        )
        async with autocommit(self._engine) as connection:
            rows = await connection.execute(
                update(AnswerFile).where(col(AnswerFile.id).in_(due), unclaimed)
                .values(claimed_until=now + CLAIM)
                .returning(*(col(column) for column in (AnswerFile.id, AnswerFile.response_id, AnswerFile.question,
                                                        AnswerFile.at, AnswerFile.kind, AnswerFile.platform,
                                                        AnswerFile.ref, AnswerFile.person_id, AnswerFile.status,
                                                        AnswerFile.attempts)))
            )
            return sorted((AnswerFile(**row._mapping) for row in rows), key=lambda row: row.id or 0)

    async def _collect(self, row: AnswerFile, stop: asyncio.Event | None) -> None:
        if row.status == AnswerFileStatus.FAILED:
            await self._give_up(row)
            return
        channel = self._channels.get(row.platform)
        if channel is None:  # this process does not serve the platform: another may
            await self._retry(row, f"{row.platform} is not served here")
            return
        try:
            async with self._sessions() as session:
                stored = await media.find(session, row.platform, row.ref)  # the same file sent before
            if stored is not None:
                await self._store(row, stored=stored)
                return
            fetched = await _unless_stopping(
                channel.fetch(Attachment(row.kind, row.ref, row.platform), limit_of(row.kind)), stop
            )
        except _Stopping:
            return
        except Exception as exc:
            await self._retry(row, kind_of(exc))
            return
        if fetched is None:  # gone for good, or over the limit
            log.warning("answer file %s: %s no longer serves it, or it is over %d MB; its sender is asked again",
                        row.id, row.platform, limit_of(row.kind) // (1024 * 1024))
            await self._give_up(row)
            return
        await self._store(row, fetched=fetched)

    async def _store(self, row: AnswerFile, *, stored: media.Stored | None = None, fetched: Fetched | None = None) -> None:
        """Keep the file and write its media_id into the answer, if the answer still is this file. The
        answers are locked before the row, the order a turn and an erasure take them in."""
        async with self._sessions() as session:
            response, current = await _locked(session, row)
            if current is None or current.status != AnswerFileStatus.PENDING:  # erased, or done elsewhere
                return
            answers = copied(response.answers) if response else {}  # a new object: the JSON is written
            answer = file_answer(answers, current.question, current.at, current.ref)
            if response is None or answer is None:  # the resident changed the answer meanwhile: nothing to keep
                await session.delete(current)
                await session.commit()
                return
            if stored is None:
                assert fetched is not None
                mime = mime_of(fetched.filename, fetched.mime)
                stored = await media.keep(session, fetched.content, current.kind, mime, fetched.filename or "tep",
                                          current.platform, current.ref)
            answer["media_id"] = stored.id  # `answer` lives inside `answers`
            response.answers = answers
            current.status, current.media_id, current.claimed_until = AnswerFileStatus.STORED, stored.id, None
            session.add(response)
            session.add(current)
            await session.commit()

    async def _retry(self, row: AnswerFile, why: str) -> None:
        attempts = row.attempts + 1
        if attempts >= MAX_ATTEMPTS:
            log.warning("answer file %s: fetching failed %d times (%s); its sender is asked again", row.id, attempts, why)
            await self._give_up(row)
            return
        wait = timedelta(seconds=min(3600, 10 * 2 ** (attempts - 1)))
        log.info("answer file %s: fetching failed (%s); trying again in %d s", row.id, why, wait.total_seconds())
        await self._mark(row, attempts=attempts, next_try_at=self._clock() + wait)

    async def _give_up(self, row: AnswerFile) -> None:
        """The file cannot be had: taken out of its answer and marked failed in one transaction, then its
        sender told, then the row deleted. A process stopping in between leaves the row failed, and the
        next round tells them (twice at worst, never not at all)."""
        async with self._sessions() as session:
            response, current = await _locked(session, row)
            if current is None or current.status == AnswerFileStatus.STORED:  # erased, or done elsewhere
                return
            answers = copied(response.answers) if response else {}
            held = response is not None and unanswer(answers, current.question, current.at, current.ref)
            if current.status == AnswerFileStatus.PENDING and not held:
                await session.delete(current)  # the resident changed the answer meanwhile: nothing to ask
                await session.commit()
                return
            if response is not None and held:  # (a row taken again, already failed, finds nothing to take out)
                response.answers = answers
                session.add(response)
            current.status, current.claimed_until = AnswerFileStatus.FAILED, self._clock() + CLAIM
            session.add(current)
            sender = current.person_id
            notice = await self._notice(session, current, response) if response and sender else None
            await session.commit()
        if notice is not None and sender is not None:
            outcome = await self._tell(sender, notice)
            log.info("answer file %s: its sender was told it failed (%s)", row.id, outcome.value)
        async with self._sessions() as session:
            await session.exec(delete(AnswerFile).where(col(AnswerFile.id) == row.id))
            await session.commit()

    async def _notice(self, session: AsyncSession, row: AnswerFile, response: SurveyResponse) -> str:
        campaign = await session.get(Campaign, response.campaign_id)
        await self._surveys.refresh(session)
        survey = self._surveys.get(campaign.survey_code) if campaign else None
        today = self._clock().astimezone(self._timezone).date().isoformat()
        return failed_notice(survey, row.question, row.at, response.answers, row.kind, today,
                             chosen_language(response, row.person_id))

    async def _mark(self, row: AnswerFile, **values: object) -> None:
        async with autocommit(self._engine) as connection:
            await connection.execute(
                update(AnswerFile).where(col(AnswerFile.id) == row.id, col(AnswerFile.status) == AnswerFileStatus.PENDING)
                .values(claimed_until=None, **values)
            )


async def _locked(session: AsyncSession, row: AnswerFile) -> tuple[SurveyResponse | None, AnswerFile | None]:
    """The row's answers, then the row, locked (the order a turn and an erasure take them in) and read
    afresh."""
    response = (
        await session.exec(
            select(SurveyResponse).where(SurveyResponse.id == row.response_id)
            .with_for_update().execution_options(populate_existing=True)
        )
    ).first()
    current = (
        await session.exec(
            select(AnswerFile).where(AnswerFile.id == row.id).with_for_update().execution_options(populate_existing=True)
        )
    ).first()
    return response, current


async def _unless_stopping(work: Awaitable[T], stop: asyncio.Event | None) -> T:
    """`work`'s result, or _Stopping (with `work` cancelled) if `stop` is set first."""
    task = asyncio.ensure_future(work)
    if stop is None:
        return await task
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise _Stopping
    return task.result()

