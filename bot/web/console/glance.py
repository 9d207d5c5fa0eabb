"""A commune at a glance, per place: its groups per platform (active, bot removed), followers,
households registered and surveyed, tech-team members, open handbook questions, and how the latest
notice that reached it went. One grouped query per figure for all the places at once, so the page
costs the same few queries for three villages or thirty."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import Select

from handlers.notices import delivery_bucket
from storage.models import (
    Acknowledgement,
    Announcement,
    Campaign,
    ChatGroup,
    Delivery,
    HandbookQuestion,
    Household,
    Place,
    QuestionStatus,
    ResponseStatus,
    Role,
    RoleName,
    SurveyResponse,
)


@dataclass
class LatestNotice:
    notice: Announcement
    counts: dict[str, int] = field(default_factory=lambda: {"sent": 0, "pending": 0, "failed": 0, "stopped": 0})
    acks: int = 0


@dataclass
class PlaceGlance:
    place: Place
    groups: dict[str, dict[str, int]] = field(default_factory=dict)  # platform -> {"active": n, "removed": n}
    followers: int = 0
    households: int = 0
    surveyed: int = 0  # households that sent an open survey of the place
    tech_team: int = 0
    open_questions: int = 0
    latest: LatestNotice | None = None


async def follower_counts(_session: AsyncSession, _place_ids: Sequence[int]) -> dict[int | None, int]:
    """Residents following each place in private (issue 13, followers): none until followers exist."""
    return {}


async def glance(session: AsyncSession, places: Sequence[Place]) -> list[PlaceGlance]:
    found = {p.id: PlaceGlance(p) for p in places}
    ids = sorted(i for i in found if i is not None)
    if not ids:
        return []
    for place_id, platform, active, count in (await session.exec(
        select(ChatGroup.place_id, ChatGroup.platform, ChatGroup.active, func.count())
        .where(col(ChatGroup.place_id).in_(ids))
        .group_by(col(ChatGroup.place_id), col(ChatGroup.platform), col(ChatGroup.active))
    )).all():
        found[place_id].groups.setdefault(platform, {"active": 0, "removed": 0})["active" if active else "removed"] += count
    households = await _by_place(session, select(Household.place_id, func.count())
                                 .where(col(Household.place_id).in_(ids)).group_by(col(Household.place_id)))
    surveyed = await _by_place(session, select(Campaign.place_id, func.count(func.distinct(SurveyResponse.household_id)))
                               .join(SurveyResponse, col(SurveyResponse.campaign_id) == Campaign.id)
                               .where(col(Campaign.place_id).in_(ids), col(Campaign.closed_at).is_(None),
                                      SurveyResponse.status == ResponseStatus.SUBMITTED)
                               .group_by(col(Campaign.place_id)))
    tech_team = await _by_place(session, select(Role.place_id, func.count())
                                .where(col(Role.place_id).in_(ids), Role.role == RoleName.TECH_TEAM)
                                .group_by(col(Role.place_id)))
    questions = await _by_place(session, select(HandbookQuestion.place_id, func.count())
                                .where(col(HandbookQuestion.place_id).in_(ids),
                                       HandbookQuestion.status == QuestionStatus.OPEN)
                                .group_by(col(HandbookQuestion.place_id)))
    followers = await follower_counts(session, ids)
    for place_id, row in found.items():
        row.households, row.surveyed = households.get(place_id, 0), surveyed.get(place_id, 0)
        row.tech_team, row.open_questions = tech_team.get(place_id, 0), questions.get(place_id, 0)
        row.followers = followers.get(place_id, 0)
    await _latest_notices(session, found, ids)
    return [found[p.id] for p in places]


async def _by_place(session: AsyncSession, query: Select[Any, Any]) -> dict[int | None, int]:
    """A (place id, count) query as a dict."""
    return dict((await session.exec(query)).all())


async def _latest_notices(session: AsyncSession, found: dict[int | None, PlaceGlance], ids: list[int]) -> None:
    latest = dict((await session.exec(
        select(ChatGroup.place_id, func.max(Delivery.announcement_id))
        .join(ChatGroup, col(ChatGroup.id) == Delivery.group_id)
        .where(col(ChatGroup.place_id).in_(ids))
        .group_by(col(ChatGroup.place_id))
    )).all())
    if not latest:
        return
    notices = {n.id: n for n in (await session.exec(
        select(Announcement).where(col(Announcement.id).in_(sorted(set(latest.values()))))
    )).all()}
    for place_id, notice_id in latest.items():
        found[place_id].latest = LatestNotice(notices[notice_id])
    rows = await session.exec(
        select(ChatGroup.place_id, Delivery.announcement_id, Delivery.status, Delivery.last_error)
        .join(ChatGroup, col(ChatGroup.id) == Delivery.group_id)
        .where(col(ChatGroup.place_id).in_(ids), col(Delivery.announcement_id).in_(sorted(set(latest.values()))))
    )
    for place_id, notice_id, state, error in rows.all():
        shown = found[place_id].latest
        if shown is not None and latest[place_id] == notice_id:
            shown.counts[delivery_bucket(state, error)] += 1
    acks = await session.exec(
        select(ChatGroup.place_id, Acknowledgement.announcement_id, func.count())
        .join(ChatGroup, col(ChatGroup.id) == Acknowledgement.group_id)
        .where(col(ChatGroup.place_id).in_(ids), col(Acknowledgement.announcement_id).in_(sorted(set(latest.values()))))
        .group_by(col(ChatGroup.place_id), col(Acknowledgement.announcement_id))
    )
    for place_id, notice_id, count in acks.all():
        shown = found[place_id].latest
        if shown is not None and latest[place_id] == notice_id:
            shown.acks = count
