"""Followers as plain operations (no chat needed): who receives villages' notices in a private chat, a
private chat's follower row, and the end of following. The chat side (the question asked after joining,
/nhantin, /dunglai) is handlers/following.py; the web console counts followers with `followers_of`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.db import insert_if_absent
from storage.models import Follower, Identity, Person, VillageMember


class Following(NamedTuple):
    follower: Follower
    place_id: int  # the village whose notices they receive


async def followers_of(session: AsyncSession, place_ids: Sequence[int]) -> list[Following]:
    """Who receives these villages' notices in private: members who said yes, whose chat the platform
    has not refused since they last wrote. In a fixed order (the follower's id)."""
    if not place_ids:
        return []
    rows = await session.exec(
        select(Follower, VillageMember.place_id)
        .join(Identity, (col(Identity.platform) == Follower.platform) & (col(Identity.user_id) == Follower.chat_id))
        .join(VillageMember, col(VillageMember.person_id) == Identity.person_id)
        .where(
            col(VillageMember.place_id).in_(place_ids),
            Follower.following == True,  # noqa: E712 - SQL
            col(Follower.stopped_at).is_(None),
        )
        .order_by(col(Follower.id))
    )
    return [Following(follower, place_id) for follower, place_id in rows.all()]


async def follower_for(session: AsyncSession, platform: str, chat_id: str) -> Follower:
    """This private chat's row, created (not following) on first need."""
    await insert_if_absent(session, Follower, platform=platform, chat_id=chat_id, following=False)
    rows = await session.exec(select(Follower).where(Follower.platform == platform, Follower.chat_id == chat_id))
    return rows.one()


async def end_following(session: AsyncSession, person: Person) -> None:
    """The person left their village, moved, or erased their data: no more private notices, and the
    next village they join asks again (a yes or no was about the village they had)."""
    accounts = (await session.exec(select(Identity.platform, Identity.user_id).where(Identity.person_id == person.id))).all()
    if accounts:
        await session.exec(
            update(Follower)
            .where(or_(*(and_(col(Follower.platform) == p, col(Follower.chat_id) == u) for p, u in accounts)))
            .values(following=False, asked_at=None, answered_at=None)
        )
