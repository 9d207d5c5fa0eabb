"""The web console's door, without passwords: /web in a private chat sends staff a one-time link (valid
10 minutes, works once); opening it starts a browser session of 12 hours. Only SHA-256 digests of
both secrets are kept. Wrong or stale links count against the address they come from
(handlers/attempts.py), like every other secret. A role taken back ends every session of its holder
(handlers/roles.py calls `end_sessions`), and each request checks the roles again (`session_actor`).

The plain operations need no chat: the /web command below and the console's routes (bot/web/console)
are their surfaces."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import attempts, audit, codes
from handlers.chat import ChatKind
from handlers.context import Turn
from handlers.permissions import Actor, actor_for, may_use_console
from storage.models import ConsoleLogin, ConsoleSession, Person

LOGIN_PATH = "/dang-nhap/"
LINK_LIFETIME = timedelta(minutes=10)
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_BYTES = 24  # 32 URL-safe characters
GUESSES = attempts.Limit("console_login", failures=10, window=timedelta(hours=1), lockout=timedelta(hours=1))


@dataclass(frozen=True)
class Visitor:
    """Who is behind a session cookie, with their roles as of this request."""

    session: ConsoleSession
    person: Person
    actor: Actor


async def issue_link(session: AsyncSession, actor: Actor, now: datetime) -> str | None:
    """A new login token for the actor, or None when they hold no staff role."""
    if not may_use_console(actor):
        return None
    token = secrets.token_urlsafe(TOKEN_BYTES)
    session.add(ConsoleLogin(token_hash=codes.digest(token), person_id=actor.person_id, created_at=now,
                             expires_at=now + LINK_LIFETIME))
    await session.flush()
    return token


async def open_link(session: AsyncSession, token: str, keys: list[str], now: datetime) -> str | None:
    """The login token spent for a new session's token; None for a locked-out address, an unknown,
    used or expired token, or a person who lost their staff roles since."""
    if await attempts.locked_until(session, keys, now) is not None:  # not even looked at
        return None
    login = (
        await session.exec(select(ConsoleLogin).where(ConsoleLogin.token_hash == codes.digest(token)).with_for_update())
    ).first()
    if login is None or login.used_at is not None or login.expires_at <= now:
        await attempts.charge(session, GUESSES, keys, now)
        return None
    login.used_at = now
    session.add(login)
    person = await session.get(Person, login.person_id)
    if person is None or not may_use_console(await actor_for(session, person)):
        return None
    secret = secrets.token_urlsafe(TOKEN_BYTES)
    opened = ConsoleSession(token_hash=codes.digest(secret), person_id=login.person_id, created_at=now,
                            expires_at=now + SESSION_LIFETIME)
    session.add(opened)
    await session.flush()
    await audit.record(session, "console_login", actor_id=login.person_id, at=now, console_session=opened.id)
    return secret


async def session_actor(session: AsyncSession, secret: str, now: datetime) -> Visitor | None:
    """The person behind a session cookie, if the session is open and they are still staff (a session
    whose person lost every staff role is ended here)."""
    found = (await session.exec(select(ConsoleSession).where(ConsoleSession.token_hash == codes.digest(secret)))).first()
    if found is None or found.ended_at is not None or found.expires_at <= now:
        return None
    person = await session.get(Person, found.person_id)
    actor = await actor_for(session, person) if person is not None else None
    if person is None or actor is None or not may_use_console(actor):
        found.ended_at = now
        session.add(found)
        return None
    return Visitor(found, person, actor)


async def end_session(session: AsyncSession, visitor: Visitor, now: datetime) -> None:
    """"Đăng xuất"."""
    visitor.session.ended_at = now
    session.add(visitor.session)
    await audit.record(session, "console_logout", actor_id=visitor.person.id, at=now, console_session=visitor.session.id)


async def end_sessions(session: AsyncSession, person_id: int, now: datetime) -> int:
    """Every open session of a person (one of their roles was taken back); how many there were."""
    ended = await session.exec(
        update(ConsoleSession)
        .where(col(ConsoleSession.person_id) == person_id, col(ConsoleSession.ended_at).is_(None))
        .values(ended_at=now)
    )
    return ended.rowcount


# --- /web in a chat --------------------------------------------------------------------------------------


async def web_command(turn: Turn, _args: str) -> None:
    """/web: a login link for staff, in a private chat only (a link in a group is anyone's)."""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("web_private_only")
        return
    base = turn.settings.links.console_url
    if not base:
        turn.say("web_not_set_up")
        return
    token = await issue_link(turn.session, await turn.actor(), turn.now)
    if token is None:
        turn.say("web_staff_only")
        return
    turn.say("web_link", link=f"{base}{LOGIN_PATH}{token}", minutes=int(LINK_LIFETIME.total_seconds() // 60))
