"""/trogiup through the real client: each command once, in an order that follows the person's roles."""

from __future__ import annotations

import re
from collections import Counter

from handlers import admin
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, Harness

COMMAND = re.compile(r"/[a-z]+")


async def _help(h: Harness, user: int) -> list[str]:
    [reply] = await h.send(user, "/trogiup")
    return COMMAND.findall(reply.text)


async def test_help_lists_each_command_once_whatever_the_roles(harness: Harness) -> None:
    everyone = 404  # official of the commune, tech team of a village and village head of another
    async with harness.app.sessions() as session:
        await admin.grant_role(session, "telegram", str(everyone), "commune_official", "XA1")
        await admin.grant_role(session, "telegram", str(everyone), "tech_team", "THON-2")
        await admin.grant_role(session, "telegram", str(everyone), "village_head", "THON-3")
        await session.commit()
    harness.fake.add_private(everyone)
    for user in (RESIDENT, TECH, HEAD, OFFICIAL, everyone):
        commands = await _help(harness, user)
        repeated = {c: n for c, n in Counter(commands).items() if n > 1}
        assert not repeated, f"user {user}: {repeated}"

    head = await _help(harness, HEAD)
    assert {"/thongbao", "/khaosat", "/moi", "/thuhoi", "/cauhoi", "/thamgia", "/huy"} <= set(head)
    # what they do for the village comes first, what anyone can do last
    assert head.index("/thongbao") < head.index("/khaosat") < head.index("/cauhoi") < head.index("/thamgia")
    tech = await _help(harness, TECH)
    assert "/thongbao" not in tech
    assert tech.index("/cauhoi") < tech.index("/thamgia")
    resident = await _help(harness, RESIDENT)
    assert "/cauhoi" not in resident
    assert {"/khaosat", "/moi", "/thamgia"} <= set(resident)
