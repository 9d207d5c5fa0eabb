"""Announcements end to end: the real bot, python-telegram-bot and SQLite/PostgreSQL, against the fake
Telegram Bot API on 127.0.0.1."""

from __future__ import annotations

from sqlmodel import func, select

from storage.models import Announcement, AnnouncementStatus, Delivery
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram, Sent
from tests.harness import COMMUNE_GROUP, HEAD, OFFICIAL, RESIDENT, VILLAGE_GROUPS, Harness

VILLAGE_CHATS = list(VILLAGE_GROUPS.values())


async def test_village_head_broadcasts_to_three_villages(fake: FakeTelegram, database_url: str) -> None:
    h = Harness(fake, settings_for(database_url, fake.url))
    await h.start()
    try:
        await h.seed_commune()
        [preview] = await h.send(HEAD, "/thongbao Họp thôn lúc 19h tối thứ Bảy tại nhà văn hóa")
        assert "Họp thôn lúc 19h tối thứ Bảy" in preview.text
        assert "3 nhóm" in preview.text
        assert "1. Gửi ngay" in preview.text

        await h.press(HEAD, HEAD, preview, "1")  # the "Gửi ngay" button
        await h.wait_groups(VILLAGE_CHATS)
        for chat in VILLAGE_CHATS:
            [notice] = fake.messages_to(chat)
            assert "Họp thôn lúc 19h tối thứ Bảy tại nhà văn hóa" in notice.text
            assert notice.reply_markup["inline_keyboard"][0][0]["text"] == "✅ Đã đọc"
        assert fake.messages_to(COMMUNE_GROUP) == []  # a village head does not reach the commune group

        notice = fake.messages_to(VILLAGE_CHATS[0])[0]
        ack = notice.reply_markup["inline_keyboard"][0][0]["callback_data"]
        await h.press(RESIDENT, VILLAGE_CHATS[0], notice, ack)
        await h.press(RESIDENT, VILLAGE_CHATS[0], notice, ack)  # twice counts once
        assert "đã xác nhận đọc rồi" in fake.answered_callbacks[-1]["text"]

        await h.eventually(h.sent_count, 3)
        [status] = await h.send(HEAD, "/tinhtrang")
        assert "Tổng: 3 nhóm đã nhận, 0 lỗi, 0 đang chờ; 1 người" in status.text
        assert "Thôn 1 (Telegram): đã nhận 1, lỗi 0, đang chờ 0 nhóm — 1 người đã đọc" in status.text
    finally:
        await h.stop()


async def test_numbers_typed_work_like_buttons_and_bad_answers_are_reasked(harness: Harness) -> None:
    fake = harness.fake
    await harness.send(HEAD, "/thongbao")
    [preview] = await harness.send(HEAD, "Lịch tiêm phòng cho trẻ em vào sáng thứ Hai")
    assert "Lịch tiêm phòng" in preview.text
    [again] = await harness.send(HEAD, "gửi đi")
    assert "trả lời bằng một số từ 1 đến 6" in again.text
    [ask] = await harness.send(HEAD, "3")  # edit
    assert "nội dung mới" in ask.text
    [preview] = await harness.send(HEAD, "Lịch tiêm phòng đổi sang sáng thứ Ba")
    assert "sáng thứ Ba" in preview.text
    [targets] = await harness.send(HEAD, "4")
    assert "2. Thôn 1" in targets.text
    [preview] = await harness.send(HEAD, "2")
    assert "Nơi nhận: Thôn 1 — 1 nhóm" in preview.text
    await harness.send(HEAD, "1")
    await harness.wait_groups([VILLAGE_GROUPS["THON-1"]])
    assert "sáng thứ Ba" in fake.messages_to(VILLAGE_GROUPS["THON-1"])[0].text
    assert fake.messages_to(VILLAGE_GROUPS["THON-2"]) == []


async def test_cancel_sends_nothing(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Cúp nước ngày mai")
    [bye] = await harness.send(HEAD, "6")
    assert "Đã hủy" in bye.text
    await harness.send(HEAD, "/thongbao Bản nháp khác")
    [bye] = await harness.send(HEAD, "/huy")
    assert "Đã hủy" in bye.text
    assert all(harness.fake.messages_to(c) == [] for c in VILLAGE_CHATS)


async def test_resident_cannot_broadcast(harness: Harness) -> None:
    [refusal] = await harness.send(RESIDENT, "/thongbao Mọi người đi họp")
    assert "chỉ trưởng thôn và cán bộ xã" in refusal.text.lower()
    assert all(harness.fake.messages_to(c) == [] for c in [COMMUNE_GROUP, *VILLAGE_CHATS])
    async with harness.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Delivery))).one() == 0
        assert (await session.exec(select(func.count()).select_from(Announcement))).one() == 0


async def _relay(h: Harness, text: str | None = None, **kw: object) -> Sent:
    """The official writes in the commune group; the bot answers in their private chat, not in the group."""
    fake = h.fake
    before, in_group = len(fake.messages_to(OFFICIAL)), len(fake.messages_to(COMMUNE_GROUP))
    fake.message(COMMUNE_GROUP, OFFICIAL, text, **kw)  # type: ignore[arg-type]
    await h.settle()
    await fake.wait_for(lambda: len(fake.messages_to(OFFICIAL)) > before)
    assert len(fake.messages_to(COMMUNE_GROUP)) == in_group
    [preview] = fake.messages_to(OFFICIAL)[before:]
    return preview


async def test_commune_relay_is_previewed_in_private_before_it_reaches_every_village(harness: Harness) -> None:
    fake = harness.fake
    await harness.send(OFFICIAL, "/trogiup")  # the official has opened a private chat with the bot
    preview = await _relay(harness, "#thongbao Lịch tiếp dân của xã tuần này")
    assert "Lịch tiếp dân của xã tuần này" in preview.text
    assert "Nơi nhận: Thôn 1, Thôn 2, Thôn 3 — 3 nhóm" in preview.text
    assert "1. Gửi ngay" in preview.text
    await harness.settle()
    assert all(fake.messages_to(c) == [] for c in VILLAGE_CHATS)  # nothing goes before the official says so

    await harness.press(OFFICIAL, OFFICIAL, preview, "1")  # one tap: "Gửi ngay"
    await harness.wait_groups(VILLAGE_CHATS)
    assert all("Lịch tiếp dân" in fake.messages_to(c)[0].text for c in VILLAGE_CHATS)
    assert "Xã Hòa Bình" in fake.messages_to(VILLAGE_CHATS[0])[0].text  # signed for the commune
    assert fake.messages_to(COMMUNE_GROUP) == []  # never echoed back into the group it came from

    # /chuyentiep as a reply previews the same way: the targets can be changed before it goes
    fake.message(COMMUNE_GROUP, RESIDENT, "Thông báo: thu phí vệ sinh tháng 12")
    await harness.settle()
    preview = await _relay(harness, "/chuyentiep", reply_to_message_id=fake.last_message_id(COMMUNE_GROUP))
    assert "thu phí vệ sinh" in preview.text
    assert "3 nhóm" in preview.text
    [targets] = await harness.send(OFFICIAL, "4")
    number = next(line.split(".")[0] for line in targets.text.splitlines() if line.endswith("Thôn 2"))
    [preview] = await harness.send(OFFICIAL, number)
    assert "Nơi nhận: Thôn 2 — 1 nhóm" in preview.text
    await harness.send(OFFICIAL, "1")
    await harness.wait_groups([VILLAGE_GROUPS["THON-2"]], count=2)
    assert "thu phí vệ sinh" in fake.messages_to(VILLAGE_GROUPS["THON-2"])[1].text
    await harness.settle()
    assert len(fake.messages_to(VILLAGE_GROUPS["THON-1"])) == 1
    assert fake.messages_to(COMMUNE_GROUP) == []

    # and cancelling there sends nothing
    await _relay(harness, "#thongbao Tin viết nhầm")
    [bye] = await harness.send(OFFICIAL, "6")
    assert "Đã hủy" in bye.text
    await harness.settle()
    assert all("Tin viết nhầm" not in m.text for c in VILLAGE_CHATS for m in harness.fake.messages_to(c))


async def test_relay_by_an_official_who_never_opened_the_bot_waits_as_a_draft(harness: Harness) -> None:
    fake = harness.fake
    [told] = await harness.send(OFFICIAL, "#thongbao Lịch tiêm chủng tháng 12", chat=COMMUNE_GROUP)
    assert "chưa mở trò chuyện riêng với bot" in told.text
    assert "chưa gửi xuống thôn nào" in told.text
    assert "https://t.me/langso_test_bot?start=thongbao" in told.text
    await harness.settle()
    assert fake.messages_to(OFFICIAL) == []
    assert all(fake.messages_to(c) == [] for c in VILLAGE_CHATS)
    async with harness.app.sessions() as session:
        [draft] = (await session.exec(select(Announcement))).all()
        assert draft.status == AnnouncementStatus.DRAFT
        assert (await session.exec(select(func.count()).select_from(Delivery))).one() == 0

    [preview] = await harness.send(OFFICIAL, "/start thongbao")  # the link in the group
    assert "Lịch tiêm chủng tháng 12" in preview.text
    assert "Thôn 1, Thôn 2, Thôn 3 — 3 nhóm" in preview.text
    await harness.send(OFFICIAL, "1")
    await harness.wait_groups(VILLAGE_CHATS)
    assert all("Lịch tiêm chủng" in fake.messages_to(c)[0].text for c in VILLAGE_CHATS)


async def test_a_relay_draft_is_shown_before_any_answer_to_its_menu(harness: Harness) -> None:
    """Someone who opens the bot by its name, not by the link, and types a number first: the preview, not a send."""
    await harness.send(OFFICIAL, "#thongbao Cắt điện chiều nay", chat=COMMUNE_GROUP)
    [preview] = await harness.send(OFFICIAL, "1")
    assert "XEM TRƯỚC" in preview.text
    assert "Cắt điện chiều nay" in preview.text
    await harness.settle()
    assert all(harness.fake.messages_to(c) == [] for c in VILLAGE_CHATS)
    [welcome, preview] = await harness.send(OFFICIAL, "/start", expect=2)
    assert "Xin chào" in welcome.text
    assert "Cắt điện chiều nay" in preview.text


async def test_cancelling_a_notice_that_has_all_gone_out_says_so(harness: Harness) -> None:
    await harness.send(HEAD, "/thongbao Nước sạch đã có lại")
    [queued] = await harness.send(HEAD, "1")
    number = int(queued.text.split("số ")[1].split(":")[0])
    await harness.eventually(harness.sent_count, 3)
    [reply] = await harness.send(HEAD, f"/huythongbao {number}")
    assert "không còn gì để dừng" in reply.text
    assert "0 nhóm" not in reply.text
    [status] = await harness.send(HEAD, f"/tinhtrang {number}")
    assert "(đã dừng)" not in status.text
    assert "Tổng: 3 nhóm đã nhận" in status.text


async def test_relay_by_someone_without_the_role_is_refused(harness: Harness) -> None:
    [refusal] = await harness.send(RESIDENT, "#thongbao tin giả", chat=COMMUNE_GROUP)
    assert "chỉ cán bộ xã" in refusal.text.lower()
    [refusal] = await harness.send(HEAD, "#thongbao trưởng thôn cũng không được", chat=COMMUNE_GROUP)
    assert "chỉ cán bộ xã" in refusal.text.lower()
    await harness.settle()
    assert all(harness.fake.messages_to(c) == [] for c in VILLAGE_CHATS)


async def test_photo_with_caption_is_relayed_as_photo(harness: Harness) -> None:
    [preview] = await harness.send(HEAD, caption="/thongbao Ảnh lịch họp", photo=True)
    assert "kèm 1 ảnh" in preview.text
    await harness.send(HEAD, "1")
    await harness.wait_groups(VILLAGE_CHATS)
    sent = harness.fake.messages_to(VILLAGE_CHATS[0])[0]
    assert sent.method == "sendPhoto"
    assert sent.photo
    assert "Ảnh lịch họp" in sent.text


async def test_long_notice_is_split_at_paragraphs_in_order(harness: Harness) -> None:
    paragraphs = [f"Mục {n}. " + "Nội dung dài của thông báo. " * 40 for n in range(1, 6)]  # ~5.9k chars
    await harness.send(HEAD, "/thongbao " + "\n\n".join(paragraphs))
    await harness.send(HEAD, "1")
    chat = VILLAGE_CHATS[0]
    await harness.wait_groups([chat], count=2)
    parts = harness.fake.messages_to(chat)
    assert len(parts) == 2
    assert all(len(p.text) <= 4096 for p in parts)
    assert parts[0].text.index("Mục 1.") < parts[0].text.index("Mục 2.")
    assert parts[1].text.lstrip().startswith(("Mục 3.", "Mục 4.")) or "Mục 5." in parts[1].text
    assert parts[0].reply_markup is None
    assert parts[1].reply_markup is not None  # the button ends the notice
