"""The audit log: who did what, when, on which place — invitations, roles, exports, deletions,
cancelled notices, logins. Commune officials only, and only their communes' (and villages') events."""

from __future__ import annotations

from aiohttp import web
from sqlmodel import col, or_, select

from bot.web.console.access import Visit, require, staff
from handlers.permissions import OFFICIAL, Spot, may_read_audit, places_where
from storage.models import AuditEvent, Person, Place, Role

ROUTES = web.RouteTableDef()
SHOWN = 200


@ROUTES.get("/nhat-ky")
@staff
async def audit_log(visit: Visit) -> web.StreamResponse:
    places = await places_where(visit.session, visit.actor, OFFICIAL)
    communes = [p for p in places if may_read_audit(visit.actor, Spot.of(p))]
    require(bool(communes))
    ids = [p.id for p in places]
    # events of their places, and what their people did where no place is recorded (logins, joins)
    their_people = select(Role.person_id).where(col(Role.place_id).in_(ids))
    rows = (await visit.session.exec(
        select(AuditEvent, Person.display_name, Place.name)
        .outerjoin(Person, col(Person.id) == AuditEvent.actor_id)
        .outerjoin(Place, col(Place.id) == AuditEvent.place_id)
        .where(or_(col(AuditEvent.place_id).in_(ids),
                   col(AuditEvent.place_id).is_(None) & col(AuditEvent.actor_id).in_(their_people)))
        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
        .limit(SHOWN)
    )).all()
    return visit.page("audit.html", events=rows, shown=SHOWN)
