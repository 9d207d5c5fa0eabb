"""A fake Zalo Bot Platform API server for tests.

The real ZaloChannel talks to it over real HTTP on 127.0.0.1:

    async with FakeZalo() as fake:
        channel = ZaloChannel(fake.token, fake.url, connections=4)
        await channel.start()
        fake.push("message.text.received", chat_id="c1", from_id="u1", text="xin chao")
        ...
        assert fake.sent[0].text == "hi"

It follows the documented shape: `/bot{token}/{method}`, `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": ...}`; getUpdates hands out one update per call and
answers HTTP 408 when the long poll ends idle. Everything runs on the test's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

from tests.loopback import serve_loopback, wait_until

__all__ = ["FAULT_KINDS", "FakeZalo", "Sent"]

FAULT_KINDS = frozenset({"429", "403", "500", "drop", "timeout"})
TEXT_LIMIT = 2000
_PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z0-9_]+)/?$")
_MAX_POLL = 60.0
_TIMEOUT_FAULT_HOLD = 30.0


@dataclass
class Sent:
    """One message the fake accepted."""

    chat_id: str
    method: str  # "sendMessage" | "sendPhoto"
    text: str | None  # text, or the caption of a photo
    photo: str | None
    at: float  # time.monotonic() when accepted
    message_id: str = ""
    params: dict = field(default_factory=dict, repr=False)


@dataclass
class _Reply:
    status: int = 200
    body: dict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection without answering
    hold: bool = False  # never answer (until the fake stops): the client must time out


def _ok(result: Any) -> _Reply:
    return _Reply(200, {"ok": True, "result": result})


def _err(code: int, description: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(code, {"ok": False, "error_code": code, "description": description}, headers or {})


class FakeZalo:
    def __init__(
        self, token: str = "1234567890:zalo-test-token", retry_after: int = 2, global_limit: float | None = None
    ) -> None:
        self.token = token
        # Zalo publishes no limits; benchmarks set one to check that pacing stays under it
        self.global_limit = global_limit
        self.rejected_429 = 0  # sends refused because global_limit was exceeded
        self._window: deque[float] = deque()
        self.retry_after = retry_after  # the Retry-After header sent with a "429" fault
        self.url = ""
        self.bot = {"id": "8800001", "account_name": "bot.LangSo", "account_type": "BASIC", "can_join_groups": True}
        self.sent: list[Sent] = []
        self.calls: list[tuple[str, dict]] = []
        self.errors: list[dict] = []  # failed send calls: chat_id, method, error_code, description
        self.idle_polls = 0  # getUpdates calls that ended with 408
        self.webhook: dict[str, str] | None = None
        self.webhook_responses: list[int] = []  # status of each POST to the webhook (0 = unreachable)
        self._updates: deque[dict] = deque()
        # files served at {url}/files/<name>, as the platform's CDN serves the photos people send
        self.hosted: dict[str, tuple[bytes, str]] = {}
        self.downloads: list[str] = []  # names fetched from it, in order
        self._faults: dict[str, deque[str]] = {}
        self._message_ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task] = set()
        self._methods: dict[str, Callable[[dict], Awaitable[_Reply]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "sendchataction": self._send_chat_action,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeZalo already started")
        self._closing = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._runner, self.url = await serve_loopback(self._handle)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        self._closing.set()
        self._notify()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test helpers

    def push(
        self,
        event_name: str,
        chat_id: str,
        from_id: str,
        text: str | None = None,
        chat_type: str = "PRIVATE",
        photo_url: str | None = None,
        message_id: str | None = None,
        display_name: str = "",
        caption: str | None = None,
        reply_to: Sent | None = None,
    ) -> str:
        """An update from a person; served by getUpdates, or POSTed to the webhook when one is set.
        Returns the message id (pass one to simulate a redelivered update). `reply_to`: a message the
        bot sent, which this one replies to (`reply_to_message`, where the platform delivers it)."""
        mid = message_id or uuid.uuid4().hex
        message: dict[str, Any] = {
            "message_id": mid,
            "date": int(time.time() * 1000),
            "chat": {"id": str(chat_id), "chat_type": chat_type},
            "from": {"id": str(from_id), "display_name": display_name or f"User {from_id}", "is_bot": False},
        }
        if text is not None:
            message["text"] = text
        if photo_url is not None:
            message["photo_url"] = photo_url
        if caption is not None:
            message["caption"] = caption
        if reply_to is not None:
            message["reply_to_message"] = {"message_id": reply_to.message_id, "text": reply_to.text or ""}
        update = {"event_name": event_name, "message": message}
        if self.webhook:
            task = asyncio.get_running_loop().create_task(self._post_webhook(dict(self.webhook), update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._updates.append(update)
            self._notify()
        return mid

    def host(self, name: str, content: bytes, content_type: str = "image/jpeg") -> str:
        """Serve `content` as a photo a person sent; returns its URL (for push's photo_url)."""
        self.hosted[name] = (content, content_type)
        return f"{self.url}/files/{name}"

    def fail_next(self, chat_id: str, kind: str) -> None:
        """The next send to chat_id fails: "429" (with Retry-After), "403" (blocked), "500", "drop"
        (connection closed without an answer) or "timeout" (no answer until the fake stops)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        self._faults.setdefault(str(chat_id), deque()).append(kind)

    def messages_to(self, chat_id: str) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == str(chat_id)]

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_until(predicate, timeout, self.summary)

    def summary(self) -> str:
        last = "; ".join(f"{s.chat_id}:{s.method}:{(s.text or '')[:40]!r}" for s in self.sent[-5:])
        errs = "; ".join(f"{e['chat_id']}:{e['error_code']}" for e in self.errors[-5:])
        return (
            f"FakeZalo: calls={len(self.calls)} sent={len(self.sent)} [last: {last}] errors={len(self.errors)} "
            f"[last: {errs}] pending_updates={len(self._updates)} idle_polls={self.idle_polls} "
            f"webhook={'set' if self.webhook else 'none'} webhook_responses={self.webhook_responses[-10:]}"
        )

    # ------------------------------------------------------------------ HTTP plumbing

    def _notify(self) -> None:
        # wake every waiting long poll; each re-checks the queue and re-waits on a fresh event
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.method == "GET" and request.path.startswith("/files/"):
            name = request.path.removeprefix("/files/")
            if name not in self.hosted:
                return web.Response(status=404)
            self.downloads.append(name)
            content, content_type = self.hosted[name]
            return web.Response(body=content, content_type=content_type)
        m = _PATH_RE.match(request.path)
        if not m:
            return await self._respond(request, _err(404, "Not Found"))
        token, method = m.groups()
        if token != self.token:
            return await self._respond(request, _err(401, "Unauthorized"))
        handler = self._methods.get(method.lower())
        if handler is None:
            return await self._respond(request, _err(404, "Not Found"))
        try:
            params = await self._read_params(request)
        except ValueError as exc:
            return await self._respond(request, _err(400, f"Bad Request: {exc}"))
        self.calls.append((method, params))
        reply = await handler(params)
        return await self._respond(request, reply)

    async def _read_params(self, request: web.Request) -> dict:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except json.JSONDecodeError as exc:
                    raise ValueError("body is not JSON") from exc
                if not isinstance(body, dict):
                    raise ValueError("JSON body must be an object")
                params.update(body)
            else:
                params.update(dict(await request.post()))
        return params

    async def _respond(self, request: web.Request, reply: _Reply) -> web.StreamResponse:
        if reply.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client: the socket is gone
        if reply.hold:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _TIMEOUT_FAULT_HOLD)
            return web.Response(status=503)
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body, ensure_ascii=False).encode(),
            content_type="application/json",
            headers=reply.headers,
        )

    # ------------------------------------------------------------------ methods

    async def _get_me(self, params: dict) -> _Reply:
        return _ok(dict(self.bot))

    async def _get_updates(self, params: dict) -> _Reply:
        if self.webhook:  # not documented for Zalo; mirrors Telegram's refusal to poll with a webhook set
            return _err(409, "Conflict: a webhook is set")
        try:
            timeout = min(_MAX_POLL, max(0.0, float(params.get("timeout", 30))))
        except (TypeError, ValueError):
            return _err(400, "Bad Request: timeout must be a number")
        deadline = time.monotonic() + timeout
        while not self._updates:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self._closing.is_set():
                self.idle_polls += 1
                return _err(408, "Request timeout")
            wakeup = self._wakeup
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wakeup.wait(), remaining)
        return _ok(self._updates.popleft())

    async def _set_webhook(self, params: dict) -> _Reply:
        url = str(params.get("url") or "")
        if not url.startswith(("http://", "https://")):
            return _err(400, "Bad Request: invalid webhook url")
        self.webhook = {"url": url, "secret_token": str(params.get("secret_token") or "")}
        # queued updates go to the webhook from now on, as they would on the platform
        while self._updates:
            update = self._updates.popleft()
            task = asyncio.get_running_loop().create_task(self._post_webhook(dict(self.webhook), update))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return _ok({"url": url, "updated_at": int(time.time() * 1000)})

    async def _delete_webhook(self, params: dict) -> _Reply:
        self.webhook = None
        return _ok({"url": "", "updated_at": int(time.time() * 1000)})

    async def _get_webhook_info(self, params: dict) -> _Reply:
        return _ok({"url": (self.webhook or {}).get("url", ""), "updated_at": int(time.time() * 1000)})

    def _fault(self, chat_id: str, method: str) -> _Reply | None:
        queue = self._faults.get(chat_id)
        if not queue:
            return None
        kind = queue.popleft()
        if kind == "429":
            reply = _err(429, "Too Many Requests", {"Retry-After": str(self.retry_after)})
        elif kind == "403":
            reply = _err(403, "Forbidden: the user has blocked the bot")
        elif kind == "500":
            reply = _err(500, "Internal Server Error")
        elif kind == "drop":
            reply = _Reply(drop=True)
        else:
            reply = _Reply(hold=True)
        self._record_error(chat_id, method, reply)
        return reply

    def _record_error(self, chat_id: str, method: str, reply: _Reply) -> None:
        body = reply.body or {}
        self.errors.append(
            {
                "chat_id": chat_id,
                "method": method,
                "error_code": body.get("error_code", 0),
                "description": body.get("description", "no answer"),
                "at": time.monotonic(),
            }
        )

    def _check_text(self, chat_id: str, method: str, value: Any, name: str, required: bool) -> _Reply | None:
        if value is None and not required:
            return None
        if not isinstance(value, str) or (required and not value):
            reply = _err(400, f"Bad Request: {name} is required")
        elif len(value) > TEXT_LIMIT:
            reply = _err(400, f"Bad Request: {name} is too long (max {TEXT_LIMIT} characters)")
        else:
            return None
        self._record_error(chat_id, method, reply)
        return reply

    def _accept(self, chat_id: str, method: str, params: dict, text: str | None, photo: str | None) -> _Reply:
        if self.global_limit is not None:
            now = time.monotonic()
            while self._window and self._window[0] <= now - 1.0:
                self._window.popleft()
            if len(self._window) >= self.global_limit:
                self.rejected_429 += 1
                reply = _err(429, "Too Many Requests", {"Retry-After": "1"})
                self._record_error(chat_id, method, reply)
                return reply
            self._window.append(now)
        mid = f"{next(self._message_ids):08d}{uuid.uuid4().hex[:8]}"
        self.sent.append(Sent(chat_id, method, text, photo, time.monotonic(), mid, dict(params)))
        return _ok({"message_id": mid, "date": int(time.time() * 1000)})

    async def _send_message(self, params: dict) -> _Reply:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            return _err(400, "Bad Request: chat_id is required")
        if fault := self._fault(chat_id, "sendMessage"):
            return fault
        if error := self._check_text(chat_id, "sendMessage", params.get("text"), "text", required=True):
            return error
        return self._accept(chat_id, "sendMessage", params, params["text"], None)

    async def _send_photo(self, params: dict) -> _Reply:
        chat_id = str(params.get("chat_id") or "")
        if not chat_id:
            return _err(400, "Bad Request: chat_id is required")
        if fault := self._fault(chat_id, "sendPhoto"):
            return fault
        photo = params.get("photo")
        if not isinstance(photo, str) or not photo.startswith(("http://", "https://")):
            reply = _err(400, "Bad Request: photo must be a URL")
            self._record_error(chat_id, "sendPhoto", reply)
            return reply
        if error := self._check_text(chat_id, "sendPhoto", params.get("caption"), "caption", required=False):
            return error
        return self._accept(chat_id, "sendPhoto", params, params.get("caption"), photo)

    async def _send_chat_action(self, params: dict) -> _Reply:
        if not params.get("chat_id"):
            return _err(400, "Bad Request: chat_id is required")
        return _ok(True)

    # ------------------------------------------------------------------ webhook delivery

    async def _post_webhook(self, webhook: dict[str, str], update: dict) -> None:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers["X-Bot-Api-Secret-Token"] = webhook["secret_token"]
        body = json.dumps({"ok": True, "result": update}, ensure_ascii=False).encode()
        try:
            async with self._session.post(webhook["url"], data=body, headers=headers) as resp:
                await resp.read()
                self.webhook_responses.append(resp.status)
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.webhook_responses.append(0)
