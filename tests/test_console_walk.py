"""Every route of the web console, as every kind of person who must not use it on the first village
(THON-1, commune XA1): not logged in, a resident, the tech team, a head of another village, an
official of another commune. Each gets a 403 or is sent to log in, and nothing changes; what they may
use is listed too, so a route added without a line here fails the walk."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.app import App
from handlers import notices
from handlers.invitations import create_invitation
from handlers.permissions import actor_for
from storage.models import (
    Announcement,
    AnnouncementStatus,
    Campaign,
    Delivery,
    DeliveryStatus,
    ExportRecord,
    HandbookEntry,
    HandbookQuestion,
    Invitation,
    Person,
    Place,
    QuestionStatus,
    Role,
    SurveyForm,
    utcnow,
)
from tests.console_helpers import OTHER_HEAD, OTHER_OFFICIAL, base, client, csrf_of, handed_off_question, session_as
from tests.harness import RESIDENT, TECH, Harness

NOBODY, LOGIN, FORBIDDEN, OK, NOT_FOUND = 0, "login", 403, "ok", 404
PUBLIC = {("GET", "/dang-nhap"), ("GET", "/dang-nhap/{token}"), ("POST", "/dang-nhap/{token}")}
KINDS = ("nobody", "resident", "tech", "other_head", "other_official")

# route -> what each kind gets (in KINDS order); POST /dang-xuat is walked last (it ends the session)
EXPECTED: dict[tuple[str, str], tuple[object, ...]] = {
    ("GET", "/"): (LOGIN, LOGIN, OK, OK, OK),
    ("GET", "/noi/{code}"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("GET", "/noi/{code}/nguoi"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/noi/{code}/ap-phich.pdf"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("GET", "/nguoi"): (LOGIN, LOGIN, FORBIDDEN, OK, OK),
    ("POST", "/moi"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/loi-moi/{id}/rut"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/vai-tro/{id}/thu-hoi"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/vai-tro/{id}/thu-hoi"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/cau-hoi"): (LOGIN, LOGIN, OK, OK, OK),
    ("POST", "/cau-hoi/{id}/tra-loi"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("POST", "/cau-hoi/{id}/luu"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("GET", "/nhat-ky"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, OK),
    ("GET", "/khao-sat"): (LOGIN, LOGIN, OK, OK, OK),
    ("GET", "/noi/{code}/khao-sat"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("GET", "/khao-sat/bieu-do.png"): (LOGIN, LOGIN, OK, NOT_FOUND, NOT_FOUND),  # their villages have no survey
    ("GET", "/noi/{code}/khao-sat/bieu-do.png"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("POST", "/khao-sat/mo"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/khao-sat/xuat"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),
    ("POST", "/khao-sat/nhap"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, OK),  # a commune official; no file: nothing
    ("GET", "/thong-bao"): (LOGIN, LOGIN, OK, OK, OK),
    ("GET", "/thong-bao/moi"): (LOGIN, LOGIN, FORBIDDEN, OK, OK),
    ("POST", "/thong-bao/moi"): (LOGIN, LOGIN, FORBIDDEN, OK, OK),  # empty: the form again, nothing kept
    ("GET", "/thong-bao/{id}/sua"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),  # another's draft
    ("POST", "/thong-bao/{id}/sua"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/thong-bao/{id}/xem-truoc"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/thong-bao/{id}/hen-gio"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/thong-bao/{id}/gui"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/thong-bao/{id}/bo"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/thong-bao/{id}/tep"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("GET", "/thong-bao/{id}"): (LOGIN, LOGIN, OK, FORBIDDEN, FORBIDDEN),  # a notice scheduled for THON-1
    ("GET", "/thong-bao/{id}/huy"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/thong-bao/{id}/huy"): (LOGIN, LOGIN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("POST", "/dang-xuat"): (LOGIN, LOGIN, OK, OK, OK),
}
DRAFT_ROUTES = ("/sua", "/xem-truoc", "/hen-gio", "/gui", "/bo", "/tep")



def console_routes(app: App) -> set[tuple[str, str]]:
    found = set()
    for route in app._web.app.router.routes():  # type: ignore[union-attr]
        path = route.resource.canonical if route.resource is not None else ""
        if route.method in ("GET", "POST") and not path.startswith(("/healthz", "/metrics", "/tep", "/telegram", "/zalo")):
            found.add((route.method, path))
    return found


async def _objects(h: Harness) -> dict[str, str]:
    """THON-1's things: an open question, an answered one, an open invitation, the tech team's role, an
    open survey."""
    assert h.app is not None
    question = await handed_off_question(h, RESIDENT, "THON-1", "wifi nha van hoa mat khau la gi")
    answered = await handed_off_question(h, RESIDENT, "THON-1", "cach doi mat khau zalo")
    async with h.app.sessions() as session:
        row = await session.get(HandbookQuestion, answered)
        row.status, row.answer = QuestionStatus.ANSWERED, "Vào Cài đặt, Tài khoản và bảo mật."
        session.add(row)
        thon1 = (await session.exec(select(Place).where(Place.code == "THON-1"))).one()
        official = (await session.exec(select(Person).join(Role).where(Role.role == "commune_official"))).first()
        issued = await create_invitation(session, await actor_for(session, official), "tech_team", thon1, utcnow())
        role = (await session.exec(select(Role).where(Role.role == "tech_team", Role.place_id == thon1.id))).one()
        session.add(Campaign(survey_code="ho-gia-dinh", place_id=thon1.id, opened_by=official.id))
        draft, scheduled = await _notices(h, session, official, thon1)
        await session.commit()
        return {"code": "THON-1", "question": str(question), "answered": str(answered),
                "invitation": str(issued.invitation.id), "role": str(role.id), "thon1": str(thon1.id),
                "draft": str(draft), "scheduled": str(scheduled)}


async def _notices(h: Harness, session: AsyncSession, official: Person, thon1: Place) -> tuple[int, int]:
    """The official's draft for THON-1, and a notice to THON-1 scheduled for tomorrow."""
    actor = await actor_for(session, official)
    numbers = []
    for text in ("Bản nháp họp thôn", "Hẹn gửi ngày mai"):
        notice = await notices.compose(session, actor, text, None)
        assert isinstance(notice, Announcement)
        assert notice.id is not None
        assert await notices.set_targets(session, actor, notice, [thon1.id or 0])
        numbers.append(notice.id)
    sending = await notices.send(session, actor, official, notice, utcnow() + timedelta(days=1), h.settings.handler)
    assert sending.queued
    return numbers[0], numbers[1]


def _path(pattern: str, things: dict[str, str]) -> str:
    path = pattern.replace("{code}", things["code"])
    if pattern.startswith("/cau-hoi/{id}/luu"):
        return path.replace("{id}", things["answered"])
    if pattern.startswith("/thong-bao/{id}"):
        return path.replace("{id}", things["draft" if pattern.endswith(DRAFT_ROUTES) else "scheduled"])
    for prefix, key in (("/cau-hoi", "question"), ("/loi-moi", "invitation"), ("/vai-tro", "role")):
        if pattern.startswith(prefix):
            path = path.replace("{id}", things[key])
    return path


def _form(pattern: str, things: dict[str, str]) -> dict[str, str]:
    """What a real form would send; an allowed answer or title is left empty, so the walk changes
    nothing even where it is let through."""
    if pattern == "/moi":
        return {"vai_tro_noi": f"tech_team:{things['thon1']}"}
    if pattern == "/khao-sat/mo":  # already open there: let through, it opens nothing
        return {"khao_sat": "ho-gia-dinh", "thon": things["thon1"], "so_ho": ""}
    if pattern == "/khao-sat/xuat":  # a survey never opened: let through, no file and no record
        return {"noi": things["code"], "khao_sat": "khong-co", "dinh_dang": "xlsx"}
    return {"tra_loi": "", "tieu_de": ""}


async def _status(browser: aiohttp.ClientSession, app: App, method: str, path: str, form: dict[str, str]) -> object:
    async with browser.request(method, base(app) + path, data=form if method == "POST" else None,
                               allow_redirects=False) as answer:
        if answer.status == 303 and answer.headers.get("Location") == "/dang-nhap":
            return LOGIN
        if answer.status in (403, 404):
            return answer.status
        assert answer.status in (200, 303, 409, 422), (method, path, answer.status, await answer.text())
        return OK


async def test_every_route_asks_the_permission_core(console: Harness) -> None:
    app = console.app
    assert app is not None
    assert console_routes(app) == set(EXPECTED) | PUBLIC, "a console route has no line in the walk"
    things = await _objects(console)
    users = {"resident": RESIDENT, "tech": TECH, "other_head": OTHER_HEAD, "other_official": OTHER_OFFICIAL}
    ordered = sorted(EXPECTED, key=lambda route: route == ("POST", "/dang-xuat"))
    for n, kind in enumerate(KINDS):
        async with client() as browser:
            csrf = ""
            if kind in users:
                await session_as(console, users[kind], browser)
                if kind != "resident":
                    csrf = await csrf_of(browser, base(app) + "/")
            seen = {}
            for method, pattern in ordered:
                form = _form(pattern, things) | {"csrf": csrf}
                seen[(method, pattern)] = await _status(browser, app, method, _path(pattern, things), form)
            wrong = {route: got for route, got in seen.items() if got != EXPECTED[route][n]}
            assert not wrong, f"{kind}: {wrong}"
    async with app.sessions() as session:  # nothing changed on THON-1
        assert (await session.get(HandbookQuestion, int(things["question"]))).status == QuestionStatus.OPEN
        assert (await session.get(Invitation, int(things["invitation"]))).withdrawn_at is None
        assert await session.get(Role, int(things["role"])) is not None
        assert (await session.exec(select(HandbookEntry))).first() is None
        assert len((await session.exec(select(Invitation))).all()) == 1
        assert len((await session.exec(select(Campaign))).all()) == 1
        assert (await session.exec(select(Announcement).where(col(Announcement.campaign_id).is_not(None)))).first() is None
        assert len((await session.exec(select(Announcement))).all()) == 2  # no notice was written
        assert (await session.get(Announcement, int(things["draft"]))).status == AnnouncementStatus.DRAFT
        queued = await session.exec(select(Delivery.status).where(Delivery.announcement_id == int(things["scheduled"])))
        assert queued.all() == [DeliveryStatus.PENDING]
        assert (await session.exec(select(ExportRecord))).first() is None
        assert (await session.exec(select(SurveyForm))).first() is None
