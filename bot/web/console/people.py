"""People: who holds which role where, invitations (the same as /moi: a link, a code and a QR code to
show on screen), withdrawing one, taking a role back (the same operation as /thuhoi, its holder told
in chat), and the village posters' PDF."""

from __future__ import annotations

import asyncio

from aiohttp import web
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.web.console.access import Forbidden, Visit, require, see_other, staff
from bot.web.console.home import place_in_path
from handlers.invitations import NotAllowed, card, create_invitation, offered_places, open_invitations, role_label, withdraw
from handlers.numbers import whole_number
from handlers.permissions import BROADCASTERS, Spot, may_make_poster
from handlers.posters import pages_for, poster_pdf
from handlers.roles import Held, Verdict, judge, removable_roles, remove_role, tell_holder
from storage.models import Invitation, Place, Role

ROUTES = web.RouteTableDef()


def _within(places: list[Place], scope: Place | None) -> set[int | None]:
    return {p.id for p in places if scope is None or scope.id in (p.id, p.parent_id)}


async def _people(visit: Visit, scope: Place | None) -> web.StreamResponse:
    session, actor = visit.session, visit.actor
    offered = await offered_places(session, actor)
    held = await removable_roles(session, actor)
    pending = await open_invitations(session, actor, visit.now)
    if scope is not None:
        shown = _within([h.place for h in held] + [p for ps in offered.values() for p in ps]
                        + [p for _, p in pending], scope)
        offered = {r: [p for p in ps if p.id in shown] for r, ps in offered.items()}
        offered = {r: ps for r, ps in offered.items() if ps}
        held = [h for h in held if h.place.id in shown]
        pending = [(i, p) for i, p in pending if p.id in shown]
        require(bool(offered or held))
    return visit.page(
        "people.html", scope=scope, held=held, pending=pending, done=visit.request.query.get("xong", ""),
        choices=[(f"{role}:{p.id}", f"{role_label(role)} — {p.name}") for role, ps in offered.items() for p in ps],
        role_label=role_label,
    )


@ROUTES.get("/nguoi")
@staff
async def everyone(visit: Visit) -> web.StreamResponse:
    require(visit.actor.holds_any(BROADCASTERS))  # whoever may hand out some role
    return await _people(visit, None)


@ROUTES.get("/noi/{code}/nguoi")
@staff
async def people_of(visit: Visit) -> web.StreamResponse:
    return await _people(visit, await place_in_path(visit))


@ROUTES.post("/moi")
@staff
async def invite(visit: Visit) -> web.StreamResponse:
    role, _, place_id = visit.field("vai_tro_noi").partition(":")
    number = whole_number(place_id)
    place = await visit.session.get(Place, number) if number is not None else None
    if place is None:
        return see_other("/nguoi?xong=chua-chon")
    try:
        issued = await create_invitation(visit.session, visit.actor, role, place, visit.now)
    except NotAllowed:
        raise Forbidden from None
    link = visit.console.settings.links.telegram(issued.payload)
    expires = visit.local(issued.invitation.expires_at)
    return visit.page("invitation.html", issued=issued, role=role_label(role), link=link, expires=expires,
                      card=card(issued, link, expires), qr=_qr_svg(link) if link else None)


def _qr_svg(url: str) -> str:
    import segno  # loaded with the first invitation, not at start-up

    return segno.make(url, error="m", micro=False).svg_inline(scale=5, border=4, dark="#000", light="#fff", omitsize=True)


@ROUTES.post("/loi-moi/{id}/rut")
@staff
async def withdraw_invitation(visit: Visit) -> web.StreamResponse:
    invitation = await _invitation(visit.session, visit.request.match_info["id"])
    if invitation is None or invitation.id is None or invitation.invited_by != visit.actor.person_id:
        raise Forbidden
    done = await withdraw(visit.session, visit.actor, invitation.id, visit.now)
    return see_other(f"/nguoi?xong={'rut' if done else 'het-han'}")


async def _invitation(session: AsyncSession, number: str) -> Invitation | None:
    found = whole_number(number)
    return await session.get(Invitation, found) if found is not None else None


@ROUTES.get("/vai-tro/{id}/thu-hoi")
@staff
async def confirm_removal(visit: Visit) -> web.StreamResponse:
    held = await _removable(visit)
    return visit.page("remove_confirm.html", held=held, role=role_label(held.role.role))


@ROUTES.post("/vai-tro/{id}/thu-hoi")
@staff
async def remove(visit: Visit) -> web.StreamResponse:
    held = await _removable(visit)
    assert held.role.id is not None  # a stored row
    verdict, removed = await remove_role(visit.session, visit.actor, held.role.id, visit.now)
    if verdict is Verdict.REMOVED and removed is not None:
        visit.relays.extend(await tell_holder(visit.session, removed, visit.visitor.person))
        return see_other("/nguoi?xong=thu-hoi")
    return see_other("/nguoi?xong=het")


async def _removable(visit: Visit) -> Held:
    """The role in the path, if the person may take it back (403 otherwise, and for the last official:
    the page says why)."""
    number = whole_number(visit.request.match_info["id"])
    role = await visit.session.get(Role, number) if number is not None else None
    place = await visit.session.get(Place, role.place_id) if role is not None else None
    if role is None or place is None:
        raise web.HTTPNotFound
    refused = await judge(visit.session, visit.actor, role, place)
    if refused is Verdict.LAST_OFFICIAL:
        raise Forbidden("last_official", 409, place=place.name)
    require(refused is None)
    found = [h for h in await removable_roles(visit.session, visit.actor) if h.role.id == role.id]
    require(bool(found))
    return found[0]


@ROUTES.get("/noi/{code}/ap-phich.pdf")
@staff
async def posters(visit: Visit) -> web.StreamResponse:
    place = await place_in_path(visit)
    require(may_make_poster(visit.actor, Spot.of(place)))
    links = visit.console.settings.links
    if not links.telegram_username:
        raise Forbidden("poster_username", 409)
    pages = await pages_for(visit.session, place, links)
    if not pages:
        raise Forbidden("poster_empty", 409)
    pdf = await asyncio.to_thread(poster_pdf, pages)
    return web.Response(body=pdf, content_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="poster-{place.code.lower()}.pdf"', "Cache-Control": "no-store"})

