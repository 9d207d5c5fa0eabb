"""The web console's surveys page over plain HTTP: opening a survey for a village (its groups get the
invitation, as with /khaosat), progress, the scorecard and its chart, an export that is recorded and
holds the answers, and an XLSForm upload whose errors name the sheet, row and column, with the files the
form reads (a missing one named, each file's size and their number limited)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import aiohttp
from openpyxl import load_workbook
from sqlmodel import select

from handlers.surveys.definition import Option
from handlers.surveys.form_files import unpack
from storage.models import AuditEvent, Campaign, ExportRecord, Place, SurveyForm
from tests.console_helpers import OTHER_OFFICIAL, base, client, csrf_of, log_in
from tests.harness import HEAD, OFFICIAL, RESIDENT, TECH, VILLAGE_GROUPS, Harness
from tests.survey_answers import ANSWERS
from tests.test_surveys import MARKET, MARKET_CHOICES, NEIGHBOUR, answer_all, register
from tests.xlsforms import xlsform

SURVEY = "ho-gia-dinh"


async def _village_id(h: Harness, code: str) -> int:
    assert h.app is not None
    async with h.app.sessions() as session:
        place = (await session.exec(select(Place).where(Place.code == code))).one()
        assert place.id is not None
        return place.id


async def _post(browser: aiohttp.ClientSession, h: Harness, path: str, data: object) -> aiohttp.ClientResponse:
    assert h.app is not None
    return await browser.post(base(h.app) + path, data=data, allow_redirects=False)


async def _open(h: Harness, browser: aiohttp.ClientSession, village: str, households: str = "40") -> str:
    """The surveys page's "Mở khảo sát" form; where the browser is sent next."""
    assert h.app is not None
    csrf = await csrf_of(browser, base(h.app) + "/khao-sat")
    form = {"csrf": csrf, "khao_sat": SURVEY, "thon": str(await _village_id(h, village)), "so_ho": households}
    async with await _post(browser, h, "/khao-sat/mo", form) as answer:
        assert answer.status == 303, await answer.text()
        return answer.headers["Location"]


async def _campaigns(h: Harness) -> list[Campaign]:
    assert h.app is not None
    async with h.app.sessions() as session:
        return list((await session.exec(select(Campaign).order_by(Campaign.id))).all())


async def test_a_head_opens_a_survey_and_the_village_groups_get_the_invitation(console: Harness) -> None:
    app = console.app
    assert app is not None
    async with client() as browser:
        await log_in(console, browser, HEAD)
        assert await _open(console, browser, "THON-1", "lots") == "/noi/THON-1/khao-sat?xong=so-ho"
        assert await _campaigns(console) == []  # a wrong number of households opens nothing
        assert await _open(console, browser, "THON-1") == "/noi/THON-1/khao-sat?xong=da-mo&so=1"
        await console.wait_groups([VILLAGE_GROUPS["THON-1"]])
        [campaign] = await _campaigns(console)
        [invitation] = console.fake.messages_to(VILLAGE_GROUPS["THON-1"])
        assert f"start=ks{campaign.id}" in (invitation.text or "")
        assert "/khaosat THON-1" in (invitation.text or "")
        assert not console.fake.messages_to(VILLAGE_GROUPS["THON-2"])
        assert campaign.expected_households == 40
        assert await _open(console, browser, "THON-1") == "/noi/THON-1/khao-sat?xong=dang-mo"
        async with browser.get(base(app) + "/noi/THON-1/khao-sat?xong=da-mo&so=1") as page:
            text = await page.text()
        assert "Lời mời đang được gửi vào 1 nhóm" in text
        assert "0 hộ đã gửi" in text
        assert "thôn có khoảng 40 hộ" in text
        [progress] = await console.send(HEAD, "/tiendo")  # the chat sees the same campaign
        assert "Thôn 1" in (progress.text or "")
    assert len(console.fake.messages_to(VILLAGE_GROUPS["THON-1"])) == 1  # opened once


async def test_the_tech_team_may_not_open_a_survey(console: Harness) -> None:
    async with client() as browser:
        await log_in(console, browser, TECH)
        assert console.app is not None
        csrf = await csrf_of(browser, base(console.app) + "/khao-sat")
        form = {"csrf": csrf, "khao_sat": SURVEY, "thon": str(await _village_id(console, "THON-1")), "so_ho": ""}
        async with await _post(browser, console, "/khao-sat/mo", form) as answer:
            assert answer.status == 403
    assert await _campaigns(console) == []


async def _submitted(h: Harness, campaign: Campaign, user: int, head: str) -> None:
    await register(h, user, campaign, head=head)
    await answer_all(h, user, ANSWERS)
    await h.send(user, "1")


async def test_progress_scorecard_chart_and_a_recorded_export_that_holds_the_answers(console: Harness) -> None:
    app = console.app
    assert app is not None
    async with client() as browser:
        await log_in(console, browser, OFFICIAL)
        await _open(console, browser, "THON-1")
        await _open(console, browser, "THON-2", "")
        [campaign, _second] = await _campaigns(console)
        await _submitted(console, campaign, NEIGHBOUR, "Hà Thị Mai")
        await register(console, RESIDENT, campaign, head="Lò Văn Pọm")
        await console.send(RESIDENT, ANSWERS[0])  # one answer of many: in progress
        async with browser.get(base(app) + "/khao-sat") as page:
            text = await page.text()
        row = re.search(r'id="tien-do-THON-1">(.*?)</li>', text, re.DOTALL)
        assert row
        assert "1 hộ đã gửi" in row.group(1)
        assert "1 hộ đang trả lời dở" in row.group(1)
        # the scorecard side by side: Thôn 1's smartphones 3 of 4 adults (75%, target 80%), Thôn 2 none yet
        assert "Thôn 1" in text
        assert "Thôn 2" in text
        assert "75% chưa đạt" in text
        async with browser.get(base(app) + "/khao-sat/bieu-do.png") as chart:
            assert chart.status == 200
            assert chart.content_type == "image/png"
            assert (await chart.read()).startswith(b"\x89PNG")
        csrf = await csrf_of(browser, base(app) + "/khao-sat")
        async with await _post(browser, console, "/khao-sat/xuat",
                               {"csrf": csrf, "khao_sat": SURVEY, "noi": "XA1", "dinh_dang": "xlsx"}) as answer:
            assert answer.status == 200
            assert f'filename="{SURVEY}-xa1-' in answer.headers["Content-Disposition"]
            book = load_workbook(io.BytesIO(await answer.read()))
        rows = list(book.active.iter_rows(values_only=True))
        exported = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
        mai = next(r for r in exported if r["Chủ hộ"] == "Hà Thị Mai")
        assert mai["Thôn"] == "Thôn 1"
        assert mai["Nhà mình có mấy người?"] == 5
        assert mai["Trạng thái"] == "Đã gửi"
        async with await _post(browser, console, "/khao-sat/xuat",
                               {"csrf": csrf, "khao_sat": SURVEY, "noi": "THON-1", "dinh_dang": "csv"}) as answer:
            table = list(csv.reader(io.StringIO((await answer.read()).decode("utf-8-sig"))))
        assert len(table) == 3
        assert any("Hà Thị Mai" in line for line in table)
    async with app.sessions() as session:
        records = (await session.exec(select(ExportRecord).order_by(ExportRecord.id))).all()
        events = (await session.exec(select(AuditEvent).where(AuditEvent.action == "export"))).all()
    thon1 = await _village_id(console, "THON-1")
    assert [(r.via, r.format, r.households, r.place_ids) for r in records] == [
        ("web", "xlsx", 2, [thon1]), ("web", "csv", 2, [thon1])]
    assert len(events) == 2


async def test_an_export_needs_the_place_to_be_theirs(console: Harness) -> None:
    async with client() as browser:
        await log_in(console, browser, OFFICIAL)
        await _open(console, browser, "THON-1")
    async with client() as browser:
        await log_in(console, browser, OTHER_OFFICIAL)
        assert console.app is not None
        csrf = await csrf_of(browser, base(console.app) + "/khao-sat")
        async with await _post(browser, console, "/khao-sat/xuat",
                               {"csrf": csrf, "khao_sat": SURVEY, "noi": "THON-1", "dinh_dang": "xlsx"}) as answer:
            assert answer.status == 403
    assert console.app is not None
    async with console.app.sessions() as session:
        assert (await session.exec(select(ExportRecord))).first() is None


def _upload(csrf: str, name: str, content: bytes, files: dict[str, bytes] | None = None) -> aiohttp.FormData:
    """The upload form as a browser sends it: file names as typed (not %-quoted), `files` under the
    `multiple` input "tep_kem"."""
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("csrf", csrf)
    form.add_field("tep", content, filename=name, content_type="application/octet-stream")
    for file_name, file_content in (files or {}).items():
        form.add_field("tep_kem", file_content, filename=file_name, content_type="text/csv")
    return form


async def test_an_xlsform_upload_names_the_sheet_row_and_column_of_its_error(console: Harness, tmp_path: Path) -> None:
    app = console.app
    assert app is not None
    wrong = xlsform(tmp_path, [*MARKET[:3], ["signature", "shop", "Shop", "Chủ cửa hàng ký"]], MARKET_CHOICES)
    right = xlsform(tmp_path, MARKET, MARKET_CHOICES, [["form_id", "form_title"], ["ban_hang", "Bán hàng qua mạng"]])
    async with client() as browser:
        await log_in(console, browser, OFFICIAL)
        csrf = await csrf_of(browser, base(app) + "/khao-sat")
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "ban-hang.xlsx", wrong)) as answer:
            text = await answer.text()
        assert answer.status == 422
        assert "trang &#34;survey&#34;, dòng 4, cột &#34;type&#34;" in text
        assert "signature" in text
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "big.xlsx", b"x" * 600_000)) as answer:
            assert answer.status == 422
            assert "lớn hơn 512 KB" in await answer.text()
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "huge.xlsx", b"x" * 1_100_000)) as answer:
            assert answer.status == 422  # the route takes a form and its files: the page says the form's limit
            assert "lớn hơn 512 KB" in await answer.text()
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "ban-hang.xlsx", right)) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/khao-sat?xong=da-nhap#nhap"
        async with browser.get(base(app) + "/khao-sat") as page:
            assert '<option value="ban-hang">Bán hàng qua mạng</option>' in await page.text()
    async with app.sessions() as session:
        [form] = (await session.exec(select(SurveyForm))).all()
        assert (form.code, form.filename) == ("ban-hang", "ban-hang.xlsx")
        assert (await session.exec(select(AuditEvent).where(AuditEvent.action == "survey_imported"))).one()
    async with client() as browser:  # the catalog is every commune's: another commune's official may not replace it
        await log_in(console, browser, OFFICIAL)
        csrf = await csrf_of(browser, base(app) + "/khao-sat")
        form = {"csrf": csrf, "khao_sat": "ban-hang", "thon": str(await _village_id(console, "THON-1")), "so_ho": ""}
        async with await _post(browser, console, "/khao-sat/mo", form) as answer:
            assert answer.headers["Location"].endswith("xong=da-mo&so=1")
    async with client() as browser:
        await log_in(console, browser, OTHER_OFFICIAL)
        csrf = await csrf_of(browser, base(app) + "/khao-sat")
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "ban-hang.xlsx", right)) as answer:
            assert answer.status == 403
            assert "form_id" in await answer.text()
        shipped = xlsform(tmp_path, MARKET, MARKET_CHOICES, [["form_id", "form_title"], ["ho_gia_dinh", "Thay thế"]])
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "ho.xlsx", shipped)) as answer:
            assert answer.status == 422
            assert "trùng với một khảo sát có sẵn" in await answer.text()
    async with app.sessions() as session:
        assert len((await session.exec(select(SurveyForm))).all()) == 1


async def test_a_resident_or_the_tech_team_cannot_import(console: Harness, tmp_path: Path) -> None:
    right = xlsform(tmp_path, MARKET, MARKET_CHOICES)
    async with client() as browser:
        await log_in(console, browser, TECH)
        assert console.app is not None
        csrf = await csrf_of(browser, base(console.app) + "/khao-sat")
        async with await _post(browser, console, "/khao-sat/nhap", _upload(csrf, "ho.xlsx", right)) as answer:
            assert answer.status == 403
    assert console.app is not None
    async with console.app.sessions() as session:
        assert (await session.exec(select(SurveyForm))).first() is None


VILLAGES_FORM = [["type", "name", "label"], ["select_one_from_file thon.csv", "thon", "Nhà mình ở thôn nào?"],
                 ["integer", "people", "Nhà mình có mấy người?"]]
VILLAGES_CSV = "name,label\nban-pho,Bản Phố\nna-hoi,Na Hối\n".encode()


async def test_an_xlsform_upload_takes_the_files_it_reads_and_names_one_missing(
    console: Harness, tmp_path: Path
) -> None:
    app = console.app
    assert app is not None
    form = xlsform(tmp_path, VILLAGES_FORM, settings=[["form_id", "form_title"], ["chon_thon", "Chọn thôn"]])
    async with client() as browser:
        await log_in(console, browser, OFFICIAL)
        csrf = await csrf_of(browser, base(app) + "/khao-sat")

        async def upload(files: dict[str, bytes], token: str = csrf) -> tuple[int, str]:
            async with await _post(browser, console, "/khao-sat/nhap", _upload(token, "thon.xlsx", form, files)) as answer:
                return answer.status, await answer.text()

        status, text = await upload({})
        assert status == 422
        assert "chọn thêm tệp &#34;thon.csv&#34;" in text  # the web's advice, not the command line's
        assert "--media THƯ_MỤC" not in text
        status, text = await upload({"thon.csv": b"x" * (2 * 1024 * 1024 + 1)})
        assert (status, 'Tệp đi kèm "thon.csv" lớn hơn 2 MB' in text) == (422, True)
        status, text = await upload({f"bang{n}.csv": b"name,label\n" for n in range(21)})
        assert (status, "tối đa 20 tệp" in text) == (422, True)
        status, text = await upload({"thon.csv": VILLAGES_CSV}, token="stale")
        assert status == 403  # CSRF, as every form
        async with app.sessions() as session:
            assert (await session.exec(select(SurveyForm))).first() is None  # nothing kept from any of these
        status, text = await upload({"C:\\Users\\can-bo\\thon.csv": VILLAGES_CSV, "../ghi-chu.csv": b"name,label\n"})
        assert status == 303, text  # a browser's whole path is only the file's name
        async with browser.get(base(app) + "/khao-sat") as page:
            assert '<option value="chon-thon">Chọn thôn</option>' in await page.text()
    async with app.sessions() as session:
        [stored] = (await session.exec(select(SurveyForm))).all()
        event = (await session.exec(select(AuditEvent).where(AuditEvent.action == "survey_imported"))).one()
    assert unpack(stored.content) == (form, {"thon.csv": VILLAGES_CSV, "ghi-chu.csv": b"name,label\n"})
    assert event.details["files"] == 2
    async with app.sessions() as session:
        await app.surveys.refresh(session)
    survey = app.surveys.get("chon-thon")
    assert survey is not None
    assert survey.by_name["thon"].choices == (Option("ban-pho", "Bản Phố"), Option("na-hoi", "Na Hối"))
