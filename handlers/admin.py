"""Administration of places, roles and groups (the `langso admin` commands), callable without a chat."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from handlers import communes
from handlers.people import person_for, place_by_code, villages_of
from handlers.permissions import Spot, role_fits
from handlers.surveys.catalog import Catalog, keep
from handlers.surveys.definition import Survey
from handlers.surveys.export import ExportOptions
from handlers.surveys.forms import load_survey
from handlers.surveys.reports import Exported, export, record_export
from messages import label, render
from storage.models import ChatGroup, Place, PlaceKind, Role, RoleName, utcnow

T = TypeVar("T")


class AdminError(Exception):
    """A refused admin command; str() is the Vietnamese explanation for the operator."""

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(render(template, **values))


async def add_place(session: AsyncSession, kind: str, code: str, name: str, parent_code: str | None) -> Place:
    code = code.strip().upper()
    if kind not in (PlaceKind.COMMUNE, PlaceKind.VILLAGE):
        raise AdminError("admin_bad_kind", kind=kind)
    if not code or not name.strip():
        raise AdminError("admin_place_needs_code_name")
    if await place_by_code(session, code) is not None:
        raise AdminError("admin_place_exists", code=code)
    parent = None
    if kind == PlaceKind.VILLAGE:
        parent = await place_by_code(session, parent_code or "")
        if parent is None or parent.kind != PlaceKind.COMMUNE:
            raise AdminError("admin_village_needs_commune", parent=parent_code or "")
    elif parent_code:
        raise AdminError("admin_commune_no_parent")
    place = Place(kind=kind, code=code, name=name.strip(), parent_id=parent.id if parent else None)
    session.add(place)
    await session.flush()
    return place


async def add_official_commune(
    session: AsyncSession, kind: str, official: str, province: str | None, code: str | None, parent_code: str | None
) -> tuple[Place, communes.Official]:
    """`place add --official NAME [--province NAME]`: the name and code come from the official list;
    nothing is added unless exactly one unit matches."""
    if kind != PlaceKind.COMMUNE:
        raise AdminError("communes_official_is_commune")
    unit = official_unit(official, province)
    place = await add_place(session, kind, code or unit.place_code, unit.name, parent_code)
    return place, unit


def official_unit(name: str, province: str | None) -> communes.Official:
    lookup = _lookup(communes.find, name, province)
    if len(lookup.found) > 1:
        raise AdminError("communes_ambiguous", name=name, matches=lookup.found)
    if not lookup.found:
        raise AdminError("communes_none", name=name, province=lookup.province, closest=lookup.closest)
    return lookup.found[0]


def search_officials(text: str, province: str | None) -> list[communes.Official]:
    hits = _lookup(communes.search, text, province)
    if not hits:
        raise AdminError("communes_search_none", text=text, province=province)
    return [unit for unit, _ in hits]


def _lookup(find: Callable[[str, str | None], T], text: str, province: str | None) -> T:
    try:
        return find(text, province)
    except communes.UnknownProvince as exc:
        raise AdminError("communes_unknown_province", province=province, closest=exc.closest) from None


async def list_places(session: AsyncSession) -> list[tuple[Place, Place | None]]:
    places = list((await session.exec(select(Place).order_by(Place.code))).all())
    by_id = {p.id: p for p in places}
    return [(p, by_id.get(p.parent_id)) for p in places]


async def grant_role(session: AsyncSession, platform: str, user_id: str, role: str, place_code: str) -> Place:
    if role not in tuple(RoleName):
        raise AdminError("admin_bad_role", role=role)
    place = await place_by_code(session, place_code)
    if place is None:
        raise AdminError("admin_unknown_place", code=place_code)
    if not role_fits(role, Spot.of(place)):
        raise AdminError("admin_role_wrong_place", code=place.code, role=label(f"role_{role}"))
    person = await person_for(session, platform, user_id)
    held = await session.exec(
        select(Role).where(Role.person_id == person.id, Role.place_id == place.id, Role.role == role)
    )
    if held.first() is None:
        session.add(Role(person_id=person.id, place_id=place.id, role=role))
    return place


async def list_groups(session: AsyncSession) -> list[tuple[ChatGroup, Place | None]]:
    rows = await session.exec(
        select(ChatGroup, Place).join(Place, isouter=True).order_by(col(ChatGroup.platform), col(ChatGroup.id))
    )
    return list(rows.all())


async def import_survey(
    session: AsyncSession, filename: str, content: bytes, media: Mapping[str, bytes] | None = None
) -> Survey:
    """`langso survey import [--media DIR]`: the file is checked whole (FormError names the sheet, row
    and column of the first problem), then kept in the database with the files it names, replacing an
    earlier import of the same code."""
    survey = load_survey(filename, content, media)
    await keep(session, survey, filename, content, utcnow(), media)
    return survey


async def export_answers(
    session: AsyncSession, catalog: Catalog, survey_code: str, place_code: str, fmt: str, tz: ZoneInfo,
    options: ExportOptions, *, public_url: str,
) -> Exported:
    """`langso export`: a village's (or a whole commune's) answers, recorded like a /xuat."""
    await catalog.refresh(session)
    survey = catalog.get(survey_code)
    if survey is None:
        raise AdminError("admin_unknown_survey", code=survey_code, known=[s.code for s in catalog.all()])
    place = await place_by_code(session, place_code)
    if place is None:
        raise AdminError("admin_unknown_place", code=place_code)
    villages = await villages_of(session, place) if place.kind == PlaceKind.COMMUNE else [place]
    now = utcnow()
    exported = await export(session, survey, villages, fmt, tz, options, public_url=public_url, now=now)
    await record_export(session, exported, survey=survey, scope=place, fmt=fmt, via="cli", person_id=None, at=now)
    return exported
