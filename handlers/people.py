"""People, their platform identities and their roles on places."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Identity, Person, Place, Role, utcnow


async def person_for(session: AsyncSession, platform: str, user_id: str, name: str = "", *, private: bool = False) -> Person:
    """The person behind a platform account, created on first contact; `private`: they wrote in a
    private chat with the bot, which may write to them there from now on."""
    found = await session.exec(
        select(Person, Identity).join(Identity).where(Identity.platform == platform, Identity.user_id == user_id)
    )
    row = found.first()
    if row is None:
        person = Person(display_name=name)
        session.add(person)
        await session.flush()
        identity = Identity(platform=platform, user_id=user_id, person_id=person.id)
        session.add(identity)
    else:
        person, identity = row
        if name and person.display_name != name:
            person.display_name = name
    if private and identity.private_chat_at is None:
        identity.private_chat_at = utcnow()
    await session.flush()
    return person


async def has_private_chat(session: AsyncSession, platform: str, user_id: str) -> bool:
    """Whether the bot may write to this account in a private chat (it has written to the bot there)."""
    rows = await session.exec(
        select(Identity.id).where(
            Identity.platform == platform, Identity.user_id == user_id, col(Identity.private_chat_at).is_not(None)
        )
    )
    return rows.first() is not None


async def roles_of(session: AsyncSession, person: Person) -> list[tuple[Role, Place]]:
    rows = await session.exec(select(Role, Place).join(Place).where(Role.person_id == person.id).order_by(col(Role.id)))
    return list(rows.all())


async def villages_of(session: AsyncSession, commune: Place) -> list[Place]:
    rows = await session.exec(select(Place).where(Place.parent_id == commune.id).order_by(Place.name, col(Place.id)))
    return list(rows.all())


async def place_by_code(session: AsyncSession, code: str) -> Place | None:
    rows = await session.exec(select(Place).where(Place.code == code.strip().upper()))
    return rows.first()
