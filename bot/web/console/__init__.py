"""The web console for commune officials, village heads and the tech team, on the bot's own aiohttp
server. Routes are a thin surface over the features' plain operations (the chat flows call the same
ones) and each asks the permission core; pages are jinja2 templates in messages/web (autoescaped)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.delivery import send_direct
from bot.dispatcher import Route
from bot.web.console import audit_log, home, login, notices, people, questions, surveys
from bot.web.console.access import CONSOLE, Console
from handlers.chat import ChatKind, Outcome, Outgoing
from messages.web import STATIC

log = logging.getLogger(__name__)

__all__ = ["ROUTE_TABLES", "Console", "mount", "sender"]

ROUTE_TABLES = (login.ROUTES, home.ROUTES, people.ROUTES, questions.ROUTES, audit_log.ROUTES, surveys.ROUTES,
                notices.ROUTES)
STATIC_PREFIX = "/tep/"


def mount(app: web.Application, console: Console) -> None:
    app[CONSOLE] = console
    for routes in ROUTE_TABLES:
        app.router.add_routes(routes)
    app.router.add_static(STATIC_PREFIX, STATIC)


def sender(routes: Mapping[str, Route]) -> Callable[[Outgoing], Awaitable[None]]:
    """Messages the console causes go out like a turn's replies, ahead of bulk delivery."""

    async def send(out: Outgoing) -> None:
        route = routes.get(out.chat.platform)
        outcome = await send_direct(route.channel, route.pacer, out, ChatKind.PRIVATE) if route else Outcome.FAILED
        if outcome is not Outcome.SENT:
            log.warning("console: a message to a %s chat was not sent (%s)", out.chat.platform, outcome)

    return send
