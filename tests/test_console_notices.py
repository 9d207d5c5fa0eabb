"""The console's notices pages over plain HTTP (the browser test walks the same path in Chromium): write a
notice with a photo for two of the commune's villages, preview it as residents will read it, schedule it
with a time typed as in chat and confirmed as an exact date, see it reach the fake groups and a
follower's private chat, see why a group that removed the bot failed, cancel a scheduled one; bad files
and bad times change nothing."""

from __future__ import annotations

import re
import struct
import zlib

import aiohttp
from sqlmodel import col, func, select

from bot.scheduler import JOB_PREFIX
from storage.models import Announcement, AnnouncementStatus, AuditEvent, Delivery, DeliveryStatus, Media, Place
from tests.console_helpers import base, client, csrf_of, log_in
from tests.harness import OFFICIAL, RESIDENT, VILLAGE_GROUPS, Harness


def png(width: int = 4, height: int = 3) -> bytes:
    """A real (tiny) PNG file."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x20\x40" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


async def place_ids(h: Harness, *codes: str) -> list[int]:
    assert h.app is not None
    async with h.app.sessions() as session:
        rows = await session.exec(select(Place).where(col(Place.code).in_(codes)))
        return sorted(p.id for p in rows.all() if p.id is not None)


def form(csrf: str, text: str, places: list[int], file: tuple[str, bytes, str] | None = None, **more: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("csrf", csrf)
    data.add_field("noi_dung", text)
    for place in places:
        data.add_field("noi", str(place))
    if file is not None:
        name, content, mime = file
        data.add_field("tep", content, filename=name, content_type=mime)
    for key, value in more.items():
        data.add_field(key, value)
    return data


async def post(browser: aiohttp.ClientSession, h: Harness, path: str, data: object) -> aiohttp.ClientResponse:
    assert h.app is not None
    answer = await browser.post(base(h.app) + path, data=data, allow_redirects=False)
    await answer.read()
    return answer


async def write(browser: aiohttp.ClientSession, h: Harness, text: str, codes: tuple[str, ...], **kw: object) -> int:
    """The compose form sent; the new draft's number (from the preview it leads to)."""
    assert h.app is not None
    csrf = await csrf_of(browser, base(h.app) + "/thong-bao/moi")
    answer = await post(browser, h, "/thong-bao/moi", form(csrf, text, await place_ids(h, *codes), **kw))  # type: ignore[arg-type]
    assert answer.status == 303, await answer.text()
    found = re.fullmatch(r"/thong-bao/(\d+)/xem-truoc", answer.headers["Location"])
    assert found, answer.headers["Location"]
    return int(found.group(1))


async def read_back(browser: aiohttp.ClientSession, h: Harness, number: int, typed: str) -> tuple[str, str]:
    """A time typed on the draft's preview; the form's CSRF token and the confirmation page."""
    assert h.app is not None
    csrf = await csrf_of(browser, base(h.app) + f"/thong-bao/{number}/xem-truoc")
    confirm = await post(browser, h, f"/thong-bao/{number}/hen-gio", {"csrf": csrf, "luc": typed})
    assert confirm.status == 200, await confirm.text()
    return csrf, await confirm.text()


async def page(browser: aiohttp.ClientSession, h: Harness, path: str) -> str:
    assert h.app is not None
    async with browser.get(base(h.app) + path) as answer:
        assert answer.status == 200, (path, answer.status)
        return await answer.text()


async def follow(h: Harness, user: int, village: str) -> None:
    await h.send(user, f"/thamgia {village}")
    [said] = await h.send(user, "1")
    assert "Từ nay" in (said.text or "")


async def test_a_photo_notice_for_two_villages_is_previewed_scheduled_and_delivered(console: Harness) -> None:
    h, fake = console, console.fake
    assert h.app is not None
    await follow(h, RESIDENT, "THON-1")
    photo = png()
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        number = await write(browser, h, "Họp dân chiều thứ Bảy tại nhà văn hóa.", ("THON-1", "THON-2"),
                             file=("hop-dan.png", photo, "image/png"))
        preview = await page(browser, h, f"/thong-bao/{number}/xem-truoc")
        assert "📢 THÔNG BÁO — Thôn 1" in preview
        assert "Họp dân chiều thứ Bảy tại nhà văn hóa." in preview
        assert "Trả lời 1 khi đã đọc." in preview  # the follower's copy
        assert "Thôn 1 (Telegram): 1 nhóm, 1 người nhận tin riêng" in preview
        assert "Thôn 2 (Telegram): 1 nhóm, 0 người nhận tin riêng" in preview
        assert "Thôn 3" not in preview
        async with browser.get(base(h.app) + f"/thong-bao/{number}/tep") as shown:
            assert await shown.read() == photo
            assert shown.content_type == "image/png"

        csrf, text = await read_back(browser, h, number, "3 giây nữa")
        at = re.search(r"gửi lúc <strong>(\d\d:\d\d [^<]+, \d\d/\d\d/\d{4})</strong>", text)
        assert at, text
        moment = re.search(r'name="gio" value="([^"]+)"', text)
        assert moment
        async with h.app.sessions() as session:  # nothing is queued before the date is confirmed
            assert (await session.exec(select(func.count()).select_from(Delivery))).one() == 0
        sent = await post(browser, h, f"/thong-bao/{number}/gui", {"csrf": csrf, "gio": moment.group(1)})
        assert sent.status == 303
        assert sent.headers["Location"] == f"/thong-bao/{number}?xong=hen"
        status = await page(browser, h, f"/thong-bao/{number}?xong=hen")
        assert f"Hẹn gửi lúc {at.group(1)}" in status

        chats = [VILLAGE_GROUPS["THON-1"], VILLAGE_GROUPS["THON-2"]]
        await h.wait_groups(chats)
        await fake.wait_for(lambda: len(fake.messages_to(RESIDENT)) >= 3)
        for chat in chats:
            [notice] = fake.messages_to(chat)
            assert notice.method == "sendPhoto"
            assert "Họp dân chiều thứ Bảy" in (notice.text or "")
            uploaded = notice.params["photo"].content if notice.photo == "<upload>" else fake.files[notice.photo or ""][1]
            assert uploaded == photo  # uploaded once, then sent by the id Telegram gave it
        private = fake.messages_to(RESIDENT)[-1]
        assert private.method == "sendPhoto"
        assert "Trả lời 1 khi đã đọc" in (private.text or "")
        assert fake.messages_to(VILLAGE_GROUPS["THON-3"]) == []

        await h.eventually(h.sent_count, 3)
        status = await page(browser, h, f"/thong-bao/{number}")
        assert "Thôn 1 (Telegram)" in status
        assert "Thôn 2 (Telegram)" in status
        listing = await page(browser, h, "/thong-bao")
        assert f"Thông báo số {number}" in listing
        assert "Nhóm: đã nhận 2," in listing
        assert "Tin riêng: đã nhận 1," in listing


async def test_a_group_that_removed_the_bot_is_listed_with_the_reason(console: Harness) -> None:
    h, fake = console, console.fake
    fake.kick(VILLAGE_GROUPS["THON-2"])
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        number = await write(browser, h, "Lịch tiêm phòng cho trâu bò.", ("THON-1", "THON-2"))
        csrf = await csrf_of(browser, base(h.app) + f"/thong-bao/{number}/xem-truoc")  # type: ignore[arg-type]
        sent = await post(browser, h, f"/thong-bao/{number}/gui", {"csrf": csrf})
        assert sent.headers["Location"] == f"/thong-bao/{number}?xong=gui"
        await h.wait_groups([VILLAGE_GROUPS["THON-1"]])

        async def failed() -> int:
            assert h.app is not None
            async with h.app.sessions() as session:
                stopped = select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.STOPPED)
                return (await session.exec(stopped)).one()

        await h.eventually(failed, 1)
        status = await page(browser, h, f"/thong-bao/{number}")
        reason = re.search(r'<li><strong>([^<]*)</strong>\s*<span class="muted">([^<]*)</span>\s*'
                           r'<span class="bad">([^<]*)</span>', status)
        assert reason, status
        assert "Thôn 2" in reason.group(2)
        assert "nhóm" in reason.group(2)
        assert reason.group(3).startswith("Bot đã bị xóa khỏi nhóm")


async def test_a_scheduled_notice_is_cancelled_after_a_confirmation(console: Harness) -> None:
    h = console
    assert h.app is not None
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        number = await write(browser, h, "Cắt điện từ 8h đến 11h.", ("THON-3",))
        csrf, text = await read_back(browser, h, number, "8h sáng mai")
        moment = re.search(r'name="gio" value="([^"]+)"', text)
        assert moment
        await post(browser, h, f"/thong-bao/{number}/gui", {"csrf": csrf, "gio": moment.group(1)})
        status = await page(browser, h, f"/thong-bao/{number}")
        assert f'href="/thong-bao/{number}/huy"' in status
        asked = await page(browser, h, f"/thong-bao/{number}/huy")
        assert "1 nơi chưa nhận sẽ không nhận nữa" in asked
        async with h.app.sessions() as session:  # asking is not doing
            assert (await session.get(Announcement, number)).status == AnnouncementStatus.QUEUED
        done = await post(browser, h, f"/thong-bao/{number}/huy", {"csrf": csrf})
        assert done.headers["Location"] == f"/thong-bao/{number}?xong=huy"
        status = await page(browser, h, f"/thong-bao/{number}?xong=huy")
        assert "(đã hủy)" in status
        assert f'href="/thong-bao/{number}/huy"' not in status
        async with h.app.sessions() as session:
            [delivery] = (await session.exec(select(Delivery).where(Delivery.announcement_id == number))).all()
            assert delivery.status == DeliveryStatus.STOPPED
            assert (await session.exec(select(AuditEvent).where(AuditEvent.action == "notice_cancelled"))).one()
        again = await post(browser, h, f"/thong-bao/{number}/huy", {"csrf": csrf})
        assert again.headers["Location"] == f"/thong-bao/{number}?xong=het"


async def test_a_weekly_notice_names_its_first_date_and_the_list_its_next(console: Harness) -> None:
    h = console
    assert h.app is not None
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        number = await write(browser, h, "Nhắc đổ rác đúng giờ.", ("THON-1",))
        csrf, text = await read_back(browser, h, number, "mỗi chủ nhật 19h")
        first = re.search(r"lần đầu: <strong>(19:00 Chủ nhật, \d\d/\d\d/\d{4})</strong>", text)
        assert first, text
        saved = await post(browser, h, f"/thong-bao/{number}/gui", {"csrf": csrf, "lap": "mỗi chủ nhật 19h"})
        assert saved.headers["Location"] == f"/thong-bao/{number}?xong=lap"
        listing = await page(browser, h, "/thong-bao")
        assert f"lần tới: {first.group(1)}" in listing
    async with h.app.sessions() as session:
        assert (await session.get(Announcement, number)).status == AnnouncementStatus.RECURRING
    await h.eventually(lambda: _has_job(h, number), True)  # the scheduler synced after the page's commit
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        csrf = await csrf_of(browser, base(h.app) + f"/thong-bao/{number}/huy")
        await post(browser, h, f"/thong-bao/{number}/huy", {"csrf": csrf})
    await h.eventually(lambda: _has_job(h, number), False)


async def _has_job(h: Harness, number: int) -> bool:
    assert h.app is not None
    return h.app.recurring.scheduler.get_job(f"{JOB_PREFIX}{number}") is not None


async def test_a_draft_is_edited_and_dropped(console: Harness) -> None:
    h = console
    assert h.app is not None
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        number = await write(browser, h, "Họp tổ.", ("THON-1",), file=("anh.png", png(), "image/png"))
        csrf = await csrf_of(browser, base(h.app) + f"/thong-bao/{number}/sua")
        edit = form(csrf, "Họp tổ dời sang 20h.", await place_ids(h, "XA1", "THON-3"), bo_tep="1")
        edited = await post(browser, h, f"/thong-bao/{number}/sua", edit)
        assert edited.headers["Location"] == f"/thong-bao/{number}/xem-truoc"
        preview = await page(browser, h, f"/thong-bao/{number}/xem-truoc")
        assert "Họp tổ dời sang 20h." in preview
        assert "Ảnh đính kèm" not in preview
        # the commune and, again, one of its villages: every village once, the commune's group too
        assert "Xã Hòa Bình, Thôn 1, Thôn 2, Thôn 3 — 4 nhóm" in preview
        dropped = await post(browser, h, f"/thong-bao/{number}/bo", {"csrf": csrf})
        assert dropped.headers["Location"] == "/thong-bao?xong=bo"
        again = await browser.get(base(h.app) + f"/thong-bao/{number}/xem-truoc", allow_redirects=False)
        assert again.headers["Location"] == f"/thong-bao/{number}"  # no longer a draft: nothing to send
    async with h.app.sessions() as session:
        assert (await session.get(Announcement, number)).status == AnnouncementStatus.CANCELLED
        assert (await session.exec(select(func.count()).select_from(Delivery))).one() == 0


async def test_a_bad_file_or_time_is_explained_and_changes_nothing(console: Harness) -> None:
    h = console
    assert h.app is not None
    async with client() as browser:
        await log_in(h, browser, OFFICIAL)
        csrf = await csrf_of(browser, base(h.app) + "/thong-bao/moi")
        ids = await place_ids(h, "THON-1")
        apk_file = ("app.apk", b"PK\x03\x04", "application/octet-stream")
        apk = await post(browser, h, "/thong-bao/moi", form(csrf, "Cài ứng dụng này", ids, apk_file))
        assert apk.status == 422
        assert "(tệp này là .apk)" in await apk.text()
        big_file = ("to.png", png() + b"\0" * (11 * 2**20), "image/png")
        big = await post(browser, h, "/thong-bao/moi", form(csrf, "Ảnh to", ids, big_file))
        assert big.status == 422
        assert "quá mức 10 MB" in await big.text()
        empty = await post(browser, h, "/thong-bao/moi", form(csrf, "Chưa chọn nơi nào", []))
        assert empty.status == 422
        assert "Xin chọn ít nhất một nơi nhận" in await empty.text()
        async with h.app.sessions() as session:
            assert (await session.exec(select(func.count()).select_from(Announcement))).one() == 0
            assert (await session.exec(select(func.count()).select_from(Media))).one() == 0

        number = await write(browser, h, "Họp chi bộ.", ("THON-1",))
        for typed, words in (("hôm qua 7h", "đã qua rồi"), ("khi nào rảnh", "Chưa đọc được thời gian này")):
            answer = await post(browser, h, f"/thong-bao/{number}/hen-gio", {"csrf": csrf, "luc": typed})
            assert answer.status == 422
            assert words in await answer.text()
        async with h.app.sessions() as session:
            assert (await session.get(Announcement, number)).status == AnnouncementStatus.DRAFT
            assert (await session.exec(select(func.count()).select_from(Delivery))).one() == 0
