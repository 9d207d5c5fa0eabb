"""One process serves Zalo and Telegram at once: a village head on Zalo reaches the village's Telegram
and Zalo groups once each, the status shows both, and /lienket joins one person's two accounts."""

from __future__ import annotations

import aiohttp
import pytest
from sqlmodel import func, select

from bot.app import App
from handlers import admin
from storage.models import ChatGroup, InboxUpdate, Place
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.trust import link_code

TEXT = "message.text.received"
ZALO_HEAD = "zl-head-1"
TG_GROUP, ZALO_GROUP = -501, "zl-group-thon-1"
TG_USER = 555


@pytest.fixture
async def both(app_on_both: App, fake: FakeTelegram, zalo: FakeZalo) -> tuple[App, FakeTelegram, FakeZalo]:
    async with app_on_both.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        village: Place = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
        session.add(ChatGroup(platform="telegram", chat_id=str(TG_GROUP), place_id=village.id))
        session.add(ChatGroup(platform="zalo", chat_id=ZALO_GROUP, place_id=village.id))
        await session.commit()
    fake.add_group(TG_GROUP)
    fake.add_private(TG_USER)
    return app_on_both, fake, zalo


async def _zalo_says(zalo: FakeZalo, text: str, count: int = 1) -> list:
    before = len(zalo.messages_to(ZALO_HEAD))
    zalo.push(TEXT, ZALO_HEAD, ZALO_HEAD, text)
    await zalo.wait_for(lambda: len(zalo.messages_to(ZALO_HEAD)) >= before + count)
    return zalo.messages_to(ZALO_HEAD)[before:]


async def test_a_notice_from_zalo_reaches_both_platforms_once(both: tuple[App, FakeTelegram, FakeZalo]) -> None:
    _app, telegram, zalo = both
    [preview] = await _zalo_says(zalo, "/thongbao Họp thôn tối thứ Bảy")
    assert "2 nhóm" in preview.text
    assert "1. Gửi ngay" in preview.text  # numbered: Zalo has no buttons
    await _zalo_says(zalo, "1")
    await telegram.wait_for(lambda: len(telegram.messages_to(TG_GROUP)) == 1)
    await zalo.wait_for(lambda: len(zalo.messages_to(ZALO_GROUP)) == 1)
    assert "Họp thôn tối thứ Bảy" in telegram.messages_to(TG_GROUP)[0].text
    assert "Họp thôn tối thứ Bảy" in zalo.messages_to(ZALO_GROUP)[0].text
    [status] = await _zalo_says(zalo, "/tinhtrang")
    assert "Thôn 1 (Telegram)" in status.text
    assert "Thôn 1 (Zalo)" in status.text
    assert len(telegram.messages_to(TG_GROUP)) == 1
    assert len(zalo.messages_to(ZALO_GROUP)) == 1


async def test_lienket_lets_roles_follow_the_person(both: tuple[App, FakeTelegram, FakeZalo]) -> None:
    _app, telegram, zalo = both
    [code_message] = await _zalo_says(zalo, "/lienket")
    code = link_code(code_message.text)

    async def telegram_says(text: str) -> str:
        before = len(telegram.messages_to(TG_USER))
        telegram.message(TG_USER, TG_USER, text)
        await telegram.wait_for(lambda: len(telegram.messages_to(TG_USER)) > before)
        return telegram.messages_to(TG_USER)[-1].text

    assert "chỉ trưởng thôn" in (await telegram_says("/thongbao thử")).lower()  # not linked yet
    assert "không dùng được" in await telegram_says("/lienket 0000 0000 0000")
    assert "Đã liên kết" in await telegram_says(f"/lienket {code}")
    assert "XEM TRƯỚC" in await telegram_says("/thongbao Thông báo gửi từ Telegram")
    assert "không dùng được" in await telegram_says(f"/lienket {code}")  # a code works once


async def test_zalo_splits_a_long_notice_in_order(both: tuple[App, FakeTelegram, FakeZalo]) -> None:
    _app, _telegram, zalo = both
    first, second = "Phần một. " + "Nội dung thông báo. " * 60, "Phần hai. " + "Nội dung tiếp theo. " * 60
    await _zalo_says(zalo, f"/thongbao {first}\n\n{second}")  # ~2,500 characters
    await _zalo_says(zalo, "1")
    await zalo.wait_for(lambda: len(zalo.messages_to(ZALO_GROUP)) == 2)
    parts = [m.text for m in zalo.messages_to(ZALO_GROUP)]
    assert all(len(p) <= 2000 for p in parts)
    assert "Phần một." in parts[0]
    assert parts[1].lstrip().startswith("Phần hai.")


async def test_zalo_webhook_checks_the_secret_and_ignores_replays(
    fake: FakeTelegram, sqlite_url: str, unused_tcp_port: int
) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}/zalo/webhook"
    async with FakeZalo() as zalo:
        settings = settings_for(
            sqlite_url,
            None,
            env={"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url, "LANGSO_WEBHOOK_SECRET": "zl-secret"},
            zalo={"mode": "webhook", "webhook_url": url},
            web={"port": unused_tcp_port},
        )
        app = App(settings)
        await app.start()
        try:
            update = {"event_name": TEXT, "message": {"message_id": "m-1", "date": 0, "text": "/trogiup",
                                                      "chat": {"id": "u-9", "chat_type": "PRIVATE"},
                                                      "from": {"id": "u-9", "display_name": "Bà Lan"}}}
            async with aiohttp.ClientSession() as client:
                for headers in ({}, {"X-Bot-Api-Secret-Token": "wrong"}):
                    async with client.post(url, json=update, headers=headers) as response:
                        assert response.status == 403
                async with app.sessions() as session:
                    assert (await session.exec(select(func.count()).select_from(InboxUpdate))).one() == 0
                for _ in range(2):  # Zalo delivers the same update twice: handled once
                    async with client.post(url, json={"ok": True, "result": update},
                                           headers={"X-Bot-Api-Secret-Token": "zl-secret"}) as response:
                        assert response.status == 200
            await zalo.wait_for(lambda: len(zalo.messages_to("u-9")) == 1)
            await app.dispatcher.drain()
            assert len(zalo.messages_to("u-9")) == 1
            assert "Làng số bot" in zalo.messages_to("u-9")[0].text
            assert zalo.webhook
            assert zalo.webhook.get("secret_token") == "zl-secret"
        finally:
            await app.stop()


async def test_a_zalo_resident_answers_the_survey_by_numbers(both: tuple[App, FakeTelegram, FakeZalo]) -> None:
    _app, telegram, zalo = both
    await _zalo_says(zalo, "/khaosat")
    await _zalo_says(zalo, "1")  # open a survey
    await _zalo_says(zalo, "1")  # the household survey
    await _zalo_says(zalo, "bỏ qua")  # how many households: not known
    await zalo.wait_for(lambda: len(zalo.messages_to(ZALO_GROUP)) == 1)
    invitation = zalo.messages_to(ZALO_GROUP)[0].text
    assert "/khaosat THON-1" in invitation
    assert "t.me" not in invitation  # no deep links on Zalo
    await telegram.wait_for(lambda: len(telegram.messages_to(TG_GROUP)) == 1)
    assert "https://t.me/" in telegram.messages_to(TG_GROUP)[0].text

    resident = "zl-resident-9"

    async def says(text: str, count: int = 1) -> list:
        before = len(zalo.messages_to(resident))
        zalo.push(TEXT, resident, resident, text)
        await zalo.wait_for(lambda: len(zalo.messages_to(resident)) >= before + count)
        return zalo.messages_to(resident)[before:]

    [consent] = await says("/khaosat THON-1")
    assert "1. Đồng ý" in consent.text
    await says("1")
    await says("1")
    await says("Hoàng Văn Sáng")
    _created, first = await says("bỏ qua", 2)
    assert "Câu 1/" in first.text
    assert "Gõ một số" in first.text
    for answer in ("3", "2", "2", "2", "3", "2", "1", "1", "1", "2", "2", "3", "2, 4", "0912 345 678"):
        [last] = await says(answer)
    assert "1. Gửi câu trả lời" in last.text
    assert "0912345678" in last.text
    await says("1")
    [report] = await _zalo_says(zalo, "/baocao")
    assert "1 hộ đã gửi" in report.text
    assert "Biểu đồ" not in report.text  # Zalo takes no uploaded image
    [export] = await _zalo_says(zalo, "/xuat")
    assert "Telegram" in export.text
    assert "langso export" in export.text
