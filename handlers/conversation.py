"""Conversation state kept in the database, so a restart resumes every exchange where it stopped.

The row is read once per turn and kept on the Turn: a turn asks for it several times (the router,
then the flow moving on), and each read would be a query."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from handlers.context import Turn
from storage.models import Conversation


async def current(turn: Turn) -> Conversation | None:
    if turn.conversation_loaded:
        return turn.conversation
    msg = turn.incoming
    rows = await turn.session.exec(
        select(Conversation).where(
            Conversation.platform == msg.platform,
            Conversation.chat_id == msg.chat_id,
            Conversation.user_id == msg.user_id,
        )
    )
    turn.conversation, turn.conversation_loaded = rows.first(), True
    return turn.conversation


async def move(turn: Turn, flow: str, step: str, **data: Any) -> Conversation:
    """Put the person at `step` of `flow`, merging `data` into what the flow already holds."""
    conv = await current(turn)
    msg = turn.incoming
    if conv is None or conv.flow != flow:
        if conv is not None:
            await turn.session.delete(conv)
            await turn.session.flush()
        conv = Conversation(platform=msg.platform, chat_id=msg.chat_id, user_id=msg.user_id, flow=flow, step=step)
    conv.step = step
    conv.data = {**conv.data, **data}  # a new dict: JSON columns only notice reassignment
    conv.updated_at = turn.now
    turn.session.add(conv)
    turn.conversation = conv
    return conv


async def finish(turn: Turn) -> None:
    conv = await current(turn)
    if conv is not None:
        await turn.session.delete(conv)
        await turn.session.flush()  # a flow started later in this turn inserts the same key
    turn.conversation = None
