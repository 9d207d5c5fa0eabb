"""/start and /trogiup: what this person can do, given their roles."""

from __future__ import annotations

from handlers import announcements
from handlers.chat import ChatKind
from handlers.context import Turn
from handlers.people import roles_of
from handlers.permissions import summary
from messages import label


async def help(turn: Turn, _args: str = "") -> None:
    roles = await roles_of(turn.session, turn.person)
    turn.say(
        "help",
        group=turn.incoming.chat_kind is ChatKind.GROUP,
        name=turn.person.display_name,
        roles=[(label(f"role_{role.role}"), place.name, place.code) for role, place in roles],
        zalo=turn.incoming.platform == "zalo",
        can=summary(await turn.actor()),
    )


async def start(turn: Turn, args: str) -> None:
    """/start: the help, then a notice from a commune group still waiting for its author's look; the link
    the group gave (/start thongbao) goes straight to that preview."""
    in_group = turn.incoming.chat_kind is ChatKind.GROUP
    if in_group or args != announcements.DRAFT_LINK:
        await help(turn)
    if in_group:
        return
    if not await announcements.show_waiting_draft(turn) and args == announcements.DRAFT_LINK:
        turn.say("announce_gone")
