"""The bot's aiohttp server: platform webhooks, /healthz and /metrics. A webhook request is answered
200 only after its update is stored, so a crash never loses an update the platform believes delivered."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.health import Health
from bot.logs import size_of

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024

Receive = Callable[[str, str, dict[str, Any]], Awaitable[bool]]


def webhook_handler(
    platform: str, secret: str, header: str, key_of: Callable[[dict[str, Any]], str | None], receive: Receive
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        given = request.headers.get(header, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("%s webhook: request without the right secret from %s", platform, request.remote)
            return web.Response(status=403)
        if request.content_type != "application/json":
            return web.Response(status=415)
        try:
            payload = json.loads(await request.read())
        except (ValueError, web.HTTPRequestEntityTooLarge):
            return web.Response(status=400)
        if not isinstance(payload, dict):
            return web.Response(status=400)
        key = key_of(payload)
        if key is None:
            # malformed: answering an error would only make the platform send it again and again
            log.warning("%s webhook: skipping an update with no id (%d bytes)", platform, size_of(payload))
            return web.Response(status=200)
        await receive(platform, key, payload)
        return web.Response(status=200)

    return handle


def make_app(health: Health) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get("/healthz", partial(_health, health))
    app.router.add_get("/metrics", partial(_metrics, health))
    return app


async def _health(health: Health, _request: web.Request) -> web.Response:
    healthy, report = await health.check()
    return web.json_response(report, status=200 if healthy else 503)


async def _metrics(health: Health, _request: web.Request) -> web.Response:
    return web.Response(body=await health.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})
