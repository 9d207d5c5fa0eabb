"""The media store: files notices carry from one platform to another, kept once by their SHA-256.

They are rows in the database, not files in a folder: every process on a PostgreSQL deployment (often on
several machines behind a load balancer) must serve any file, and the database is the one thing they
all share; backups and restores (`langso db backup`) carry the files with the notices that use them;
a file and its references go in one transaction. The limits (handlers/media.py: 10 MB a photo, 20 MB
a document) and the retention keep the rows few and small.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import QueryableAttribute, defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from storage.models import Announcement, AnnouncementStatus, AnswerFile, Media, MediaLink, MediaRef

# files survey answers hold: kept as long as the answers are (they go when the answers are erased)
_ANSWERING = select(AnswerFile.media_id).where(col(AnswerFile.media_id).is_not(None))


@dataclass(frozen=True)
class Stored:
    """A stored file without its bytes."""

    id: int
    kind: str
    mime: str
    filename: str
    size: int


def _stored() -> SelectOfScalar[Media]:
    """Stored files' rows without their bytes, which may be megabytes."""
    content_column: QueryableAttribute[bytes] = Media.content  # type: ignore[assignment]  # sqlmodel types it as bytes
    return select(Media).options(defer(content_column))


def _of(row: Media) -> Stored:
    assert row.id is not None
    return Stored(row.id, row.kind, row.mime, row.filename, row.size)


async def find(session: AsyncSession, platform: str, ref: str) -> Stored | None:
    """The file a platform's file id or URL stands for, if it is kept."""
    row = (
        await session.exec(_stored().join(MediaRef, col(MediaRef.media_id) == Media.id)
                           .where(MediaRef.platform == platform, MediaRef.ref == ref))
    ).first()
    return _of(row) if row else None


async def keep(
    session: AsyncSession, content: bytes, kind: str, mime: str, filename: str, platform: str, ref: str
) -> Stored:
    """Store a file once (the same bytes from anywhere are one row) and what `platform` calls it."""
    digest = hashlib.sha256(content).hexdigest()
    row = (await session.exec(_stored().where(Media.sha256 == digest))).first()
    if row is None:
        row = Media(sha256=digest, kind=kind, mime=mime, filename=filename, size=len(content), content=content)
        try:
            async with session.begin_nested():  # another process may be storing the same bytes right now
                session.add(row)
        except IntegrityError:
            row = (await session.exec(_stored().where(Media.sha256 == digest))).one()
    stored = _of(row)
    await remember(session, stored.id, platform, ref)
    return stored


async def remember(session: AsyncSession, media_id: int, platform: str, ref: str) -> None:
    """`platform` calls the file `ref` (a ref already known is left as it is)."""
    known = await session.exec(select(MediaRef.id).where(MediaRef.platform == platform, MediaRef.ref == ref))
    if known.first() is not None:
        return
    try:
        async with session.begin_nested():
            session.add(MediaRef(media_id=media_id, platform=platform, ref=ref))
    except IntegrityError:
        pass  # another process remembered it first


async def ref_on(session: AsyncSession, media_id: int, platform: str) -> str | None:
    """A name `platform` knows the file by, so it is sent without uploading it again."""
    rows = await session.exec(
        select(MediaRef.ref).where(MediaRef.media_id == media_id, MediaRef.platform == platform).order_by(col(MediaRef.id))
    )
    return rows.first()


async def content(session: AsyncSession, media_id: int) -> bytes:
    return (await session.exec(select(Media.content).where(Media.id == media_id))).one()


async def new_link(session: AsyncSession, media_id: int, expires_at: datetime) -> tuple[int, str]:
    """A link id and its secret token (256 random bits); only the token's SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    link = MediaLink(media_id=media_id, token_hash=_digest(token), expires_at=expires_at)
    session.add(link)
    await session.flush()
    assert link.id is not None
    return link.id, token


async def by_link(session: AsyncSession, link_id: int, token: str, now: datetime) -> tuple[Stored, bytes] | None:
    """The file behind a link, if the token is its own (compared in constant time) and it has not
    expired; None for every other case alike."""
    link = await session.get(MediaLink, link_id)
    expected = link.token_hash if link is not None else _digest("")
    matches = hmac.compare_digest(_digest(token), expected)
    if link is None or not matches or link.expires_at <= now:
        return None
    row = (await session.exec(_stored().where(Media.id == link.media_id))).first()
    return (_of(row), await content(session, link.media_id)) if row else None


async def prune(session: AsyncSession, cutoff: datetime, now: datetime) -> int:
    """Delete expired links, and files stored before `cutoff` that no notice written since then, no
    recurring notice and no survey answer uses; returns how many files went."""
    await session.exec(delete(MediaLink).where(col(MediaLink.expires_at) <= now))
    in_use = (
        select(MediaRef.media_id)
        .join(Announcement, (col(Announcement.attachment_platform) == MediaRef.platform)
              & (col(Announcement.attachment_ref) == MediaRef.ref))
        .where(or_(col(Announcement.created_at) >= cutoff, col(Announcement.status) == AnnouncementStatus.RECURRING))
    )
    old = list((await session.exec(
        select(Media.id).where(col(Media.created_at) < cutoff, ~col(Media.id).in_(in_use), ~col(Media.id).in_(_ANSWERING))
    )).all())
    await _delete(session, old)
    return len(old)


async def drop_unused(session: AsyncSession, media_ids: Sequence[int]) -> int:
    """Delete these files, with their refs and links, unless a survey answer or a notice (of any age)
    still uses the same bytes; returns how many went."""
    if not media_ids:
        return 0
    noticed = (
        select(MediaRef.media_id)
        .join(Announcement, (col(Announcement.attachment_platform) == MediaRef.platform)
              & (col(Announcement.attachment_ref) == MediaRef.ref))
    )
    unused = list((await session.exec(
        select(Media.id).where(col(Media.id).in_(media_ids), ~col(Media.id).in_(noticed), ~col(Media.id).in_(_ANSWERING))
    )).all())
    await _delete(session, unused)
    return len(unused)


async def _delete(session: AsyncSession, media_ids: Sequence[int | None]) -> None:
    if media_ids:
        await session.exec(delete(MediaLink).where(col(MediaLink.media_id).in_(media_ids)))
        await session.exec(delete(MediaRef).where(col(MediaRef.media_id).in_(media_ids)))
        await session.exec(delete(Media).where(col(Media.id).in_(media_ids)))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
