"""The notices pages in a real browser (Chromium through Playwright, as tests/test_console_browser.py):
an official writes a notice with a photo for two villages, previews it, schedules it in words and
confirms the exact date, sees it reach the fake groups and a follower's private chat and why the group
that removed the bot did not get it, then cancels a notice scheduled for tomorrow. Every page is saved
under screenshots/ at phone, desktop and 200 % zoom; none may scroll sideways."""

from __future__ import annotations

import re

import pytest
from sqlmodel import select

from storage.models import Announcement, AnnouncementStatus
from tests.harness import OFFICIAL, RESIDENT, VILLAGE_GROUPS, Harness
from tests.test_console_browser import CHROMIUM, browser, log_in, look
from tests.test_console_notices import follow, png

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)")
async_api = pytest.importorskip("playwright.async_api")
DATE = re.compile(r"\d\d:\d\d [^,]+, \d\d/\d\d/\d{4}")
__all__ = ["browser"]  # the Chromium fixture, shared with tests/test_console_browser.py


async def compose(page: object, text: str, villages: tuple[str, ...], shot: str = "") -> None:
    await page.get_by_role("link", name="Viết thông báo mới").click()
    await page.get_by_label("Nội dung").fill(text)
    for box in await page.locator('input[name="noi"]').all():  # every place starts checked
        await box.uncheck()
    for village in villages:
        await page.get_by_label(village, exact=True).check()
    if shot:
        await page.get_by_label("Ảnh hoặc tệp đính kèm (không bắt buộc)").set_input_files(
            files=[{"name": "hop-dan.png", "mimeType": "image/png", "buffer": png(40, 30)}])
        await look(page, shot)
    await page.get_by_role("button", name="Xem trước").click()
    await page.get_by_role("heading", name="Xem trước thông báo").wait_for()


async def schedule(page: object, typed: str, shot: str = "") -> str:
    """The time typed as in chat; the exact date the page reads back, then confirmed."""
    await page.get_by_label("Hoặc hẹn giờ gửi, viết như khi nhắn cho bot").fill(typed)
    await page.get_by_role("button", name="Xem ngày giờ gửi").click()
    await page.get_by_role("heading", name="Xác nhận giờ gửi").wait_for()
    found = DATE.search(await page.locator("p.big").inner_text())
    assert found, await page.content()
    if shot:
        await look(page, shot)
    await page.get_by_role("button", name="Đúng, hẹn gửi").click()
    await page.get_by_text(f"Hẹn gửi lúc {found.group(0)}").first.wait_for()
    return found.group(0)


async def test_an_official_schedules_a_photo_notice_sees_it_reach_people_and_cancels_another(
    console: Harness, browser: object
) -> None:
    h, fake = console, console.fake
    assert h.app is not None
    await follow(h, RESIDENT, "THON-1")
    fake.kick(VILLAGE_GROUPS["THON-2"])  # the bot was removed from Thôn 2's group: the send gets a 403
    page = await (await browser.new_context(viewport={"width": 390, "height": 844})).new_page()
    await log_in(h, page, OFFICIAL)

    await page.get_by_role("navigation", name="Các trang").get_by_role("link", name="Thông báo").click()
    await look(page, "thong-bao-trong")
    await compose(page, "Họp dân lúc 19h thứ Bảy tại nhà văn hóa.\nMang theo sổ hộ khẩu.", ("Thôn 1", "Thôn 2"),
                  shot="thong-bao-viet")
    assert await page.get_by_text("Trả lời 1 khi đã đọc.").is_visible()  # the follower's copy
    assert await page.get_by_text("Thôn 1 (Telegram): 1 nhóm, 1 người nhận tin riêng").is_visible()
    assert await page.get_by_role("img", name="Ảnh đính kèm").evaluate("img => img.naturalWidth") == 40
    await look(page, "thong-bao-xem-truoc")
    await schedule(page, "3 giây nữa", shot="thong-bao-xac-nhan-gio")
    await look(page, "thong-bao-da-hen")

    await h.wait_groups([VILLAGE_GROUPS["THON-1"]])
    await fake.wait_for(lambda: any(m.method == "sendPhoto" for m in fake.messages_to(RESIDENT)))
    [notice] = fake.messages_to(VILLAGE_GROUPS["THON-1"])
    assert notice.method == "sendPhoto"
    assert "Mang theo sổ hộ khẩu." in (notice.text or "")
    assert "Trả lời 1 khi đã đọc" in (fake.messages_to(RESIDENT)[-1].text or "")
    assert fake.messages_to(VILLAGE_GROUPS["THON-2"]) == []
    failed = page.get_by_text("Bot đã bị xóa khỏi nhóm")
    for _ in range(20):  # the page shows what the database holds when it is loaded
        await page.reload()
        if await failed.count():
            break
        await page.wait_for_timeout(250)
    assert await failed.is_visible()
    assert await page.locator("li", has=failed).get_by_text("Thôn 2").is_visible()
    await look(page, "thong-bao-tinh-trang")

    # a notice for tomorrow morning, cancelled before it goes out
    await page.get_by_role("link", name="← Mọi thông báo").click()
    await compose(page, "Cắt điện từ 8h đến 11h sáng mai.", ("Thôn 3",))
    await schedule(page, "7h sáng mai")
    await page.get_by_role("link", name="Hủy những gì chưa gửi…").click()
    await page.get_by_text("1 nơi chưa nhận sẽ không nhận nữa.").wait_for()
    await look(page, "thong-bao-huy")
    await page.get_by_role("button", name="Hủy thông báo").click()
    await page.get_by_text("Đã hủy: những nơi chưa nhận sẽ không nhận nữa").wait_for()
    await page.get_by_role("link", name="← Mọi thông báo").click()
    assert await page.get_by_text("Đã hủy", exact=True).is_visible()
    await look(page, "thong-bao-danh-sach")
    async with h.app.sessions() as session:
        statuses = (await session.exec(select(Announcement.status).order_by(Announcement.id))).all()
    assert statuses == [AnnouncementStatus.QUEUED, AnnouncementStatus.CANCELLED]
    assert fake.messages_to(VILLAGE_GROUPS["THON-3"]) == []
