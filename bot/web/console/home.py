"""The home page (every place the person serves, at a glance; a village head sees only their
villages) and one place's page (its figures, groups and people)."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, select

from bot.web.console.access import Visit, require, staff
from bot.web.console.glance import glance
from handlers.people import place_by_code, villages_of
from handlers.permissions import Spot, may_see_place, may_use_console
from storage.models import ChatGroup, Person, Place, PlaceKind, Role

ROUTES = web.RouteTableDef()


@ROUTES.get("/")
@staff
async def home(visit: Visit) -> web.StreamResponse:
    require(may_use_console(visit.actor))
    places = await visit.staff_places()
    return visit.page("home.html", glances=await glance(visit.session, places))


async def place_in_path(visit: Visit) -> Place:
    """The place the path names, if the person serves it (404: no such place; 403: not theirs)."""
    place = await place_by_code(visit.session, visit.request.match_info["code"])
    if place is None:
        raise web.HTTPNotFound
    require(may_see_place(visit.actor, Spot.of(place)))
    return place


@ROUTES.get("/noi/{code}")
@staff
async def place_page(visit: Visit) -> web.StreamResponse:
    place = await place_in_path(visit)
    places = [place] + (await villages_of(visit.session, place) if place.kind == PlaceKind.COMMUNE else [])
    by_id = {p.id: p for p in places}
    groups = (await visit.session.exec(
        select(ChatGroup).where(col(ChatGroup.place_id).in_(list(by_id))).order_by(col(ChatGroup.title), col(ChatGroup.id))
    )).all()
    holders = (await visit.session.exec(
        select(Role, Person).join(Person, col(Person.id) == Role.person_id)
        .where(col(Role.place_id).in_(list(by_id))).order_by(col(Role.place_id), col(Role.role), col(Person.display_name))
    )).all()
    return visit.page(
        "place.html", place=place, glances=await glance(visit.session, places),
        groups=[(g, by_id[g.place_id]) for g in groups], holders=[(r, p, by_id[r.place_id]) for r, p in holders],
    )
