"""Photos and documents across platforms, through both fakes: the bot fetches a notice's file once from
where it was written, uploads it to Telegram (then sends the id Telegram gave it), serves it to Zalo
from its own web server at an unguessable, expiring address, and refuses what is too large."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import pytest
from sqlmodel import func, select

from bot.app import App
from handlers import admin
from storage.models import Announcement, AnnouncementStatus, ChatGroup, Media, utcnow
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram, Sent
from tests.fake_zalo import FakeZalo

IMAGE = "message.image.received"
TG_HEAD, ZALO_HEAD = 101, "zl-head-1"
TG_GROUPS = (-501, -502)
ZALO_GROUPS = ("zl-group-1", "zl-group-2")
ZALO_FOLLOWER = "zl-resident-1"  # follows THON-1 in a private chat
PHOTO = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40 + b"\xff\xd9"  # stands for a JPEG: every byte value
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20 + b"\n%%EOF"


class Clock:
    """The bot's clock, moved forward by the test (a link's expiry)."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Bot:
    app: App
    telegram: FakeTelegram
    zalo: FakeZalo
    clock: Clock
    public_url: str


async def _start(fake: FakeTelegram, zalo: FakeZalo, database_url: str, port: int, public: bool) -> AsyncIterator[Bot]:
    public_url = f"http://127.0.0.1:{port}" if public else ""
    settings = settings_for(
        database_url,
        fake.url,
        env={"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url},
        web={"port": port, "public_url": public_url},
    )
    clock = Clock()
    app = App(settings, clock=clock)
    await app.start()
    try:
        async with app.sessions() as session:
            await admin.add_place(session, "commune", "XA1", "Xã Hòa Bình", None)
            village = await admin.add_place(session, "village", "THON-1", "Thôn 1", "XA1")
            await admin.grant_role(session, "telegram", str(TG_HEAD), "village_head", "THON-1")
            await admin.grant_role(session, "zalo", ZALO_HEAD, "village_head", "THON-1")
            for chat in TG_GROUPS:
                session.add(ChatGroup(platform="telegram", chat_id=str(chat), place_id=village.id))
            for chat in ZALO_GROUPS:
                session.add(ChatGroup(platform="zalo", chat_id=chat, place_id=village.id))
            await session.commit()
        for chat in TG_GROUPS:
            fake.add_group(chat)
        fake.add_private(TG_HEAD)
        yield Bot(app, fake, zalo, clock, public_url)
    finally:
        await app.stop()


@pytest.fixture
async def bot(fake: FakeTelegram, zalo: FakeZalo, database_url: str, unused_tcp_port: int) -> AsyncIterator[Bot]:
    """On SQLite and on PostgreSQL, where several processes serve the files from the same rows."""
    async for started in _start(fake, zalo, database_url, unused_tcp_port, public=True):
        yield started


@pytest.fixture
async def bot_unreachable(fake: FakeTelegram, zalo: FakeZalo, sqlite_url: str, unused_tcp_port: int) -> AsyncIterator[Bot]:
    """No [web] public_url: Zalo cannot be given an address to fetch a file from."""
    async for started in _start(fake, zalo, sqlite_url, unused_tcp_port, public=False):
        yield started


async def _telegram_head(bot: Bot, text: str | None = None, **kw: object) -> Sent:
    before = len(bot.telegram.messages_to(TG_HEAD))
    bot.telegram.message(TG_HEAD, TG_HEAD, text, **kw)  # type: ignore[arg-type]
    await bot.telegram.wait_for(lambda: len(bot.telegram.messages_to(TG_HEAD)) > before)
    return bot.telegram.messages_to(TG_HEAD)[before]


async def _fetch(url: str) -> tuple[int, bytes, str]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        return response.status, await response.read(), response.content_type


async def _groups_got_it(bot: Bot) -> None:
    await bot.telegram.wait_for(lambda: all(bot.telegram.messages_to(c) for c in TG_GROUPS))
    await bot.zalo.wait_for(lambda: all(bot.zalo.messages_to(c) for c in ZALO_GROUPS))


async def _telegram_notice(bot: Bot, caption: str, **file: object) -> Sent:
    """The Telegram head writes a notice with a file and sends it now; returns the preview."""
    preview = await _telegram_head(bot, caption=f"/thongbao {caption}", **file)
    await _telegram_head(bot, "1")
    await _groups_got_it(bot)
    return preview


async def _zalo_follows(bot: Bot, user: str) -> None:
    for text in ("/thamgia THON-1", "1"):  # joins the village, then says yes to its notices
        want = len(bot.zalo.messages_to(user)) + 1
        bot.zalo.push("message.text.received", user, user, text)
        await bot.zalo.wait_for(lambda want=want: len(bot.zalo.messages_to(user)) >= want)
    await bot.app.dispatcher.drain()


async def test_a_telegram_photo_reaches_zalo_groups_and_followers_from_the_bots_own_address(bot: Bot) -> None:
    await _zalo_follows(bot, ZALO_FOLLOWER)
    followed = len(bot.zalo.messages_to(ZALO_FOLLOWER))
    preview = await _telegram_notice(bot, "Lịch họp thôn tháng này", photo=True, content=PHOTO)
    assert "kèm 1 ảnh" in preview.text
    await bot.zalo.wait_for(lambda: len(bot.zalo.messages_to(ZALO_FOLLOWER)) > followed)
    for chat in (*ZALO_GROUPS, ZALO_FOLLOWER):
        sent = bot.zalo.messages_to(chat)[-1]
        assert sent.method == "sendPhoto"
        assert "Lịch họp thôn tháng này" in (sent.text or "")
        assert sent.photo
        assert sent.photo.startswith(f"{bot.public_url}/tep-dinh-kem/")
        status, body, content_type = await _fetch(sent.photo)
        assert (status, body, content_type) == (200, PHOTO, "image/jpeg")
    assert len(bot.telegram.downloads) == 1  # fetched once for every Zalo chat
    for chat in TG_GROUPS:  # Telegram's own groups get Telegram's own file id, nothing uploaded
        [sent] = bot.telegram.messages_to(chat)
        assert sent.method == "sendPhoto"
        assert sent.photo
        assert sent.photo != "<upload>"

    url = bot.zalo.messages_to(ZALO_GROUPS[0])[0].photo
    assert url
    root, link_id, token, name = url.rsplit("/", 3)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for address in (f"{root}/{link_id}/{wrong}/{name}", f"{root}/{int(link_id) + 99}/{token}/{name}",
                    f"{root}/", root, f"{root}/{link_id}/"):
        assert (await _fetch(address))[0] == 404, address
    bot.clock.now += timedelta(days=31)  # past [media] keep_days (30)
    assert (await _fetch(url))[0] == 404


async def test_a_zalo_photo_is_uploaded_to_telegram_once_then_sent_by_its_id(bot: Bot) -> None:
    url = bot.zalo.host("anh-hop-thon.jpg", PHOTO)
    bot.zalo.push(IMAGE, ZALO_HEAD, ZALO_HEAD, photo_url=url, caption="/thongbao Ảnh lịch họp")
    await bot.zalo.wait_for(lambda: len(bot.zalo.messages_to(ZALO_HEAD)) == 1)
    assert "kèm 1 ảnh" in (bot.zalo.messages_to(ZALO_HEAD)[0].text or "")
    bot.zalo.push("message.text.received", ZALO_HEAD, ZALO_HEAD, "1")
    await _groups_got_it(bot)
    sends = sorted((bot.telegram.messages_to(c)[0] for c in TG_GROUPS), key=lambda s: s.at)
    assert [s.method for s in sends] == ["sendPhoto", "sendPhoto"]
    assert sends[0].photo == "<upload>"
    assert sends[0].params["photo"].content == PHOTO
    assert sends[1].photo not in (None, "<upload>")  # the id Telegram gave the upload
    assert bot.telegram.files[sends[1].photo][1] == PHOTO
    assert "Ảnh lịch họp" in (sends[0].text or "")
    assert "Ảnh lịch họp" in (sends[1].text or "")
    assert bot.zalo.downloads == ["anh-hop-thon.jpg"]  # fetched once
    for chat in ZALO_GROUPS:  # Zalo's own groups get the photo's own URL
        assert bot.zalo.messages_to(chat)[0].photo == url


async def test_a_pdf_reaches_zalo_as_a_link_to_the_same_store(bot: Bot) -> None:
    await _telegram_notice(bot, "Quyết định về lịch tiêm chủng", document=True, content=PDF, file_name="quyet-dinh.pdf")
    [sent] = bot.zalo.messages_to(ZALO_GROUPS[0])
    assert sent.method == "sendMessage"
    assert "Quyết định về lịch tiêm chủng" in (sent.text or "")
    line = next(line for line in (sent.text or "").splitlines() if "Tệp đính kèm" in line)
    assert "quyet-dinh.pdf" in line
    link = line.rsplit(" ", 1)[-1]
    assert link.startswith(f"{bot.public_url}/tep-dinh-kem/")
    assert await _fetch(link) == (200, PDF, "application/pdf")
    assert bot.telegram.messages_to(TG_GROUPS[0])[0].method == "sendDocument"
    async with bot.app.sessions() as session:  # one row for the file, however many chats got it
        assert (await session.exec(select(func.count()).select_from(Media))).one() == 1


@pytest.mark.parametrize(
    ("file", "said"),
    [
        ({"document": True, "file_size": 30 * 1024 * 1024}, "quá mức 20 MB"),
        ({"photo": True, "file_size": 12 * 1024 * 1024}, "quá mức 10 MB"),
        ({"document": True, "file_name": "cap-nhat.apk", "mime_type": "application/vnd.android.package-archive"}, ".apk"),
    ],
)
async def test_a_file_over_the_limits_is_refused_and_nothing_is_sent(bot: Bot, file: dict, said: str) -> None:
    refusal = await _telegram_head(bot, caption="/thongbao Xem tệp đính kèm", **file)
    assert said in refusal.text
    assert "Chưa có gì được gửi đi" in refusal.text
    preview = await _telegram_head(bot, "/thongbao Họp thôn tối nay")  # the next notice is written as usual
    assert "XEM TRƯỚC" in preview.text
    await bot.app.dispatcher.drain()
    async with bot.app.sessions() as session:
        notices = (await session.exec(select(Announcement.text))).all()
    assert notices == ["Họp thôn tối nay"]  # the refused one left no draft
    assert all(bot.telegram.messages_to(c) == [] for c in TG_GROUPS)
    assert all(bot.zalo.messages_to(c) == [] for c in ZALO_GROUPS)


async def test_without_a_public_url_zalo_gets_the_text_and_the_author_a_note(bot_unreachable: Bot) -> None:
    bot = bot_unreachable
    before = len(bot.telegram.messages_to(TG_HEAD))
    await _telegram_notice(bot, "Lịch họp thôn", photo=True, content=PHOTO)
    for chat in ZALO_GROUPS:
        [sent] = bot.zalo.messages_to(chat)
        assert sent.method == "sendMessage"
        assert "Lịch họp thôn" in (sent.text or "")
    assert bot.telegram.messages_to(TG_GROUPS[0])[0].method == "sendPhoto"
    await bot.telegram.wait_for(lambda: any("public_url" in (m.text or "")
                                            for m in bot.telegram.messages_to(TG_HEAD)[before:]))
    note = next(m.text for m in bot.telegram.messages_to(TG_HEAD)[before:] if "public_url" in (m.text or ""))
    assert "chỉ nhận được chữ" in note
    assert "Zalo" in note
    assert bot.telegram.downloads == []  # nothing fetched that could not be used


async def test_a_file_goes_with_the_notices_that_use_it_unless_one_recurs(bot: Bot) -> None:
    await _telegram_notice(bot, "Lịch họp", photo=True, content=PHOTO)
    url = bot.zalo.messages_to(ZALO_GROUPS[0])[0].photo
    assert url
    assert (await _fetch(url))[0] == 200

    async def stored() -> int:
        async with bot.app.sessions() as session:
            return (await session.exec(select(func.count()).select_from(Media))).one()

    async def recurring(on: bool) -> None:
        async with bot.app.sessions() as session:
            notice = (await session.exec(select(Announcement))).one()
            notice.status = AnnouncementStatus.RECURRING if on else AnnouncementStatus.QUEUED
            await session.commit()

    assert await bot.app.media.prune() == 0
    assert await stored() == 1  # the notice is recent
    bot.clock.now += timedelta(days=31)  # past [media] keep_days (30)
    await recurring(True)
    assert await bot.app.media.prune() == 0
    assert await stored() == 1  # a recurring notice still needs it
    await recurring(False)
    assert await bot.app.media.prune() == 1
    assert await stored() == 0
    bot.clock.now -= timedelta(days=31)  # the address would not have expired yet: the file is gone
    assert (await _fetch(url))[0] == 404
