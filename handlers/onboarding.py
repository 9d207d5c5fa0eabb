"""/start and /trogiup: what this person can do, given their roles."""

from __future__ import annotations

from handlers.chat import ChatKind
from handlers.context import Turn
from handlers.people import roles_of
from handlers.permissions import summary
from messages import label


async def help(turn: Turn, _args: str = "") -> None:  # noqa: A001 - the command's name
    roles = await roles_of(turn.session, turn.person)
    turn.say(
        "help",
        group=turn.incoming.chat_kind is ChatKind.GROUP,
        name=turn.person.display_name,
        roles=[(label(f"role_{role.role}"), place.name, place.code) for role, place in roles],
        zalo=turn.incoming.platform == "zalo",
        **summary(await turn.actor()),
    )


start = help
