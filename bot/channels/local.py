"""The local channel: in-process chats for the terminal demo and for tests. Numbered choices only
(buttons are shown as numbers), no text limit worth splitting at."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable
from itertools import count
from typing import Any

from typing_extensions import override

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
)

PLATFORM = "local"


class LocalChannel(Channel):
    platform = PLATFORM
    text_limit = 100_000
    caption_limit = 100_000

    def __init__(self, on_message: Callable[[Outgoing], None] | None = None) -> None:
        self.sent: dict[str, list[Outgoing]] = defaultdict(list)
        self.toasts: list[tuple[str, str]] = []
        self._on_message = on_message
        self._ids = count(1)

    async def send(self, out: Outgoing) -> SendResult:
        self.sent[out.chat.chat_id].append(out)
        if self._on_message is not None:
            self._on_message(out)
        return SendResult(Outcome.SENT, message_id=str(next(self._ids)))

    async def answer_button(self, incoming: Incoming, text: str) -> None:
        self.toasts.append((incoming.user_id, text))
        if self._on_message is not None and text:
            self._on_message(Outgoing(incoming.chat, f"({text})"))

    @override
    def deep_link(self, payload: str) -> str | None:
        return None

    @override
    def carries(self, kind: str) -> Carry:
        return Carry.UPLOAD

    @override
    async def fetch(self, attachment: Attachment, limit: int) -> Fetched | None:
        return None  # the demo's attachments name no real file

    def parse(self, payload: dict[str, Any]) -> Incoming:
        return from_payload(payload)


def to_payload(incoming: Incoming) -> dict[str, Any]:
    return dataclasses.asdict(incoming)


def from_payload(payload: dict[str, Any]) -> Incoming:
    data = dict(payload)
    data["chat_kind"] = ChatKind(data["chat_kind"])
    data["event"] = Event(data.get("event", Event.MESSAGE))
    if data.get("attachment"):
        data["attachment"] = Attachment(**data["attachment"])
    if data.get("location"):
        data["location"] = Location(**data["location"])
    if data.get("quoted"):
        quoted = dict(data["quoted"])
        quoted["attachment"] = Attachment(**quoted["attachment"]) if quoted.get("attachment") else None
        data["quoted"] = Quoted(**quoted)
    return Incoming(**data)
