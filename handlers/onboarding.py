"""/start and /trogiup: what this person can do, given their roles."""

from __future__ import annotations

from handlers.chat import ChatKind
from handlers.context import Turn
from handlers.people import roles_of


async def help(turn: Turn, _args: str = "") -> None:  # noqa: A001 - the command's name
    roles = await roles_of(turn.session, turn.person)
    held = {role.role for role, _ in roles}
    turn.say(
        "help",
        group=turn.incoming.chat_kind is ChatKind.GROUP,
        name=turn.person.display_name,
        roles=[(role.role, place.name, place.code) for role, place in roles],
        broadcaster=bool(held & {"commune_official", "village_head"}),
        official="commune_official" in held,
        staff=bool(held),
        zalo=turn.incoming.platform == "zalo",
    )


start = help
