"""Roles handed out by one-time invitations: /moi in a private chat, `langso admin invite` for the very
first one. Whoever opens the link or types the code gets the role, so both secrets must be unguessable:
the link's token is 32 URL-safe characters, the typed code 12 digits, only their SHA-256 hashes are
kept, and an invitation lasts 7 days and works once. Every wrong try counts against the person and the
chat (handlers/attempts.py); a lock is checked before the secret is looked at, and an expired, used,
withdrawn or made-up invitation all get the same line.

The plain operations (create_invitation, accept_invitation, withdraw, open_invitations) take a session,
who acts and the arguments, and need no chat: the chat flow below, the CLI and later the web console
are surfaces over them. Taking a role back (/thuhoi) is in handlers/roles.py."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import attempts, audit, codes, conversation, onboarding
from handlers.chat import ChatKind, ChatRef, Outgoing
from handlers.choices import Menu, menu
from handlers.context import Turn
from handlers.conversation import Data, Flow
from handlers.permissions import Actor, Spot, actor_for, invite_places, may_invite, role_fits
from messages import label, render
from storage.models import Identity, Invitation, Person, Place, Role, RoleName

LINK_PREFIX = "moi_"  # /start moi_<token>: the invitation's deep link
LIFETIME = timedelta(days=7)
CODE_DIGITS = 12
TOKEN_BYTES = 24  # 32 URL-safe characters; with the prefix well inside Telegram's 64 for /start
GUESSES = attempts.Limit("invitation", failures=10, window=timedelta(hours=1), lockout=timedelta(hours=1))


class NotAllowed(Exception):
    """The permission core refused (a role that does not fit the place, or not the actor's to give)."""


class Outcome(StrEnum):
    GRANTED = "granted"
    ALREADY_HELD = "already_held"  # the invitation stays open for the person it was meant for
    OWN = "own"  # the inviter opened their own invitation: it stays open
    REFUSED = "refused"  # locked out, unknown, expired, used, withdrawn, or its inviter lost the right


@dataclass(frozen=True)
class Issued:
    invitation: Invitation
    place: Place
    token: str
    code: str

    @property
    def payload(self) -> str:
        """What follows /start in the deep link."""
        return f"{LINK_PREFIX}{self.token}"

    @property
    def shown_code(self) -> str:
        """"1234 5678 9012": easier to read out and to copy by hand."""
        return codes.grouped(self.code, 4)


@dataclass(frozen=True)
class Acceptance:
    outcome: Outcome
    invitation: Invitation | None = None
    place: Place | None = None


def role_label(role: str) -> str:
    return label(f"role_{role}")


# --- plain operations ----------------------------------------------------------------------------------


async def create_invitation(
    session: AsyncSession, actor: Actor | None, role: str, place: Place, now: datetime
) -> Issued:
    """A new invitation to `role` on `place`. `actor` None is the shell (`langso admin invite`), which
    may give any role that fits the place; anyone else asks the permission core."""
    spot = Spot.of(place)
    if not role_fits(role, spot) or (actor is not None and not may_invite(actor, role, spot)):
        raise NotAllowed
    token = secrets.token_urlsafe(TOKEN_BYTES)
    code = await _new_code(session)
    invitation = Invitation(
        token_hash=codes.digest(token),
        code_hash=codes.digest(code),
        role=role,
        place_id=place.id,
        invited_by=actor.person_id if actor else None,
        created_at=now,
        expires_at=now + LIFETIME,
    )
    session.add(invitation)
    await session.flush()
    await audit.record(session, "invitation_created", actor_id=invitation.invited_by, at=now, place_id=place.id,
                       invitation=invitation.id, role=role)
    return Issued(invitation, place, token, code)


async def _new_code(session: AsyncSession) -> str:
    while True:  # a collision among 10^12 codes is retried rather than assumed away
        code = codes.new_digits(CODE_DIGITS)
        taken = await session.exec(select(Invitation.id).where(Invitation.code_hash == codes.digest(code)))
        if taken.first() is None:
            return code


async def accept_invitation(
    session: AsyncSession, person: Person, secret: str, keys: Sequence[str], now: datetime
) -> Acceptance:
    """`secret` is the link's token or a typed code; `keys` are the attempt counters a wrong one is
    charged to (attempts.scopes). Every refusal looks the same to the person trying."""
    if await attempts.locked_until(session, keys, now) is not None:  # not even looked at
        return Acceptance(Outcome.REFUSED)
    invitation = await _find(session, secret)
    if invitation is None or not is_open(invitation, now) or not await _inviter_still_may(session, invitation):
        await attempts.charge(session, GUESSES, keys, now)
        return Acceptance(Outcome.REFUSED)
    place = await session.get(Place, invitation.place_id)
    assert place is not None
    assert person.id is not None
    if invitation.invited_by == person.id:
        return Acceptance(Outcome.OWN, invitation, place)
    held = await session.exec(
        select(Role.id).where(Role.person_id == person.id, Role.place_id == place.id, Role.role == invitation.role)
    )
    if held.first() is not None:
        return Acceptance(Outcome.ALREADY_HELD, invitation, place)
    role = Role(person_id=person.id, place_id=place.id, role=invitation.role)
    session.add(role)
    invitation.used_by, invitation.used_at = person.id, now
    session.add(invitation)
    await session.flush()
    await audit.record(session, "invitation_accepted", actor_id=person.id, at=now, place_id=place.id,
                       invitation=invitation.id, role_id=role.id, inviter=invitation.invited_by)
    return Acceptance(Outcome.GRANTED, invitation, place)


async def _find(session: AsyncSession, secret: str) -> Invitation | None:
    """The invitation a token or a code stands for, locked (PostgreSQL): two people using it at once
    cannot both get the role."""
    typed = codes.typed(secret, CODE_DIGITS)
    if typed is not None and len(typed) == CODE_DIGITS:
        match = Invitation.code_hash == codes.digest(typed)
    else:
        match = Invitation.token_hash == codes.digest(secret.strip())
    return (await session.exec(select(Invitation).where(match).with_for_update())).first()


def is_open(invitation: Invitation, now: datetime) -> bool:
    return invitation.used_at is None and invitation.withdrawn_at is None and invitation.expires_at > now


async def _inviter_still_may(session: AsyncSession, invitation: Invitation) -> bool:
    """An invitation is worth what its inviter may give today: one whose role was taken back since
    hands out nothing. The shell's invitations have no inviter."""
    if invitation.invited_by is None:
        return True
    inviter = await session.get(Person, invitation.invited_by)
    place = await session.get(Place, invitation.place_id)
    if inviter is None or place is None:
        return False
    return may_invite(await actor_for(session, inviter), invitation.role, Spot.of(place))


async def open_invitations(session: AsyncSession, actor: Actor, now: datetime) -> list[tuple[Invitation, Place]]:
    """The actor's invitations nobody has used, withdrawn or let expire, oldest first."""
    rows = await session.exec(
        select(Invitation, Place)
        .join(Place, col(Place.id) == Invitation.place_id)
        .where(
            Invitation.invited_by == actor.person_id,
            col(Invitation.used_at).is_(None),
            col(Invitation.withdrawn_at).is_(None),
            Invitation.expires_at > now,
        )
        .order_by(col(Invitation.created_at), col(Invitation.id))
    )
    return list(rows.all())


async def withdraw(session: AsyncSession, actor: Actor, invitation_id: int, now: datetime) -> Invitation | None:
    """Withdraw one of the actor's own open invitations; None if there is no such open invitation."""
    invitation = (
        await session.exec(select(Invitation).where(Invitation.id == invitation_id).with_for_update())
    ).first()
    if invitation is None or invitation.invited_by != actor.person_id or not is_open(invitation, now):
        return None
    invitation.withdrawn_at = now
    session.add(invitation)
    await audit.record(session, "invitation_withdrawn", actor_id=actor.person_id, at=now,
                       place_id=invitation.place_id, invitation=invitation.id)
    return invitation


async def offered_places(session: AsyncSession, actor: Actor) -> dict[str, list[Place]]:
    """Role -> the places the actor may invite someone to it (roles with none left out), in the order
    roles are listed everywhere."""
    places = await invite_places(session, actor)
    offered = {role.value: [p for p in places if may_invite(actor, role, Spot.of(p))] for role in RoleName}
    return {role: found for role, found in offered.items() if found}


async def private_chats(session: AsyncSession, person_id: int) -> list[ChatRef]:
    """A person's private chats with the bot, one per account, oldest account first."""
    rows = await session.exec(
        select(Identity.platform, Identity.user_id).where(Identity.person_id == person_id).order_by(col(Identity.id))
    )
    return [ChatRef(platform, user_id) for platform, user_id in rows.all()]


def card(issued: Issued, link: str | None, expires: datetime) -> str:
    """The message the inviter forwards to the person invited (and the shell prints)."""
    return render("invite_card", role=role_label(issued.invitation.role), place=issued.place.name, link=link,
                  code=issued.shown_code, expires=expires)


# --- /moi in a chat --------------------------------------------------------------------------------------


async def invite(turn: Turn, args: str) -> None:
    """/moi: the inviter's menu; /moi <code>: take the role an invitation offers."""
    if turn.incoming.chat_kind is ChatKind.GROUP:
        turn.say("invite_private_only")  # a code typed in a group is no secret any more
    elif args.strip():
        await _accept(turn, args)
    else:
        await _menu(turn)


async def from_link(turn: Turn, token: str) -> None:
    """/start moi_<token>: the invitee opened the link."""
    await _accept(turn, token)


async def _accept(turn: Turn, secret: str) -> None:
    msg = turn.incoming
    keys = attempts.scopes(GUESSES, turn.person.id, msg.platform, msg.chat_id)
    accepted = await accept_invitation(turn.session, turn.person, secret, keys, turn.now)
    if accepted.outcome is Outcome.REFUSED or accepted.invitation is None or accepted.place is None:
        turn.say("invite_refused")
        return
    role, place = role_label(accepted.invitation.role), accepted.place.name
    if accepted.outcome is Outcome.OWN:
        turn.say("invite_own", role=role, place=place)
    elif accepted.outcome is Outcome.ALREADY_HELD:
        turn.say("invite_already_held", role=role, place=place)
    else:
        await conversation.finish(turn)  # whatever they were doing, they start again as staff
        turn.say("invite_accepted", role=role, place=place)
        turn.forget_actor()
        await onboarding.help(turn)  # what they can do now
        await _tell_inviter(turn, accepted.invitation, role, place)


async def _tell_inviter(turn: Turn, invitation: Invitation, role: str, place: str) -> None:
    if invitation.invited_by is None:
        return
    text = render("invite_used_notice", name=turn.incoming.user_name, role=role, place=place)
    for chat in await private_chats(turn.session, invitation.invited_by):
        turn.reply.messages.append(Outgoing(chat, text))


def _pick_menu(roles: list[str], pending: list[tuple[Invitation, Place]]) -> Menu:
    withdraw_label = label("withdraw_invitation")
    return menu(
        **{f"r_{role}": role_label(role) for role in roles},
        **{f"w{i.id}": f"{withdraw_label}: {role_label(i.role)} — {p.name}" for i, p in pending},
    )


async def _menu(turn: Turn) -> None:
    actor = await turn.actor()
    offered = await offered_places(turn.session, actor)
    pending = await open_invitations(turn.session, actor, turn.now)
    if not offered and not pending:
        turn.say("invite_nothing")
        return
    choices = _pick_menu(list(offered), pending)
    await conversation.move(turn, FLOW, "pick", roles=list(offered), pending=[i.id for i, _ in pending])
    turn.say("invite_menu", buttons=choices.buttons, inviting=bool(offered), choices=choices.lines,
             pending=[(role_label(i.role), p.name, turn.local(i.expires_at)) for i, p in pending])


async def _on_pick(turn: Turn, data: Data) -> None:
    ids = list(data.get("pending", []))
    rows = await turn.session.exec(
        select(Invitation, Place).join(Place, col(Place.id) == Invitation.place_id).where(col(Invitation.id).in_(ids))
    )
    found = {i.id: (i, p) for i, p in rows.all()}
    pending = [found[i] for i in ids if i in found]  # the numbers shown stay the numbers
    choices = _pick_menu(list(data.get("roles", [])), pending)
    picked = choices.pick(turn.incoming.answer)
    if picked is None:
        choices.ask_again(turn)
    elif picked.startswith("w"):
        await conversation.finish(turn)
        withdrawn = await withdraw(turn.session, await turn.actor(), int(picked[1:]), turn.now)
        turn.say("invite_withdrawn" if withdrawn else "invite_withdraw_gone")
    else:
        await _ask_place(turn, picked.removeprefix("r_"))


async def _ask_place(turn: Turn, role: str) -> None:
    places = (await offered_places(turn.session, await turn.actor())).get(role, [])
    if len(places) == 1:
        await _issue(turn, role, places[0])
        return
    if not places:  # the role went since the menu was shown
        await conversation.finish(turn)
        turn.say("invite_not_allowed")
        return
    choices = menu(**{f"p{p.id}": p.name for p in places})
    await conversation.move(turn, FLOW, "place", role=role, places=[p.id for p in places])
    turn.say("invite_pick_place", buttons=choices.buttons, role=role_label(role), choices=choices.lines)


async def _on_place(turn: Turn, data: Data) -> None:
    places = [p for p in [await turn.session.get(Place, i) for i in data.get("places", [])] if p]
    choices = menu(**{f"p{p.id}": p.name for p in places})
    picked = choices.pick(turn.incoming.answer)
    place = next((p for p in places if f"p{p.id}" == picked), None)
    if place is None:
        choices.ask_again(turn)
    else:
        await _issue(turn, str(data.get("role", "")), place)


async def _issue(turn: Turn, role: str, place: Place) -> None:
    await conversation.finish(turn)
    try:
        # the conversation's data is only what was offered: the core decides again
        issued = await create_invitation(turn.session, await turn.actor(), role, place, turn.now)
    except NotAllowed:
        turn.say("invite_not_allowed")
        return
    expires = turn.local(issued.invitation.expires_at)
    turn.say("invite_created", role=role_label(role), place=place.name, expires=expires)
    turn.reply.messages.append(Outgoing(turn.incoming.chat, card(issued, turn.settings.links.telegram(issued.payload), expires)))


FLOW = Flow("invitation", {"pick": _on_pick, "place": _on_place})
