"""Notices as plain operations `(session, actor, ...) -> result`: write a draft, aim it, read its time,
queue it or make it recurring, report on it, cancel it. The chat (/thongbao, /tinhtrang, /huythongbao in
handlers/announcements.py) and the web console's notices pages (bot/web/console/notices.py) are two
surfaces over these, so a rule or a query is written once; each asks the permission core itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, or_
from sqlalchemy import select as select_columns
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import audit, vietnamese_time
from handlers.audience import Reach, queue, reach, release_time
from handlers.chat import Attachment
from handlers.context import HandlerSettings
from handlers.media import Refusal, refusal_of
from handlers.permissions import (
    Actor,
    NoticeRef,
    broadcast_places,
    may_cancel,
    may_see_status,
    notice_ref,
)
from messages import label
from storage.models import (
    Acknowledgement,
    Announcement,
    AnnouncementStatus,
    ChatGroup,
    Delivery,
    DeliveryStatus,
    Follower,
    Identity,
    NoticeTarget,
    Person,
    Place,
)

CANCELLED_MARK = "cancelled"  # Delivery.last_error of a delivery stopped by /huythongbao
REFUSED = "refused: "  # Delivery.last_error of one the platform refused: its author is told once per notice
COUNTED = ("sent", "failed", "pending", "stopped")
Tally = dict[tuple[str, str], dict[str, Any]]


class NotAllowed(Exception):
    """The permission core says no."""


# --- writing and aiming a draft ----------------------------------------------------------------------


async def compose(session: AsyncSession, actor: Actor, text: str, attachment: Attachment | None) -> Announcement | Refusal:
    """A new draft by someone who may send notices somewhere; a file too large or of a type the bot does
    not relay is refused (nothing is kept)."""
    if not await broadcast_places(session, actor):
        raise NotAllowed
    why = refusal_of(attachment) if attachment is not None else None
    if why is not None:
        return why
    draft = Announcement(author_id=actor.person_id)
    take_content(draft, text, attachment)
    session.add(draft)
    await session.flush()
    return draft


def take_content(draft: Announcement, text: str, attachment: Attachment | None) -> None:
    """The draft's text, and its file when one is given (a draft keeps its file when only the text changes)."""
    draft.text = text.strip()
    if attachment is not None:
        draft.attachment_kind, draft.attachment_ref = attachment.kind, attachment.ref
        draft.attachment_platform, draft.attachment_name = attachment.platform, attachment.filename


async def draft_of(session: AsyncSession, actor: Actor, number: int | None) -> Announcement | None:
    """The actor's own draft by its number, if it is still a draft."""
    draft = await session.get(Announcement, number) if number is not None else None
    if draft is None or draft.author_id != actor.person_id or draft.status != AnnouncementStatus.DRAFT:
        return None
    return draft


async def set_targets(session: AsyncSession, actor: Actor, draft: Announcement, place_ids: Sequence[int] | None) -> bool:
    """Aim the draft at these places (None: every place the author manages, now and at each sending).
    False, and nothing changes, when none is given or one is not the author's to send to."""
    allowed = [p.id for p in await broadcast_places(session, actor)]
    chosen = sorted(set(place_ids)) if place_ids is not None else None
    if chosen is not None and (not chosen or any(i not in allowed for i in chosen)):
        return False
    await session.exec(delete(NoticeTarget).where(col(NoticeTarget.announcement_id) == draft.id))
    if chosen is None or chosen == sorted(i for i in allowed if i is not None):
        draft.target_place_id = None
    elif len(chosen) == 1:
        draft.target_place_id = chosen[0]
    else:
        assert draft.id is not None  # a stored draft
        draft.target_place_id = None
        session.add_all(NoticeTarget(announcement_id=draft.id, place_id=i) for i in chosen)
    session.add(draft)
    return True


@dataclass(frozen=True)
class Preview:
    reached: Reach
    release: datetime  # when "send now" would go out: later than now in quiet hours, unless urgent
    lines: list[tuple[str, str, int, int]]  # (village, platform, groups, followers)


async def preview(session: AsyncSession, actor: Actor, draft: Announcement, now: datetime, settings: HandlerSettings) -> Preview:
    reached = await reach(session, actor, draft)
    return Preview(reached, release_time(draft, now, settings), reach_lines(reached))


def reach_lines(reached: Reach) -> list[tuple[str, str, int, int]]:
    """(village, platform, groups, followers) for each village and platform the notice reaches."""
    names = {p.id: p.name for p in reached.receiving}
    counts: dict[tuple[str, str], list[int]] = {}
    for group in reached.groups:
        counts.setdefault((names.get(group.place_id, "?"), group.platform), [0, 0])[0] += 1
    for following in reached.followers:
        counts.setdefault((names.get(following.place_id, "?"), following.follower.platform), [0, 0])[1] += 1
    return [(place, label(platform), n[0], n[1]) for (place, platform), n in sorted(counts.items())]


# --- when it goes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Firing:
    """The next firing of a recurring notice, in local time, and until when quiet hours hold it back."""

    at: datetime
    held_until: datetime | None


def next_firing(notice: Announcement, rule: vietnamese_time.Recurrence, now: datetime, settings: HandlerSettings) -> Firing:
    """The rule's time is the same at every firing, so a held first firing means every one is held."""
    fire = rule.next_after(now, settings.timezone)
    release = release_time(notice, fire, settings)
    tz = settings.timezone
    return Firing(fire.astimezone(tz), release.astimezone(tz) if release > fire else None)


@dataclass(frozen=True)
class Timing:
    """A time as typed, read back: a one-off moment (UTC) and until when quiet hours hold it, or a rule
    and its first firing."""

    at: datetime | None = None
    held_until: datetime | None = None
    rule: vietnamese_time.Recurrence | None = None
    firing: Firing | None = None


def read_time(text: str, draft: Announcement, now: datetime, settings: HandlerSettings) -> Timing:
    """"7h sáng mai", "mỗi chủ nhật 19h"; raises vietnamese_time.NotUnderstood / InThePast."""
    moment = vietnamese_time.parse(text, now, settings.timezone)
    if isinstance(moment, vietnamese_time.Recurrence):
        return Timing(rule=moment, firing=next_firing(draft, moment, now, settings))
    release = release_time(draft, moment, settings)
    return Timing(at=moment, held_until=release if release > moment else None)


@dataclass(frozen=True)
class Sending:
    reached: Reach
    release: datetime
    queued: bool  # False: it reaches no group and no follower, and stays a draft


async def send(
    session: AsyncSession, actor: Actor, author: Person, draft: Announcement, due: datetime, settings: HandlerSettings
) -> Sending:
    """Queue the draft for `due` (now, or a set time; quiet hours may hold it): one outbox row per chat."""
    reached = await reach(session, actor, draft)
    release = release_time(draft, due, settings)
    if not reached.groups and not reached.followers:
        return Sending(reached, release, False)
    draft.status = AnnouncementStatus.QUEUED
    draft.send_at = due
    sign(draft, author, reached.places)
    await queue(session, draft, reached.groups, release, reached.followers)
    return Sending(reached, release, True)


async def make_recurring(
    session: AsyncSession, actor: Actor, author: Person, draft: Announcement, rule: vietnamese_time.Recurrence
) -> None:
    """The draft becomes a template the scheduler fires (the caller tells the scheduler)."""
    draft.status = AnnouncementStatus.RECURRING
    draft.recurrence = rule.encode()
    sign(draft, author, (await reach(session, actor, draft)).places)


def sign(notice: Announcement, author: Person, places: list[Place]) -> None:
    notice.author_name = author.display_name
    notice.from_place = places[0].name if places else ""


def as_received(draft: Announcement, author: Person, places: list[Place]) -> Announcement:
    """A copy of the draft signed as it will be when sent (not stored): what a preview renders."""
    copy = Announcement(id=draft.id, author_id=draft.author_id, text=draft.text, urgent=draft.urgent,
                        attachment_kind=draft.attachment_kind, attachment_ref=draft.attachment_ref,
                        attachment_platform=draft.attachment_platform, attachment_name=draft.attachment_name)
    sign(copy, author, places)
    return copy


# --- reports -----------------------------------------------------------------------------------------


async def visible(session: AsyncSession, actor: Actor, number: int | None) -> tuple[Announcement, NoticeRef] | None:
    """A notice (not a draft) the actor may see the status of, with what the rules need of it."""
    notice = await session.get(Announcement, number) if number is not None else None
    if notice is None or notice.status == AnnouncementStatus.DRAFT:
        return None
    ref = await notice_ref(session, notice)
    return (notice, ref) if may_see_status(actor, ref) else None


@dataclass(frozen=True)
class Report:
    notice: Announcement
    shown: Announcement  # the notice, or a recurring notice's latest firing
    rule: vietnamese_time.Recurrence | None
    upcoming: Firing | None  # a recurring notice's next firing, while it recurs
    waiting_until: datetime | None  # UTC: when its held deliveries may go out
    places: list[tuple[str, str, dict[str, Any]]]  # (village, platform label, tally row)
    totals: dict[str, dict[str, int]]  # "groups"/"followers" -> bucket -> count
    acks: int  # people who said they read it

    @property
    def cancelled(self) -> bool:
        return self.notice.status == AnnouncementStatus.CANCELLED


async def report(session: AsyncSession, notice: Announcement, now: datetime, settings: HandlerSettings) -> Report:
    """How a notice went, per village and platform, its groups and followers apart."""
    shown = notice
    if notice.recurrence:  # report its latest occurrence
        latest = await session.exec(
            select(Announcement).where(Announcement.parent_id == notice.id).order_by(col(Announcement.id).desc())
        )
        shown = latest.first() or notice
    by_place = await tally(session, shown.id)
    totals = {
        kind: {k: sum(r[kind][k] for r in by_place.values()) for k in COUNTED} for kind in ("groups", "followers")
    }
    rule = vietnamese_time.Recurrence.decode(notice.recurrence) if notice.recurrence else None
    recurring = rule is not None and notice.status == AnnouncementStatus.RECURRING
    return Report(
        notice=notice,
        shown=shown,
        rule=rule,
        upcoming=next_firing(notice, rule, now, settings) if rule is not None and recurring else None,
        waiting_until=await waiting_until(session, shown, now),
        places=[(place, label(platform), counts) for (place, platform), counts in sorted(by_place.items())],
        totals=totals,
        acks=sum(r["acks"] for r in by_place.values()),
    )


async def tally(session: AsyncSession, notice_id: int | None) -> Tally:
    """Per (village, platform): its groups' and its followers' deliveries by how a report counts them,
    and how many people said they read it. Counted in the database: a notice may reach thousands."""
    found: Tally = {}

    def row(place: str | None, platform: str) -> dict[str, Any]:
        fresh = {"groups": dict.fromkeys(COUNTED, 0), "followers": dict.fromkeys(COUNTED, 0), "acks": 0}
        return found.setdefault((place or "?", platform), fresh)

    cancelled = col(Delivery.last_error) == CANCELLED_MARK
    for kind, chat, chat_key, place_of in (
        ("groups", ChatGroup, col(Delivery.group_id), col(ChatGroup.place_id)),
        ("followers", Follower, col(Delivery.follower_id), col(Delivery.place_id)),
    ):
        deliveries = await (await session.connection()).execute(  # five columns: sqlmodel types four
            select_columns(col(Place.name), col(chat.platform), col(Delivery.status), cancelled, func.count())
            .join(chat, chat_key == chat.id)
            .join(Place, place_of == Place.id, isouter=True)
            .where(col(Delivery.announcement_id) == notice_id)
            .group_by(Place.name, chat.platform, Delivery.status, cancelled)
        )
        for place, platform, state, stopped, count in deliveries.all():
            row(place, platform)[kind][delivery_bucket(state, CANCELLED_MARK if stopped else "")] += count
    read = await session.exec(
        select(Place.name, Acknowledgement.platform, func.count())
        .select_from(Acknowledgement)
        .join(Delivery, (col(Delivery.announcement_id) == Acknowledgement.announcement_id) & or_(
            col(Delivery.group_id) == Acknowledgement.group_id, col(Delivery.follower_id) == Acknowledgement.follower_id
        ))
        .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id, isouter=True)
        .join(Place, func.coalesce(ChatGroup.place_id, Delivery.place_id) == Place.id, isouter=True)
        .where(Acknowledgement.announcement_id == notice_id)
        .group_by(Place.name, Acknowledgement.platform)
    )
    for place, platform, count in read.all():
        row(place, platform)["acks"] += count
    return found


def delivery_bucket(state: str, error: str) -> str:
    """How a report counts one delivery: "sent", "failed" (the group refused it, or the bot was removed),
    "stopped" (cancelled before it went out) or "pending"."""
    if state == DeliveryStatus.STOPPED and error == CANCELLED_MARK:
        return "stopped"
    buckets: dict[str, str] = {DeliveryStatus.SENT: "sent", DeliveryStatus.FAILED: "failed", DeliveryStatus.STOPPED: "failed"}
    return buckets.get(state, "pending")


async def waiting_until(session: AsyncSession, notice: Announcement, now: datetime) -> datetime | None:
    """When a notice's deliveries that wait (a set time, quiet hours) may go out; None if none waits."""
    rows = await session.exec(
        select(Delivery.not_before)
        .where(Delivery.announcement_id == notice.id, Delivery.status == DeliveryStatus.PENDING)
        .order_by(col(Delivery.not_before))
        .limit(1)
    )
    first = rows.first()
    return first if first is not None and first > now else None


@dataclass(frozen=True)
class Failure:
    """One chat a notice did not reach, and why, as a key the page words (messages/web)."""

    place: str
    platform: str
    chat: str  # the group's title, or the follower's name
    follower: bool
    reason: str  # "bot_removed" | "blocked" | "account_gone" | "too_long" | "no_rights" | "refused" | "gave_up"


async def failures(session: AsyncSession, notice_id: int | None) -> list[Failure]:
    """The chats a notice failed in (not those cancelled), groups first, then by village and name."""
    failed = (
        (col(Delivery.announcement_id) == notice_id)
        & col(Delivery.status).in_([DeliveryStatus.FAILED, DeliveryStatus.STOPPED])
        & (col(Delivery.last_error) != CANCELLED_MARK)
    )
    groups = await session.exec(
        select(Delivery, ChatGroup, col(Place.name))
        .join(ChatGroup, col(Delivery.group_id) == ChatGroup.id)
        .join(Place, col(ChatGroup.place_id) == Place.id, isouter=True)
        .where(failed)
    )
    found = [Failure(place or "?", label(group.platform), group.title or "", False,
                     failure_reason(delivery.status, delivery.last_error, group=True))
             for delivery, group, place in groups.all()]
    followers = await session.exec(
        select(Delivery, col(Follower.platform), col(Person.display_name), col(Place.name))
        .join(Follower, col(Delivery.follower_id) == Follower.id)
        .join(Place, col(Delivery.place_id) == Place.id, isouter=True)
        .join(Identity, (col(Identity.platform) == Follower.platform) & (col(Identity.user_id) == Follower.chat_id),
              isouter=True)
        .join(Person, col(Identity.person_id) == Person.id, isouter=True)
        .where(failed)
    )
    found += [Failure(place or "?", label(platform), name or "", True,
                      failure_reason(delivery.status, delivery.last_error, group=False))
              for delivery, platform, name, place in followers.all()]
    return sorted(found, key=lambda f: (f.follower, f.place, f.platform, f.chat))


def failure_reason(state: str, error: str, *, group: bool) -> str:
    """Why a delivery failed, from its status and the platform's words (Telegram's and Zalo's English)."""
    words = error.lower()
    if state == DeliveryStatus.STOPPED:  # the platform refused the chat itself: not retried
        if group:
            return "bot_removed"
        return "account_gone" if "deactivated" in words or "not found" in words else "blocked"
    if error.startswith(REFUSED):
        if "too long" in words:
            return "too_long"
        if "rights" in words or "administrator" in words:
            return "no_rights"
        return "refused"
    return "gave_up"


# --- the notices a person sees, and cancelling -------------------------------------------------------


async def notices_seen(session: AsyncSession, actor: Actor, limit: int, scan: int = 500) -> list[tuple[Announcement, NoticeRef]]:
    """The latest notices (not drafts, not a recurring notice's firings) the actor may see, newest
    first. The permission core decides each one, so the walk reads at most `scan` of the latest."""
    rows = await session.exec(
        select(Announcement)
        .where(Announcement.status != AnnouncementStatus.DRAFT, col(Announcement.parent_id).is_(None))
        .order_by(col(Announcement.id).desc())
        .limit(scan)
    )
    seen: list[tuple[Announcement, NoticeRef]] = []
    for notice in rows.all():
        ref = await notice_ref(session, notice)
        if may_see_status(actor, ref):
            seen.append((notice, ref))
            if len(seen) == limit:
                break
    return seen


class Verdict(StrEnum):
    NOT_ALLOWED = "not_allowed"
    ALREADY = "already"  # cancelled before
    NOTHING = "nothing"  # everything went out (or is going out right now)
    DONE = "done"


@dataclass(frozen=True)
class Cancelled:
    verdict: Verdict
    stopped: int = 0  # deliveries that will not go out
    sending: int = 0  # going out right now: too late to stop
    recurring: bool = False  # a recurring notice: no more firings (the caller tells the scheduler)


async def unsent(session: AsyncSession, notice: Announcement) -> tuple[list[Delivery], int]:
    """A notice's deliveries (its firings' too) still waiting, and how many are going out right now."""
    occurrences = select(Announcement.id).where(Announcement.parent_id == notice.id)
    rows = await session.exec(
        select(Delivery).where(
            or_(col(Delivery.announcement_id) == notice.id, col(Delivery.announcement_id).in_(occurrences)),
            col(Delivery.status).in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
        ).order_by(col(Delivery.id))
    )
    pending, sending = [], 0
    for delivery in rows.all():
        if delivery.status == DeliveryStatus.PENDING:
            pending.append(delivery)
        else:
            sending += 1
    return pending, sending


def cancellable(notice: Announcement, pending: int) -> bool:
    return notice.status != AnnouncementStatus.CANCELLED and (pending > 0 or notice.status == AnnouncementStatus.RECURRING)


async def cancel(session: AsyncSession, actor: Actor, notice: Announcement, ref: NoticeRef, now: datetime) -> Cancelled:
    """Stop what has not gone out yet (a scheduled or recurring notice, and what its occurrences still
    hold back): the author or a commune official of a commune it reaches. Audited."""
    if not may_cancel(actor, ref):
        return Cancelled(Verdict.NOT_ALLOWED)
    if notice.status == AnnouncementStatus.CANCELLED:
        return Cancelled(Verdict.ALREADY)
    pending, sending = await unsent(session, notice)
    was_recurring = notice.status == AnnouncementStatus.RECURRING
    if not cancellable(notice, len(pending)):
        return Cancelled(Verdict.NOTHING, sending=sending)
    for delivery in pending:
        delivery.status = DeliveryStatus.STOPPED
        delivery.last_error = CANCELLED_MARK
    notice.status = AnnouncementStatus.CANCELLED
    await audit.record(session, "notice_cancelled", actor_id=actor.person_id, at=now,
                       place_id=notice.target_place_id, announcement=notice.id, stopped=len(pending))
    return Cancelled(Verdict.DONE, len(pending), sending, was_recurring)
