"""Zalo Bot Platform adapter: receive (update -> Incoming) and send (Outgoing -> one Bot API call), with
every platform error mapped onto a delivery Outcome.

There is no maintained Python client we trust with error handling, so this is a small aiohttp client of
its own: every call has a time-out, and every failure is logged and returned as an Outcome, never
swallowed. API: `{root}/bot{token}/{method}`, JSON bodies, answers `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": N, "description": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

import aiohttp
from typing_extensions import override

from bot.channels.backlog import LIMIT as BACKLOG_LIMIT
from bot.channels.backlog import Backlog
from bot.logs import describe
from bot.startup import StartError
from handlers.chat import Attachment, Carry, Channel, ChatKind, Fetched, Incoming, Outcome, Outgoing, Quoted, SendResult

log = logging.getLogger(__name__)

PLATFORM = "zalo"
DEFAULT_API_URL = "https://bot-api.zaloplatforms.com"
TEXT_LIMIT = 2000
POLL_TIMEOUT = 30  # seconds the server may hold getUpdates before answering 408
SEND_TIMEOUT = 15.0
CONNECT_TIMEOUT = 5.0

# Events that carry a person's message. Stickers and unsupported content still become an Incoming with
# empty text (as a Telegram sticker does), so the bot can answer with its menu instead of staying silent.
# These four are all the platform documents: a bot receives no shared location, voice note, video or
# file (they come as "unsupported"), so a place is typed there (coordinates or a map link) and a photo
# is the only file a Zalo resident can give as an answer.
TEXT = "message.text.received"
IMAGE = "message.image.received"
STICKER = "message.sticker.received"
UNSUPPORTED = "message.unsupported.received"
KNOWN_EVENTS = frozenset({TEXT, IMAGE, STICKER, UNSUPPORTED})

Store = Callable[[str, dict[str, Any]], Awaitable[object]]


class ZaloError(RuntimeError):
    """A failed Bot API call, already classified onto a delivery Outcome."""

    def __init__(self, method: str, outcome: Outcome, detail: str, *, status: int = 0, retry_after: float = 0.0):
        super().__init__(f"{method}: {detail}")
        self.method = method
        self.outcome = outcome
        self.detail = detail
        self.status = status
        self.retry_after = retry_after


class ZaloChannel(Channel):
    platform = PLATFORM
    text_limit = TEXT_LIMIT
    caption_limit = TEXT_LIMIT

    def __init__(self, token: str, api_url: str = DEFAULT_API_URL, *, connections: int) -> None:
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self._base = f"{self.api_url}/bot{token}"
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        # attributes rather than constants so tests can shorten them
        self.poll_timeout: float = POLL_TIMEOUT
        self.backlog_limit: int = BACKLOG_LIMIT
        self.send_timeout: float = SEND_TIMEOUT
        self.bot_id = ""
        self.username = ""
        self.names: tuple[str, ...] = ()  # how people mention the bot in a group: "@<name> …"
        # getMe's can_join_groups: reports say bots on the Zalo Bot Platform are kept out of groups, so
        # its residents are reached as followers in private chats
        self.can_join_groups = True

    async def start(self) -> None:
        """getMe: a wrong token or URL fails here, as a StartError, with the connections closed."""
        if self._session is None or self._session.closed:
            # one pool for the process; +1 so the connection held by long polling never starves sends
            limit = self._connections + 1
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, limit_per_host=limit),
                headers={"User-Agent": "langso-bot (zalo)"},
            )
        try:
            me = await self._call("getMe", {})
        except ZaloError as exc:
            await self.stop()
            raise _start_error(exc, self.api_url) from None
        me = me if isinstance(me, dict) else {}
        self.bot_id = str(me.get("id", ""))
        self.username = str(me.get("account_name") or me.get("display_name") or "")
        self.names = tuple(str(me[k]) for k in ("display_name", "account_name") if me.get(k))
        self.can_join_groups = me.get("can_join_groups") is not False
        if not self.can_join_groups:
            log.info("zalo: the bot cannot join groups (getMe); notices reach Zalo residents as followers")

    async def stop(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    # --- send -----------------------------------------------------------------------------------

    async def send(self, out: Outgoing) -> SendResult:
        """One Bot API call. Buttons are dropped: Zalo has none, and the texts already number the
        choices. The caller splits long texts; a text over the limit comes back REJECTED."""
        chat_id = out.chat.chat_id
        attachment = out.attachment
        if out.upload is not None and not out.text:  # handlers are told (Incoming.sends_files): a bug
            return SendResult(Outcome.REJECTED, detail="the Zalo Bot API takes no file uploads")
        if attachment is not None and attachment.kind == "photo":
            if not attachment.ref.startswith(("http://", "https://")):
                # e.g. a Telegram file id forwarded here: Zalo only takes photo URLs
                log.warning("zalo: cannot send a photo to %s: not a URL", chat_id)
                return SendResult(Outcome.REJECTED, detail="photo is not a URL")
            method, body = "sendPhoto", {"chat_id": chat_id, "photo": attachment.ref}
            if out.text:
                body["caption"] = out.text
        else:
            if attachment is not None:  # no documents on Zalo: the text goes out alone
                log.info("zalo: dropping %s attachment for %s (unsupported)", attachment.kind, chat_id)
            method, body = "sendMessage", {"chat_id": chat_id, "text": out.text}
        try:
            result = await self._call(method, body)
        except ZaloError as exc:
            return SendResult(exc.outcome, retry_after=exc.retry_after, detail=exc.detail)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return SendResult(Outcome.SENT, message_id=str(message_id) if message_id is not None else None)

    def carries(self, kind: str) -> Carry:
        # sendPhoto takes a photo's URL and nothing else; there is no way to send a document at all
        return Carry.URL if kind == "photo" else Carry.LINK

    async def fetch(self, attachment: Attachment, limit: int) -> Fetched | None:
        """The photo from the URL its update gave. An answer of 4xx, or more than `limit` bytes, is for
        good; a time-out, a dropped connection or a 5xx may pass (raises ZaloError)."""
        if self._session is None or self._session.closed:
            raise RuntimeError("ZaloChannel is not started")
        timeout = aiohttp.ClientTimeout(total=self.send_timeout * 4, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._session.get(attachment.ref, timeout=timeout) as resp:
                if resp.status >= 500:
                    raise ZaloError("file", Outcome.FAILED, f"HTTP {resp.status}", status=resp.status)
                if resp.status >= 400:
                    log.warning("zalo: file of a notice not available (HTTP %d)", resp.status)
                    return None
                chunks, size = [], 0
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    chunks.append(chunk)
                    size += len(chunk)
                    if size > limit:  # not read to the end: it will not be kept
                        return None
                mime = resp.content_type if resp.content_type != "application/octet-stream" else ""
        except TimeoutError:
            raise ZaloError("file", Outcome.FAILED, "timed out") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ZaloError("file", Outcome.FAILED, describe(exc)) from None
        content = b"".join(chunks)
        name = PurePosixPath(unquote(urlparse(attachment.ref).path)).name or attachment.filename
        return Fetched(content, mime or mimetypes.guess_type(name)[0] or "", name)

    @override
    def deep_link(self, payload: str) -> str | None:
        return None  # no links into a bot chat: invitations say "nhắn /khaosat MÃ cho bot" instead

    async def answer_button(self, incoming: Incoming, text: str) -> None:
        """Zalo has no buttons, so there is never a callback to answer."""

    # --- receive ----------------------------------------------------------------------------------

    async def poll(
        self, store: Store, polled: Callable[[], None] = lambda: None, holding: Callable[[], bool] = lambda: True
    ) -> None:
        """Long polling while `holding()` (this process holds the poll lease). getUpdates hands out one
        update and has no offset to confirm, so an update is gone once received: it waits in a bounded
        backlog, in arrival order, until `store` has kept it (retried while the database is away), and
        polling goes on meanwhile. Duplicates are the store's business (key = event and message id).
        `polled` is called after each getUpdates that succeeded, an idle one included (for /healthz)."""
        try:
            await self._call("deleteWebhook", {})  # polling and a webhook exclude each other
        except ZaloError as exc:
            log.warning("zalo: deleteWebhook failed before polling: %s", exc)
        backlog = Backlog(PLATFORM, store, self.backlog_limit)
        backlog.start()
        try:
            await self._poll(backlog, polled, holding)
        finally:
            await backlog.close()

    async def _poll(self, backlog: Backlog, polled: Callable[[], None], holding: Callable[[], bool]) -> None:
        failures = 0
        while holding():
            try:
                result = await self._call(
                    "getUpdates", {"timeout": str(int(self.poll_timeout))}, timeout=self.poll_timeout + 10
                )
                failures = 0
                polled()
            except ZaloError as exc:
                if exc.status == 408:  # nothing arrived within the timeout: the normal idle answer
                    failures = 0
                    polled()
                    continue
                failures += 1
                log.warning("zalo: getUpdates failed (%s); retrying", exc)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            # documented as one update; a list is accepted too in case the platform starts batching
            for raw in result if isinstance(result, list) else [result]:
                self._store(backlog, raw)

    @staticmethod
    def _store(backlog: Backlog, raw: object) -> None:
        key = update_key(raw) if isinstance(raw, dict) else None
        if key is None:
            log.warning("zalo: skipping an update without event_name/message_id (%s)", type(raw).__name__)
            return
        assert isinstance(raw, dict)
        backlog.add(key, raw)

    async def set_webhook(self, url: str, secret: str) -> None:
        """Raises StartError when refused: a bot without a webhook receives nothing."""
        try:
            await self._call("setWebhook", {"url": url, "secret_token": secret})
        except ZaloError as exc:
            raise StartError("webhook", platform="Zalo", url=url, detail=exc.detail) from None

    def parse(self, payload: dict[str, Any]) -> Incoming | None:
        """The one normalised message in an update (bare or wrapped in {"ok", "result"}), or None for
        events the bot has nothing to do with. A malformed message raises; the dispatcher logs it."""
        update = _unwrap(payload)
        event = update.get("event_name")
        if event not in KNOWN_EVENTS:
            log.info("zalo: skipping event %.40r", event)  # sender-controlled: bounded
            return None
        message = update.get("message")
        if not isinstance(message, dict):
            raise TypeError(f"zalo {event} without a message object")
        chat = message["chat"]
        sender = message["from"]
        if sender.get("is_bot"):
            return None
        text = message.get("text") or ""
        attachment: Attachment | None = None
        if event == IMAGE:
            url = message.get("photo_url") or message.get("photo")
            if url:
                attachment = Attachment("photo", str(url), PLATFORM)
            text = message.get("caption") or text
        elif event != TEXT:
            text = ""  # a sticker id or placeholder is not something the person typed
        group = str(chat.get("chat_type", "")).upper() == "GROUP"
        return Incoming(
            platform=PLATFORM,
            chat_id=str(chat["id"]),
            chat_kind=ChatKind.GROUP if group else ChatKind.PRIVATE,
            user_id=str(sender["id"]),
            user_name=str(sender.get("display_name") or sender.get("name") or ""),
            text=self._unmentioned(text) if group else text,
            attachment=attachment,
            quoted=_quoted(message.get("reply_to_message")),
            sends_files=False,
            joins_groups=self.can_join_groups,
        )

    def _unmentioned(self, text: str) -> str:
        """"@Làng số bot /ganthon X" -> "/ganthon X"; a message that starts by mentioning the bot and
        is no command is a question, as /hoi (as on Telegram)."""
        for name in self.names:
            if text.lower().startswith(f"@{name}".lower()):
                rest = text[len(name) + 1 :].strip()
                return rest if rest.startswith("/") else f"/hoi {rest}"
        return text

    # --- HTTP -------------------------------------------------------------------------------------

    # aiohttp applies the timeout to this one request, and the error names it
    async def _call(self, method: str, body: dict[str, Any], *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """POST one method; returns `result` or raises ZaloError carrying the mapped Outcome."""
        if self._session is None or self._session.closed:
            raise RuntimeError("ZaloChannel is not started")
        total = timeout if timeout is not None else self.send_timeout
        client_timeout = aiohttp.ClientTimeout(total=total, sock_connect=min(CONNECT_TIMEOUT, total))
        try:
            async with self._session.post(f"{self._base}/{method}", json=body, timeout=client_timeout) as resp:
                status = resp.status
                retry_header = resp.headers.get("Retry-After")
                raw = await resp.read()
        # the URL holds the bot token and aiohttp quotes it in some messages: the errors say what
        # failed without it, and do not chain the original
        except TimeoutError:  # asyncio.TimeoutError is the same class on 3.11
            raise self._fail(method, Outcome.FAILED, f"timed out after {total:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:  # refused, reset, dropped mid-answer
            raise self._fail(method, Outcome.FAILED, describe(exc)) from None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if isinstance(answer, dict) and answer.get("ok") is True and status < 400:
            return answer.get("result")
        error_code = answer.get("error_code") if isinstance(answer, dict) else None
        description = (answer.get("description") if isinstance(answer, dict) else None) or raw[:200].decode(
            "utf-8", "replace"
        )
        codes = {status} | ({error_code} if isinstance(error_code, int) else set())
        detail = f"HTTP {status}, error_code {error_code}: {description}"
        if 429 in codes:
            retry_after = _retry_after(retry_header, answer)
            raise self._fail(method, Outcome.THROTTLED, detail, status=429, retry_after=retry_after)
        if 403 in codes:
            raise self._fail(method, Outcome.STOPPED, detail, status=403)
        if 408 in codes:  # idle long poll, or a send the server gave up on: transient either way
            raise ZaloError(method, Outcome.FAILED, detail, status=408)  # not logged: idle polls are normal
        if 401 in codes:  # token revoked while running: nothing gets through, keep the message to retry
            log.error("zalo rejects the bot token (%s): %s", method, detail)
            raise ZaloError(method, Outcome.FAILED, detail, status=401)
        if any(c >= 500 for c in codes):
            raise self._fail(method, Outcome.FAILED, detail, status=status)
        if any(400 <= c < 500 for c in codes):
            raise self._fail(method, Outcome.REJECTED, detail, status=status)
        if answer is None:  # 2xx but not JSON: a proxy in the way, worth retrying
            raise self._fail(method, Outcome.FAILED, f"HTTP {status}: unreadable answer {raw[:200]!r}", status=status)
        # ok: false without a code: the platform refused this call for a reason it did not number
        raise self._fail(method, Outcome.REJECTED, detail, status=status)

    @staticmethod
    def _fail(method: str, outcome: Outcome, detail: str, *, status: int = 0, retry_after: float = 0.0) -> ZaloError:
        # logged here so that no error path can forget it; the caller still gets the Outcome
        level = logging.INFO if outcome is Outcome.THROTTLED else logging.WARNING
        log.log(level, "zalo %s -> %s: %s", method, outcome, detail)
        return ZaloError(method, outcome, detail, status=status, retry_after=retry_after)


def _start_error(exc: ZaloError, api_url: str) -> StartError:
    if exc.status == 401:
        return StartError("token", platform="Zalo")
    if exc.status == 0:  # no answer at all: refused, reset, timed out
        return StartError("unreachable", platform="Zalo", url=api_url, detail=exc.detail)
    return StartError("refused", platform="Zalo", detail=exc.detail)


def update_key(payload: dict[str, Any]) -> str | None:
    """Zalo does not number updates: event name plus message id is the de-duplication key."""
    if not isinstance(payload, dict):
        return None
    update = _unwrap(payload)
    event = update.get("event_name")
    message = update.get("message")
    message_id = message.get("message_id") if isinstance(message, dict) else None
    if not event or message_id in (None, ""):
        return None
    return f"{event}:{message_id}"


def _quoted(reply_to: object) -> Quoted | None:
    """The message a group member replied to, where the update carries it (`reply_to_message`, as in
    Telegram's shape): its id lets a "1" in reply to a notice count as read."""
    if not isinstance(reply_to, dict):
        return None
    return Quoted(str(reply_to.get("text") or ""), message_id=str(reply_to.get("message_id") or ""))


def _unwrap(payload: dict[str, Any]) -> dict[str, Any]:
    """Webhook bodies come wrapped as {"ok": true, "result": update} or bare."""
    inner = payload.get("result")
    if "event_name" not in payload and isinstance(inner, dict):
        return inner
    return payload


def _retry_after(header: str | None, answer: object) -> float:
    parameters = answer.get("parameters") if isinstance(answer, dict) else None
    for value in (header, parameters.get("retry_after") if isinstance(parameters, dict) else None):
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue  # absent, or an HTTP date we do not bother to parse
        if seconds > 0:
            return seconds
    return 1.0
