"""/lienket: one person, several platforms. A code given on one platform and typed on another joins
the two accounts, so roles and household follow the person.

A join hands the code-giver's roles to whoever types the code, so the code must not be guessable: 12
digits (10^12), valid 10 minutes, kept only as a hash, and every wrong code counts against the person
and the chat (handlers/attempts.py). Every wrong code gets the same answer. The code-giver is told in
their own chat when the join happens, and `/lienket tach` undoes it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlmodel import col, select

from handlers import attempts, audit, codes
from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.context import Turn
from handlers.surveys.households import leave_household
from handlers.villages import village_of
from messages import label, render
from storage.models import AccountJoin, Identity, InboxUpdate, LinkCode, Person, Role, VillageMember

CODE_LIFETIME = timedelta(minutes=10)
CODE_DIGITS = 12
GUESSES = attempts.Limit("link", failures=5, window=timedelta(hours=1), lockout=timedelta(hours=1))
UNDO_WORDS = ("tach", "tách")


async def link(turn: Turn, args: str) -> None:
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("link_identity_private_only")
        return
    typed = args.strip()
    if not typed:
        await _give_code(turn)
    elif typed.lower() in UNDO_WORDS:
        await _undo(turn)
    else:
        await _take_code(turn, codes.typed(typed, CODE_DIGITS) or "")


async def _take_code(turn: Turn, code: str) -> None:
    msg = turn.incoming
    keys = attempts.scopes(GUESSES, turn.person.id, msg.platform, msg.chat_id)
    locked = await attempts.locked_until(turn.session, keys, turn.now)
    if locked is not None:  # the code is not even looked at
        turn.say("link_identity_locked", until=turn.local(locked))
        return
    given = await turn.session.get(LinkCode, codes.digest(code)) if len(code) == CODE_DIGITS else None
    if given is not None and given.person_id == turn.person.id:
        # their own code: nothing to guess, so they may be told what went wrong
        turn.say("link_identity_same_platform" if given.platform == msg.platform else "link_identity_done")
        return
    if given is None or given.expires_at < turn.now or given.platform == msg.platform:
        until = await attempts.charge(turn.session, GUESSES, keys, turn.now)
        if until is not None:
            turn.say("link_identity_locked", until=turn.local(until))
        else:
            turn.say("link_identity_bad_code")
        return
    await turn.session.delete(given)
    joined = await _merge(turn, source=turn.person, target_id=given.person_id)
    await _tell_code_giver(turn, given, joined)
    turn.say("link_identity_done")


async def _give_code(turn: Turn) -> None:
    await turn.session.exec(delete(LinkCode).where(col(LinkCode.person_id) == turn.person.id))
    code = codes.new_digits(CODE_DIGITS)
    turn.session.add(
        LinkCode(
            code=codes.digest(code),
            person_id=turn.person.id,
            platform=turn.incoming.platform,
            expires_at=turn.now + CODE_LIFETIME,
        )
    )
    turn.say("link_identity_code", code=codes.grouped(code, 4), minutes=int(CODE_LIFETIME.total_seconds() // 60))


async def _merge(turn: Turn, source: Person, target_id: int) -> AccountJoin:
    """Everything that makes `source` who they are moves to the person who gave the code; what moved is
    recorded so that `/lienket tach` can put it back."""
    session = turn.session
    target = await session.get(Person, target_id)
    assert target is not None
    assert source.id is not None
    identities = list((await session.exec(select(Identity.id).where(Identity.person_id == source.id))).all())
    await session.exec(update(Identity).where(col(Identity.person_id) == source.id).values(person_id=target_id))
    # what they sent before is theirs too: /xoadulieu finds it by person
    await session.exec(update(InboxUpdate).where(col(InboxUpdate.person_id) == source.id).values(person_id=target_id))
    # the kept person's village stands; without one, they take the joining person's
    if await village_of(session, target) is None:
        await session.exec(update(VillageMember).where(col(VillageMember.person_id) == source.id).values(person_id=target_id))
    else:
        await session.exec(delete(VillageMember).where(col(VillageMember.person_id) == source.id))
    held = {(r.place_id, r.role) for r in (await session.exec(select(Role).where(Role.person_id == target_id))).all()}
    moved = []
    for role in (await session.exec(select(Role).where(Role.person_id == source.id).order_by(col(Role.id)))).all():
        if (role.place_id, role.role) in held:
            await session.delete(role)  # the kept person has it already
        else:
            role.person_id = target_id
            moved.append(role.id)
    household_taken = target.household_id is None and source.household_id is not None
    if household_taken:
        target.household_id = source.household_id
    joined = AccountJoin(
        person_id=target_id,
        joined_person_id=source.id,
        identity_ids=[i for i in identities if i is not None],
        role_ids=[r for r in moved if r is not None],
        household_taken=household_taken,
        at=turn.now,
    )
    session.add(joined)
    await session.flush()
    await audit.record(session, "accounts_joined", actor_id=source.id, at=turn.now, join=joined.id,
                       person=target_id, identities=len(identities), roles=len(moved))
    return joined


async def _tell_code_giver(turn: Turn, given: LinkCode, joined: AccountJoin) -> None:
    """The code-giver hears of the join in their own chat on the platform where they asked for the code."""
    rows = await turn.session.exec(
        select(Identity.user_id)
        .where(Identity.person_id == given.person_id, Identity.platform == given.platform)
        .order_by(col(Identity.id))
    )
    user_id = rows.first()
    if user_id is None:
        return
    turn.reply.messages.append(
        Outgoing(
            ChatRef(given.platform, user_id),
            render("link_identity_joined_notice", platform=label(turn.incoming.platform),
                   name=turn.incoming.user_name, at=turn.local(joined.at)),
        )
    )


async def _undo(turn: Turn) -> None:
    """/lienket tach: the accounts that came in by the latest join involving this person go back to
    being someone else, with what they brought; the roles of the one who gave the code stay."""
    rows = await turn.session.exec(
        select(AccountJoin)
        .where(AccountJoin.person_id == turn.person.id, col(AccountJoin.undone_at).is_(None))
        .order_by(col(AccountJoin.id).desc())
    )
    joined = rows.first()
    if joined is None:
        turn.say("link_identity_nothing_to_undo")
        return
    session = turn.session
    if joined.identity_ids:
        await session.exec(
            update(Identity).where(col(Identity.id).in_(joined.identity_ids)).values(person_id=joined.joined_person_id)
        )
    if joined.role_ids:
        await session.exec(update(Role).where(col(Role.id).in_(joined.role_ids)).values(person_id=joined.joined_person_id))
    kept = await session.get(Person, joined.person_id)
    if joined.household_taken and kept is not None:  # the household went with the accounts that brought it
        await leave_household(session, kept)
    joined.undone_at = turn.now
    await audit.record(session, "accounts_separated", actor_id=turn.person.id, at=turn.now, join=joined.id)
    turn.say("link_identity_undone", platforms=sorted({label(p) for p in await _platforms(turn, joined)}))


async def _platforms(turn: Turn, joined: AccountJoin) -> list[str]:
    rows = await turn.session.exec(select(Identity.platform).where(col(Identity.id).in_(joined.identity_ids)))
    return list(rows.all())
