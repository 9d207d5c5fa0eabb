"""Logging in with the one-time link /web sent, and out. The link's page only shows a button: link
previews and mail scanners fetch a GET, and must not spend the link; the POST does. Wrong, used and
expired links count against the address they come from (behind the proxy on this host, the address
the proxy saw), ten an hour, like every other secret."""

from __future__ import annotations

import ipaddress

from aiohttp import web

from bot.web.console.access import CONSOLE, COOKIE, LOGIN_HELP, NO_STORE, Visit, see_other, staff
from handlers import attempts
from handlers.web_login import GUESSES, LOGIN_PATH, SESSION_LIFETIME, end_session, open_link
from messages.web import render_page

ROUTES = web.RouteTableDef()


def _public(template: str, status: int = 200, **values: object) -> web.Response:
    body = render_page(template, me=None, csrf="", nav={}, path="", **values)
    return web.Response(text=body, status=status, content_type="text/html", headers=NO_STORE)


@ROUTES.get(LOGIN_HELP)
async def how_to_log_in(request: web.Request) -> web.Response:
    return _public("login_help.html", logged_out=request.query.get("xong") == "dang-xuat")


@ROUTES.get(LOGIN_PATH + "{token}")
async def confirm(_request: web.Request) -> web.Response:
    return _public("login_confirm.html")


@ROUTES.post(LOGIN_PATH + "{token}")
async def log_in(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    keys = attempts.scopes(GUESSES, None, "web", client_address(request))
    async with console.sessions() as session:
        secret = await open_link(session, request.match_info["token"], keys, console.clock())
        await session.commit()
    if secret is None:
        return _public("login_failed.html", status=403)
    response = see_other("/")
    response.set_cookie(COOKIE, secret, max_age=int(SESSION_LIFETIME.total_seconds()), httponly=True,
                        samesite="Lax", secure=console.secure, path="/")
    return response


@ROUTES.post("/dang-xuat")
@staff
async def log_out(visit: Visit) -> web.StreamResponse:
    await end_session(visit.session, visit.visitor, visit.now)
    response = see_other(LOGIN_HELP + "?xong=dang-xuat")
    response.del_cookie(COOKIE, path="/")
    return response


def client_address(request: web.Request) -> str:
    """The browser's address: a request from this host (the reverse proxy) is taken at the last
    X-Forwarded-For entry, the one the proxy itself added; anything else at the connection's."""
    remote = request.remote or ""
    forwarded = request.headers.get("X-Forwarded-For", "")
    try:
        local = ipaddress.ip_address(remote).is_loopback
    except ValueError:
        local = False
    if local and forwarded:
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return remote
