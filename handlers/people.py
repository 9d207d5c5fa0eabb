"""People, their platform identities and their roles on places."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, bindparam
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers.chat import ChatKind, Incoming
from storage.models import Conversation, Follower, Identity, Person, Place, Role, utcnow


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
    _noted(person, identity, name, private)
    await session.flush()
    return person


def _noted(person: Person, identity: Identity, name: str, private: bool) -> None:
    if name and person.display_name != name:
        person.display_name = name
    if private and identity.private_chat_at is None:
        identity.private_chat_at = utcnow()


@dataclass(frozen=True)
class Arrival:
    """Who sent a message, with what every turn reads of the chat: one statement for the three."""

    person: Person
    conversation: Conversation | None  # where they are in a multi-step exchange in this chat
    refused: Follower | None  # the chat's follower row when the platform refused the chat (handlers/following.py)


# built once, with parameters: building it costs about as much CPU as running it (storage/inbox.py)
_ARRIVAL = (
    select(Person, Identity, Conversation, Follower)
    .join(Identity)
    .outerjoin(Conversation, and_(col(Conversation.platform) == col(Identity.platform),
                                  col(Conversation.user_id) == col(Identity.user_id),
                                  col(Conversation.chat_id) == bindparam("chat_id")))
    .outerjoin(Follower, and_(col(Follower.platform) == col(Identity.platform),
                              col(Follower.chat_id) == bindparam("chat_id"), col(Follower.stopped_at).is_not(None)))
    .where(col(Identity.platform) == bindparam("platform"), col(Identity.user_id) == bindparam("user_id"))
)


async def arrival(session: AsyncSession, incoming: Incoming) -> Arrival:
    """The sender (created on first contact, as `person_for`), their conversation in the chat and the
    chat's refused follower row."""
    platform, user_id = incoming.platform, incoming.user_id
    params = {"platform": platform, "user_id": user_id, "chat_id": incoming.chat_id}
    row = (await session.exec(_ARRIVAL, params=params)).first()
    private = incoming.chat_kind is ChatKind.PRIVATE  # from now on the bot may write to them there
    if row is None:  # first contact: two statements more, once
        await person_for(session, platform, user_id, incoming.user_name, private=private)
        row = (await session.exec(_ARRIVAL, params=params)).one()
    person, identity, conversation, refused = row
    _noted(person, identity, incoming.user_name, private)
    return Arrival(person, conversation, refused)


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
