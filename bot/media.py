"""Files that cross platforms: a notice written with a photo or a document on one platform reaches the
others with it. The file is fetched once from where it was written (by the adapter: getFile on Telegram,
the URL on Zalo), kept in the media store (storage/media.py), uploaded where the platform takes uploads
(and the id it gives back reused), or served from the bot's web server at an unguessable, expiring
address where the platform fetches files itself or takes none (then the address goes into the text)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import Attachment, Carry, Channel, Upload
from handlers.media import MAX_BYTES, ROUTE, mime_of, refusal
from messages import label, render
from storage import media
from storage.models import Announcement
from storage.outage import kind_of

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(hours=6)

Tell = Callable[[int, str], Awaitable[object]]  # (person id, text): a private message to that person


@dataclass(frozen=True)
class Carried:
    """What a notice's file becomes on one platform: a file to attach (by its id there, or a URL), bytes
    to upload, or an address written into the text."""

    attachment: Attachment | None = None
    upload: Upload | None = None
    link: str | None = None
    file_name: str = ""
    media_id: int | None = None  # the stored file an upload is, to remember the id the platform gives it


class MediaFiles:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        channels: Mapping[str, Channel],
        public_url: str,
        keep: timedelta,
        clock: Callable[[], datetime],
        tell: Tell,
    ) -> None:
        self._sessions = sessions
        self._channels = channels
        self._public_url = public_url
        self._keep = keep
        self._clock = clock
        self._tell = tell

    async def carry(self, notice: Announcement, channel: Channel) -> Carried | None:
        """How the notice's file (written on another platform) reaches `channel`; None: the text goes
        alone (the file is gone or over the limits, or the platform needs an address the bot lacks, in
        which case the author is told)."""
        kind = notice.attachment_kind or "photo"
        how = channel.carries(kind)
        if how is not Carry.UPLOAD and not self._public_url:
            await self._not_carried(notice, channel, kind)
            return None
        stored = await self._obtain(notice, kind)
        if stored is None:
            return None
        if how is Carry.UPLOAD:
            async with self._sessions() as session:
                ref = await media.ref_on(session, stored.id, channel.platform)
                data = None if ref else await media.content(session, stored.id)
            if ref:
                return Carried(attachment=Attachment(kind, ref, channel.platform), media_id=stored.id)
            assert data is not None
            return Carried(upload=Upload(kind, stored.filename, data), media_id=stored.id)
        url = await self._link(stored)
        if how is Carry.URL:
            return Carried(attachment=Attachment(kind, url, channel.platform), media_id=stored.id)
        return Carried(link=url, file_name=stored.filename, media_id=stored.id)

    async def remember(self, media_id: int, platform: str, ref: str) -> None:
        """`platform` gave an uploaded file the id `ref`: later sends there use it."""
        async with self._sessions() as session:
            await media.remember(session, media_id, platform, ref)
            await session.commit()

    async def open(self, link_id: int, token: str) -> tuple[media.Stored, bytes] | None:
        async with self._sessions() as session:
            return await media.by_link(session, link_id, token, self._clock())

    async def prune(self) -> int:
        now = self._clock()
        async with self._sessions() as session:
            gone = await media.prune(session, now - self._keep, now)
            await session.commit()
        if gone:
            log.info("media store: %d files no notice of the last %d days uses were deleted", gone, self._keep.days)
        return gone

    async def run(self, stop: asyncio.Event) -> None:
        """Prune at start and every few hours until `stop`; awaited, never cancelled (see retention)."""
        while not stop.is_set():
            try:
                await self.prune()
            except Exception as exc:
                log.warning("media store: pruning failed (%s); the next round tries again", kind_of(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PRUNE_EVERY.total_seconds())

    async def _obtain(self, notice: Announcement, kind: str) -> media.Stored | None:
        """The notice's file from the store, fetched from its platform the first time."""
        platform, ref = notice.attachment_platform or "", notice.attachment_ref or ""
        async with self._sessions() as session:
            stored = await media.find(session, platform, ref)
        if stored is not None:
            return stored
        origin = self._channels.get(platform)
        if origin is None:  # this process does not serve the platform the notice was written on
            log.warning("notice %s: its file is on %s, which this bot does not serve", notice.id, platform)
            return None
        limit = MAX_BYTES.get(kind, MAX_BYTES["document"])
        fetched = await origin.fetch(Attachment(kind, ref, platform, notice.attachment_name), limit)
        if fetched is None:
            log.warning("notice %s: its file cannot be fetched from %s; the text goes alone", notice.id, platform)
            return None
        mime = mime_of(fetched.filename, fetched.mime)
        if refusal(kind, len(fetched.content), mime, fetched.filename) is not None:
            log.warning("notice %s: its file (%d bytes, %s) is over the limits; the text goes alone",
                        notice.id, len(fetched.content), mime)
            return None
        async with self._sessions() as session:
            stored = await media.keep(session, fetched.content, kind, mime, fetched.filename or "tep", platform, ref)
            await session.commit()
        return stored

    async def _link(self, stored: media.Stored) -> str:
        async with self._sessions() as session:
            link_id, token = await media.new_link(session, stored.id, self._clock() + self._keep)
            await session.commit()
        return f"{self._public_url}{ROUTE}/{link_id}/{token}/{quote(stored.filename)}"

    async def _not_carried(self, notice: Announcement, channel: Channel, kind: str) -> None:
        text = render("media_not_carried", number=notice.parent_id or notice.id, platform=label(channel.platform), kind=kind)
        try:
            await self._tell(notice.author_id, text)
        except Exception:  # the notice still goes out as text
            log.exception("notice %s: telling its author that the file stays behind failed", notice.id)
