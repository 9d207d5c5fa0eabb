"""Who is asking, and may they: the session cookie, the CSRF token of every form, the 403 page. Each
console route is wrapped by `staff`, which opens one database transaction for the request, finds the
person behind the cookie (roles as of now: handlers/web_login.session_actor), checks a POST's CSRF
token in constant time, and sends the chat messages the page caused only after the commit."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.web import MAX_BODY
from handlers.chat import Outgoing
from handlers.context import HandlerSettings
from handlers.handbook.search import Handbook
from handlers.permissions import BROADCASTERS, OFFICIAL, STAFF, Actor, places_where
from handlers.surveys.catalog import Catalog
from handlers.web_login import Visitor, session_actor
from messages.web import render_page
from storage.models import Place

COOKIE = "langso_phien"
LOGIN_HELP = "/dang-nhap"


@dataclass(frozen=True)
class Console:
    sessions: async_sessionmaker[AsyncSession]
    settings: HandlerSettings
    handbook: Handbook
    send: Callable[[Outgoing], Awaitable[None]]  # a chat message a page caused, after its commit
    clock: Callable[[], datetime]
    surveys: Catalog
    wake_delivery: Callable[[], None]  # deliveries were queued: the worker need not wait for its next look
    reschedule: Callable[[], None]  # a recurring notice was added or cancelled: the scheduler syncs its jobs

    @property
    def secure(self) -> bool:
        """The cookie goes only over https when the console is reached over https."""
        return self.settings.links.console_url.startswith("https://")


CONSOLE = web.AppKey("console", Console)


class Forbidden(Exception):
    """The permission core said no (403), or a rule beside it did (`reason` names the sentence the
    page shows, `status` its code)."""

    def __init__(self, reason: str = "forbidden", status: int = 403, **values: object) -> None:
        super().__init__(reason)
        self.reason, self.status, self.values = reason, status, values


def csrf_token(secret: str) -> str:
    """Derived from the session's own secret: nothing more to store, and worthless without the cookie."""
    return hmac.new(secret.encode(), b"csrf", hashlib.sha256).hexdigest()


def nav(actor: Actor) -> dict[str, bool]:
    """Which parts of the console the menu offers (each page asks the core again)."""
    return {
        "people": actor.holds_any(BROADCASTERS),
        "questions": actor.holds_any(STAFF),
        "notices": actor.holds_any(STAFF),
        "surveys": actor.holds_any(STAFF),
        "audit": actor.holds_any(OFFICIAL),
    }


@dataclass
class Visit:
    """One request of a logged-in person: its transaction, who they are, their form."""

    request: web.Request
    session: AsyncSession
    visitor: Visitor
    console: Console
    now: datetime
    csrf: str
    form: Mapping[str, Any] = field(default_factory=dict)
    relays: list[Outgoing] = field(default_factory=list)  # sent once the transaction is committed
    outbox_changed: bool = False  # deliveries were queued: wake the delivery worker after the commit
    schedule_changed: bool = False  # a recurring notice was added or cancelled: sync after the commit

    @property
    def actor(self) -> Actor:
        return self.visitor.actor

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.console.settings.timezone)

    def field(self, name: str) -> str:
        return str(self.form.get(name, "")).strip()

    def values(self, name: str) -> list[Any]:
        """Every value sent under `name` (several checkboxes, a `multiple` file input)."""
        getall = getattr(self.form, "getall", None)
        return list(getall(name, [])) if getall else []

    def page(self, template: str, status: int = 200, **values: object) -> web.Response:
        body = render_page(template, me=self.visitor.person.display_name, me_id=self.visitor.person.id,
                           csrf=self.csrf, nav=nav(self.actor), path=self.request.path, local=self.local, **values)
        return web.Response(text=body, status=status, content_type="text/html", headers=NO_STORE)

    async def staff_places(self) -> list[Place]:
        return await places_where(self.session, self.actor, STAFF)


NO_STORE = {"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"}
Page = Callable[[Visit], Awaitable[web.StreamResponse]]


def staff(handler: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        console = request.app[CONSOLE]
        secret = request.cookies.get(COOKIE, "")
        async with console.sessions() as session:
            now = console.clock()
            visitor = await session_actor(session, secret, now) if secret else None
            if visitor is None:
                await session.commit()  # a session whose person lost their roles stays ended
                raise web.HTTPSeeOther(LOGIN_HELP)
            visit = Visit(request, session, visitor, console, now, csrf_token(secret))
            if request.method == "POST":
                limit = getattr(handler, UPLOAD_LIMIT, MAX_BODY)
                form = await _form(request.clone(client_max_size=limit) if limit != MAX_BODY else request)
                if form is None:
                    return visit.page("refused.html", status=413, reason="too_large", limit_mb=limit // 2**20)
                visit.form = form
                if not hmac.compare_digest(str(visit.form.get("csrf", "")).encode(), visit.csrf.encode()):
                    return visit.page("refused.html", status=403, reason="csrf")
            try:
                response = await handler(visit)
            except Forbidden as refused:
                page = visit.page("refused.html", status=refused.status, reason=refused.reason, **refused.values)
                await session.rollback()  # after the page: it reads the person's row
                return page
            await session.commit()
        for out in visit.relays:
            await console.send(out)
        if visit.outbox_changed:
            console.wake_delivery()
        if visit.schedule_changed:
            console.reschedule()
        return response

    return handle


UPLOAD_LIMIT = "upload_limit"


def uploads(limit: int) -> Callable[[Page], Page]:
    """A route whose form carries a file larger than the server's usual limit (under `staff`)."""

    def mark(handler: Page) -> Page:
        setattr(handler, UPLOAD_LIMIT, limit)
        return handler

    return mark


async def _form(request: web.Request) -> MultiDictProxy[Any] | None:
    """The form with its files; None when it is larger than the server takes (the page says so)."""
    try:
        return await request.post()
    except web.HTTPRequestEntityTooLarge:
        return None
    except ValueError:
        raise web.HTTPBadRequest from None


def see_other(location: str) -> web.Response:
    """After a form: the browser goes on with a GET (reloading the page sends nothing twice)."""
    return web.Response(status=303, headers={"Location": location, **NO_STORE})


def require(allowed: bool) -> None:
    """Ask of a rule of the permission core; no means 403."""
    if not allowed:
        raise Forbidden
