"""Announcements: write once (/thongbao), preview, send now or at a set time, relay from the commune
group, acknowledge, and report (/tinhtrang)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import conversation, notices, vietnamese_time
from handlers.audience import RELAY, queue, reach, release_time
from handlers.chat import Attachment, Button, ChatKind, ChatRef, Outgoing, Reply
from handlers.choices import Menu, menu
from handlers.context import HandlerSettings, Turn
from handlers.conversation import Data, Flow, StepHandler
from handlers.groups import this_group
from handlers.media import Refusal, refusal_of
from handlers.notices import next_firing, take_content
from handlers.numbers import whole_number
from handlers.people import has_private_chat
from handlers.permissions import Actor, NoticeRef, Spot, actor_for, broadcast_places, may_relay_in
from messages import label, render
from storage.db import insert_if_absent
from storage.models import (
    Acknowledgement,
    Announcement,
    AnnouncementStatus,
    Delivery,
    DeliveryStatus,
    Follower,
    InboxUpdate,
    Person,
    Place,
    PlaceKind,
)

RELAY_TAG = "#thongbao"
ACK_PREFIX = "ack:"
BACK_WORDS = ("quay lại", "quay lai")
DRAFT_LINK = "thongbao"  # /start payload: the preview of a notice written in a commune's group
UNSEEN = "unseen"  # the step of a draft whose preview its author has not been shown yet
# what people type to say they read a notice (private chats; a reply to the notice in a group)
ACK_WORDS = frozenset({"1", "đã đọc", "da doc", "đọc rồi", "doc roi", "đã xem", "da xem", "ok", "oke", "okay"})


# --- writing a notice in a private chat -------------------------------------------------------------


async def start(turn: Turn, args: str) -> None:
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("announce_private_only")
        return
    try:
        draft = await notices.compose(turn.session, await turn.actor(), args, turn.incoming.attachment)
    except notices.NotAllowed:
        turn.say("announce_not_allowed")
        return
    if isinstance(draft, Refusal):
        _tell_refused(turn, draft)
        return
    if draft.text or draft.attachment_ref:
        await _preview(turn, draft)
    else:
        await conversation.move(turn, FLOW, "text", announcement_id=draft.id)
        turn.say("announce_ask_text")


DraftStep = Callable[[Turn, Announcement, Data], Awaitable[None]]


def _on_draft(step: DraftStep, *, back: bool = True) -> StepHandler:
    """A step of writing a notice: its draft, if still a draft; "quay lại" (where `back`) returns to the
    preview once there is something to preview."""

    async def handler(turn: Turn, data: Data) -> None:
        draft = await turn.session.get(Announcement, data["announcement_id"])
        if draft is None or draft.status != AnnouncementStatus.DRAFT:
            await conversation.finish(turn)
            turn.say("announce_gone")
        elif back and turn.incoming.answer.lower() in BACK_WORDS and (draft.text or draft.attachment_ref):
            await _preview(turn, draft)
        else:
            await step(turn, draft, data)

    return handler


async def _on_content(turn: Turn, draft: Announcement, _data: Data) -> None:
    if not turn.incoming.answer and turn.incoming.attachment is None:
        turn.say("announce_ask_text")
        return
    if _file_refused(turn, turn.incoming.attachment):
        return
    take_content(draft, turn.incoming.answer, turn.incoming.attachment)
    await _preview(turn, draft)


async def _on_unseen(turn: Turn, draft: Announcement, _data: Data) -> None:
    """Whatever its author first says in private shows the preview of a notice written in a group."""
    await _preview(turn, draft)


def _file_refused(turn: Turn, attachment: Attachment | None) -> bool:
    """A file too large, or of a type the bot does not relay: the sender is told why, nothing is kept."""
    why = refusal_of(attachment) if attachment is not None else None
    if why is not None:
        _tell_refused(turn, why)
    return why is not None


def _tell_refused(turn: Turn, why: Refusal) -> None:
    turn.say("media_refused", reason=why.reason, size_mb=why.size_mb, limit_mb=why.limit_mb, extension=why.extension)


def _preview_menu(draft: Announcement) -> Menu:
    return menu("send_now", "schedule", "edit", "targets", "urgent_off" if draft.urgent else "urgent_on", "cancel")


async def _preview(turn: Turn, draft: Announcement) -> None:
    seen = await notices.preview(turn.session, await turn.actor(), draft, turn.now, turn.settings)
    reached, release = seen.reached, seen.release
    choices = _preview_menu(draft)
    await conversation.move(turn, FLOW, "preview", announcement_id=draft.id)
    turn.say(
        "announce_preview",
        buttons=choices.buttons,
        text=draft.text,
        attachment=draft.attachment_kind,
        places=[p.name for p in reached.receiving],
        group_count=len(reached.groups),
        follower_count=len(reached.followers),
        reach_lines=seen.lines,
        relayed=draft.source == RELAY,
        urgent=draft.urgent,
        held_until=turn.local(release) if release > turn.now else None,
        quiet=turn.settings.quiet_hours,
        choices=choices.lines,
    )


async def _on_preview_choice(turn: Turn, draft: Announcement, _data: Data) -> None:
    choices = _preview_menu(draft)
    picked = choices.pick(turn.incoming.answer)
    if picked == "send_now":
        await _send(turn, draft, turn.now)
    elif picked == "schedule":
        await conversation.move(turn, FLOW, "when")
        turn.say("announce_ask_time")
    elif picked == "edit":
        await conversation.move(turn, FLOW, "edit")
        turn.say("announce_ask_text", editing=True)
    elif picked == "targets":
        await _ask_target(turn)
    elif picked in ("urgent_on", "urgent_off"):
        draft.urgent = picked == "urgent_on"
        await _preview(turn, draft)
    elif picked == "cancel":
        await cancel_draft(turn, draft)
    else:
        choices.ask_again(turn)


async def cancel_draft(turn: Turn, draft: Announcement) -> None:
    draft.status = AnnouncementStatus.CANCELLED
    await conversation.finish(turn)
    turn.say("announce_cancelled")


async def _target_menu(turn: Turn) -> Menu:
    places = await broadcast_places(turn.session, await turn.actor())
    return menu("all_places", **{f"place:{p.id}": p.name for p in places})


async def _ask_target(turn: Turn) -> None:
    choices = await _target_menu(turn)
    await conversation.move(turn, FLOW, "targets")
    turn.say("announce_ask_target", buttons=choices.buttons, choices=choices.lines)


async def _on_target(turn: Turn, draft: Announcement, _data: Data) -> None:
    choices = await _target_menu(turn)
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
        return
    await notices.set_targets(turn.session, await turn.actor(), draft,
                              None if picked == "all_places" else [int(picked.split(":")[1])])
    await _preview(turn, draft)


async def _on_time(turn: Turn, draft: Announcement, _data: Data) -> None:
    try:
        timing = notices.read_time(turn.incoming.answer, draft, turn.now, turn.settings)
    except vietnamese_time.InThePast:
        turn.say("time_in_past")
        return
    except vietnamese_time.NotUnderstood:
        turn.say("time_not_understood")
        return
    choices = menu("confirm", "retry_time", "back")
    if timing.rule is not None:
        await conversation.move(turn, FLOW, "confirm_when", recurrence=timing.rule.encode(), send_at=None)
        turn.say("announce_confirm_recurring", buttons=choices.buttons, rule=timing.rule, choices=choices.lines,
                 firing=timing.firing, quiet=turn.settings.quiet_hours)
        return
    assert timing.at is not None
    await conversation.move(turn, FLOW, "confirm_when", send_at=timing.at.isoformat(), recurrence=None)
    turn.say(
        "announce_confirm_time",
        buttons=choices.buttons,
        at=turn.local(timing.at),
        held_until=turn.local(timing.held_until) if timing.held_until else None,
        choices=choices.lines,
    )


async def _on_time_confirmed(turn: Turn, draft: Announcement, data: Data) -> None:
    choices = menu("confirm", "retry_time", "back")
    picked = choices.pick(turn.incoming.answer)
    if picked == "confirm":
        if data.get("recurrence"):
            await _make_recurring(turn, draft, vietnamese_time.Recurrence.decode(data["recurrence"]))
        else:
            await _send(turn, draft, datetime.fromisoformat(data["send_at"]))
    elif picked == "retry_time":
        await conversation.move(turn, FLOW, "when")
        turn.say("announce_ask_time")
    elif picked == "back":
        await _preview(turn, draft)
    else:
        choices.ask_again(turn)


async def _send(turn: Turn, draft: Announcement, due: datetime) -> None:
    sending = await notices.send(turn.session, await turn.actor(), turn.person, draft, due, turn.settings)
    reached, release = sending.reached, sending.release
    if not sending.queued:
        turn.say("announce_no_groups", places=[p.name for p in reached.receiving])
        await _preview(turn, draft)
        return
    await conversation.finish(turn)
    turn.outbox_changed = True
    turn.say(
        "announce_queued",
        number=draft.id,
        group_count=len(reached.groups),
        follower_count=len(reached.followers),
        at=turn.local(release) if release > turn.now else None,
    )


async def _make_recurring(turn: Turn, draft: Announcement, rule: vietnamese_time.Recurrence) -> None:
    await notices.make_recurring(turn.session, await turn.actor(), turn.person, draft, rule)
    await conversation.finish(turn)
    turn.schedule_changed = True
    turn.say("announce_recurring_saved", number=draft.id, rule=rule,
             firing=next_firing(draft, rule, turn.now, turn.settings))


async def occur(session: AsyncSession, template: Announcement, now: datetime, settings: HandlerSettings) -> int:
    """One firing of a recurring notice: a copy queued to the template's current targets."""
    author = await session.get(Person, template.author_id)
    occurrence = Announcement(
        author_id=template.author_id,
        text=template.text,
        attachment_kind=template.attachment_kind,
        attachment_ref=template.attachment_ref,
        attachment_platform=template.attachment_platform,
        attachment_name=template.attachment_name,
        urgent=template.urgent,
        author_name=template.author_name,
        from_place=template.from_place,
        target_place_id=template.target_place_id,
        source=template.source,
        status=AnnouncementStatus.QUEUED,
        send_at=now,
        parent_id=template.id,
    )
    session.add(occurrence)
    await session.flush()
    # an author erased since reaches no one: every sending asks the permission core afresh
    actor = await actor_for(session, author) if author is not None else Actor(0)
    reached = await reach(session, actor, occurrence)
    return await queue(session, occurrence, reached.groups, release_time(occurrence, now, settings), reached.followers)


# --- relay from a commune group ----------------------------------------------------------------------


async def relay_tagged(turn: Turn) -> None:
    """`#thongbao ...` posted in a commune group by a commune official."""
    text = turn.incoming.text.strip()[len(RELAY_TAG) :].strip()
    await _relay(turn, text, turn.incoming.attachment)


async def relay_quoted(turn: Turn, _args: str) -> None:
    """`/chuyentiep` as a reply to any message in a commune group."""
    quoted = turn.incoming.quoted
    if turn.incoming.chat_kind is not ChatKind.GROUP or quoted is None:
        turn.say("relay_usage")
        return
    await _relay(turn, quoted.text, quoted.attachment)


async def _relay(turn: Turn, text: str, attachment: Attachment | None) -> None:
    """A notice written in the commune's group waits, as a draft, for its author to see the preview in
    their private chat ("Gửi ngay" is one tap there): nothing reaches every village unseen."""
    group = await this_group(turn, create=False)
    commune = await turn.session.get(Place, group.place_id) if group and group.place_id else None
    if commune is None or commune.kind != PlaceKind.COMMUNE:
        turn.say("relay_not_commune_group")
        return
    if not may_relay_in(await turn.actor(), Spot.of(commune)):
        turn.say("relay_not_allowed")
        return
    if not text and attachment is None:
        turn.say("relay_usage")
        return
    if _file_refused(turn, attachment):
        return
    draft = Announcement(author_id=(await turn.actor()).person_id, source=RELAY, target_place_id=commune.id)
    take_content(draft, text, attachment)
    turn.session.add(draft)
    await turn.session.flush()
    msg = turn.incoming
    private = replace(
        turn,
        incoming=replace(msg, chat_id=msg.user_id, chat_kind=ChatKind.PRIVATE, quoted=None),
        reply=Reply(),
        conversation=None,
        conversation_loaded=False,
    )
    await _preview(private, draft)  # the author's private chat is now at this draft's preview
    if await has_private_chat(turn.session, msg.platform, msg.user_id):
        turn.reply.messages.extend(private.reply.messages)
        return
    # Telegram refuses to write first to someone who never opened the bot: they are told where to open it,
    # and whatever they first say there shows them the preview
    await conversation.move(private, FLOW, UNSEEN)
    links, telegram = turn.settings.links, msg.platform == "telegram"
    turn.say(
        "relay_open_private",
        name=turn.person.display_name,
        deep_link=links.telegram(DRAFT_LINK) if telegram else None,
        bot_link=None if telegram else links.zalo_share_url,
    )


async def show_waiting_draft(turn: Turn) -> bool:
    """/start in a private chat whose notice waits at its preview (one written in a commune's group):
    the preview again, so that no number is typed at a menu never seen."""
    conv = await conversation.current(turn)
    if conv is None or conv.flow != FLOW.name or conv.step not in ("preview", UNSEEN):
        return False
    draft = await turn.session.get(Announcement, conv.data.get("announcement_id"))
    if draft is None or draft.status != AnnouncementStatus.DRAFT:
        return False
    await _preview(turn, draft)
    return True


async def _on_cancel(turn: Turn, data: Data) -> None:
    """/huy while writing: the draft is marked cancelled, not lost."""
    draft = await turn.session.get(Announcement, data.get("announcement_id"))
    if draft is not None and draft.status == AnnouncementStatus.DRAFT:
        await cancel_draft(turn, draft)
    else:
        await conversation.leave_unfinished(turn, data)


FLOW = Flow(
    "announce",
    {
        "text": _on_draft(_on_content),
        "edit": _on_draft(_on_content),
        "preview": _on_draft(_on_preview_choice, back=False),
        "when": _on_draft(_on_time),
        "confirm_when": _on_draft(_on_time_confirmed),
        "targets": _on_draft(_on_target),
        UNSEEN: _on_draft(_on_unseen, back=False),
    },
    on_cancel=_on_cancel,
)


# --- what a group receives, and its acknowledgements -------------------------------------------------


def delivery_message(
    notice: Announcement,
    chat: ChatRef,
    link: str | None = None,
    *,
    file_link: str | None = None,
    file_name: str = "",
    private: bool = False,
) -> Outgoing:
    """What a group receives; a file id only means something on the platform it came from (the delivery
    worker carries it to others: bot/media.py), and a file a platform cannot take is `file_link`. A survey
    invitation carries the platform's deep link into a private chat with the bot, where it has one. A
    follower's `private` copy ends by asking for a "1" once read (no buttons on Zalo)."""
    attachment = None
    if notice.attachment_ref and notice.attachment_platform == chat.platform:
        attachment = Attachment(notice.attachment_kind or "photo", notice.attachment_ref, chat.platform)
    text = render(
        "announcement",
        text=notice.text,
        author=notice.author_name,
        place=notice.from_place,
        urgent=notice.urgent,
        link=link,
        file_link=file_link,
        file_name=file_name,
        private=private,
    )
    ack = Button(label("acknowledge"), f"{ACK_PREFIX}{notice.id}")
    return Outgoing(chat, text, (ack,), attachment)


async def acknowledge(turn: Turn) -> None:
    """"✅ Đã đọc" under a notice, in a group or a follower's private chat. Counted only from a chat the
    notice was delivered to; anything else (a forged or stale button, an id from another chat) is
    ignored without a word in the group."""
    notice_id = whole_number(turn.incoming.answer.removeprefix(ACK_PREFIX))
    if notice_id is None:
        return
    group_id, follower_id = await _receiving_chat(turn)
    delivered = await turn.session.exec(
        select(Delivery.id).where(
            Delivery.announcement_id == notice_id,
            Delivery.group_id == group_id if group_id is not None else Delivery.follower_id == follower_id,
            Delivery.status == DeliveryStatus.SENT,
        )
    )
    if (group_id, follower_id) == (None, None) or delivered.first() is None:
        return
    turn.toast("ack_thanks" if await _acknowledged(turn, notice_id, group_id, follower_id) else "ack_again")


async def acknowledge_typed(turn: Turn) -> bool:
    """"1", "đã đọc" or "ok" typed as the answer to a notice: in a follower's private chat right after
    it (the notice is the last thing the bot said there), or in a group as a reply to the notice
    (where the platform tells which message is replied to). False when the text is about something
    else, and the turn goes on as usual.

    Right after a notice, the typed "1" is taken as "read" before any menu or the handbook: the
    notice ends with "Trả lời 1 khi đã đọc" and is what the person sees last; a menu asked before it
    stays where it was, and the reply says so."""
    msg = turn.incoming
    if msg.text.strip().lower().strip(" .!") not in ACK_WORDS:
        return False
    if msg.chat_kind is ChatKind.GROUP:
        return await _acknowledge_reply_in_group(turn)
    follower = (await turn.session.exec(
        select(Follower).where(Follower.platform == msg.platform, Follower.chat_id == msg.chat_id)
    )).first()
    if follower is None:
        return False
    latest = (await turn.session.exec(
        select(Delivery)
        .where(Delivery.follower_id == follower.id, Delivery.status == DeliveryStatus.SENT)
        .order_by(col(Delivery.sent_at).desc(), col(Delivery.id).desc())
        .limit(1)
    )).first()
    if latest is None or latest.sent_at is None or await _answered_since(turn, latest.sent_at):
        return False
    thanked = await _acknowledged(turn, latest.announcement_id, None, follower.id)
    waiting = await conversation.current(turn) is not None
    turn.say("ack_thanks" if thanked else "ack_again", waiting=waiting)
    return True


async def _acknowledge_reply_in_group(turn: Turn) -> bool:
    """A group member's "1" in reply to the notice itself: counted without a word in the group."""
    quoted = turn.incoming.quoted
    group = await this_group(turn, create=False)
    if quoted is None or not quoted.message_id or group is None:
        return False
    delivered = (await turn.session.exec(
        select(Delivery.announcement_id).where(
            Delivery.group_id == group.id, Delivery.message_id == quoted.message_id, Delivery.status == DeliveryStatus.SENT
        )
    )).first()
    if delivered is None:
        return False
    await _acknowledged(turn, delivered, group.id, None)
    return True


async def _answered_since(turn: Turn, sent_at: datetime) -> bool:
    """Whether the bot handled a message of this chat after `sent_at`: then it spoke after the notice."""
    msg = turn.incoming
    rows = await turn.session.exec(
        select(InboxUpdate.id).where(
            InboxUpdate.platform == msg.platform,
            InboxUpdate.chat_id == msg.chat_id,
            col(InboxUpdate.processed_at) > sent_at,
        ).limit(1)
    )
    return rows.first() is not None


async def _receiving_chat(turn: Turn) -> tuple[int | None, int | None]:
    """(group id, follower id) of this turn's chat as a receiver of notices; (None, None) if unknown."""
    msg = turn.incoming
    if msg.chat_kind is ChatKind.GROUP:
        group = await this_group(turn, create=False)
        return (group.id if group else None), None
    rows = await turn.session.exec(
        select(Follower.id).where(Follower.platform == msg.platform, Follower.chat_id == msg.chat_id)
    )
    return None, rows.first()


async def _acknowledged(turn: Turn, notice_id: int, group_id: int | None, follower_id: int | None) -> bool:
    """Record that this person read the notice; False if they had said so already (one per person,
    however many presses or chats: the row's unique key decides, also for two at once)."""
    msg = turn.incoming
    return await insert_if_absent(
        turn.session, Acknowledgement, announcement_id=notice_id, group_id=group_id, follower_id=follower_id,
        platform=msg.platform, user_id=msg.user_id, at=turn.now,
    )


# --- reports and cancelling ----------------------------------------------------------------------


async def status(turn: Turn, args: str) -> None:
    notice, _ref = await _own_notice(turn, args)
    if notice is None:
        return
    told = await notices.report(turn.session, notice, turn.now, turn.settings)
    turn.say(
        "status",
        notice=notice,
        shown=told.shown,
        rule=told.rule,
        upcoming=told.upcoming,
        waiting_until=turn.local(told.waiting_until) if told.waiting_until else None,
        places=told.places,
        totals=told.totals,
        acks=told.acks,
        created=turn.local(told.shown.created_at),
        cancelled=told.cancelled,
    )


async def cancel_sent(turn: Turn, args: str) -> None:
    """`/huythongbao N`: stop what has not gone out yet (a scheduled or recurring notice, and what its
    occurrences still hold back). Nothing left to stop is said as such, and changes nothing."""
    notice, ref = await _own_notice(turn, args, require_number=True)
    if notice is None or ref is None:
        return
    done = await notices.cancel(turn.session, await turn.actor(), notice, ref, turn.now)
    if done.verdict is notices.Verdict.NOT_ALLOWED:
        turn.say("cancel_not_allowed", number=notice.id)
    elif done.verdict is notices.Verdict.ALREADY:
        turn.say("announce_already_stopped", number=notice.id)
    elif done.verdict is notices.Verdict.NOTHING:
        turn.say("announce_nothing_to_stop", number=notice.id, sending=done.sending)
    else:
        turn.schedule_changed = done.recurring
        turn.say("announce_cancelled_sent", number=notice.id, stopped=done.stopped, sending=done.sending,
                 recurring=done.recurring)


async def _own_notice(
    turn: Turn, args: str, require_number: bool = False
) -> tuple[Announcement | None, NoticeRef | None]:
    """The notice named by number (or the person's latest), if they may see it, with what the
    permission rules need of it."""
    args = args.strip().lstrip("#")
    if args:
        number = whole_number(args)
        if number is None:
            turn.say("status_usage")
            return None, None
    elif require_number:
        turn.say("status_usage")
        return None, None
    else:
        latest = await turn.session.exec(
            select(Announcement.id)
            .where(
                Announcement.author_id == turn.person.id,
                Announcement.status != AnnouncementStatus.DRAFT,
                col(Announcement.parent_id).is_(None),  # a recurring notice, not one of its firings
            )
            .order_by(col(Announcement.id).desc())
        )
        number = latest.first()
        if number is None:
            turn.say("status_none")
            return None, None
    found = await notices.visible(turn.session, await turn.actor(), number)
    if found is None:
        turn.say("status_not_found", number=args)
        return None, None
    return found
