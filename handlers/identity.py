"""/lienket: one person, several platforms. A code given on one platform and typed on another joins
the two accounts, so roles and household follow the person."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select

from handlers.chat import ChatKind
from handlers.context import Turn
from storage.models import Identity, LinkCode, Person, Role

CODE_LIFETIME = timedelta(minutes=10)


async def link(turn: Turn, args: str) -> None:
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("link_identity_private_only")
        return
    code = args.strip()
    if not code:
        await _give_code(turn)
        return
    given = await turn.session.get(LinkCode, code)
    if given is None or given.expires_at < turn.now:
        turn.say("link_identity_bad_code")
        return
    if given.platform == turn.incoming.platform:
        turn.say("link_identity_same_platform")
        return
    if given.person_id != turn.person.id:
        await _merge(turn, source=turn.person, target_id=given.person_id)
    await turn.session.delete(given)
    turn.say("link_identity_done")


async def _give_code(turn: Turn) -> None:
    await turn.session.exec(delete(LinkCode).where(col(LinkCode.person_id) == turn.person.id))
    code = f"{secrets.randbelow(1_000_000):06d}"
    while await turn.session.get(LinkCode, code) is not None:
        code = f"{secrets.randbelow(1_000_000):06d}"
    turn.session.add(
        LinkCode(code=code, person_id=turn.person.id, platform=turn.incoming.platform, expires_at=turn.now + CODE_LIFETIME)
    )
    turn.say("link_identity_code", code=code, minutes=int(CODE_LIFETIME.total_seconds() // 60))


async def _merge(turn: Turn, source: Person, target_id: int) -> None:
    """Everything that makes `source` who they are moves to the person who gave the code."""
    target = await turn.session.get(Person, target_id)
    assert target is not None
    await turn.session.exec(update(Identity).where(col(Identity.person_id) == source.id).values(person_id=target_id))
    held = {(r.place_id, r.role) for r in (await turn.session.exec(select(Role).where(Role.person_id == target_id))).all()}
    for role in (await turn.session.exec(select(Role).where(Role.person_id == source.id))).all():
        if (role.place_id, role.role) in held:
            await turn.session.delete(role)
        else:
            role.person_id = target_id
    if target.household_id is None:
        target.household_id = source.household_id
