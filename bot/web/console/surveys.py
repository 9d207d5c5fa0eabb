"""Surveys: open one for a village (as /khaosat does), progress per village (as /tiendo), the scorecard of
the villages side by side with its chart (as /baocao), the answers as a file (as /xuat, recorded) and a
new survey from an XLSForm upload with the files it reads (as `langso survey import --media`). All through
handlers/surveys' operations; each route asks the permission core, directly or through the operation's
refusal."""

from __future__ import annotations

from pathlib import PurePosixPath

from aiohttp import web

from bot.web.console.access import Forbidden, Visit, require, see_other, staff, uploads
from bot.web.console.home import place_in_path
from handlers.numbers import whole_number
from handlers.permissions import STAFF, may_import_survey, may_use_console, places_where, villages_where
from handlers.surveys.campaigns import OpenVerdict, expected_count, open_campaign, progress, staff_villages
from handlers.surveys.export import FORMATS
from handlers.surveys.forms import FormError
from handlers.surveys.importing import ImportVerdict, import_form
from handlers.surveys.reports import chart, export_file, surveys_opened_in, village_scores
from storage.models import Place, PlaceKind

ROUTES = web.RouteTableDef()
FORM_MAX = 512 * 1024  # an XLSForm of a few hundred questions is well under this
FILE_MAX = 2 * 1024 * 1024  # a file the form reads: a list of villages or households, a lookup table
FILES_MAX = 20
UPLOAD_MAX = FORM_MAX + FILES_MAX * FILE_MAX + 64 * 1024  # the whole request: every file and the form around them
CONTENT_TYPES = {  # type, charset
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", None),
    "csv": ("text/csv", "utf-8"),
}


async def _scope(visit: Visit) -> Place | None:
    """The place in the path (403 when it is not theirs), or None for everything the person serves."""
    return await place_in_path(visit) if "code" in visit.request.match_info else None


async def _followed(visit: Visit, scope: Place | None) -> list[Place]:
    """The villages whose surveys the person follows, within the scope."""
    require(may_use_console(visit.actor))
    villages = await staff_villages(visit.session, visit.actor, "follow", scope.code if scope else "")
    require(villages is not None)
    return villages or []


async def _page(visit: Visit, scope: Place | None, status: int = 200, **shown: object) -> web.StreamResponse:
    session, actor, surveys = visit.session, visit.actor, visit.console.surveys
    villages = await _followed(visit, scope)
    await surveys.refresh(session)
    within = {v.id for v in villages}
    today = visit.local(visit.now).date().isoformat()
    scores = await village_scores(session, surveys, villages, visit.console.settings.targets, today)
    openable = [v for v in await villages_where(session, actor, "open") if v.id in within]
    exportable = [p for p in await places_where(session, actor, STAFF)
                  if p.id in within or (p.kind == PlaceKind.COMMUNE and (scope is None or scope.id == p.id))]
    return visit.page(
        "surveys.html", status=status, scope=scope, surveys=surveys.all(), title=surveys.title,
        progress=await progress(session, villages), scores=scores, openable=openable, exportable=exportable,
        exported=[(code, surveys.title(code)) for code in await surveys_opened_in(session, villages)],
        formats=FORMATS, may_import=may_import_survey(actor, ()), form_max_kb=FORM_MAX // 1024,
        file_max_mb=FILE_MAX // 2**20, files_max=FILES_MAX,
        done=visit.request.query.get("xong", ""), count=visit.request.query.get("so", ""), **shown,
    )


@ROUTES.get("/khao-sat")
@ROUTES.get("/noi/{code}/khao-sat")
@staff
async def surveys_page(visit: Visit) -> web.StreamResponse:
    return await _page(visit, await _scope(visit))


@ROUTES.get("/khao-sat/bieu-do.png")
@ROUTES.get("/noi/{code}/khao-sat/bieu-do.png")
@staff
async def scorecard_chart(visit: Visit) -> web.StreamResponse:
    villages = await _followed(visit, await _scope(visit))
    await visit.console.surveys.refresh(visit.session)
    today = visit.local(visit.now).date().isoformat()
    found = await village_scores(visit.session, visit.console.surveys, villages, visit.console.settings.targets, today)
    if found is None:
        raise web.HTTPNotFound
    return web.Response(body=await chart(*found), content_type="image/png", headers={"Cache-Control": "no-store"})


@ROUTES.post("/khao-sat/mo")
@staff
async def open_survey(visit: Visit) -> web.StreamResponse:
    await visit.console.surveys.refresh(visit.session)
    survey = visit.console.surveys.get(visit.field("khao_sat"))
    number = whole_number(visit.field("thon"))
    village = await visit.session.get(Place, number) if number is not None else None
    if village is None or village.kind != PlaceKind.VILLAGE:
        return see_other("/khao-sat?xong=chua-chon")
    back = f"/noi/{village.code}/khao-sat"
    typed = visit.field("so_ho")
    expected = expected_count(typed) if typed else None
    if survey is None or (typed and expected is None):
        return see_other(f"{back}?xong={'so-ho' if survey else 'chua-chon'}")
    opened = await open_campaign(visit.session, visit.actor, survey, village, expected, visit.now,
                                 visit.console.settings)
    if opened.verdict is OpenVerdict.NOT_ALLOWED:
        raise Forbidden
    if opened.verdict is OpenVerdict.ALREADY_OPEN:
        return see_other(f"{back}?xong=dang-mo")
    visit.outbox_changed = bool(opened.groups)
    return see_other(f"{back}?xong=da-mo&so={opened.groups}")


@ROUTES.post("/khao-sat/xuat")
@staff
async def export(visit: Visit) -> web.StreamResponse:
    code = visit.field("noi")
    villages = await staff_villages(visit.session, visit.actor, "export", code)
    require(bool(villages))
    assert villages is not None
    fmt = visit.field("dinh_dang") if visit.field("dinh_dang") in FORMATS else FORMATS[0]
    await visit.console.surveys.refresh(visit.session)
    done = await export_file(visit.session, visit.console.surveys, villages, code, fmt, via="web",
                             person_id=visit.actor.person_id, now=visit.now, tz=visit.console.settings.timezone,
                             public_url=visit.console.settings.links.console_url, survey_code=visit.field("khao_sat"))
    if done is None:
        return see_other("/khao-sat?xong=chua-co")
    content_type, charset = CONTENT_TYPES[fmt]
    return web.Response(body=done.content, content_type=content_type, charset=charset, headers={
        "Content-Disposition": f'attachment; filename="{done.name}"', "Cache-Control": "no-store"})


class _Refused(Exception):
    """An upload refused before the form is read: `problem` names the line of surveys.html that says why."""

    def __init__(self, problem: str, name: str = "") -> None:
        super().__init__(problem, name)
        self.problem, self.name = problem, name


def _bare_name(filename: str) -> str:
    """The file's own name: some browsers send the whole path, and a name is a key in the form's files."""
    name = PurePosixPath(filename.replace("\\", "/")).name.strip()
    if name in ("", ".", "..") or len(name) > 200 or not name.isprintable():
        raise _Refused("bad_name", name[:200])
    return name


def _attached(visit: Visit) -> dict[str, bytes]:
    """The files the form reads (select_one_from_file's lists, pulldata's and instance()'s tables), by
    name, as `--media` takes a folder's."""
    uploaded = [f for f in visit.values("tep_kem") if isinstance(f, web.FileField) and f.filename]
    if len(uploaded) > FILES_MAX:
        raise _Refused("too_many_files")
    media: dict[str, bytes] = {}
    for upload in uploaded:
        name = _bare_name(upload.filename)
        if name in media:
            raise _Refused("same_name", name)
        media[name] = upload.file.read(FILE_MAX + 1)
        if len(media[name]) > FILE_MAX:
            raise _Refused("file_too_large", name)
    return media


@ROUTES.post("/khao-sat/nhap")
@staff
@uploads(UPLOAD_MAX)
async def import_survey(visit: Visit) -> web.StreamResponse:
    require(may_import_survey(visit.actor, ()))  # a commune official (a survey in use: asked again below)
    upload = visit.form.get("tep")
    if not isinstance(upload, web.FileField) or not upload.filename:
        return await _page(visit, None, 422, import_problem="no_file")
    content = upload.file.read(FORM_MAX + 1)
    if len(content) > FORM_MAX:
        return await _page(visit, None, 422, import_problem="too_large")
    try:
        name, media = _bare_name(upload.filename), _attached(visit)
        imported = await import_form(visit.session, visit.actor, visit.console.surveys, name, content, visit.now,
                                     media)
    except _Refused as refused:
        return await _page(visit, None, 422, import_problem=refused.problem, file_name=refused.name)
    except FormError as problem:
        return await _page(visit, None, 422, import_problem="form", form_error=problem.text(web=True))
    if imported.verdict is ImportVerdict.NOT_ALLOWED:
        raise Forbidden("survey_in_use")
    if imported.verdict is ImportVerdict.SHIPPED:
        return await _page(visit, None, 422, import_problem="shipped", code=imported.survey.code)
    return see_other(f"/khao-sat?xong={'da-thay' if imported.replaced else 'da-nhap'}#nhap")
