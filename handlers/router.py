"""One turn: decide which handler an Incoming goes to."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from handlers import announcements, conversation, following, groups, identity, invitations, onboarding, roles, villages, web_login
from handlers.chat import ChatKind, Event
from handlers.context import Turn
from handlers.conversation import Flow
from handlers.handbook import asking, entries, questions
from handlers.posters import poster_command
from handlers.surveys import answering, campaigns, households, my_data, reports

_COMMAND = re.compile(r"/(\w+)(@\S+)?\s*(.*)", re.DOTALL)
Command = Callable[[Turn, str], Awaitable[None]]

# a private chat in the middle of one of these goes back to it with the next message
FLOWS: list[Flow] = [
    announcements.FLOW,
    asking.FLOW,
    entries.FLOW,
    answering.FLOW,
    campaigns.FLOW,
    my_data.FLOW,
    households.FLOW,
    invitations.FLOW,
    roles.FLOW,
    villages.FLOW,
    following.FLOW,
]
_BY_NAME = {flow.name: flow for flow in FLOWS}


async def cancel(turn: Turn, _args: str) -> None:
    """/huy: the flow being written leaves in its own way (a draft notice is kept as cancelled)."""
    conv = await conversation.current(turn)
    if conv is None:
        turn.say("nothing_to_cancel")
        return
    flow = _BY_NAME.get(conv.flow)
    if flow is None:
        await conversation.retire(turn, conv)
        return
    await flow.on_cancel(turn, conv.data)


async def start(turn: Turn, args: str) -> None:
    if args.startswith(answering.LINK_PREFIX):
        await answering.from_link(turn, args.removeprefix(answering.LINK_PREFIX))
    elif args.startswith(invitations.LINK_PREFIX):
        await invitations.from_link(turn, args.removeprefix(invitations.LINK_PREFIX))
    elif args.startswith(villages.LINK_PREFIXES):
        await villages.from_link(turn, args)
    else:
        await onboarding.start(turn, args)


COMMANDS: dict[str, Command] = {
    "start": start,
    "trogiup": onboarding.help,
    "help": onboarding.help,
    "thongbao": announcements.start,
    "tinhtrang": announcements.status,
    "huythongbao": announcements.cancel_sent,
    "chuyentiep": announcements.relay_quoted,
    "ganthon": groups.link,
    "boganthon": groups.unlink,
    "huy": cancel,
    "hoi": asking.ask_command,
    "cauhoi": questions.open_questions,
    "traloi": questions.reply,
    "luuhuongdan": entries.save_command,
    "xoahuongdan": entries.remove_command,
    "lienket": identity.link,
    "khaosat": campaigns.start,
    "tiendo": campaigns.show_progress,
    "baocao": reports.report,
    "xuat": reports.export_command,
    "cuatoi": my_data.show,
    "xoadulieu": my_data.ask_delete,
    "doimaho": households.start,
    "moi": invitations.invite,
    "thuhoi": roles.start,
    "poster": poster_command,
    "thamgia": villages.join_command,
    "roithon": villages.leave_command,
    "nhantin": following.start_command,
    "dunglai": following.stop_command,
    "web": web_login.web_command,
}

def parse_command(text: str) -> tuple[str, str] | None:
    """("thongbao", "rest of the text") for "/thongbao rest of the text"; None for plain text.
    Adapters have already removed "@ourbot"; a command still addressed to another bot is not ours."""
    found = _COMMAND.match(text)
    if found is None:
        return None
    if found.group(2):
        return ("", "")
    return found.group(1).lower(), found.group(3).strip()


async def route(turn: Turn) -> None:
    private = turn.incoming.chat_kind is ChatKind.PRIVATE and turn.incoming.event in (Event.MESSAGE, Event.BUTTON)
    if private:
        following.wrote_again(turn)  # a follower who had blocked the bot is reachable again
    await _route(turn)
    if private and await conversation.current(turn) is None:
        await following.offer_if_due(turn)  # a village member never asked whether to follow it: once, now


async def _route(turn: Turn) -> None:
    msg = turn.incoming
    if msg.event is Event.BOT_ADDED:
        await groups.bot_added(turn)
        return
    if msg.event is Event.BOT_REMOVED:
        await groups.bot_removed(turn)
        return
    if msg.event is Event.MIGRATED:
        await groups.migrated(turn)
        return
    if msg.event is Event.BUTTON and msg.answer.startswith(announcements.ACK_PREFIX):
        await announcements.acknowledge(turn)
        return

    command = parse_command(msg.text) if msg.event is Event.MESSAGE else None
    if command is not None:
        name, args = command
        handler = COMMANDS.get(name)
        if handler is not None:
            await handler(turn, args)
        elif name and msg.chat_kind is ChatKind.PRIVATE:
            turn.say("unknown_command", command=name)
        return

    # "1" right after a notice is "read", before any menu or the handbook (why: acknowledge_typed)
    if await announcements.acknowledge_typed(turn):
        return
    if msg.chat_kind is ChatKind.GROUP:
        if msg.text.strip().lower().startswith(announcements.RELAY_TAG):
            await announcements.relay_tagged(turn)
            return
        conv = await conversation.current(turn)
        if conv is not None and conv.flow == asking.FLOW.name:  # an offer made in the group
            await asking.FLOW.resume(turn, conv)
        return

    conv = await conversation.current(turn)
    if conv is not None:
        flow = _BY_NAME.get(conv.flow)
        if flow is None:  # a flow this version no longer has
            await conversation.retire(turn, conv)
        else:
            await flow.resume(turn, conv)
    elif msg.text.strip():
        await asking.ask(turn, msg.text)  # free text in a private chat is a question
    else:
        turn.say("not_understood")
