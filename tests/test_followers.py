"""Followers: residents who joined a village and said yes get its notices in a private chat, on Telegram
and Zalo, one copy per chat; they acknowledge with the button or by answering "1"; /dunglai stops it; a
follower who blocked the bot is stopped, not retried, and reached again once they write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from sqlmodel import col, func, select

from bot.app import App
from handlers import admin
from storage.models import Acknowledgement, AuditEvent, ChatGroup, Delivery, DeliveryStatus, Follower
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram, Sent
from tests.fake_zalo import FakeZalo

TEXT = "message.text.received"
HEAD = 101  # village head of THON-1, on Telegram
TG_GROUP = -501
TG_FOLLOWERS = (201, 202)
ZALO_FOLLOWERS = ("zl-1", "zl-2", "zl-3")
ZALO_HEAD = "zl-head"


@dataclass
class Village:
    app: App
    telegram: FakeTelegram
    zalo: FakeZalo

    async def tg(self, user: int, text: str, count: int = 1) -> list[Sent]:
        before = len(self.telegram.messages_to(user))
        self.telegram.message(user, user, text)
        await self.telegram.wait_for(lambda: len(self.telegram.messages_to(user)) >= before + count)
        return self.telegram.messages_to(user)[before:]

    async def zl(self, user: str, text: str, count: int = 1, **kw: object) -> list:
        before = len(self.zalo.messages_to(user))
        self.zalo.push(TEXT, user, user, text, **kw)  # type: ignore[arg-type]
        await self.zalo.wait_for(lambda: len(self.zalo.messages_to(user)) >= before + count)
        return self.zalo.messages_to(user)[before:]

    async def follow_all(self) -> None:
        for user in TG_FOLLOWERS:
            [joined] = await self.tg(user, "/thamgia THON-1")
            assert "Bạn đã tham gia Thôn 1" in joined.text
            assert "1. Có" in joined.text
            assert "Từ nay, thông báo của Thôn 1" in (await self.tg(user, "1"))[0].text
        for user in ZALO_FOLLOWERS:
            [joined] = await self.zl(user, "/thamgia THON-1")
            assert "nhận thông báo của Thôn 1" in joined.text
            assert "2. Không" in joined.text
            await self.zl(user, "1")

    async def broadcast(self, text: str) -> Sent:
        [preview] = await self.tg(HEAD, f"/thongbao {text}")
        await self.tg(HEAD, "1")
        return preview

    async def deliveries(self) -> dict[str, int]:
        async with self.app.sessions() as session:
            rows = await session.exec(select(Delivery.status, func.count()).group_by(Delivery.status))
            return dict(rows.all())


@pytest.fixture
async def village(fake: FakeTelegram, zalo: FakeZalo, sqlite_url: str) -> AsyncIterator[Village]:
    zalo.bot["can_join_groups"] = False  # as reported of the Zalo Bot Platform
    app = App(settings_for(sqlite_url, fake.url, env={"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url}))
    await app.start()
    async with app.sessions() as session:
        await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
        place = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
        await admin.add_place(session, "village", "THON-2", "Thôn 2", "XA1")
        await admin.grant_role(session, "telegram", str(HEAD), "village_head", "THON-1")
        await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
        session.add(ChatGroup(platform="telegram", chat_id=str(TG_GROUP), title="Nhóm Thôn 1", place_id=place.id))
        await session.commit()
    fake.add_group(TG_GROUP, "Nhóm Thôn 1")
    for user in (HEAD, *TG_FOLLOWERS):
        fake.add_private(user)
    yield Village(app, fake, zalo)
    await app.stop()


def _notices(sent: list) -> list:
    return [m for m in sent if (m.text or "").startswith("📢 THÔNG BÁO")]


async def test_one_copy_per_chat_and_acknowledgements_count_people(village: Village) -> None:
    await village.follow_all()
    preview = await village.broadcast("Họp thôn tối thứ Bảy")
    assert "1 nhóm, 5 người nhận tin riêng" in preview.text
    assert "Thôn 1 (Telegram): 1 nhóm, 2 người nhận tin riêng" in preview.text
    assert "Thôn 1 (Zalo): 0 nhóm, 3 người nhận tin riêng" in preview.text
    telegram, zalo = village.telegram, village.zalo
    chats = [TG_GROUP, *TG_FOLLOWERS]
    await telegram.wait_for(lambda: all(_notices(telegram.messages_to(c)) for c in chats))
    await zalo.wait_for(lambda: all(_notices(zalo.messages_to(u)) for u in ZALO_FOLLOWERS))
    await village.app.dispatcher.drain()
    assert [len(_notices(telegram.messages_to(c))) for c in chats] == [1, 1, 1]
    assert [len(_notices(zalo.messages_to(u))) for u in ZALO_FOLLOWERS] == [1, 1, 1]
    private = _notices(zalo.messages_to(ZALO_FOLLOWERS[0]))[0].text
    assert private.rstrip().endswith("Trả lời 1 khi đã đọc.")
    assert "Họp thôn tối thứ Bảy" in private
    assert "Trả lời 1" not in _notices(telegram.messages_to(TG_GROUP))[0].text  # the group has the button

    for user in ZALO_FOLLOWERS:  # Zalo has no buttons: "1" (or "đã đọc", "ok") right after the notice
        [thanks] = await village.zl(user, "1" if user != "zl-3" else "Đã đọc")
        assert "đã ghi nhận bạn đã đọc" in thanks.text
    notice = _notices(telegram.messages_to(TG_FOLLOWERS[0]))[0]
    for _ in range(2):  # a second press by the same person counts once
        answered = len(telegram.answered_callbacks)
        telegram.callback(TG_FOLLOWERS[0], TG_FOLLOWERS[0], notice.reply_markup["inline_keyboard"][0][0]["callback_data"],
                          notice.message_id)
        await telegram.wait_for(lambda before=answered: len(telegram.answered_callbacks) > before)
    assert "đã xác nhận đọc rồi" in telegram.answered_callbacks[-1].get("text", "")

    [status] = await village.tg(HEAD, "/tinhtrang")
    assert ("Thôn 1 (Telegram): đã nhận 1, lỗi 0, đang chờ 0 nhóm; đã nhận 2, lỗi 0, đang chờ 0 người nhận tin riêng"
            " — 1 người đã đọc") in status.text
    assert "Thôn 1 (Zalo): đã nhận 3, lỗi 0, đang chờ 0 người nhận tin riêng — 3 người đã đọc" in status.text
    assert "Tổng: 1 nhóm đã nhận" in status.text
    assert "5 người nhận tin riêng đã nhận" in status.text
    assert "4 người đã đọc" in status.text
    async with village.app.sessions() as session:
        assert (await session.exec(select(func.count()).select_from(Acknowledgement))).one() == 4
        assert (await session.exec(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "follow_on"))).one() == 5


async def test_a_1_after_a_notice_is_read_and_the_open_question_waits(village: Village) -> None:
    """The notice is the last thing the bot said: "1" acknowledges it, whatever menu was open before;
    the menu is still there for the next answer. Once the bot has spoken since, "1" is the menu's."""
    await village.follow_all()
    user = ZALO_FOLLOWERS[0]
    await village.zl(user, "/thamgia")  # a menu of villages: "1. Thôn 1 2. Thôn 2"
    await village.broadcast("Lịch tiêm phòng")
    await village.zalo.wait_for(lambda: bool(_notices(village.zalo.messages_to(user))))
    [thanks] = await village.zl(user, "1")
    assert "đã ghi nhận bạn đã đọc" in thanks.text
    assert "vẫn chờ bạn trả lời" in thanks.text
    [menu_answer] = await village.zl(user, "1")  # now the menu's answer: Thôn 1, where they are already
    assert "Thôn 1" in menu_answer.text
    assert "đã ghi nhận" not in menu_answer.text
    [other] = await village.zl(ZALO_FOLLOWERS[1], "ok")
    [again] = await village.zl(ZALO_FOLLOWERS[1], "ok")  # the bot spoke after the notice: not an ack
    assert "đã ghi nhận" in other.text
    assert "đã ghi nhận" not in again.text
    assert "xác nhận đọc rồi" not in again.text


async def test_dunglai_stops_the_next_notice_and_nhantin_starts_it(village: Village) -> None:
    await village.follow_all()
    stopping = TG_FOLLOWERS[1]
    [stopped] = await village.tg(stopping, "/dunglai")
    assert "Đã dừng" in stopped.text
    await village.broadcast("Thông báo thứ nhất")
    telegram = village.telegram
    await telegram.wait_for(lambda: bool(_notices(telegram.messages_to(TG_FOLLOWERS[0]))))
    await village.zalo.wait_for(lambda: all(_notices(village.zalo.messages_to(u)) for u in ZALO_FOLLOWERS))
    assert _notices(telegram.messages_to(stopping)) == []
    assert "Từ nay, thông báo của Thôn 1" in (await village.tg(stopping, "/nhantin"))[0].text
    await village.broadcast("Thông báo thứ hai")
    await telegram.wait_for(lambda: len(_notices(telegram.messages_to(stopping))) == 1)
    assert "Thông báo thứ hai" in _notices(telegram.messages_to(stopping))[0].text


async def test_nobody_is_followed_without_a_yes_and_leaving_ends_it(village: Village) -> None:
    telegram = village.telegram
    await village.tg(TG_FOLLOWERS[0], "/thamgia THON-1")
    assert "bot sẽ không gửi thông báo" in (await village.tg(TG_FOLLOWERS[0], "2"))[0].text  # no
    await village.tg(TG_FOLLOWERS[1], "/thamgia THON-1")
    await village.tg(TG_FOLLOWERS[1], "1")
    await village.tg(TG_FOLLOWERS[1], "/roithon")
    await village.zl(ZALO_FOLLOWERS[0], "/thamgia THON-1")
    answer = await village.zl(ZALO_FOLLOWERS[0], "cách cài vneid")  # moved on: a question, not a yes
    assert "VNeID" in answer[0].text
    preview = await village.broadcast("Không ai nhận riêng")
    assert "1 nhóm." in preview.text
    assert "người nhận tin riêng" not in preview.text
    await telegram.wait_for(lambda: bool(_notices(telegram.messages_to(TG_GROUP))))
    assert await village.deliveries() == {DeliveryStatus.SENT: 1}
    async with village.app.sessions() as session:
        rows = (await session.exec(select(Follower).order_by(col(Follower.id)))).all()
    assert [(f.chat_id, f.following, f.answered_at is not None) for f in rows] == [
        (str(TG_FOLLOWERS[0]), False, True), (str(TG_FOLLOWERS[1]), False, False), (ZALO_FOLLOWERS[0], False, False),
    ]


async def test_a_follower_who_blocked_the_bot_is_stopped_not_retried(village: Village) -> None:
    await village.follow_all()
    telegram = village.telegram
    blocked = TG_FOLLOWERS[0]
    telegram.kick(blocked)
    await village.broadcast("Thông báo thứ nhất")
    await telegram.wait_for(lambda: bool(_notices(telegram.messages_to(TG_FOLLOWERS[1]))))
    await village.zalo.wait_for(lambda: all(_notices(village.zalo.messages_to(u)) for u in ZALO_FOLLOWERS))
    await village.app.dispatcher.drain()

    async def states() -> dict[str, int]:
        return await village.deliveries()

    await _eventually(states, {DeliveryStatus.SENT: 5, DeliveryStatus.STOPPED: 1})
    async with village.app.sessions() as session:
        follower = (await session.exec(select(Follower).where(Follower.chat_id == str(blocked)))).one()
        assert follower.stopped_at is not None
        assert follower.following
    await village.broadcast("Thông báo thứ hai")  # not targeted: one row fewer
    await telegram.wait_for(lambda: len(_notices(telegram.messages_to(TG_FOLLOWERS[1]))) == 2)
    async with village.app.sessions() as session:
        second = (await session.exec(select(func.max(Delivery.announcement_id)))).one()
        targets = (await session.exec(select(func.count()).where(Delivery.announcement_id == second))).one()
    assert targets == 5
    assert len([e for e in telegram.errors if e["chat_id"] == blocked]) == 1  # one refusal, never retried

    telegram._chat(blocked).blocked = None  # they unblock the bot and write to it again
    await village.tg(blocked, "/trogiup")
    await village.broadcast("Thông báo thứ ba")
    await telegram.wait_for(lambda: len(_notices(telegram.messages_to(blocked))) == 1)
    assert "Thông báo thứ ba" in _notices(telegram.messages_to(blocked))[0].text


async def _eventually(probe: Callable[[], Awaitable[object]], expected: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (seen := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"still {seen!r}, expected {expected!r}"
        await asyncio.sleep(0.05)


async def test_zalo_as_it_is_ganthon_warns_and_a_reply_1_in_a_group_counts(village: Village) -> None:
    """getMe says the Zalo bot cannot join groups: /ganthon (with the bot mentioned first, as Zalo groups
    need) still links a group whose update did arrive, and says notices may not reach it; a member's "1"
    in reply to the notice counts as read, silently."""
    zalo = village.zalo
    group = "zl-group-1"

    async def in_group(user: str, text: str, reply_to: object = None) -> None:
        zalo.push(TEXT, group, user, text, chat_type="GROUP", reply_to=reply_to)  # type: ignore[arg-type]
        await zalo.wait_for(lambda: zalo.pending_updates == 0)
        await village.app.dispatcher.drain()

    [help_text] = await village.zl("zl-newcomer", "/trogiup")
    assert "/nhantin" in help_text.text
    assert "Trên Zalo, thông báo của thôn tới bà con qua tin nhắn riêng" in help_text.text
    await in_group(ZALO_HEAD, "@bot.LangSo /ganthon THON-1")
    await zalo.wait_for(lambda: len(zalo.messages_to(group)) >= 2)
    linked, warning = zalo.messages_to(group)[:2]
    assert "Thôn 1" in linked.text
    assert "không được vào nhóm" in warning.text
    assert "/nhantin" in warning.text
    await village.broadcast("Lịch họp")
    await zalo.wait_for(lambda: bool(_notices(zalo.messages_to(group))))
    notice = _notices(zalo.messages_to(group))[0]
    before = len(zalo.messages_to(group))
    await in_group("zl-member", "1", reply_to=notice)
    await in_group("zl-member-2", "1")  # not a reply to the notice: just talk
    async with village.app.sessions() as session:
        acks = (await session.exec(select(Acknowledgement.user_id))).all()
    assert acks == ["zl-member"]
    assert len(zalo.messages_to(group)) == before
    [status] = await village.tg(HEAD, "/tinhtrang")
    assert "Thôn 1 (Zalo): đã nhận 1, lỗi 0, đang chờ 0 nhóm — 1 người đã đọc" in status.text
