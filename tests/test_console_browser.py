"""The web console in a real browser: Debian's Chromium driven by Playwright (never a browser it would
download), against the real App and the fake Telegram server. Each page is saved at phone (390×844) and
desktop (1280×800) width, and at 200 % zoom of a small laptop (640×400 CSS pixels), under screenshots/
for a look; no page may scroll sideways at any of them."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from storage.models import HandbookEntry, HandbookQuestion, QuestionStatus, Role
from tests.console_helpers import OTHER_HEAD, base, web_link
from tests.harness import OFFICIAL, RESIDENT, TECH, Harness

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
SIZES = {"phone": (390, 844), "desktop": (1280, 800), "zoom200": (640, 400)}
UNANSWERABLE = "giá phân bón hôm nay bao nhiêu"
NEW_HEAD = 400

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
async_api = pytest.importorskip("playwright.async_api")



@pytest.fixture
async def browser() -> AsyncIterator[object]:
    async with async_api.async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield chromium
        await chromium.close()


async def look(page: object, name: str) -> None:
    """Screenshots at every size, and no sideways scrolling at any of them."""
    SHOTS.mkdir(exist_ok=True)
    for size, (width, height) in SIZES.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)
        overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {size}"
    await page.set_viewport_size({"width": 390, "height": 844})


async def log_in(h: Harness, page: object, user: int) -> None:
    assert h.app is not None
    await page.goto(base(h.app) + await web_link(h, user))
    await look(page, "dang-nhap-xac-nhan")
    await page.get_by_role("button", name="Vào trang quản lý").click()
    await page.wait_for_url(base(h.app) + "/")


async def test_an_official_logs_in_answers_invites_and_logs_out(console: Harness, browser: object) -> None:
    app = console.app
    assert app is not None
    console.fake.add_private(NEW_HEAD)
    await console.send(RESIDENT, "/thamgia THON-1")
    await console.send(RESIDENT, UNANSWERABLE, first_name="Lan")
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()

    await log_in(console, page, OFFICIAL)
    assert await page.get_by_role("heading", name="Tổng quan").is_visible()
    assert await page.locator("#noi-THON-1").get_by_text("Câu hỏi đang chờ").is_visible()
    await look(page, "tong-quan")
    await page.locator("#noi-THON-1 h2 a").click()
    await page.wait_for_url(base(app) + "/noi/THON-1")
    await look(page, "noi-thon-1")

    # the questions inbox: answer the hand-off, the asker gets it in chat
    await page.get_by_role("link", name="Câu hỏi").first.click()
    await look(page, "cau-hoi")
    before = len(console.fake.messages_to(RESIDENT))
    await page.get_by_label("Câu trả lời (gửi thẳng cho người hỏi)").fill("Giá phân bón xem ở bảng tin hợp tác xã.")
    await page.get_by_role("button", name="Gửi câu trả lời").click()
    await page.get_by_text("Đã gửi câu trả lời").wait_for()
    await console.fake.wait_for(lambda: len(console.fake.messages_to(RESIDENT)) > before)
    assert "bảng tin hợp tác xã" in (console.fake.messages_to(RESIDENT)[-1].text or "")
    await page.get_by_label("Tiêu đề bài trong sổ tay").fill("Xem giá phân bón ở đâu")
    await page.get_by_role("button", name="Lưu vào sổ tay").click()
    await page.get_by_text("Đã lưu vào sổ tay").first.wait_for()
    await look(page, "cau-hoi-da-tra-loi")
    async with app.sessions() as session:
        assert (await session.exec(select(HandbookQuestion))).one().status == QuestionStatus.ANSWERED
        assert (await session.exec(select(HandbookEntry))).one().title == "Xem giá phân bón ở đâu"

    # people: invite a head for Thôn 1, who accepts in chat with the code shown on screen
    await page.get_by_role("link", name="Người và vai trò").click()
    await look(page, "nguoi")
    await page.get_by_label("Vai trò và nơi").select_option(label="Trưởng thôn — Thôn 1")
    await page.get_by_role("button", name="Tạo lời mời").click()
    code = (await page.get_by_label("Mã mời").inner_text()).replace(" ", "")
    assert re.fullmatch(r"\d{12}", code)
    await look(page, "loi-moi")
    [accepted, *_] = await console.send(NEW_HEAD, f"/moi {code}", expect=1)
    assert "Trưởng thôn" in (accepted.text or "")
    assert "Thôn 1" in (accepted.text or "")
    async with app.sessions() as session:
        heads = (await session.exec(select(Role).where(Role.role == "village_head"))).all()
        assert len(heads) == 5  # HEAD on three villages, OTHER_HEAD, and the new one

    await page.get_by_role("link", name="Nhật ký").click()
    assert await page.get_by_text("Đăng nhập trang quản lý").first.is_visible()
    await look(page, "nhat-ky")

    await page.get_by_role("button", name="Đăng xuất").click()
    await page.get_by_text("Bạn đã đăng xuất").wait_for()
    await look(page, "da-dang-xuat")
    await page.goto(base(app) + "/cau-hoi")
    assert page.url == base(app) + "/dang-nhap"


async def test_a_head_of_another_village_gets_403_on_the_first_villages_pages(console: Harness, browser: object) -> None:
    app = console.app
    assert app is not None
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await log_in(console, page, OTHER_HEAD)
    await look(page, "tong-quan-truong-thon")
    for path in ("/noi/THON-1", "/noi/THON-1/nguoi", "/noi/THON-1/ap-phich.pdf", "/nhat-ky"):
        answer = await page.goto(base(app) + path)
        assert answer is not None, path
        assert answer.status == 403, path
        assert await page.get_by_role("heading", name="Bạn không có quyền xem trang này").is_visible()
    await look(page, "khong-co-quyen")
    answer = await page.goto(base(app) + "/noi/THON-2")
    assert answer is not None
    assert answer.status == 200


async def test_the_tech_team_sees_its_village_and_the_inbox_only(console: Harness, browser: object) -> None:
    app = console.app
    assert app is not None
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await log_in(console, page, TECH)
    nav = page.get_by_role("navigation", name="Các trang")
    # "Thông báo" lists the village's notices and their delivery (may_see_status); writing one is not offered
    assert await nav.get_by_role("link").all_inner_texts() == ["Tổng quan", "Thông báo", "Câu hỏi", "Khảo sát"]
    await look(page, "tong-quan-to-cong-nghe")
    shown = await page.goto(base(app) + "/thong-bao")
    assert shown is not None
    assert shown.status == 200
    assert await page.get_by_role("link", name="Viết thông báo mới").count() == 0
