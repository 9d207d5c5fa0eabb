"""Runs the real bot (App) against the fake Telegram server, and speaks for its users."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlmodel import func, select

from bot.app import App
from bot.config import Settings
from handlers import admin
from storage.models import ChatGroup, Delivery, DeliveryStatus, Place
from tests.fake_telegram import FakeTelegram, Sent

COMMUNE = "XA1"
VILLAGES = ("THON-1", "THON-2", "THON-3")
OFFICIAL = 100  # commune official of XA1
HEAD = 101  # village head of all three villages
TECH = 150  # tech team of THON-1
RESIDENT = 200  # no role
COMMUNE_GROUP = -500
VILLAGE_GROUPS = {"THON-1": -501, "THON-2": -502, "THON-3": -503}


class Harness:
    def __init__(self, fake: FakeTelegram, settings: Settings, clock: Callable[[], datetime] | None = None) -> None:
        self.fake = fake
        self.settings = settings
        self.clock = clock
        self.app: App | None = None

    async def start(self) -> None:
        self.app = App(self.settings, clock=self.clock) if self.clock else App(self.settings)
        await self.app.start()

    async def stop(self) -> None:
        if self.app is not None:
            await self.app.stop()
            self.app = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def seed_commune(self, link_groups: bool = True) -> None:
        """Commune XA1 with three villages, roles for the people above, and one group per place."""
        assert self.app is not None
        async with self.app.sessions() as session:
            await admin.add_place(session, "commune", COMMUNE, "Xã Hòa Bình", None)
            for n, code in enumerate(VILLAGES, 1):
                await admin.add_place(session, "village", code, f"Thôn {n}", COMMUNE)
            await admin.grant_role(session, "telegram", str(OFFICIAL), "commune_official", COMMUNE)
            for code in VILLAGES:
                await admin.grant_role(session, "telegram", str(HEAD), "village_head", code)
            await admin.grant_role(session, "telegram", str(TECH), "tech_team", VILLAGES[0])
            await session.commit()
        for user in (OFFICIAL, HEAD, TECH, RESIDENT):  # each has started a private chat with the bot
            self.fake.add_private(user)
        self.fake.add_group(COMMUNE_GROUP, "Nhóm xã")
        for code, chat in VILLAGE_GROUPS.items():
            self.fake.add_group(chat, f"Nhóm {code}")
        if link_groups:
            await self.link(COMMUNE_GROUP, COMMUNE)
            for code, chat in VILLAGE_GROUPS.items():
                await self.link(chat, code)

    async def link(self, chat: int, code: str) -> None:
        """Link a group to a place directly in the database (tests of /ganthon go through the chat)."""
        assert self.app is not None
        async with self.app.sessions() as session:
            place = (await session.exec(select(Place).where(Place.code == code))).one()
            session.add(ChatGroup(platform="telegram", chat_id=str(chat), title=f"Nhóm {code}", place_id=place.id))
            await session.commit()

    async def settle(self) -> None:
        """Everything pushed so far has been fetched, stored and handled."""
        assert self.app is not None
        await self.fake.wait_for(lambda: self.fake.pending_updates == 0)
        await self.app.dispatcher.drain()

    async def send(
        self, user: int, text: str | None = None, chat: int | None = None, expect: int = 1, **kw: object
    ) -> list[Sent]:
        """`user` writes in `chat` (default: their private chat); the bot's `expect` replies there."""
        chat = user if chat is None else chat
        before = len(self.fake.messages_to(chat))
        self.fake.message(chat, user, text, **kw)  # type: ignore[arg-type]
        await self.settle()
        await self.fake.wait_for(lambda: len(self.fake.messages_to(chat)) >= before + expect)
        return self.fake.messages_to(chat)[before:]

    async def press(self, user: int, chat: int, message: Sent, data: str) -> None:
        """Tap an inline button of `message` whose callback data is `data`."""
        buttons = [b["callback_data"] for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]
        assert data in buttons, f"no button {data!r} on the message; it has {buttons}"
        answered = len(self.fake.answered_callbacks)
        self.fake.callback(chat, user, data, message.message_id)
        await self.settle()
        await self.fake.wait_for(lambda: len(self.fake.answered_callbacks) > answered)

    async def eventually(self, probe: Callable[[], Awaitable[object]], expected: object, timeout: float = 10.0) -> None:
        """Poll a database probe until it returns `expected` (the bot records outcomes just after sending)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (seen := await probe()) != expected:
            assert asyncio.get_running_loop().time() < deadline, f"still {seen!r}, expected {expected!r}"
            await asyncio.sleep(0.02)

    async def sent_count(self) -> int:
        async with self.app.sessions() as session:
            return (
                await session.exec(select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.SENT))
            ).one()

    async def wait_groups(self, chats: list[int], count: int = 1, timeout: float = 10.0) -> None:
        await self.fake.wait_for(lambda: all(len(self.fake.messages_to(c)) >= count for c in chats), timeout)
