"""What a handler gets for one turn: the message, a database session, the person, the clock."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import Button, Incoming, Outgoing, Reply
from handlers.handbook.search import Handbook
from handlers.permissions import Actor, actor_for
from handlers.surveys.catalog import Catalog
from messages import render
from storage.models import Conversation, Follower, Person


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time

    @property
    def enabled(self) -> bool:
        return self.start != self.end

    def contains(self, local: time) -> bool:
        if not self.enabled:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end  # the window crosses midnight

    def release(self, when_utc: datetime, tz: ZoneInfo) -> datetime:
        """The moment a non-urgent notice due at `when_utc` may go out."""
        local = when_utc.astimezone(tz)
        if not self.contains(local.time()):
            return when_utc
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)


@dataclass(frozen=True)
class BotLinks:
    """Where links to the bot lead, whatever platform a person writes from: its Telegram username (from
    config or getMe) and its Zalo link (config), for posters and invitations."""

    telegram_username: str = ""
    zalo_share_url: str = ""
    console_url: str = ""  # [web] public_url: where the web console is reached from outside; "": nowhere

    def telegram(self, payload: str) -> str | None:
        """The t.me link that opens a private chat with the bot on `/start payload`, if the bot is known."""
        return f"https://t.me/{self.telegram_username}?start={payload}" if self.telegram_username else None


@dataclass(frozen=True)
class HandlerSettings:
    timezone: ZoneInfo
    quiet_hours: QuietHours
    targets: Mapping[str, float] = field(default_factory=dict)  # indicator code -> percent (config.toml)
    links: BotLinks = BotLinks()


@dataclass
class Turn:
    incoming: Incoming
    session: AsyncSession
    person: Person
    settings: HandlerSettings
    now: datetime  # aware, UTC
    handbook: Handbook
    surveys: Catalog
    reply: Reply = field(default_factory=Reply)
    conversation: Conversation | None = None  # handlers/conversation.py reads it once per turn
    conversation_loaded: bool = False
    refused_follower: Follower | None = None  # the chat's, when the platform refused it; read with the person
    outbox_changed: bool = False  # deliveries were queued: wake the delivery worker
    schedule_changed: bool = False  # a recurring announcement was added or cancelled
    _actor: Actor | None = None

    async def actor(self) -> Actor:
        """The person's roles, loaded once per turn for the permission core."""
        if self._actor is None:
            self._actor = await actor_for(self.session, self.person)
        return self._actor

    def forget_actor(self) -> None:
        """Roles changed within the turn: the next actor() loads them again."""
        self._actor = None

    def say(self, template: str, /, buttons: tuple[Button, ...] = (), **values: object) -> None:
        """Reply in the chat the message came from."""
        self.reply.messages.append(Outgoing(self.incoming.chat, render(template, **values), buttons))

    def toast(self, template: str, /, **values: object) -> None:
        self.reply.toast = render(template, **values)

    def local(self, when_utc: datetime) -> datetime:
        return when_utc.astimezone(self.settings.timezone)
