"""People, their platform identities and their roles on places."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Identity, Person, Place, Role


async def person_for(session: AsyncSession, platform: str, user_id: str, name: str = "") -> Person:
    """The person behind a platform account, created on first contact."""
    found = await session.exec(
        select(Person).join(Identity).where(Identity.platform == platform, Identity.user_id == user_id)
    )
    person = found.first()
    if person is None:
        person = Person(display_name=name)
        session.add(person)
        await session.flush()
        session.add(Identity(platform=platform, user_id=user_id, person_id=person.id))
        await session.flush()
    elif name and person.display_name != name:
        person.display_name = name
    return person


async def roles_of(session: AsyncSession, person: Person) -> list[tuple[Role, Place]]:
    rows = await session.exec(select(Role, Place).join(Place).where(Role.person_id == person.id).order_by(col(Role.id)))
    return list(rows.all())


async def villages_of(session: AsyncSession, commune: Place) -> list[Place]:
    rows = await session.exec(select(Place).where(Place.parent_id == commune.id).order_by(Place.name, col(Place.id)))
    return list(rows.all())


async def place_by_code(session: AsyncSession, code: str) -> Place | None:
    rows = await session.exec(select(Place).where(Place.code == code.strip().upper()))
    return rows.first()
