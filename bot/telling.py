"""A message from the bot itself to one person in their private chat, on the first platform (in the
order their identities were linked) that this process serves: for what no conversation asked about."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.delivery import send_direct
from bot.dispatcher import Route
from handlers.chat import ChatKind, ChatRef, Outcome, Outgoing
from storage.models import Identity

log = logging.getLogger(__name__)


async def tell(
    sessions: async_sessionmaker[AsyncSession], routes: Mapping[str, Route], person_id: int, text: str
) -> Outcome:
    async with sessions() as session:
        rows = await session.exec(
            select(Identity.platform, Identity.user_id).where(Identity.person_id == person_id).order_by(col(Identity.id))
        )
        chats = [(platform, user_id) for platform, user_id in rows.all() if platform in routes]
    if not chats:
        log.info("person %d has no private chat on a platform this bot serves", person_id)
        return Outcome.FAILED
    platform, user_id = chats[0]
    route = routes[platform]
    return await send_direct(route.channel, route.pacer, Outgoing(ChatRef(platform, user_id), text), ChatKind.PRIVATE,
                             urgent=False)
