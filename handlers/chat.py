"""The chat contract between handlers and channel adapters (ports and adapters).

Adapters in bot/channels turn a platform update into an Incoming and an Outgoing into platform calls;
every platform error is mapped onto one of a handful of Outcomes the delivery engine understands.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

# control characters (C0, DEL, C1) except tab and newline, and lone surrogates: a NUL crashes
# PostgreSQL, a lone surrogate cannot be encoded for any database, and neither is anything a person meant
_UNWANTED = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Text as handlers compare and store it: NFC (an NFD "quay lại" must equal the NFC one), without
    control characters other than newline and tab."""
    return _UNWANTED.sub("", unicodedata.normalize("NFC", text))


def utf16_units(text: str) -> int:
    """Telegram's measure of a text: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"


class Event(StrEnum):
    MESSAGE = "message"
    BUTTON = "button"
    BOT_ADDED = "bot_added"
    BOT_REMOVED = "bot_removed"
    MIGRATED = "migrated"


@dataclass(frozen=True)
class ChatRef:
    platform: str
    chat_id: str


@dataclass(frozen=True)
class Attachment:
    kind: str  # "photo" | "document" | "voice" | "audio" | "video" (a Telegram video note is a "video")
    ref: str  # the platform's file id (Telegram) or the file's URL (Zalo)
    platform: str
    filename: str = ""
    size: int = 0  # bytes, as the platform says before anything is downloaded; 0: not said
    mime: str = ""  # the type the platform says; "": not said


@dataclass(frozen=True)
class Location:
    """A place a person shared from their phone (Telegram's location or venue). Zalo's bots receive
    none: there a place is typed as coordinates or a map link, which the survey parses from the text."""

    latitude: float
    longitude: float
    accuracy: float | None = None  # metres, where the platform says (Telegram's horizontal_accuracy)


@dataclass(frozen=True)
class Quoted:
    """The message an Incoming replies to (for /chuyentiep, and a "1" in reply to a notice)."""

    text: str
    attachment: Attachment | None = None
    message_id: str = ""  # the platform's id of the message replied to, where it says

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", clean_text(self.text))


@dataclass(frozen=True)
class Incoming:
    """One update as handlers see it. Every text in it is cleaned here, once, whichever adapter built
    it: handlers compare and store what they get without normalising again."""

    platform: str
    chat_id: str
    chat_kind: ChatKind
    user_id: str
    user_name: str = ""
    text: str = ""
    event: Event = Event.MESSAGE
    button_data: str | None = None
    callback_id: str | None = None
    attachment: Attachment | None = None
    location: Location | None = None
    quoted: Quoted | None = None
    chat_title: str = ""
    new_chat_id: str | None = None  # Event.MIGRATED
    sends_files: bool = True  # the adapter says whether the bot can send files (charts, exports) back
    joins_groups: bool = True  # the adapter says whether the platform lets the bot into groups (Zalo: getMe)

    def __post_init__(self) -> None:
        for name in ("text", "user_name", "chat_title"):
            object.__setattr__(self, name, clean_text(getattr(self, name)))
        if self.button_data is not None:
            object.__setattr__(self, "button_data", clean_text(self.button_data))

    @property
    def chat(self) -> ChatRef:
        return ChatRef(self.platform, self.chat_id)

    @property
    def answer(self) -> str:
        """What the person said: a pressed button counts as typing its data."""
        return ((self.button_data if self.event is Event.BUTTON else self.text) or "").strip()


@dataclass(frozen=True)
class Button:
    label: str
    data: str


@dataclass(frozen=True)
class Upload:
    """A file the bot made (a chart, an export), sent as bytes rather than by a platform's file id."""

    kind: str  # "photo" | "document"
    filename: str
    content: bytes


@dataclass(frozen=True)
class Fetched:
    """A file downloaded from the platform it was written on, to carry to another."""

    content: bytes
    mime: str  # as the platform or the file's name says; "": not known
    filename: str


class Carry(StrEnum):
    """How a platform takes a file the bot keeps: uploaded, or fetched by the platform from the bot's
    web address (a photo on Zalo), or not at all, as a link in the text (a document on Zalo)."""

    UPLOAD = "upload"
    URL = "url"
    LINK = "link"


@dataclass(frozen=True)
class Outgoing:
    chat: ChatRef
    text: str
    buttons: tuple[Button, ...] = ()
    attachment: Attachment | None = None
    upload: Upload | None = None

    @property
    def has_file(self) -> bool:
        return self.attachment is not None or self.upload is not None


class Outcome(StrEnum):
    SENT = "sent"
    FAILED = "failed"  # transient: retry with back-off
    THROTTLED = "throttled"  # the platform asked us to wait retry_after seconds
    STOPPED = "stopped"  # the chat is gone for us (bot removed, blocked): stop sending there
    REJECTED = "rejected"  # the platform refuses this message itself: retrying will not help
    MIGRATED = "migrated"  # the chat has a new id: send again there


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    message_id: str | None = None
    retry_after: float = 0.0
    new_chat_id: str | None = None
    detail: str = ""
    file_ref: str | None = None  # what the platform now calls a file the send uploaded, to send it again


class Channel(Protocol):
    """One platform. `send` makes exactly one platform call for a text that fits `text_limit`.

    Limits are in the platform's own measure: a channel whose platform does not count code points
    declares `text_length(text) -> int` (Telegram counts UTF-16 code units: `utf16_units`)."""

    platform: str
    text_limit: int
    caption_limit: int

    async def send(self, out: Outgoing) -> SendResult: ...

    def parse(self, payload: dict[str, Any]) -> Incoming | None:
        """The platform's update (as stored in the inbox) as one Incoming, or None if not for us."""
        ...

    async def answer_button(self, incoming: Incoming, text: str) -> None: ...

    def carries(self, kind: str) -> Carry:
        """How this platform takes a file of `kind` ("photo" | "document") from another platform."""
        ...

    async def fetch(self, attachment: Attachment, limit: int) -> Fetched | None:
        """The file an Incoming of this platform carried, or None if it is gone or over `limit` bytes
        for good; raises when it may work later (the network)."""
        ...

    def deep_link(self, payload: str) -> str | None:
        """A link that opens a private chat with the bot and sends /start `payload`, where the platform
        has such links."""
        ...


@dataclass
class Reply:
    """What one turn leaves behind for the person who wrote."""

    messages: list[Outgoing] = field(default_factory=list)
    toast: str | None = None
