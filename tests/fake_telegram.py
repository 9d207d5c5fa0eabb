"""A fake Telegram Bot API server for tests.

The real python-telegram-bot client talks to it over real HTTP on 127.0.0.1:

    async with FakeTelegram() as fake:
        fake.add_private(42, "An")
        bot = telegram.Bot(fake.token, base_url=f"{fake.url}/bot")
        await bot.initialize()
        await bot.send_message(42, "hi")
        assert fake.messages_to(42)[0].text == "hi"

Responses mimic the Bot API closely enough that PTB parses them and raises its real
exception types (RetryAfter, Forbidden, ChatMigrated, BadRequest, Conflict,
NetworkError, TimedOut). Rate limits, long polling, offsets and webhook delivery
follow Telegram's documented behaviour. Everything runs on the test's event loop and
is not thread-safe: call the helpers from the loop that runs the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import json
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

import aiohttp
from aiohttp import web

from tests.loopback import serve_loopback, wait_until

__all__ = ["FAULT_KINDS", "SEND_METHODS", "FakeTelegram", "Sent"]

SEND_METHODS = frozenset({"sendmessage", "sendphoto", "senddocument", "copymessage"})
FAULT_KINDS = frozenset({"429", "500", "502", "drop", "timeout", "403", "400", "too_long"})

# Form values are JSON-decoded when they parse, except these, which the Bot API treats as
# plain strings ("123" as text must stay "123"; a file_id must not become a number).
_STRING_FIELDS = frozenset(
    {
        "text", "caption", "parse_mode", "secret_token", "url", "callback_query_id",
        "photo", "document", "inline_message_id", "ip_address", "title", "description",
        "query", "data", "action", "language_code",
    }
)
# Telegram's default when allowed_updates was never set or set to [].
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
_HTML_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
     "a", "code", "pre", "blockquote", "tg-emoji"}
)
_PATH_RE = re.compile(r"^/bot([^/]+)/([A-Za-z0-9_]+)/?$")
_FILE_RE = re.compile(r"^/file/bot([^/]+)/(.+)$")
_DOWNLOAD_LIMIT = 20 * 1024 * 1024  # getFile refuses bigger files to bots
_MAX_STORED_MESSAGES_PER_CHAT = 1000  # enough for reply/callback lookups, bounded for load tests
_TIMEOUT_FAULT_HOLD = 30.0


@dataclass
class Sent:
    """One message the bot successfully sent (the fake accepted and delivered it)."""

    chat_id: int
    method: str  # "sendMessage" | "sendPhoto" | "sendDocument" | "copyMessage"
    text: str | None  # text as sent (raw, before parse_mode), or caption for photo/document
    message_id: int
    reply_markup: dict | None  # parsed JSON of the request's reply_markup
    photo: str | None  # file_id, or "<upload>" when a file was uploaded
    document: str | None
    at: float  # time.monotonic() when accepted
    reply_to_message_id: int | None = None
    parse_mode: str | None = None
    params: dict = field(default_factory=dict, repr=False)  # all decoded request params


@dataclass
class _Upload:
    """A file part of a multipart request."""

    filename: str | None
    size: int
    content_type: str | None
    content: bytes = b""  # kept so a test can open what the bot made (an export, a chart)


@dataclass
class _Reply:
    status: int = 200
    body: dict | None = None
    drop: bool = False  # close the connection without answering

    @property
    def ok(self) -> bool:
        return self.body is not None and bool(self.body.get("ok"))


def _ok(result: Any, description: str | None = None) -> _Reply:
    body: dict[str, Any] = {"ok": True, "result": result}
    if description:
        body["description"] = description
    return _Reply(200, body)


def _err(code: int, description: str, parameters: dict | None = None) -> _Reply:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return _Reply(code, body)


def _too_many(retry_after: int) -> _Reply:
    return _err(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})


def _utf16_len(s: str) -> int:
    # Telegram measures text and entity offsets in UTF-16 code units.
    return len(s.encode("utf-16-le")) // 2


def _parse_html(text: str) -> tuple[str, str | None]:
    """Approximate Telegram's HTML parse_mode: returns (plain text, error or None).

    Mirrors the errors tdlib gives for the common mistakes (unescaped "<", unknown or
    unclosed tags) because those are real production failures for bots that interpolate
    user names into HTML.
    """
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(text)

    def off(k: int) -> int:
        return len(text[:k].encode())

    while i < n:
        c = text[i]
        if c != "<":
            out.append(c)
            i += 1
            continue
        end = text.find(">", i)
        if text.startswith("</", i):
            if end == -1:
                return "", f"Unclosed end tag at byte offset {off(i)}"
            name = text[i + 2 : end].strip().lower()
            if not stack:
                return "", f"Unexpected end tag at byte offset {off(i)}"
            if name and name != stack[-1]:
                return "", (
                    f'Unmatched end tag at byte offset {off(i)}, expected "</{stack[-1]}>", '
                    f'found "</{name}>"'
                )
            stack.pop()
        else:
            if end == -1:
                return "", f"Unclosed start tag at byte offset {off(i)}"
            name = re.match(r"[^\s>/]*", text[i + 1 : end]).group(0).lower()  # type: ignore[union-attr]
            if name not in _HTML_TAGS:
                return "", f'Unsupported start tag "{name}" at byte offset {off(i)}'
            stack.append(name)
        i = end + 1
    if stack:
        return "", f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return html.unescape("".join(out)), None


class _SlidingWindow:
    """At most `count` events per key in any sliding window of `period` seconds.

    O(1) amortised: every event sits in its key's deque and in one global time-ordered
    deque; expiring from the global deque pops the matching (oldest) entry of the key's
    deque and forgets the key once it is empty, so idle chats cost nothing.
    """

    __slots__ = ("_events", "_order", "count", "period")

    def __init__(self, per_period: float, period: float) -> None:
        if per_period <= 0:
            raise ValueError("rate limit must be positive or None")
        if per_period >= 1:
            self.count, self.period = int(per_period), period
        else:  # e.g. 0.5/s means one send per 2 s
            self.count, self.period = 1, period / per_period
        self._events: dict[int, deque[float]] = {}
        self._order: deque[tuple[float, int]] = deque()

    def expire(self, now: float) -> None:
        cutoff = now - self.period
        order, events = self._order, self._events
        while order and order[0][0] <= cutoff:
            _, key = order.popleft()
            q = events[key]
            q.popleft()
            if not q:
                del events[key]

    def wait_time(self, key: int, now: float) -> float:
        """Seconds until `key` may send again; 0 when it may send now."""
        self.expire(now)
        q = self._events.get(key)
        if q is None or len(q) < self.count:
            return 0.0
        return q[0] + self.period - now  # len(q) never exceeds count, so q[0] is the one to age out

    def add(self, key: int, now: float) -> None:
        q = self._events.get(key)
        if q is None:
            q = self._events[key] = deque()
        q.append(now)
        self._order.append((now, key))

    def tracked_keys(self) -> int:
        return len(self._events)


@dataclass
class _Chat:
    id: int
    type: str  # "private" | "group" | "supergroup"
    title: str = ""
    first_name: str = ""
    blocked: str | None = None  # 403 description while the bot cannot post here
    migrated_to: int | None = None
    next_message_id: int = 1
    messages: dict[int, dict] = field(default_factory=dict)

    def as_dict(self) -> dict:
        if self.type == "private":
            return {"id": self.id, "type": "private", "first_name": self.first_name}
        return {"id": self.id, "type": self.type, "title": self.title}

    def store(self, msg: dict) -> None:
        self.messages[msg["message_id"]] = msg
        if len(self.messages) > _MAX_STORED_MESSAGES_PER_CHAT:
            del self.messages[next(iter(self.messages))]


class FakeTelegram:
    """Fake Bot API server; see the module docstring.

    Send pipeline (sendMessage/sendPhoto/sendDocument/copyMessage), in Telegram's order:
    injected fault for the chat (fail_next) -> chat state (unknown 400, migrated 400 with
    migrate_to_chat_id, kicked/blocked 403) -> payload validation (400) -> rate limits (429,
    counted on arrival) -> the message is stored and recorded in `sent` -> response_delay
    -> response. Failed attempts are recorded in `errors` and never count against limits.
    response_delay applies to every method (it models network/API latency).
    add_group/add_private (re)register a chat from scratch.
    """

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        global_limit: float | None = None,
        group_limit_per_minute: int | None = 20,
        private_limit_per_second: float | None = 1.0,
        response_delay: float = 0.0,
        bot_username: str = "langso_test_bot",
    ) -> None:
        self.token = token
        self.response_delay = response_delay
        self.bot_username = bot_username
        bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 123456
        self.bot_user: dict = {
            "id": bot_id, "is_bot": True, "first_name": "Langso Test Bot", "username": bot_username,
        }
        self.url: str = ""

        # Observations.
        self.sent: list[Sent] = []
        self.answered_callbacks: list[dict] = []
        self.edits: list[dict] = []  # editMessageText / editMessageReplyMarkup params, in order
        self.errors: list[dict] = []  # failed send attempts: chat_id, method, error_code (0 = no answer), description
        self.calls: deque[tuple[str, dict]] = deque(maxlen=10_000)  # (method, params), recent only
        self.rejected_429 = 0
        self.requests = 0
        self.webhook_responses: list[int] = []  # 0 = connection error / timeout
        self.webhook: dict | None = None
        self.in_flight = 0

        # Webhook delivery tuning (Telegram retries failed deliveries).
        self.webhook_retry_delay = 0.2
        self.webhook_max_attempts = 5

        self._clock: Callable[[], float] = time.monotonic
        self._global = _SlidingWindow(global_limit, 1.0) if global_limit is not None else None
        self._group = (
            _SlidingWindow(group_limit_per_minute, 60.0) if group_limit_per_minute is not None else None
        )
        self._private = (
            _SlidingWindow(private_limit_per_second, 1.0) if private_limit_per_second is not None else None
        )

        self._chats: dict[int, _Chat] = {}
        self._users: dict[int, str] = {}
        self._faults: dict[int, deque[tuple[str, int]]] = {}
        self._updates: deque[tuple[int, dict]] = deque()
        self._update_ids = itertools.count(100_001)
        self._file_ids = itertools.count(1)
        # file_id -> (file_path, bytes): what getFile and the download serve; photos and documents the
        # fake's users send, and files the bot uploaded
        self.files: dict[str, tuple[str, bytes]] = {}
        self.downloads: list[str] = []  # file_paths the bot downloaded, in order
        self._callback_ids = itertools.count(7_000_000_001)
        self._open_callbacks: set[str] = set()
        self._allowed_updates: set[str] | None = None  # None = Telegram's default set
        self._poll_generation = 0
        self._wakeup = asyncio.Event()
        self._closing = asyncio.Event()
        self._webhook_attempts = 0
        self._webhook_last_error: tuple[int, str] | None = None

        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task | None = None
        self._methods: dict[str, Callable[[dict], Awaitable[_Reply]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "copymessage": self._copy_message,
            "answercallbackquery": self._answer_callback_query,
            "editmessagereplymarkup": self._edit_reply_markup,
            "editmessagetext": self._edit_message_text,
            "getchat": self._get_chat,
            "getfile": self._get_file,
            # Harmless extras bots commonly call at startup or while working.
            "setmycommands": self._true,
            "deletemycommands": self._true,
            "getmycommands": self._get_my_commands,
            "sendchataction": self._send_chat_action,
            "deletemessage": self._delete_message,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeTelegram already started")
        self._closing = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._runner, self.url = await serve_loopback(self._handle, client_max_size=60 * 1024 * 1024)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._webhook_task = asyncio.create_task(self._webhook_loop(), name="fake-telegram-webhook")

    async def stop(self) -> None:
        self._closing.set()
        self._notify()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
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

    # ------------------------------------------------------------------ chats and users

    def add_group(self, chat_id: int, title: str = "", supergroup: bool = False) -> None:
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        self._chats[chat_id] = _Chat(
            chat_id, "supergroup" if supergroup else "group", title=title or f"Group {chat_id}"
        )

    def add_private(self, user_id: int, first_name: str = "") -> None:
        if user_id <= 0:
            raise ValueError("private chat ids (user ids) are positive")
        name = first_name or self._users.get(user_id) or f"User{user_id}"
        self._users[user_id] = name
        self._chats[user_id] = _Chat(user_id, "private", first_name=name)

    def _chat(self, chat_id: int) -> _Chat:
        """The chat, registering it on first sight (a user writing implies the chat exists)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id > 0:
                self.add_private(chat_id)
            else:
                self.add_group(chat_id)
            chat = self._chats[chat_id]
        return chat

    def _user(self, user_id: int, first_name: str = "") -> dict:
        if first_name:
            self._users[user_id] = first_name
        name = self._users.setdefault(user_id, f"User{user_id}")
        return {"id": user_id, "is_bot": False, "first_name": name}

    # ------------------------------------------------------------------ updates

    def push_update(self, update: dict) -> int:
        """Queue a raw update (any content); the fake assigns its update_id."""
        update_id = next(self._update_ids)
        update = {**update, "update_id": update_id}
        cq = update.get("callback_query")
        if isinstance(cq, dict) and isinstance(cq.get("id"), str):
            self._open_callbacks.add(cq["id"])
        self._updates.append((update_id, update))
        self._notify()
        return update_id

    def message(
        self,
        chat_id: int,
        from_id: int,
        text: str | None = None,
        *,
        caption: str | None = None,
        photo: bool = False,
        document: bool = False,
        content: bytes | None = None,
        file_size: int | None = None,
        file_name: str = "document.pdf",
        mime_type: str = "application/pdf",
        reply_to_message_id: int | None = None,
        first_name: str = "",
        entities_for_commands: bool = True,
        voice: bool = False,
        audio: bool = False,
        video: bool = False,
        video_note: bool = False,
        location: tuple[float, float] | None = None,
        horizontal_accuracy: float | None = None,
        venue: str | None = None,
    ) -> int:
        """A person's message. `voice`/`audio`/`video`/`video_note`: that file, made up or `content`
        (served by getFile like photos and documents); `location`: (latitude, longitude) shared from the
        phone, as a venue named `venue` when given."""
        sender = self._user(from_id, first_name)  # first, so a new private chat gets the name
        chat = self._chat(chat_id)
        msg = self._new_message(chat, sender)
        if text is not None:
            msg["text"] = text
            if entities_for_commands and (ent := self._command_entity(text)):
                msg["entities"] = [ent]
        # `content`: the file's bytes (else made up); `file_size`: what the update says (else their length)
        if photo:
            n = next(self._file_ids)
            data = content if content is not None else _made_up(f"photo {n}", 60812)
            msg["photo"] = [
                {"file_id": f"AgACAgUAAxkBAAI{n:06d}s", "file_unique_id": f"AQAD{n:06d}s",
                 "width": 90, "height": 67, "file_size": 1433},
                {"file_id": f"AgACAgUAAxkBAAI{n:06d}m", "file_unique_id": f"AQAD{n:06d}m",
                 "width": 800, "height": 600, "file_size": file_size or len(data)},
            ]
            self.files[f"AgACAgUAAxkBAAI{n:06d}m"] = (f"photos/file_{n}.jpg", data)
        if document:
            n = next(self._file_ids)
            data = content if content is not None else _made_up(f"document {n}", 24576)
            msg["document"] = {
                "file_id": f"BQACAgUAAxkBAAI{n:06d}", "file_unique_id": f"AgAD{n:06d}",
                "file_name": file_name, "mime_type": mime_type, "file_size": file_size or len(data),
            }
            self.files[f"BQACAgUAAxkBAAI{n:06d}"] = (f"documents/file_{n}{_suffix(file_name)}", data)
        for kind, wanted, path in (("voice", voice, "voice/file_{n}.oga"), ("audio", audio, "music/file_{n}.mp3"),
                                   ("video", video, "videos/file_{n}.mp4"),
                                   ("video_note", video_note, "video_notes/file_{n}.mp4")):
            if wanted:
                n = next(self._file_ids)
                data = content if content is not None else _made_up(f"{kind} {n}", 9_000)
                file_id = f"{_FILE_PREFIXES[kind]}{n:06d}"
                msg[kind] = {"file_id": file_id, "file_unique_id": f"AgAD{n:06d}{kind[0]}", "duration": 4,
                             "file_size": file_size or len(data), **_MEDIA_FIELDS[kind]}
                self.files[file_id] = (path.format(n=n), data)
        if location is not None:
            place = {"latitude": location[0], "longitude": location[1]}
            if horizontal_accuracy is not None:
                place["horizontal_accuracy"] = horizontal_accuracy
            msg["location"] = place
            if venue is not None:
                msg["venue"] = {"location": place, "title": venue, "address": ""}
        if caption is not None:
            msg["caption"] = caption
            if entities_for_commands and (ent := self._command_entity(caption)):
                msg["caption_entities"] = [ent]
        if reply_to_message_id is not None:
            target = chat.messages.get(reply_to_message_id)
            if target is None:
                raise LookupError(f"no message {reply_to_message_id} stored in chat {chat_id}")
            msg["reply_to_message"] = self._quoted(target)
        chat.store(msg)
        return self.push_update({"message": msg})

    def callback(self, chat_id: int, from_id: int, data: str, message_id: int) -> int:
        chat = self._chat(chat_id)
        msg = chat.messages.get(message_id)
        if msg is None or msg.get("from", {}).get("id") != self.bot_user["id"]:
            raise LookupError(f"no bot message {message_id} stored in chat {chat_id}")
        cq_id = str(next(self._callback_ids))
        return self.push_update(
            {
                "callback_query": {
                    "id": cq_id,
                    "from": self._user(from_id),
                    "message": self._quoted(msg),
                    "chat_instance": str(abs(chat_id) * 7919 % 10**18 + 1),
                    "data": data,
                }
            }
        )

    def bot_removed(self, chat_id: int, by_id: int, kicked: bool = True) -> int:
        chat = self._chat(chat_id)
        if chat.type == "private":
            chat.blocked = "Forbidden: bot was blocked by the user"
        elif kicked:
            chat.blocked = f"Forbidden: bot was kicked from the {chat.type} chat"
        else:
            chat.blocked = f"Forbidden: bot is not a member of the {chat.type} chat"
        new: dict[str, Any] = {"user": self.bot_user, "status": "kicked" if kicked else "left"}
        if kicked:
            new["until_date"] = 0
        return self._my_chat_member(chat, by_id, {"user": self.bot_user, "status": "member"}, new)

    def bot_added(self, chat_id: int, by_id: int) -> int:
        chat = self._chat(chat_id)
        chat.blocked = None
        return self._my_chat_member(
            chat, by_id, {"user": self.bot_user, "status": "left"}, {"user": self.bot_user, "status": "member"}
        )

    def migrate(
        self, chat_id: int, new_chat_id: int, *, by_id: int | None = None, announce_in_new_chat: bool = False
    ) -> int:
        """Upgrade a group to a supergroup. Returns the update_id of the old chat's service message.

        announce_in_new_chat=True also pushes the "migrate_from_chat_id" message Telegram
        posts in the new supergroup (real Telegram sends both).
        """
        old = self._chat(chat_id)
        self.add_group(new_chat_id, old.title, supergroup=True)
        old.migrated_to = new_chat_id
        msg = self._new_message(old, self._user(by_id) if by_id is not None else None)
        msg["migrate_to_chat_id"] = new_chat_id
        old.store(msg)
        update_id = self.push_update({"message": msg})
        if announce_in_new_chat:
            new = self._chats[new_chat_id]
            msg2 = self._new_message(new, self._user(by_id) if by_id is not None else None)
            msg2["migrate_from_chat_id"] = chat_id
            new.store(msg2)
            self.push_update({"message": msg2})
        return update_id

    def _my_chat_member(self, chat: _Chat, by_id: int, old: dict, new: dict) -> int:
        return self.push_update(
            {
                "my_chat_member": {
                    "chat": chat.as_dict(),
                    "from": self._user(by_id),
                    "date": int(time.time()),
                    "old_chat_member": old,
                    "new_chat_member": new,
                }
            }
        )

    def _new_message(self, chat: _Chat, sender: dict | None) -> dict:
        msg: dict[str, Any] = {"message_id": chat.next_message_id}
        chat.next_message_id += 1
        if sender is not None:
            msg["from"] = sender
        msg["chat"] = chat.as_dict()
        msg["date"] = int(time.time())
        return msg

    @staticmethod
    def _quoted(msg: dict) -> dict:
        # Telegram never nests reply_to_message more than one level.
        return {k: v for k, v in msg.items() if k != "reply_to_message"}

    @staticmethod
    def _command_entity(text: str) -> dict | None:
        if not text.startswith("/") or len(text) < 2:
            return None
        command = text.split(maxsplit=1)[0]
        return {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}

    def _notify(self) -> None:
        """Wake every long poll / the webhook loop (they re-check state)."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()

    def _is_allowed(self, update: dict) -> bool:
        kind = next((k for k in update if k != "update_id"), None)
        if kind is None:
            return True
        if self._allowed_updates is None:
            return kind not in _DEFAULT_EXCLUDED_UPDATES
        return kind in self._allowed_updates

    def _set_allowed_updates(self, value: Any) -> None:
        if isinstance(value, list):  # absent keeps the previous setting, like Telegram
            self._allowed_updates = {str(v) for v in value} or None

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            while self._updates and self._updates[0][0] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # ------------------------------------------------------------------ faults

    def fail_next(self, chat_id: int, kind: str, times: int = 1, *, retry_after: int = 1) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        q = self._faults.setdefault(chat_id, deque())
        q.extend([(kind, retry_after)] * times)

    def kick(self, chat_id: int) -> None:
        chat = self._chat(chat_id)
        chat.blocked = (
            "Forbidden: bot was blocked by the user"
            if chat.type == "private"
            else f"Forbidden: bot was kicked from the {chat.type} chat"
        )

    def set_limits(
        self,
        *,
        global_limit: float | object | None = ...,
        group_limit_per_minute: int | object | None = ...,
        private_limit_per_second: float | object | None = ...,
    ) -> None:
        """Change rate limits mid-test (omitted ones stay); a changed limit starts with an empty window."""
        if global_limit is not ...:
            self._global = _SlidingWindow(global_limit, 1.0) if global_limit is not None else None  # type: ignore[arg-type]
        if group_limit_per_minute is not ...:
            self._group = (
                _SlidingWindow(group_limit_per_minute, 60.0)  # type: ignore[arg-type]
                if group_limit_per_minute is not None else None
            )
        if private_limit_per_second is not ...:
            self._private = (
                _SlidingWindow(private_limit_per_second, 1.0)  # type: ignore[arg-type]
                if private_limit_per_second is not None else None
            )

    # ------------------------------------------------------------------ observations

    def last_message_id(self, chat_id: int) -> int:
        """The id of the newest message in a chat, whoever wrote it (to reply to it)."""
        return max(self._chat(chat_id).messages)

    def messages_to(self, chat_id: int) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        await wait_until(predicate, timeout, self.summary)

    def summary(self) -> str:
        """A short state dump for assertion messages."""
        last = "; ".join(f"{s.chat_id}:{s.method}:{(s.text or '')[:40]!r}" for s in self.sent[-5:])
        errs = "; ".join(f"{e['chat_id']}:{e['error_code']}" for e in self.errors[-5:])
        return (
            f"FakeTelegram: requests={self.requests} sent={len(self.sent)} [last: {last}] "
            f"errors={len(self.errors)} [last: {errs}] rejected_429={self.rejected_429} "
            f"pending_updates={len(self._updates)} in_flight={self.in_flight} "
            f"webhook={'set' if self.webhook else 'none'} webhook_responses={self.webhook_responses[-10:]} "
            f"answered_callbacks={len(self.answered_callbacks)}"
        )

    # ------------------------------------------------------------------ HTTP plumbing

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if request.method == "GET" and (download := _FILE_RE.match(request.path)):
            return self._download(*download.groups())
        m = _PATH_RE.match(request.path)
        if not m:
            return await self._respond(request, _err(404, "Not Found"))
        token, method = m.groups()
        if token != self.token:
            return await self._respond(request, _err(401, "Unauthorized"))
        key = method.lower()
        handler = self._methods.get(key)
        if handler is None:
            return await self._respond(request, _err(404, "Not Found"))
        is_send = key in SEND_METHODS
        if is_send:
            self.in_flight += 1
        try:
            try:
                params = await self._read_params(request)
            except (ValueError, aiohttp.ClientError) as exc:
                return await self._respond(request, _err(400, f"Bad Request: can't parse request: {exc}"))
            self.calls.append((method, params))
            reply = await handler(params)
            if is_send and not reply.ok:
                body = reply.body or {}
                self.errors.append(
                    {
                        "chat_id": params.get("chat_id"),
                        "method": method,
                        "error_code": body.get("error_code", 0),
                        "description": body.get("description", "connection dropped"),
                        "at": self._clock(),
                    }
                )
            if self.response_delay > 0 and not reply.drop:
                await asyncio.sleep(self.response_delay)
            return await self._respond(request, reply)
        finally:
            if is_send:
                self.in_flight -= 1

    async def _respond(self, request: web.Request, reply: _Reply) -> web.StreamResponse:
        if reply.drop:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never reaches the client: the socket is gone
        resp = web.Response(
            status=reply.status,
            body=json.dumps(reply.body, ensure_ascii=False).encode(),
            content_type="application/json",
        )
        # Write here (not after returning) so in_flight drops only once the answer is out.
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.prepare(request)
            await resp.write_eof()
        return resp

    async def _read_params(self, request: web.Request) -> dict:
        params: dict[str, Any] = {k: self._decode(k, v) for k, v in request.query.items()}
        if request.method != "POST" or not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
        elif ctype.startswith("multipart/"):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
                    continue
                if part.filename is not None:
                    data = await part.read()
                    params[part.name] = _Upload(part.filename, len(data), part.headers.get("Content-Type"), bytes(data))
                else:
                    params[part.name] = self._decode(part.name, await part.text())
        else:
            form = await request.post()
            for k, v in form.items():
                if isinstance(v, str):
                    params[k] = self._decode(k, v)
        # Resolve attach://name references to the uploaded part.
        for k, v in list(params.items()):
            if isinstance(v, str) and v.startswith("attach://") and isinstance(params.get(v[9:]), _Upload):
                params[k] = params[v[9:]]
        return params

    @staticmethod
    def _decode(name: str, value: str) -> Any:
        if name in _STRING_FIELDS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    # ------------------------------------------------------------------ shared send checks

    @staticmethod
    def _chat_id_param(params: dict, name: str = "chat_id") -> tuple[int | None, _Reply | None]:
        value = params.get(name)
        if value is None or value == "":
            return None, _err(400, f"Bad Request: {name} is empty")
        if isinstance(value, bool):
            return None, _err(400, "Bad Request: chat not found")
        if isinstance(value, int):
            return value, None
        try:
            return int(str(value)), None
        except ValueError:  # "@username" etc.: the fake knows no usernames
            return None, _err(400, "Bad Request: chat not found")

    def _chat_state_error(self, chat_id: int) -> tuple[_Chat | None, _Reply | None]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return None, _err(400, "Bad Request: chat not found")
        if chat.migrated_to is not None:
            return None, _err(
                400, "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.blocked:
            return None, _err(403, chat.blocked)
        return chat, None

    async def _gate(self, params: dict) -> tuple[_Chat | None, _Reply | None]:
        """Target chat checks common to all send methods: injected faults, then chat state."""
        chat_id, error = self._chat_id_param(params)
        if error:
            return None, error
        assert chat_id is not None
        faults = self._faults.get(chat_id)
        if faults:
            kind, retry_after = faults.popleft()
            if not faults:
                del self._faults[chat_id]
            return None, await self._fault_reply(chat_id, kind, retry_after)
        return self._chat_state_error(chat_id)

    async def _fault_reply(self, chat_id: int, kind: str, retry_after: int) -> _Reply:
        if kind == "429":
            return _too_many(retry_after)
        if kind == "500":
            return _err(500, "Internal Server Error")
        if kind == "502":
            return _err(502, "Bad Gateway")
        if kind == "403":
            chat = self._chats.get(chat_id)
            kind_name = chat.type if chat is not None and chat.type != "private" else "group"
            return _err(403, f"Forbidden: bot was kicked from the {kind_name} chat")
        if kind == "400":  # the group restricts what members (and bots) may post
            return _err(400, "Bad Request: not enough rights to send text messages to the chat")
        if kind == "too_long":
            return _err(400, "Bad Request: message is too long")
        if kind == "timeout":
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._closing.wait(), _TIMEOUT_FAULT_HOLD)
        return _Reply(drop=True)  # "drop", and "timeout" after holding the request

    def _rate_limit(self, chat_id: int) -> _Reply | None:
        """Check every applicable window; count the send only if all allow it."""
        now = self._clock()
        for window in (self._global, self._group, self._private):
            if window is not None:
                window.expire(now)  # also reclaims windows of chats that went quiet
        windows: list[tuple[_SlidingWindow, int]] = []
        if self._global is not None:
            windows.append((self._global, 0))
        per_chat = self._group if chat_id < 0 else self._private
        if per_chat is not None:
            windows.append((per_chat, chat_id))
        wait = max((w.wait_time(k, now) for w, k in windows), default=0.0)
        if wait > 0:
            self.rejected_429 += 1
            return _too_many(max(1, math.ceil(wait)))
        for w, k in windows:
            w.add(k, now)
        return None

    def _text_check(
        self, text: Any, parse_mode: Any, *, caption: bool
    ) -> tuple[str | None, _Reply | None]:
        """Validate text/caption like Telegram; returns the plain text the message will carry."""
        if text is None or text == "":
            if caption:
                return None, None
            return None, _err(400, "Bad Request: message text is empty")
        text = str(text)
        plain = text
        if parse_mode:
            mode = str(parse_mode).lower()
            if mode == "html":
                plain, problem = _parse_html(text)
                if problem:
                    return None, _err(400, f"Bad Request: can't parse entities: {problem}")
            elif mode not in ("markdown", "markdownv2"):
                return None, _err(400, "Bad Request: unsupported parse_mode")
        if not caption and not plain.strip():
            return None, _err(400, "Bad Request: message text is empty")
        limit = 1024 if caption else 4096
        if _utf16_len(plain) > limit:
            return None, _err(400, f"Bad Request: message {'caption ' if caption else ''}is too long")
        return plain, None

    @staticmethod
    def _markup(params: dict) -> tuple[dict | None, _Reply | None]:
        markup = params.get("reply_markup")
        if markup is None or markup == "":
            return None, None
        if not isinstance(markup, dict):
            return None, _err(400, "Bad Request: can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is not None:
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                return None, _err(400, 'Bad Request: field "inline_keyboard" must be an Array of Array')
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        return None, _err(400, "Bad Request: can't parse inline keyboard button: Text must be non-empty")
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(str(data).encode()) <= 64:
                        return None, _err(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup, None

    @staticmethod
    def _reply_target(chat: _Chat, params: dict) -> tuple[dict | None, int | None, _Reply | None]:
        rp = params.get("reply_parameters")
        mid: Any = None
        allow = bool(params.get("allow_sending_without_reply"))
        if isinstance(rp, dict):
            mid = rp.get("message_id")
            allow = allow or bool(rp.get("allow_sending_without_reply"))
        elif params.get("reply_to_message_id") is not None:
            mid = params.get("reply_to_message_id")
        if mid is None:
            return None, None, None
        try:
            mid = int(mid)
        except (TypeError, ValueError):
            return None, None, _err(400, "Bad Request: message to be replied not found")
        target = chat.messages.get(mid)
        if target is None:
            if allow:
                return None, None, None
            return None, None, _err(400, "Bad Request: message to be replied not found")
        return FakeTelegram._quoted(target), mid, None

    def _deliver(
        self, chat: _Chat, method: str, params: dict, content: dict, *, text: str | None,
        markup: dict | None, reply_to: tuple[dict | None, int | None], photo: str | None = None,
        document: str | None = None,
    ) -> dict:
        """Store the bot's message and record it as Sent; returns the Message dict."""
        msg = self._new_message(chat, self.bot_user)
        if reply_to[0] is not None:
            msg["reply_to_message"] = reply_to[0]
        msg.update(content)
        if markup is not None and "inline_keyboard" in markup:
            msg["reply_markup"] = markup  # Telegram echoes inline keyboards only
        chat.store(msg)
        self.sent.append(
            Sent(
                chat_id=chat.id, method=method, text=text, message_id=msg["message_id"],
                reply_markup=markup, photo=photo, document=document, at=self._clock(),
                reply_to_message_id=reply_to[1],
                parse_mode=params.get("parse_mode") if isinstance(params.get("parse_mode"), str) else None,
                params=params,
            )
        )
        return msg

    def _file_id(self, value: Any, prefix: str) -> tuple[str | None, str | None]:
        """(file_id for the returned message, value to record in Sent)."""
        if isinstance(value, _Upload):
            return f"{prefix}{next(self._file_ids):08d}", "<upload>"
        if isinstance(value, str) and value:
            return value, value
        return None, None

    # ------------------------------------------------------------------ methods

    async def _true(self, params: dict) -> _Reply:
        return _ok(True)

    async def _get_my_commands(self, params: dict) -> _Reply:
        return _ok([])

    async def _get_me(self, params: dict) -> _Reply:
        return _ok(
            {
                **self.bot_user,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )

    async def _get_updates(self, params: dict) -> _Reply:
        if self.webhook:
            return _err(409, "Conflict: can't use getUpdates method while webhook is active; "
                             "use deleteWebhook to delete the webhook first")
        try:
            offset = int(params.get("offset") or 0)
            limit = min(100, max(1, int(params.get("limit") or 100)))
            timeout = max(0.0, float(params.get("timeout") or 0))
        except (TypeError, ValueError):
            return _err(400, "Bad Request: wrong parameter")
        self._set_allowed_updates(params.get("allowed_updates"))
        self._confirm(offset)
        # A newer getUpdates terminates an older one still waiting, like Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            wakeup = self._wakeup
            if generation != self._poll_generation:
                return _err(409, "Conflict: terminated by other getUpdates request; "
                                 "make sure that only one bot instance is running")
            if self.webhook:
                return _err(409, "Conflict: can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first")
            batch = [u for _, u in itertools.islice((x for x in self._updates if self._is_allowed(x[1])), limit)]
            remaining = deadline - loop.time()
            if batch or remaining <= 0 or self._closing.is_set():
                return _ok(batch)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(wakeup.wait(), remaining)

    async def _set_webhook(self, params: dict) -> _Reply:
        url = params.get("url") or ""
        if not url:
            self.webhook = None
            self._notify()
            return _ok(True, "Webhook was deleted")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", str(secret)):
            return _err(400, "Bad Request: secret token contains unallowed characters")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._set_allowed_updates(params.get("allowed_updates"))
        self.webhook = {k: ("<upload>" if isinstance(v, _Upload) else v) for k, v in params.items()}
        self._webhook_attempts = 0
        self._notify()
        return _ok(True, "Webhook was set")

    async def _delete_webhook(self, params: dict) -> _Reply:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        was_set = self.webhook is not None
        self.webhook = None
        self._notify()
        return _ok(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _get_webhook_info(self, params: dict) -> _Reply:
        info: dict[str, Any] = {
            "url": (self.webhook or {}).get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook:
            info["max_connections"] = int(self.webhook.get("max_connections") or 40)
            info["ip_address"] = "127.0.0.1"
            if self._allowed_updates is not None:
                info["allowed_updates"] = sorted(self._allowed_updates)
            if self._webhook_last_error:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        return _ok(info)

    async def _send_message(self, params: dict) -> _Reply:
        chat, error = await self._gate(params)
        if error:
            return error
        assert chat is not None
        plain, error = self._text_check(params.get("text"), params.get("parse_mode"), caption=False)
        if error:
            return error
        markup, error = self._markup(params)
        if error:
            return error
        quoted, reply_mid, error = self._reply_target(chat, params)
        if error:
            return error
        if limited := self._rate_limit(chat.id):
            return limited
        msg = self._deliver(
            chat, "sendMessage", params, {"text": plain}, text=str(params["text"]),
            markup=markup, reply_to=(quoted, reply_mid),
        )
        return _ok(msg)

    async def _send_media(self, params: dict, method: str, field_name: str) -> _Reply:
        chat, error = await self._gate(params)
        if error:
            return error
        assert chat is not None
        prefix = "AgACAgUAAxkDAAI" if field_name == "photo" else "BQACAgUAAxkDAAI"
        file_id, recorded = self._file_id(params.get(field_name), prefix)
        if file_id is None:
            return _err(400, f"Bad Request: there is no {field_name} in the request")
        caption = params.get("caption")
        plain, error = self._text_check(caption, params.get("parse_mode"), caption=True)
        if error:
            return error
        markup, error = self._markup(params)
        if error:
            return error
        quoted, reply_mid, error = self._reply_target(chat, params)
        if error:
            return error
        if limited := self._rate_limit(chat.id):
            return limited
        unique = f"AQAD{file_id[-8:]}"
        if isinstance(upload := params.get(field_name), _Upload):
            self.files[file_id] = (f"{field_name}s/file_{file_id[-8:]}{_suffix(upload.filename or '')}", upload.content)
        content: dict[str, Any]
        if field_name == "photo":
            content = {"photo": [
                {"file_id": file_id + "s", "file_unique_id": unique + "s", "width": 90, "height": 90, "file_size": 1500},
                {"file_id": file_id, "file_unique_id": unique, "width": 1280, "height": 1280, "file_size": 120000},
            ]}
        else:
            upload = params.get(field_name)
            content = {"document": {
                "file_id": file_id, "file_unique_id": unique,
                "file_name": (upload.filename if isinstance(upload, _Upload) else None) or "file",
                "mime_type": (upload.content_type if isinstance(upload, _Upload) else None)
                or "application/octet-stream",
                "file_size": upload.size if isinstance(upload, _Upload) else 1024,
            }}
        if plain:
            content["caption"] = plain
        msg = self._deliver(
            chat, method, params, content, text=str(caption) if caption else None, markup=markup,
            reply_to=(quoted, reply_mid),
            photo=recorded if field_name == "photo" else None,
            document=recorded if field_name == "document" else None,
        )
        return _ok(msg)

    async def _get_file(self, params: dict) -> _Reply:
        known = self.files.get(str(params.get("file_id") or ""))
        if known is None:
            return _err(400, "Bad Request: wrong file_id or the file is temporarily unavailable")
        path, data = known
        if len(data) > _DOWNLOAD_LIMIT:
            return _err(400, "Bad Request: file is too big")
        file_id = str(params["file_id"])
        return _ok({"file_id": file_id, "file_unique_id": f"U{file_id[-10:]}", "file_size": len(data), "file_path": path})

    def _download(self, token: str, path: str) -> web.Response:
        found = [data for known_path, data in self.files.values() if known_path == path]
        if token != self.token or not found:
            return web.Response(status=404)
        self.downloads.append(path)
        return web.Response(body=found[0], content_type="application/octet-stream")

    async def _send_photo(self, params: dict) -> _Reply:
        return await self._send_media(params, "sendPhoto", "photo")

    async def _send_document(self, params: dict) -> _Reply:
        return await self._send_media(params, "sendDocument", "document")

    async def _copy_message(self, params: dict) -> _Reply:
        chat, error = await self._gate(params)
        if error:
            return error
        assert chat is not None
        from_id, error = self._chat_id_param(params, "from_chat_id")
        if error:
            return error
        source = self._chats.get(from_id)  # type: ignore[arg-type]
        if source is None:
            return _err(400, "Bad Request: chat not found")
        try:
            original = source.messages.get(int(params.get("message_id")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            original = None
        if original is None or not any(k in original for k in ("text", "photo", "document")):
            return _err(400, "Bad Request: message to copy not found")
        caption = params.get("caption")
        plain: str | None = None
        if caption is not None:
            plain, error = self._text_check(caption, params.get("parse_mode"), caption=True)
            if error:
                return error
        markup, error = self._markup(params)
        if error:
            return error
        quoted, reply_mid, error = self._reply_target(chat, params)
        if error:
            return error
        if limited := self._rate_limit(chat.id):
            return limited
        content = {k: original[k] for k in ("text", "entities", "photo", "document", "caption") if k in original}
        if caption is not None and "text" not in content:
            content.pop("caption", None)
            if plain:
                content["caption"] = plain
        photo = original["photo"][-1]["file_id"] if "photo" in original else None
        document = original["document"]["file_id"] if "document" in original else None
        text = caption if caption is not None else original.get("text", original.get("caption"))
        msg = self._deliver(
            chat, "copyMessage", params, content, text=text, markup=markup,
            reply_to=(quoted, reply_mid), photo=photo, document=document,
        )
        return _ok({"message_id": msg["message_id"]})

    async def _answer_callback_query(self, params: dict) -> _Reply:
        cq_id = str(params.get("callback_query_id") or "")
        if cq_id not in self._open_callbacks:
            return _err(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        self._open_callbacks.discard(cq_id)
        self.answered_callbacks.append(params)
        return _ok(True)

    def _editable(self, params: dict) -> tuple[_Chat | None, dict | None, _Reply | None]:
        if params.get("inline_message_id"):
            return None, None, _err(400, "Bad Request: MESSAGE_ID_INVALID")
        chat_id, error = self._chat_id_param(params)
        if error:
            return None, None, error
        chat, error = self._chat_state_error(chat_id)  # type: ignore[arg-type]
        if error:
            return None, None, error
        assert chat is not None
        try:
            msg = chat.messages.get(int(params.get("message_id")))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            msg = None
        if msg is None:
            return None, None, _err(400, "Bad Request: message to edit not found")
        if msg.get("from", {}).get("id") != self.bot_user["id"]:
            return None, None, _err(400, "Bad Request: message can't be edited")
        return chat, msg, None

    async def _edit_reply_markup(self, params: dict) -> _Reply:
        _chat, msg, error = self._editable(params)
        if error:
            return error
        assert msg is not None
        markup, error = self._markup(params)
        if error:
            return error
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if new_markup == msg.get("reply_markup"):
            return _err(400, "Bad Request: message is not modified: specified new message content and "
                             "reply markup are exactly the same as a current content and reply markup of the message")
        if new_markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = new_markup
        msg["edit_date"] = int(time.time())
        self.edits.append({"method": "editMessageReplyMarkup", **params})
        return _ok(msg)

    async def _edit_message_text(self, params: dict) -> _Reply:
        _chat, msg, error = self._editable(params)
        if error:
            return error
        assert msg is not None
        if "text" not in msg:
            return _err(400, "Bad Request: there is no text in the message to edit")
        plain, error = self._text_check(params.get("text"), params.get("parse_mode"), caption=False)
        if error:
            return error
        markup, error = self._markup(params)
        if error:
            return error
        new_markup = markup if markup and "inline_keyboard" in markup else None
        if plain == msg.get("text") and new_markup == msg.get("reply_markup"):
            return _err(400, "Bad Request: message is not modified: specified new message content and "
                             "reply markup are exactly the same as a current content and reply markup of the message")
        msg["text"] = plain
        if new_markup is None:
            msg.pop("reply_markup", None)
        else:
            msg["reply_markup"] = new_markup
        msg["edit_date"] = int(time.time())
        self.edits.append({"method": "editMessageText", **params})
        return _ok(msg)

    async def _get_chat(self, params: dict) -> _Reply:
        chat_id, error = self._chat_id_param(params)
        if error:
            return error
        chat, error = self._chat_state_error(chat_id)  # type: ignore[arg-type]
        if error:
            return error
        assert chat is not None
        return _ok(
            {
                **chat.as_dict(),
                "accent_color_id": 0,
                "max_reaction_count": 11,
                "accepted_gift_types": {
                    "unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                    "premium_subscription": False, "gifts_from_channels": False,
                },
            }
        )

    async def _send_chat_action(self, params: dict) -> _Reply:
        chat_id, error = self._chat_id_param(params)
        if error:
            return error
        _, error = self._chat_state_error(chat_id)  # type: ignore[arg-type]
        return error or _ok(True)

    async def _delete_message(self, params: dict) -> _Reply:
        chat_id, error = self._chat_id_param(params)
        if error:
            return error
        chat, error = self._chat_state_error(chat_id)  # type: ignore[arg-type]
        if error:
            return error
        assert chat is not None
        try:
            removed = chat.messages.pop(int(params.get("message_id")), None)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            removed = None
        if removed is None:
            return _err(400, "Bad Request: message to delete not found")
        return _ok(True)

    # ------------------------------------------------------------------ webhook delivery

    async def _webhook_loop(self) -> None:
        """Deliver queued updates one at a time to the webhook, retrying failures."""
        while not self._closing.is_set():
            wakeup = self._wakeup
            webhook = self.webhook
            if not webhook or not self._updates:
                await wakeup.wait()
                continue
            update_id, update = self._updates[0]
            if not self._is_allowed(update):
                self._updates.popleft()
                continue
            status = await self._post_webhook(webhook, update)
            self.webhook_responses.append(status)
            delivered = 200 <= status < 300
            if not delivered:
                self._webhook_attempts += 1
                self._webhook_last_error = (
                    int(time.time()),
                    f"Wrong response from the webhook: {status}" if status else "Connection refused",
                )
            if delivered or self._webhook_attempts >= self.webhook_max_attempts:
                self._webhook_attempts = 0
                if self._updates and self._updates[0][0] == update_id:
                    self._updates.popleft()
            if not delivered:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), self.webhook_retry_delay)

    async def _post_webhook(self, webhook: dict, update: dict) -> int:
        assert self._session is not None
        headers = {"Content-Type": "application/json"}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(webhook["secret_token"])
        try:
            async with self._session.post(
                str(webhook["url"]), data=json.dumps(update, ensure_ascii=False).encode(), headers=headers
            ) as resp:
                await resp.read()
                return resp.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            return 0


# what Telegram's ids of each kind of file start with, and the fields its message object adds
_FILE_PREFIXES = {"voice": "AwACAgUAAxkBAAI", "audio": "CQACAgUAAxkBAAI", "video": "BAACAgUAAxkBAAI",
                  "video_note": "DQACAgUAAxkBAAI"}
_MEDIA_FIELDS: dict[str, dict[str, Any]] = {
    "voice": {"mime_type": "audio/ogg"},
    "audio": {"mime_type": "audio/mpeg", "file_name": "bai_hat.mp3", "performer": "", "title": ""},
    "video": {"mime_type": "video/mp4", "file_name": "video.mp4", "width": 640, "height": 360},
    "video_note": {"length": 240},
}


def _made_up(label: str, size: int) -> bytes:
    """Bytes standing for a file a user sent: distinct per file, of the given size."""
    return (label.encode() * (size // len(label) + 1))[:size]


def _suffix(filename: str) -> str:
    return "." + filename.rsplit(".", 1)[1] if "." in filename else ""
