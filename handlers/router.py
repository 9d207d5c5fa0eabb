"""One turn: decide which handler an Incoming goes to."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from handlers import announcements, conversation, groups, identity, onboarding, villages
from handlers import invitations, roles
from handlers.handbook import chat as handbook
from handlers.handbook import entries, questions
from handlers.posters import poster_command
from handlers.surveys import answering, campaigns, households, mine, reports
from handlers.chat import ChatKind, Event
from handlers.context import Turn
from storage.models import Announcement, AnnouncementStatus

_COMMAND = re.compile(r"/(\w+)(@\S+)?\s*(.*)", re.DOTALL)
Command = Callable[[Turn, str], Awaitable[None]]
Resume = Callable[[Turn, str, dict], Awaitable[None]]


async def cancel(turn: Turn, _args: str) -> None:
    """/huy: leave whatever is being written; a draft notice is marked cancelled, not lost."""
    conv = await conversation.current(turn)
    if conv is None:
        turn.say("nothing_to_cancel")
        return
    if conv.flow == announcements.FLOW:
        draft = await turn.session.get(Announcement, conv.data.get("announcement_id"))
        if draft is not None and draft.status == AnnouncementStatus.DRAFT:
            await announcements.cancel_draft(turn, draft)
            return
    await conversation.finish(turn)
    if conv.flow == answering.FLOW:
        turn.say("survey_paused")  # the answers so far are kept: /khaosat goes on from there
    else:
        turn.say("left_unfinished")


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
    "hoi": handbook.ask_command,
    "cauhoi": questions.open_questions,
    "traloi": questions.reply,
    "luuhuongdan": entries.save_command,
    "xoahuongdan": entries.remove_command,
    "lienket": identity.link,
    "khaosat": campaigns.start,
    "tiendo": campaigns.show_progress,
    "baocao": reports.report,
    "xuat": reports.export_command,
    "cuatoi": mine.show,
    "xoadulieu": mine.ask_delete,
    "doimaho": households.start,
    "moi": invitations.invite,
    "thuhoi": roles.start,
    "poster": poster_command,
    "thamgia": villages.join_command,
    "roithon": villages.leave_command,
}

# a private chat in the middle of one of these goes back to it with the next message
FLOWS: dict[str, Resume] = {
    announcements.FLOW: announcements.resume,
    handbook.FLOW: handbook.resume,
    entries.FLOW: entries.resume,
    answering.FLOW: answering.resume,
    campaigns.FLOW: campaigns.resume,
    mine.FLOW: mine.resume,
    households.FLOW: households.resume,
    invitations.FLOW: invitations.resume,
    roles.FLOW: roles.resume,
    villages.FLOW: villages.resume,
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

    if msg.chat_kind is ChatKind.GROUP:
        if msg.text.strip().lower().startswith(announcements.RELAY_TAG):
            await announcements.relay_tagged(turn)
            return
        conv = await conversation.current(turn)
        if conv is not None and conv.flow == handbook.FLOW:
            await handbook.resume(turn, conv.step, conv.data)
        return

    conv = await conversation.current(turn)
    if conv is not None and conv.flow in FLOWS:
        await FLOWS[conv.flow](turn, conv.step, conv.data)
    elif msg.text.strip():
        await handbook.ask(turn, msg.text)  # free text in a private chat is a question
    else:
        turn.say("not_understood")
