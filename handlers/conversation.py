"""Conversation state kept in the database, so a restart resumes every exchange where it stopped.

Each conversation is a `Flow`: a table of its steps (step name → the handler of the next message
there), like python-telegram-bot's ConversationHandler states, and what /huy does to it. A row whose
step the table no longer has (stored by an older version) ends with a message, never silence.

The row is read once per turn and kept on the Turn: a turn asks for it several times (the router,
then the flow moving on), and each read would be a query."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from handlers.context import Turn
from storage.models import Conversation

log = logging.getLogger(__name__)

Data = dict[str, Any]
StepHandler = Callable[[Turn, Data], Awaitable[None]]
CancelHandler = Callable[[Turn, Data], Awaitable[None]]


async def leave_unfinished(turn: Turn, _data: Data) -> None:
    """/huy in a flow that keeps nothing worth saying: the conversation ends."""
    await finish(turn)
    turn.say("left_unfinished")


@dataclass(frozen=True)
class Flow:
    name: str  # stored in Conversation.flow: renaming it strands the rows of running conversations
    steps: Mapping[str, StepHandler]
    on_cancel: CancelHandler = leave_unfinished

    async def resume(self, turn: Turn, conv: Conversation) -> None:
        """The next message of someone at `conv.step` of this flow."""
        handler = self.steps.get(conv.step)
        if handler is None:
            await retire(turn, conv)
            return
        await handler(turn, conv.data)


async def retire(turn: Turn, conv: Conversation) -> None:
    """A conversation at a flow or step this version does not have: it ends, and the person is told."""
    log.info("conversation at a retired step ended: %s/%s", conv.flow, conv.step)
    await finish(turn)
    turn.say("conversation_retired")


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


async def move(turn: Turn, flow: Flow, step: str, **data: Any) -> Conversation:
    """Put the person at `step` of `flow`, merging `data` into what the flow already holds."""
    assert step in flow.steps, f"{flow.name} has no step {step!r}"  # the table is the whole flow
    conv = await current(turn)
    msg = turn.incoming
    if conv is None or conv.flow != flow.name:
        if conv is not None:
            await turn.session.delete(conv)
            await turn.session.flush()
        conv = Conversation(platform=msg.platform, chat_id=msg.chat_id, user_id=msg.user_id, flow=flow.name, step=step)
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
