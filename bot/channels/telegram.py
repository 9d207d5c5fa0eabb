"""Telegram adapter on python-telegram-bot 22: receive (update -> Incoming) and send (Outgoing -> one
Bot API call), with every Bot API error mapped onto a delivery Outcome."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import time
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import PurePosixPath
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message, Update
from telegram.constants import ChatMemberStatus, MessageLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBUserWarning
from typing_extensions import override

from bot.channels.aiohttp_request import AiohttpRequest
from bot.logs import size_of
from bot.startup import StartError
from handlers.chat import (
    Attachment,
    Carry,
    Channel,
    ChatKind,
    Event,
    Fetched,
    Incoming,
    Location,
    Outcome,
    Outgoing,
    Quoted,
    SendResult,
    utf16_units,
)

log = logging.getLogger(__name__)

PLATFORM = "telegram"
ALLOWED_UPDATES = ["message", "callback_query", "my_chat_member"]
POLL_TIMEOUT = 25
CONFLICT_WAIT_MAX = 60.0  # seconds between getUpdates while another program polls with the token
_GONE = re.compile(r"chat not found|bot was kicked|bot is not a member|group chat was deactivated|user is deactivated")

Store = Callable[[str, dict[str, Any]], Awaitable[object]]


class _Bot(Bot):
    """A Bot whose text messages skip python-telegram-bot's Message model on the way back: building it
    from the answer was a fifth of a delivery's CPU (py-spy, bench/scale.py), and only its id is used."""

    __slots__ = ()

    async def send_text(self, chat_id: int, text: str, reply_markup: InlineKeyboardMarkup | None) -> str:
        # _post is the call every Bot method makes (defaults, errors mapped to TelegramError)
        sent = await self._post("sendMessage", {"chat_id": chat_id, "text": text, "reply_markup": reply_markup})
        return str(sent["message_id"])


class TelegramChannel(Channel):
    platform = PLATFORM
    text_limit: int = MessageLimit.MAX_TEXT_LENGTH
    caption_limit: int = MessageLimit.CAPTION_LENGTH
    text_length = staticmethod(utf16_units)  # Telegram's limits count UTF-16 code units

    def __init__(self, token: str, api_url: str, *, connections: int) -> None:
        # replies and bulk sends share one pool sized above the delivery worker's in-flight limit, so a
        # reply always finds a free connection; long polling has its own.
        self._requests = (
            AiohttpRequest(connections=connections),
            AiohttpRequest(connections=1, read_timeout=POLL_TIMEOUT + 10),
        )
        self.bot = _Bot(
            token,
            base_url=f"{api_url}/bot",
            base_file_url=f"{api_url}/file/bot",
            request=self._requests[0],
            get_updates_request=self._requests[1],
        )
        self.api_url = api_url
        self.username = ""

    async def start(self) -> None:
        """getMe: a wrong token or URL fails here, as a StartError, with the connections closed."""
        try:
            await self.bot.initialize()
        except TelegramError as exc:  # python-telegram-bot's InvalidToken message quotes the token
            await self.stop()
            raise _start_error(exc, self.api_url) from None
        self.username = self.bot.username or ""

    async def stop(self) -> None:
        await self.bot.shutdown()
        # a Bot whose initialize() failed shuts nothing down: its connection pools are closed here
        for request in self._requests:
            await request.shutdown()

    # --- send -----------------------------------------------------------------------------------

    async def send(self, out: Outgoing) -> SendResult:
        markup = (
            InlineKeyboardMarkup([[InlineKeyboardButton(b.label, callback_data=b.data)] for b in out.buttons])
            if out.buttons
            else None
        )
        chat_id = int(out.chat.chat_id)
        file: str | InputFile | None = out.attachment.ref if out.attachment else None
        kind = out.attachment.kind if out.attachment else ""
        if out.upload is not None:
            file, kind = InputFile(out.upload.content, filename=out.upload.filename), out.upload.kind
        try:
            if file is None:
                return SendResult(Outcome.SENT, message_id=await self.bot.send_text(chat_id, out.text, markup))
            if kind == "photo":
                sent = await self.bot.send_photo(chat_id, file, caption=out.text or None, reply_markup=markup)
            else:
                sent = await self.bot.send_document(chat_id, file, caption=out.text or None, reply_markup=markup)
        except RetryAfter as exc:
            return SendResult(Outcome.THROTTLED, retry_after=_seconds(exc.retry_after), detail=str(exc))
        except ChatMigrated as exc:
            return SendResult(Outcome.MIGRATED, new_chat_id=str(exc.new_chat_id), detail=str(exc))
        except Forbidden as exc:
            return SendResult(Outcome.STOPPED, detail=str(exc))
        except BadRequest as exc:
            gone = _GONE.search(str(exc).lower())
            return SendResult(Outcome.STOPPED if gone else Outcome.REJECTED, detail=str(exc))
        except InvalidToken as exc:  # the token was revoked while running: nothing will get through
            log.error("Telegram rejects the bot token: %s", exc)
            return SendResult(Outcome.FAILED, detail=str(exc))
        except (NetworkError, TelegramError) as exc:  # time-outs, 5xx, dropped connections
            return SendResult(Outcome.FAILED, detail=str(exc) or type(exc).__name__)
        return SendResult(Outcome.SENT, message_id=str(sent.message_id), file_ref=_file_id(sent) if out.upload else None)

    @override
    def carries(self, kind: str) -> Carry:
        return Carry.UPLOAD  # photos and documents alike; the file id Telegram gives back is reused

    async def fetch(self, attachment: Attachment, limit: int) -> Fetched | None:
        """getFile, then the download. Telegram refuses files over 20 MB to bots (BadRequest "file is too
        big"), and a file id that is no longer valid the same way: both are for good."""
        try:
            file = await self.bot.get_file(attachment.ref)
            if file.file_size and file.file_size > limit:
                return None
            content = bytes(await file.download_as_bytearray())
        except BadRequest as exc:
            log.warning("telegram: a file is no longer available (%s)", exc)
            return None
        if len(content) > limit:
            return None
        name = PurePosixPath(file.file_path or "").name or attachment.filename
        return Fetched(content, attachment.mime or mimetypes.guess_type(name)[0] or "", attachment.filename or name)

    def deep_link(self, payload: str) -> str | None:
        return f"https://t.me/{self.username}?start={payload}" if self.username else None

    async def answer_button(self, incoming: Incoming, text: str) -> None:
        if incoming.callback_id:
            try:
                await self.bot.answer_callback_query(incoming.callback_id, text=text or None)
            except TelegramError as exc:  # an old button: the person still got their answer recorded
                log.info("callback answer failed: %s", exc)

    # --- receive ----------------------------------------------------------------------------------

    async def poll(
        self, store: Store, polled: Callable[[], None] = lambda: None, holding: Callable[[], bool] = lambda: True
    ) -> None:
        """Long polling while `holding()` (this process holds the poll lease). An update is confirmed to
        Telegram (offset) only after `store` has kept it, so a poller taking over gets again what the
        last one kept without confirming, which the inbox recognises. `polled` is called after each
        getUpdates that succeeded, empty or not (for /healthz)."""
        await self.bot.delete_webhook()
        offset: int | None = None
        failures = 0
        conflicts = _Conflicts()
        while holding():
            try:
                with warnings.catch_warnings():  # raw dicts on purpose: one malformed update must not
                    warnings.simplefilter("ignore", PTBUserWarning)  # block the batch behind it
                    batch = await self.bot.do_api_request(
                        "getUpdates",
                        api_kwargs={"offset": offset, "timeout": POLL_TIMEOUT, "allowed_updates": ALLOWED_UPDATES},
                        read_timeout=POLL_TIMEOUT + 10,
                    )
                failures = 0
                polled()
            except Conflict as exc:
                if not holding():
                    return  # the process that took the lease over polls now: its getUpdates ended ours
                await asyncio.sleep(conflicts.wait(str(exc)))
                if "webhook" in str(exc).lower():
                    await self._delete_webhook()
                continue
            except (NetworkError, TelegramError) as exc:
                failures += 1
                log.warning("getUpdates failed (%s); retrying", exc)
                await asyncio.sleep(min(30.0, 0.5 * 2**failures))
                continue
            for raw in batch if isinstance(batch, list) else []:
                key = update_key(raw) if isinstance(raw, dict) else None
                if key is None:
                    log.warning("skipping an update without update_id (%d bytes)", size_of(raw))
                    continue
                try:
                    await store(key, raw)
                except Exception:  # not stored, so not confirmed: Telegram sends it again
                    log.exception("could not store update %s; polling again from it", key)
                    await asyncio.sleep(1.0)
                    break
                offset = int(key) + 1

    async def _delete_webhook(self) -> None:
        try:
            await self.bot.delete_webhook()
        except TelegramError as exc:
            log.warning("deleteWebhook failed (%s); polling again", exc)

    async def set_webhook(self, url: str, secret: str) -> None:
        try:
            await self.bot.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
        except TelegramError as exc:
            raise StartError("webhook", platform="Telegram", url=url, detail=str(exc)) from None

    def parse(self, payload: dict[str, Any]) -> Incoming | None:
        """The one normalised message in an update, or None for updates the bot has nothing to do with.
        A malformed update raises; the dispatcher logs it and moves on."""
        update = Update.de_json(payload, self.bot)
        if update is None:
            return None
        if update.callback_query is not None:
            query = update.callback_query
            chat = query.message.chat if query.message else None
            if chat is None:
                return None
            return Incoming(
                platform=PLATFORM,
                chat_id=str(chat.id),
                chat_kind=_kind(chat.type),
                user_id=str(query.from_user.id),
                user_name=query.from_user.full_name,
                event=Event.BUTTON,
                button_data=query.data or "",
                callback_id=query.id,
                chat_title=chat.title or "",
            )
        if update.my_chat_member is not None:
            change = update.my_chat_member
            gone = change.new_chat_member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.BANNED)
            return Incoming(
                platform=PLATFORM,
                chat_id=str(change.chat.id),
                chat_kind=_kind(change.chat.type),
                user_id=str(change.from_user.id),
                user_name=change.from_user.full_name,
                event=Event.BOT_REMOVED if gone else Event.BOT_ADDED,
                chat_title=change.chat.title or "",
            )
        message = update.message
        if message is None or message.chat.type == "channel":
            return None
        if message.migrate_to_chat_id:
            return Incoming(
                platform=PLATFORM,
                chat_id=str(message.chat.id),
                chat_kind=ChatKind.GROUP,
                user_id=str(message.from_user.id) if message.from_user else "",
                event=Event.MIGRATED,
                new_chat_id=str(message.migrate_to_chat_id),
            )
        if message.from_user is None:
            return None
        text = self._own_command(message.text or message.caption or "")
        reply_to = message.reply_to_message
        return Incoming(
            platform=PLATFORM,
            chat_id=str(message.chat.id),
            chat_kind=_kind(message.chat.type),
            user_id=str(message.from_user.id),
            user_name=message.from_user.full_name,
            text=text,
            attachment=_attachment(message),
            location=_location(message),
            quoted=Quoted(reply_to.text or reply_to.caption or "", _attachment(reply_to), str(reply_to.message_id))
            if reply_to else None,
            chat_title=message.chat.title or "",
        )

    def _own_command(self, text: str) -> str:
        """"/ganthon@OurBot X" -> "/ganthon X"; commands for other bots keep their suffix; a message
        that starts by mentioning the bot ("@OurBot cách cài VNeID") is a question, as /hoi."""
        mention = f"@{self.username}".lower()
        if self.username and text.lower().startswith(mention):
            return f"/hoi {text[len(mention):].strip()}"
        if self.username and text.startswith("/"):
            head, sep, rest = text.partition(" ")
            command, at, bot = head.partition("@")
            if at and bot.lower() == self.username.lower():
                return command + sep + rest
        return text


class _Conflicts:
    """Telegram refuses getUpdates while another program polls with the same token or a webhook is set
    for it. Waits grow to CONFLICT_WAIT_MAX while refusals go on, and are logged once a minute in
    Telegram's own words; a minute without one starts again from a second."""

    def __init__(self) -> None:
        self._count = 0
        self._last = self._logged = -CONFLICT_WAIT_MAX
        self._unlogged = 0

    def wait(self, reason: str) -> float:
        now = time.monotonic()
        if now - self._last > 60.0:
            self._count = 0
        self._count, self._last, self._unlogged = self._count + 1, now, self._unlogged + 1
        delay = min(CONFLICT_WAIT_MAX, 2.0 ** (self._count - 1))
        if now - self._logged >= 60.0:
            log.warning(
                "Telegram refuses getUpdates: %s — another program (or a langso run on another database) uses "
                "this bot token; %d refusal(s) in the last minute, polling again in %.0f s",
                reason, self._unlogged, delay,
            )
            self._logged, self._unlogged = now, 0
        return delay


def _start_error(exc: TelegramError, api_url: str) -> StartError:
    if isinstance(exc, InvalidToken):
        return StartError("token", platform="Telegram")
    if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):  # time-outs, refused connections
        return StartError("unreachable", platform="Telegram", url=api_url, detail=str(exc))
    return StartError("refused", platform="Telegram", detail=str(exc))


def update_key(payload: dict[str, Any]) -> str | None:
    """Telegram numbers its updates: the number is the de-duplication key."""
    update_id = payload.get("update_id")
    return str(update_id) if isinstance(update_id, int) else None


def _kind(chat_type: str) -> ChatKind:
    return ChatKind.PRIVATE if chat_type == "private" else ChatKind.GROUP


def _attachment(message: Message) -> Attachment | None:
    if message.photo:
        photo = message.photo[-1]  # the largest size
        return Attachment("photo", photo.file_id, PLATFORM, size=photo.file_size or 0, mime="image/jpeg")
    if message.document:
        document = message.document
        return Attachment(
            "document", document.file_id, PLATFORM, document.file_name or "", document.file_size or 0, document.mime_type or ""
        )
    if message.voice:
        voice = message.voice
        return Attachment("voice", voice.file_id, PLATFORM, size=voice.file_size or 0, mime=voice.mime_type or "audio/ogg")
    for kind, sent in (("audio", message.audio), ("video", message.video)):
        if sent:
            return Attachment(kind, sent.file_id, PLATFORM, sent.file_name or "", sent.file_size or 0, sent.mime_type or "")
    if message.video_note:  # the round video: a video like any other once stored
        note = message.video_note
        return Attachment("video", note.file_id, PLATFORM, size=note.file_size or 0, mime="video/mp4")
    return None


def _location(message: Message) -> Location | None:
    """A place shared from the phone; a venue (a named place picked from the map) carries one too."""
    where = message.location or (message.venue.location if message.venue else None)
    if where is None:
        return None
    return Location(where.latitude, where.longitude, where.horizontal_accuracy)


def _file_id(sent: Message) -> str | None:
    """The id Telegram gave a file the bot uploaded: sending it again by id uploads nothing."""
    if sent.photo:
        return sent.photo[-1].file_id
    return sent.document.file_id if sent.document else None


def _seconds(value: float | timedelta) -> float:
    """RetryAfter.retry_after: seconds, or a timedelta once python-telegram-bot's time-period setting is on."""
    return value.total_seconds() if isinstance(value, timedelta) else float(value)
