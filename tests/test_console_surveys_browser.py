"""The surveys page in a real browser (Debian's Chromium through Playwright, as in
tests/test_console_browser.py): an official logs in with the /web link, opens a survey for a village and
its group gets the invitation, sees households' progress and the scorecard beside its chart, downloads
the answers and opens the file, and uploads an XLSForm with a mistake to read where it is; then a form
with the CSV of villages it reads, which a resident answers from that list."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import select

from storage.models import Campaign, ExportRecord
from tests.console_helpers import base
from tests.harness import OFFICIAL, RESIDENT, VILLAGE_GROUPS, Harness
from tests.survey_answers import ANSWERS
from tests.test_console_browser import browser, log_in, look, pytestmark
from tests.test_console_surveys import VILLAGES_CSV, VILLAGES_FORM
from tests.test_surveys import MARKET, MARKET_CHOICES, NEIGHBOUR, answer_all, register
from tests.xlsforms import xlsform

TITLE = "Khảo sát chuyển đổi số hộ gia đình"

__all__ = ["browser", "pytestmark"]  # the Chromium fixture and its skip, shared with tests/test_console_browser.py


async def test_an_official_opens_a_survey_follows_it_exports_and_imports_a_form(
    console: Harness, browser: object, tmp_path: Path
) -> None:
    app = console.app
    assert app is not None
    page = await (await browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)).new_page()
    await log_in(console, page, OFFICIAL)
    await page.get_by_role("navigation", name="Các trang").get_by_role("link", name="Khảo sát").click()
    await page.wait_for_url(base(app) + "/khao-sat")
    await look(page, "khao-sat-chua-mo")

    # open the household survey for Thôn 1: its group gets the invitation
    await page.get_by_label("Khảo sát", exact=True).select_option(label=TITLE)
    await page.get_by_label("Thôn", exact=True).select_option(label="Thôn 1")
    await page.get_by_label("Thôn có khoảng bao nhiêu hộ?").fill("40")
    await page.get_by_role("button", name="Mở khảo sát và gửi lời mời vào nhóm thôn").click()
    await page.get_by_text("Lời mời đang được gửi vào 1 nhóm").wait_for()
    await console.wait_groups([VILLAGE_GROUPS["THON-1"]])
    assert TITLE in (console.fake.messages_to(VILLAGE_GROUPS["THON-1"])[0].text or "")
    async with app.sessions() as session:
        campaign = (await session.exec(select(Campaign))).one()

    # households answer in chat; the page shows their progress and the scorecard with its chart
    await register(console, NEIGHBOUR, campaign, head="Hà Thị Mai")
    await answer_all(console, NEIGHBOUR, ANSWERS)
    await console.send(NEIGHBOUR, "1")
    await register(console, RESIDENT, campaign, head="Lò Văn Pọm")
    await console.send(RESIDENT, ANSWERS[0])
    await page.goto(base(app) + "/khao-sat")
    progress = page.locator("#tien-do-THON-1")
    for figure in ("1 hộ đã gửi", "1 hộ đang trả lời dở", "thôn có khoảng 40 hộ"):
        assert await progress.get_by_text(figure).is_visible(), figure
    chart = page.get_by_role("img", name="Biểu đồ các chỉ tiêu của từng thôn so với mục tiêu")
    await chart.scroll_into_view_if_needed()
    assert await chart.evaluate("img => img.complete && img.naturalWidth > 0")
    assert await page.locator("table.scores").get_by_text("Thôn 1").is_visible()
    await look(page, "khao-sat-tien-do")

    # the answers as a file: it opens, the household's answers are in it, and the copy is recorded
    await page.get_by_label("Câu trả lời của").select_option(label="Mọi thôn của Xã Hòa Bình")
    async with page.expect_download() as waiting:
        await page.get_by_role("button", name="Tải tệp").click()
    download = await waiting.value
    assert download.suggested_filename.startswith("ho-gia-dinh-xa1-")
    assert download.suggested_filename.endswith(".xlsx")
    content = await asyncio.to_thread(Path(await download.path()).read_bytes)
    rows = list(load_workbook(io.BytesIO(content)).active.iter_rows(values_only=True))
    answers = {row[2]: dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    assert answers["Hà Thị Mai"]["Nhà mình có mấy người?"] == 5
    assert answers["Hà Thị Mai"]["Trạng thái"] == "Đã gửi"
    assert answers["Lò Văn Pọm"]["Trạng thái"] == "Đang trả lời"
    async with app.sessions() as session:
        [record] = (await session.exec(select(ExportRecord))).all()
        assert (record.via, record.households) == ("web", 2)

    # an XLSForm with a question type the bot cannot ask: the page names sheet, row and column
    wrong = xlsform(tmp_path, [*MARKET[:3], ["signature", "shop", "Shop", "Chủ cửa hàng ký"]], MARKET_CHOICES)
    await page.get_by_label("Tệp biểu mẫu").set_input_files(
        {"name": "ban-hang.xlsx", "mimeType": "application/octet-stream", "buffer": wrong})
    await page.get_by_role("button", name="Kiểm tra và thêm khảo sát").click()
    problem = page.get_by_role("alert")
    await problem.wait_for()
    assert 'trang "survey", dòng 4, cột "type"' in await problem.inner_text()
    await look(page, "khao-sat-loi-bieu-mau")
    right = xlsform(tmp_path, MARKET, MARKET_CHOICES, [["form_id", "form_title"], ["ban_hang", "Bán hàng qua mạng"]])
    await page.get_by_label("Tệp biểu mẫu").set_input_files(
        {"name": "ban-hang.xlsx", "mimeType": "application/octet-stream", "buffer": right})
    await page.get_by_role("button", name="Kiểm tra và thêm khảo sát").click()
    await page.get_by_text("Đã thêm khảo sát từ tệp").wait_for()
    assert await page.get_by_label("Khảo sát", exact=True).locator("option", has_text="Bán hàng qua mạng").count() == 1


async def test_an_official_uploads_a_form_with_the_csv_it_reads_and_opens_it(
    console: Harness, browser: object, tmp_path: Path
) -> None:
    app = console.app
    assert app is not None
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await log_in(console, page, OFFICIAL)
    await page.goto(base(app) + "/khao-sat")
    form = {"name": "chon-thon.xlsx", "mimeType": "application/octet-stream",
            "buffer": xlsform(tmp_path, VILLAGES_FORM, settings=[["form_id", "form_title"], ["chon_thon", "Chọn thôn"]])}

    # the form alone: the page names the file it reads and says to choose it too
    await page.get_by_label("Tệp biểu mẫu").set_input_files(form)
    await page.get_by_role("button", name="Kiểm tra và thêm khảo sát").click()
    problem = page.get_by_role("alert")
    await problem.wait_for()
    assert 'chọn thêm tệp "thon.csv"' in await problem.inner_text()
    await look(page, "khao-sat-thieu-tep-kem")

    # the form and its CSV, chosen in the second input
    await page.get_by_label("Tệp biểu mẫu").set_input_files(form)
    await page.get_by_label("Tệp đi kèm").set_input_files(
        [{"name": "thon.csv", "mimeType": "text/csv", "buffer": VILLAGES_CSV}])
    await page.get_by_role("button", name="Kiểm tra và thêm khảo sát").click()
    await page.get_by_text("Đã thêm khảo sát từ tệp").wait_for()

    # opened for Thôn 1: a resident is asked the question with the CSV's villages
    await page.get_by_label("Khảo sát", exact=True).select_option(label="Chọn thôn")
    await page.get_by_label("Thôn", exact=True).select_option(label="Thôn 1")
    await page.get_by_role("button", name="Mở khảo sát và gửi lời mời vào nhóm thôn").click()
    await page.get_by_text("Lời mời đang được gửi vào 1 nhóm").wait_for()
    async with app.sessions() as session:
        campaign = (await session.exec(select(Campaign))).one()
    await register(console, RESIDENT, campaign)
    asked = console.fake.messages_to(RESIDENT)[-1].text or ""
    assert "Nhà mình ở thôn nào?" in asked
    assert "1. Bản Phố" in asked
    assert "2. Na Hối" in asked
