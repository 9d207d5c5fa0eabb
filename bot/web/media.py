"""The media store's files on the bot's web server, for platforms that fetch a photo by URL (Zalo's
sendPhoto) and for documents given as a link. One route, no listing: an address works only with its
link's own token, until it expires; anything else is the same 404."""

from __future__ import annotations

from functools import partial
from urllib.parse import quote

from aiohttp import web

from bot.media import MediaFiles
from handlers.media import ROUTE


def mount_media(app: web.Application, files: MediaFiles) -> None:
    app.router.add_get(ROUTE + r"/{link_id:\d{1,18}}/{token}/{name}", partial(_serve, files))


async def _serve(files: MediaFiles, request: web.Request) -> web.StreamResponse:
    found = await files.open(int(request.match_info["link_id"]), request.match_info["token"])
    if found is None:
        raise web.HTTPNotFound
    stored, content = found
    return web.Response(
        body=content,
        content_type=stored.mime,
        headers={
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(stored.filename)}",
            "X-Content-Type-Options": "nosniff",  # served as what it was checked to be, never as a page
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "private, max-age=3600",
        },
    )
