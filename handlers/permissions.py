"""The permission core: every rule of who may do what, on which place, in one module.

A person's roles are loaded once per turn into an `Actor`; each rule is a plain function of the actor
and the place (or object) at stake, so a test can walk the whole matrix without a chat. No other module
compares role names. The rules, as a table, are in docs/ARCHITECTURE.md ("Permissions").

Places form a tree commune -> village. A role on a commune covers its villages; a role on a village
covers only that village.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from storage.models import Announcement, NoticeTarget, Person, Place, PlaceKind, Role, RoleName

OFFICIAL = frozenset({RoleName.COMMUNE_OFFICIAL})
HEAD = frozenset({RoleName.VILLAGE_HEAD})
BROADCASTERS = frozenset({RoleName.COMMUNE_OFFICIAL, RoleName.VILLAGE_HEAD})
STAFF = frozenset({RoleName.COMMUNE_OFFICIAL, RoleName.VILLAGE_HEAD, RoleName.TECH_TEAM})


@dataclass(frozen=True)
class Spot:
    """Where something is, as far as permissions care: the place and the commune it belongs to."""

    place_id: int
    commune_id: int
    is_commune: bool

    @classmethod
    def of(cls, place: Place) -> Spot:
        commune = place.kind == PlaceKind.COMMUNE
        assert place.id is not None
        return cls(place.id, place.id if commune else (place.parent_id or place.id), commune)


@dataclass(frozen=True)
class Grant:
    role: str
    spot: Spot


@dataclass(frozen=True)
class Actor:
    person_id: int
    grants: tuple[Grant, ...] = ()

    def holds(self, roles: frozenset[str], spot: Spot) -> bool:
        """One of `roles` on the place itself, or on the commune above it."""
        return any(
            g.role in roles and (g.spot.place_id == spot.place_id or (g.spot.is_commune and g.spot.place_id == spot.commune_id))
            for g in self.grants
        )

    def holds_any(self, roles: frozenset[str]) -> bool:
        return any(g.role in roles for g in self.grants)


async def actor_for(session: AsyncSession, person: Person) -> Actor:
    rows = await session.exec(
        select(Role.role, Place)
        .join(Place, col(Place.id) == Role.place_id)
        .where(Role.person_id == person.id)
        .order_by(col(Role.id))
    )
    assert person.id is not None
    return Actor(person.id, tuple(Grant(role, Spot.of(place)) for role, place in rows.all()))


@dataclass(frozen=True)
class NoticeRef:
    """What the rules need of an announcement: who wrote it and which communes it reaches."""

    author_id: int
    commune_ids: frozenset[int]
    spots: tuple[Spot, ...]  # the places it targets (empty: the author's own places)


# --- the rules ---------------------------------------------------------------------------------------


def may_broadcast_to(actor: Actor, place: Spot) -> bool:
    """Send a notice to the place's groups (and, for a commune, its villages')."""
    return actor.holds(BROADCASTERS, place)


def may_relay_in(actor: Actor, commune: Spot) -> bool:
    """`#thongbao` / `/chuyentiep` in a commune's group: relayed to every village group of the commune."""
    return commune.is_commune and actor.holds(OFFICIAL, commune)


def may_see_status(actor: Actor, notice: NoticeRef) -> bool:
    """/tinhtrang: the author, or staff of a place the notice targets."""
    return notice.author_id == actor.person_id or any(actor.holds(STAFF, spot) for spot in notice.spots)


def may_cancel(actor: Actor, notice: NoticeRef) -> bool:
    """/huythongbao: the author, or a commune official of a commune the notice reaches."""
    return notice.author_id == actor.person_id or any(
        actor.holds(OFFICIAL, Spot(commune, commune, True)) for commune in notice.commune_ids
    )


def may_link_group(actor: Actor, place: Spot, current: Spot | None) -> bool:
    """/ganthon: staff of the new place; a group already linked elsewhere moves only by someone with a
    role on its current place (or the commune above both)."""
    return actor.holds(STAFF, place) and (current is None or actor.holds(STAFF, current))


def may_unlink_group(actor: Actor, current: Spot) -> bool:
    return actor.holds(STAFF, current)


def may_open_survey(actor: Actor, village: Spot) -> bool:
    """Open, close or reopen a survey for a village."""
    return not village.is_commune and actor.holds(BROADCASTERS, village)


def may_follow_survey(actor: Actor, village: Spot) -> bool:
    """/tiendo, /baocao and reminders to the households that have not finished."""
    return actor.holds(STAFF, village)


def may_export(actor: Actor, village: Spot) -> bool:
    """/xuat: a file of households' answers."""
    return actor.holds(STAFF, village)


def may_make_poster(actor: Actor, place: Spot) -> bool:
    """/poster: the QR poster of a village (of every village, for a commune) for its nhà văn hóa."""
    return actor.holds(STAFF, place)


def may_reset_household_code(actor: Actor, village: Spot) -> bool:
    """Give a household a new join code (sent to its members, never shown to staff)."""
    return actor.holds(BROADCASTERS, village)


def may_answer_question(actor: Actor, place: Spot | None) -> bool:
    """/cauhoi, /traloi, /luuhuongdan, /xoahuongdan: staff of the question's place; a question from
    nowhere known (no household, not asked in a linked group) is for any staff. A handbook entry made
    from an answer belongs to its question's place."""
    return actor.holds(STAFF, place) if place is not None else actor.holds_any(STAFF)


# who is told of a question the handbook could not answer: the first of these with somebody in it
ANSWERER_TIERS: tuple[str, ...] = (RoleName.TECH_TEAM, RoleName.VILLAGE_HEAD, RoleName.COMMUNE_OFFICIAL)


@dataclass(frozen=True)
class Answerers:
    role: str | None  # the tier that is told; None: nobody holds any of them
    person_ids: tuple[int, ...] = ()


def choose_answerers(holders: Iterable[Actor], place: Spot | None) -> Answerers:
    """The tech team of the question's place (a village's or its commune's); without one, the village
    head; without one, the commune's officials. A question from nowhere known: the same tiers among
    everyone. Each one told also passes `may_answer_question`: every tier is staff, judged the same way."""
    holders = list(holders)
    for role in ANSWERER_TIERS:
        roles = frozenset({role})
        found = sorted(a.person_id for a in holders if (a.holds(roles, place) if place else a.holds_any(roles)))
        if found:
            return Answerers(role, tuple(found))
    return Answerers(None)


def role_fits(role: str, place: Spot) -> bool:
    """Commune officials serve a commune, village heads a village; the tech team either."""
    if role == RoleName.COMMUNE_OFFICIAL:
        return place.is_commune
    if role == RoleName.VILLAGE_HEAD:
        return not place.is_commune
    return role == RoleName.TECH_TEAM


def may_invite(actor: Actor, role: str, place: Spot) -> bool:
    """Hand a role on a place to someone: a commune official any role that fits their commune or its
    villages; a village head only tech-team members of their own village."""
    if not role_fits(role, place):
        return False
    if actor.holds(OFFICIAL, place):
        return True
    return role == RoleName.TECH_TEAM and not place.is_commune and actor.holds(HEAD, place)


def may_remove_role(actor: Actor, role: str, place: Spot, officials_left: int) -> bool:
    """/thuhoi: whoever may hand out a role on a place may take it back, their own included; a commune
    never loses its last official (`officials_left`: how many the commune keeps after the removal)."""
    if role == RoleName.COMMUNE_OFFICIAL and officials_left < 1:
        return False
    return may_invite(actor, role, place)


def may_use_console(actor: Actor) -> bool:
    """/web and the web console: staff somewhere (each page then asks the rule of what it shows)."""
    return actor.holds_any(STAFF)


def may_see_place(actor: Actor, place: Spot) -> bool:
    """A place's page in the web console: its groups, households, questions and notices."""
    return actor.holds(STAFF, place)


def may_read_audit(actor: Actor, commune: Spot) -> bool:
    """The audit log of a commune and its villages: its commune officials only."""
    return commune.is_commune and actor.holds(OFFICIAL, commune)


def may_import_survey(actor: Actor, opened_in: Iterable[Spot]) -> bool:
    """Add a survey from an XLSForm in the web console: a commune official. The catalog is shared by
    every commune, so a form replacing a survey already opened somewhere (`opened_in`: those villages)
    needs them all to be the official's."""
    return actor.holds_any(OFFICIAL) and all(actor.holds(OFFICIAL, spot) for spot in opened_in)


async def notice_ref(session: AsyncSession, notice: Announcement) -> NoticeRef:
    """The places a notice targets: its target places, else every place its author may broadcast to."""
    aimed = await aimed_at(session, notice)
    if aimed is not None:
        places = [p for p in [await session.get(Place, i) for i in aimed] if p is not None]
    else:
        author = await session.get(Person, notice.author_id)
        places = await broadcast_places(session, await actor_for(session, author)) if author else []
    spots = tuple(Spot.of(p) for p in places)
    return NoticeRef(notice.author_id, frozenset(s.commune_id for s in spots), spots)


async def aimed_at(session: AsyncSession, notice: Announcement) -> list[int] | None:
    """The ids of the places a notice is aimed at (a recurring notice's firing: its template's); None:
    every place its author manages."""
    source = notice.parent_id or notice.id
    if source is not None:
        rows = await session.exec(
            select(NoticeTarget.place_id).where(NoticeTarget.announcement_id == source).order_by(col(NoticeTarget.id))
        )
        several = list(rows.all())
        if several:
            return several
    return [notice.target_place_id] if notice.target_place_id is not None else None


# --- what the rules allow, as lists (menus, reports) --------------------------------------------------


async def places_where(session: AsyncSession, actor: Actor, roles: frozenset[str]) -> list[Place]:
    """Places one of `roles` covers: their communes with every village in them, and their villages;
    communes first, then by name."""
    place_ids = sorted({g.spot.place_id for g in actor.grants if g.role in roles})
    commune_ids = sorted({g.spot.place_id for g in actor.grants if g.role in roles and g.spot.is_commune})
    if not place_ids:
        return []
    rows = await session.exec(
        select(Place).where(col(Place.id).in_(place_ids) | col(Place.parent_id).in_(commune_ids))
    )
    return sorted(rows.all(), key=lambda p: (p.kind != PlaceKind.COMMUNE, p.name, p.id))


async def broadcast_places(session: AsyncSession, actor: Actor) -> list[Place]:
    """The places this person may send notices to (the target menu)."""
    return await places_where(session, actor, BROADCASTERS)


async def invite_places(session: AsyncSession, actor: Actor) -> list[Place]:
    """The places where this person may hand out (and take back) some role: the /moi and /thuhoi lists,
    to be narrowed per role by `may_invite`."""
    return await places_where(session, actor, BROADCASTERS)


async def officials_after_removal(session: AsyncSession, role: Role) -> int:
    """How many commune officials `role`'s place keeps once `role` is gone. The rows are locked
    (PostgreSQL), so two officials taking each other's role at once cannot leave the commune with none."""
    rows = await session.exec(
        select(Role.id).where(Role.place_id == role.place_id, Role.role == RoleName.COMMUNE_OFFICIAL).with_for_update()
    )
    return sum(1 for role_id in rows.all() if role_id != role.id)


async def villages_where(session: AsyncSession, actor: Actor, rule: str) -> list[Place]:
    """The villages a rule allows ("open" a survey or "reset_code": heads and officials; "follow",
    "export": staff), by name."""
    roles = BROADCASTERS if rule in ("open", "reset_code") else STAFF
    return [p for p in await places_where(session, actor, roles) if p.kind == PlaceKind.VILLAGE]


async def question_places(session: AsyncSession, actor: Actor) -> list[int]:
    """The places whose open questions this person answers."""
    return [p.id for p in await places_where(session, actor, STAFF) if p.id is not None]


async def question_answerers(session: AsyncSession, place: Place | None, asker_id: int | None) -> Answerers:
    """Who is told of a question from `place` (None: from nowhere known), the asker left out."""
    query = select(Role.person_id, Role.role, Place).join(Place, col(Place.id) == Role.place_id)
    if place is not None:
        spot = Spot.of(place)
        query = query.where(col(Role.place_id).in_(sorted({spot.place_id, spot.commune_id})))
    grants: dict[int, list[Grant]] = {}
    for person_id, role, held in (await session.exec(query.order_by(col(Role.id)))).all():
        if person_id != asker_id:
            grants.setdefault(person_id, []).append(Grant(role, Spot.of(held)))
    holders = [Actor(person_id, tuple(found)) for person_id, found in grants.items()]
    return choose_answerers(holders, Spot.of(place) if place is not None else None)


def summary(actor: Actor) -> dict[str, bool]:
    """What /trogiup offers this person."""
    return {
        "broadcaster": actor.holds_any(BROADCASTERS),
        "official": actor.holds_any(OFFICIAL),
        "staff": actor.holds_any(STAFF),
    }
