"""Notices in the web console: write one (text, a photo or document uploaded into the media store,
places as checkboxes, urgent), preview it exactly as residents will read it, send it now, at a time typed
as in chat ("7h sáng mai", read back as an exact date before anything is queued) or again and again
("mỗi chủ nhật 19h"); the list of notices with how each went per village and platform, why each failed
chat failed, who read it; cancel what has not gone out. All through handlers/notices.py, which the chat's
/thongbao, /tinhtrang and /huythongbao call too."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from aiohttp import web

from bot.web.console.access import Forbidden, Page, Visit, require, see_other, staff, uploads
from handlers import notices, vietnamese_time
from handlers.announcements import delivery_message
from handlers.chat import Attachment, ChatRef
from handlers.media import MAX_BYTES, PHOTO_TYPES, Refusal, mime_of, refusal
from handlers.numbers import whole_number
from handlers.permissions import NoticeRef, aimed_at, broadcast_places, may_cancel, may_use_console
from messages import render
from storage import media
from storage.models import Announcement, AnnouncementStatus, Person, Place

ROUTES = web.RouteTableDef()
DraftPage = Callable[[Visit, Announcement], Awaitable[web.StreamResponse]]
UPLOADED = "web"  # Announcement.attachment_platform of a file sent through the console (kept in the media store)
UPLOAD_LIMIT = max(MAX_BYTES.values()) + 1024 * 1024  # the largest file a notice takes, and the form around it
LISTED = 30


def own_draft(route: DraftPage) -> Page:
    """A route on the person's own draft in the path (403: someone else's). Once it is no longer a draft
    (a second click, a back button) its status page is shown instead."""

    async def handle(visit: Visit) -> web.StreamResponse:
        notice = await _notice_in_path(visit)
        require(notice.author_id == visit.actor.person_id)
        if notice.status != AnnouncementStatus.DRAFT:
            return see_other(f"/thong-bao/{notice.id}")
        return await route(visit, notice)

    return handle


async def _notice_in_path(visit: Visit) -> Announcement:
    number = whole_number(visit.request.match_info["id"])
    notice = await visit.session.get(Announcement, number) if number is not None else None
    if notice is None or notice.parent_id is not None:
        raise web.HTTPNotFound
    return notice


# --- writing ------------------------------------------------------------------------------------------


@ROUTES.get("/thong-bao")
@staff
async def listing(visit: Visit) -> web.StreamResponse:
    require(may_use_console(visit.actor))
    settings = visit.console.settings
    seen = await notices.notices_seen(visit.session, visit.actor, LISTED)
    reports = [await notices.report(visit.session, notice, visit.now, settings) for notice, _ref in seen]
    may_write = bool(await broadcast_places(visit.session, visit.actor))
    return visit.page("notices.html", reports=reports, may_write=may_write, done=visit.request.query.get("xong", ""))


@ROUTES.get("/thong-bao/moi")
@staff
async def new_form(visit: Visit) -> web.StreamResponse:
    places = await broadcast_places(visit.session, visit.actor)
    require(bool(places))
    return visit.page("notice_form.html", draft=None, places=places, chosen=set(), problem=None)


@ROUTES.post("/thong-bao/moi")
@staff
@uploads(UPLOAD_LIMIT)
async def create(visit: Visit) -> web.StreamResponse:
    places = await broadcast_places(visit.session, visit.actor)
    require(bool(places))
    file = await _uploaded(visit)
    text = visit.field("noi_dung")
    if isinstance(file, Refusal) or (not text and file is None):
        return await _form_again(visit, None, places, file.values() if isinstance(file, Refusal) else EMPTY)
    draft = await notices.compose(visit.session, visit.actor, text, file)
    assert isinstance(draft, Announcement)  # the file was checked above, and the person may send
    return await _aim(visit, draft, places, new=True)


@ROUTES.get("/thong-bao/{id}/sua")
@staff
@own_draft
async def edit_form(visit: Visit, draft: Announcement) -> web.StreamResponse:
    places = await broadcast_places(visit.session, visit.actor)
    chosen = await _chosen(visit, draft, places)
    return visit.page("notice_form.html", draft=draft, places=places, chosen=chosen, problem=None)


@ROUTES.post("/thong-bao/{id}/sua")
@staff
@uploads(UPLOAD_LIMIT)
@own_draft
async def edit(visit: Visit, draft: Announcement) -> web.StreamResponse:
    places = await broadcast_places(visit.session, visit.actor)
    file = await _uploaded(visit)
    text = visit.field("noi_dung")
    keeps_file = bool(draft.attachment_ref) and not visit.field("bo_tep")
    if isinstance(file, Refusal) or (not text and file is None and not keeps_file):
        return await _form_again(visit, draft, places, file.values() if isinstance(file, Refusal) else EMPTY)
    if visit.field("bo_tep"):
        draft.attachment_kind = draft.attachment_ref = draft.attachment_platform = None
        draft.attachment_name = ""
    notices.take_content(draft, text, file)
    return await _aim(visit, draft, places, new=False)


async def _aim(visit: Visit, draft: Announcement, places: list[Place], *, new: bool) -> web.StreamResponse:
    """The checked places and the urgent box, then the preview; no place checked asks again."""
    draft.urgent = bool(visit.field("khan"))
    if not await notices.set_targets(visit.session, visit.actor, draft, _picked(visit)):
        return await _form_again(visit, None if new else draft, places, NO_PLACE)
    return see_other(f"/thong-bao/{draft.id}/xem-truoc")


EMPTY = {"reason": "empty"}
NO_PLACE = {"reason": "no_place"}


def _picked(visit: Visit) -> list[int]:
    return [n for n in (whole_number(str(v)) for v in visit.values("noi")) if n is not None]


async def _form_again(
    visit: Visit, draft: Announcement | None, places: list[Place], problem: Mapping[str, object]
) -> web.Response:
    """The form once more, with what was typed and why it was not taken; nothing is kept (a new draft,
    a changed one, an uploaded file: all rolled back)."""
    refused = render("media_refused", **problem) if problem["reason"] not in (EMPTY["reason"], NO_PLACE["reason"]) else ""
    page = visit.page("notice_form.html", status=422, draft=draft, places=places, chosen=set(_picked(visit)),
                      problem=problem, refused=refused, typed=visit.field("noi_dung"), urgent=bool(visit.field("khan")))
    await visit.session.rollback()
    return page


async def _uploaded(visit: Visit) -> Attachment | Refusal | None:
    """The file the form carries, kept in the media store once it passes the same limits as a file sent
    in chat; a refusal says why, and nothing is kept."""
    sent = visit.form.get("tep")
    if not isinstance(sent, web.FileField) or not sent.filename:
        return None
    content = await asyncio.to_thread(sent.file.read)
    if not content:
        return None
    mime = mime_of(sent.filename, sent.content_type)
    kind = "photo" if mime in PHOTO_TYPES else "document"
    why = refusal(kind, len(content), mime, sent.filename)
    if why is not None:
        return why
    digest = hashlib.sha256(content).hexdigest()
    await media.keep(visit.session, content, kind, mime, sent.filename, UPLOADED, digest)
    return Attachment(kind, digest, UPLOADED, sent.filename, len(content), mime)


async def _chosen(visit: Visit, draft: Announcement, places: list[Place]) -> set[int]:
    aimed = await aimed_at(visit.session, draft)
    return {p.id for p in places if p.id is not None} if aimed is None else set(aimed)


# --- preview, time, sending -----------------------------------------------------------------------------


@ROUTES.get("/thong-bao/{id}/xem-truoc")
@staff
@own_draft
async def preview(visit: Visit, draft: Announcement) -> web.StreamResponse:
    return await _preview_page(visit, draft)


async def _preview_page(visit: Visit, draft: Announcement, status: int = 200, **values: object) -> web.Response:
    seen = await notices.preview(visit.session, visit.actor, draft, visit.now, visit.console.settings)
    received = notices.as_received(draft, visit.visitor.person, seen.reached.places)
    chat = ChatRef("", "")
    return visit.page(
        "notice_preview.html", status=status, draft=draft, seen=seen,
        group_copy=delivery_message(received, chat).text,
        private_copy=delivery_message(received, chat, private=True).text,
        held_until=visit.local(seen.release) if seen.release > visit.now else None,
        quiet=visit.console.settings.quiet_hours, typed=values.pop("typed", ""), **values,
    )


@ROUTES.post("/thong-bao/{id}/hen-gio")
@staff
@own_draft
async def read_time(visit: Visit, draft: Announcement) -> web.StreamResponse:
    """The typed time read back as an exact date (or a rule and its first date) to confirm."""
    typed = visit.field("luc")
    try:
        timing = notices.read_time(typed, draft, visit.now, visit.console.settings)
    except vietnamese_time.InThePast:
        return await _preview_page(visit, draft, 422, typed=typed, time_problem="past")
    except vietnamese_time.NotUnderstood:
        return await _preview_page(visit, draft, 422, typed=typed, time_problem="unknown")
    return visit.page("notice_confirm.html", draft=draft, timing=timing, typed=typed,
                      at=visit.local(timing.at) if timing.at else None,
                      held_until=visit.local(timing.held_until) if timing.held_until else None,
                      quiet=visit.console.settings.quiet_hours)


@ROUTES.post("/thong-bao/{id}/gui")
@staff
@own_draft
async def send(visit: Visit, draft: Announcement) -> web.StreamResponse:
    """Now (no time given), at the confirmed moment, or as the confirmed rule."""
    author: Person = visit.visitor.person
    if visit.field("lap"):
        timing = _confirmed_rule(visit, draft)
        if timing is None or timing.rule is None:
            return await _preview_page(visit, draft, 422, typed=visit.field("lap"), time_problem="unknown")
        await notices.make_recurring(visit.session, visit.actor, author, draft, timing.rule)
        visit.schedule_changed = True
        return see_other(f"/thong-bao/{draft.id}?xong=lap")
    due = _confirmed_moment(visit.field("gio")) if visit.field("gio") else visit.now
    if due is None:
        return await _preview_page(visit, draft, 422, time_problem="unknown")
    sending = await notices.send(visit.session, visit.actor, author, draft, due, visit.console.settings)
    if not sending.queued:
        return await _preview_page(visit, draft, 409, nobody=True)
    visit.outbox_changed = True
    return see_other(f"/thong-bao/{draft.id}?xong={'hen' if sending.release > visit.now else 'gui'}")


def _confirmed_rule(visit: Visit, draft: Announcement) -> notices.Timing | None:
    """The rule as typed, read again: a rule does not depend on the moment it is read."""
    try:
        return notices.read_time(visit.field("lap"), draft, visit.now, visit.console.settings)
    except ValueError:
        return None


def _confirmed_moment(value: str) -> datetime | None:
    """The exact moment the confirmation page showed (what the person agreed to, not a new reading)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@ROUTES.post("/thong-bao/{id}/bo")
@staff
@own_draft
async def discard(visit: Visit, draft: Announcement) -> web.StreamResponse:
    draft.status = AnnouncementStatus.CANCELLED
    visit.session.add(draft)
    return see_other("/thong-bao?xong=bo")


@ROUTES.get("/thong-bao/{id}/tep")
@staff
async def attached_file(visit: Visit) -> web.StreamResponse:
    """A file sent through the console, for its notice's preview and status pages (no other file: a
    Telegram or Zalo file is not kept until it is carried across)."""
    notice = await _notice_in_path(visit)
    if notice.status == AnnouncementStatus.DRAFT:
        require(notice.author_id == visit.actor.person_id)
    else:
        require(await notices.visible(visit.session, visit.actor, notice.id) is not None)
    uploaded = notice.attachment_platform == UPLOADED and notice.attachment_ref
    stored = await media.find(visit.session, UPLOADED, notice.attachment_ref or "") if uploaded else None
    if stored is None:
        raise web.HTTPNotFound
    content = await media.content(visit.session, stored.id)
    return web.Response(body=content, content_type=stored.mime, headers={
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox", "Content-Disposition": "inline"})


# --- how it went, and cancelling ------------------------------------------------------------------------


async def _visible(visit: Visit) -> tuple[Announcement, NoticeRef]:
    notice = await _notice_in_path(visit)
    found = await notices.visible(visit.session, visit.actor, notice.id)
    require(found is not None)
    assert found is not None
    return found


@ROUTES.get("/thong-bao/{id}")
@staff
async def status(visit: Visit) -> web.StreamResponse:
    notice = await _notice_in_path(visit)
    if notice.status == AnnouncementStatus.DRAFT and notice.author_id == visit.actor.person_id:
        return see_other(f"/thong-bao/{notice.id}/xem-truoc")
    notice, ref = await _visible(visit)
    told = await notices.report(visit.session, notice, visit.now, visit.console.settings)
    pending, _sending = await notices.unsent(visit.session, notice)
    return visit.page(
        "notice_status.html", told=told, failures=await notices.failures(visit.session, told.shown.id),
        by_village=_acks_by_village(told), done=visit.request.query.get("xong", ""),
        may_cancel=may_cancel(visit.actor, ref) and notices.cancellable(notice, len(pending)),
        waiting=visit.local(told.waiting_until) if told.waiting_until else None,
    )


def _acks_by_village(told: notices.Report) -> list[tuple[str, int]]:
    """People who said they read it, per village (over its platforms)."""
    villages: dict[str, int] = {}
    for place, _platform, row in told.places:
        villages[place] = villages.get(place, 0) + row["acks"]
    return sorted(villages.items())


@ROUTES.get("/thong-bao/{id}/huy")
@staff
async def confirm_cancel(visit: Visit) -> web.StreamResponse:
    notice, ref = await _visible(visit)
    require(may_cancel(visit.actor, ref))
    pending, sending = await notices.unsent(visit.session, notice)
    if not notices.cancellable(notice, len(pending)):
        return see_other(f"/thong-bao/{notice.id}?xong=het")
    return visit.page("notice_cancel.html", notice=notice, pending=len(pending), sending=sending,
                      recurring=notice.status == AnnouncementStatus.RECURRING)


@ROUTES.post("/thong-bao/{id}/huy")
@staff
async def cancel(visit: Visit) -> web.StreamResponse:
    notice, ref = await _visible(visit)
    done = await notices.cancel(visit.session, visit.actor, notice, ref, visit.now)
    if done.verdict is notices.Verdict.NOT_ALLOWED:
        raise Forbidden
    visit.schedule_changed = done.recurring
    return see_other(f"/thong-bao/{notice.id}?xong={'huy' if done.verdict is notices.Verdict.DONE else 'het'}")

