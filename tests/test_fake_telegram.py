"""Drive the real python-telegram-bot client against FakeTelegram over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
import warnings
from collections.abc import AsyncIterator

import pytest
import telegram
from aiohttp import web
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.request import HTTPXRequest

try:
    from tests.fake_telegram import FakeTelegram
except ImportError:  # run without the project root on sys.path
    from fake_telegram import FakeTelegram  # type: ignore[no-redef]

# PTB 22 warns whenever RetryAfter.retry_after is read as int (its own __init__ does so).
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

GROUP = -100200300
USER = 4242


def _seconds(value: float | dtm.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


def retry_after_of(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns while migrating int -> timedelta
        warnings.simplefilter("ignore")
        return _seconds(exc.retry_after)


def make_bot(fake: FakeTelegram, token: str | None = None, **request_kwargs: float) -> telegram.Bot:
    return telegram.Bot(
        token or fake.token,
        base_url=f"{fake.url}/bot",
        request=HTTPXRequest(connection_pool_size=8, **request_kwargs),
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_group(GROUP, "Thon 1")
        server.add_private(USER, "An")
        yield server


@pytest.fixture
async def bot(fake: FakeTelegram) -> AsyncIterator[telegram.Bot]:
    b = make_bot(fake)
    await b.initialize()
    yield b
    await b.shutdown()


async def test_get_me_and_send_message(fake: FakeTelegram, bot: telegram.Bot) -> None:
    assert bot.username == "langso_test_bot"
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="vote:1")]])
    msg = await bot.send_message(GROUP, "Hello village", reply_markup=keyboard)
    assert msg.text == "Hello village"
    assert msg.chat.id == GROUP
    assert msg.chat.type == "group"
    assert msg.from_user is not None
    assert msg.from_user.is_bot
    assert msg.reply_markup == keyboard
    second = await bot.send_message(GROUP, "Again")
    assert second.message_id == msg.message_id + 1

    [first, _] = fake.messages_to(GROUP)
    assert first.method == "sendMessage"
    assert first.text == "Hello village"
    assert first.message_id == msg.message_id
    assert first.reply_markup == {"inline_keyboard": [[{"text": "Yes", "callback_data": "vote:1"}]]}
    assert fake.requests >= 3  # getMe + 2 sends


async def test_string_that_looks_like_json_stays_text(fake: FakeTelegram, bot: telegram.Bot) -> None:
    msg = await bot.send_message(USER, "123")
    assert msg.text == "123"
    assert fake.sent[-1].text == "123"


async def test_get_updates_and_offset_confirmation(fake: FakeTelegram, bot: telegram.Bot) -> None:
    uid = fake.message(GROUP, USER, "/start now", first_name="An")
    updates = await bot.get_updates(timeout=0)
    assert [u.update_id for u in updates] == [uid]
    message = updates[0].message
    assert message is not None
    assert message.text == "/start now"
    assert message.chat.id == GROUP
    assert message.from_user.id == USER
    assert message.entities[0].type == "bot_command"
    assert message.entities[0].length == len("/start")

    # Unconfirmed updates are served again; an offset confirms and forgets them.
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [uid]
    assert await bot.get_updates(offset=uid + 1, timeout=0) == ()
    assert fake.pending_updates == 0


async def test_long_poll_returns_early_on_push(fake: FakeTelegram, bot: telegram.Bot) -> None:
    async def push_later() -> None:
        await asyncio.sleep(0.3)
        fake.message(USER, USER, "hi")

    started = time.monotonic()
    pusher = asyncio.create_task(push_later())
    updates = await bot.get_updates(timeout=5)
    elapsed = time.monotonic() - started
    await pusher
    assert len(updates) == 1
    assert updates[0].message.text == "hi"
    assert 0.25 <= elapsed < 2


async def test_long_poll_times_out_empty(fake: FakeTelegram, bot: telegram.Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 0.9 <= time.monotonic() - started < 3


async def test_injected_429_raises_retry_after(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next(GROUP, "429", retry_after=7)
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(GROUP, "x")
    assert retry_after_of(info.value) == 7
    assert fake.rejected_429 == 0  # injected, not a rate-limit rejection
    assert fake.sent == []
    await bot.send_message(GROUP, "x")  # fault consumed
    assert len(fake.sent) == 1


async def test_forbidden_injected_and_kick(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next(GROUP, "403")
    with pytest.raises(Forbidden, match=r"(?i)kicked"):
        await bot.send_message(GROUP, "x")
    await bot.send_message(GROUP, "x")
    fake.kick(GROUP)
    for _ in range(2):
        with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the group chat"):
            await bot.send_message(GROUP, "x")
    assert len(fake.sent) == 1
    assert [e["error_code"] for e in fake.errors] == [403, 403, 403]


async def test_migrate_raises_chat_migrated(fake: FakeTelegram, bot: telegram.Bot) -> None:
    new_id = -1001234567890
    uid = fake.migrate(GROUP, new_id)
    with pytest.raises(ChatMigrated) as info:
        await bot.send_message(GROUP, "x")
    assert info.value.new_chat_id == new_id
    msg = await bot.send_message(new_id, "moved")
    assert msg.chat.type == "supergroup"
    assert msg.chat.title == "Thon 1"

    [update] = await bot.get_updates(timeout=0)
    assert update.update_id == uid
    assert update.message.migrate_to_chat_id == new_id
    assert update.message.chat.id == GROUP


async def test_server_errors_and_drop_raise_network_error(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.fail_next(USER, "500")
    with pytest.raises(NetworkError) as info:
        await bot.send_message(USER, "x")
    assert not isinstance(info.value, (RetryAfter, TimedOut))
    fake.fail_next(USER, "502")
    with pytest.raises(NetworkError):
        await bot.send_message(USER, "x")
    fake.fail_next(USER, "drop")
    with pytest.raises(NetworkError, match=r"(?i)disconnected|RemoteProtocolError"):
        await bot.send_message(USER, "x")
    assert fake.sent == []  # failed attempts do not count against the rate limit
    await bot.send_message(USER, "after faults")
    assert [s.text for s in fake.sent] == ["after faults"]
    assert [e["error_code"] for e in fake.errors] == [500, 502, 0]


async def test_timeout_fault_times_out_and_stop_is_prompt() -> None:
    fake = FakeTelegram()
    await fake.start()
    fake.add_private(USER)
    bot = make_bot(fake, read_timeout=0.5)
    await bot.initialize()
    try:
        fake.fail_next(USER, "timeout")
        with pytest.raises(TimedOut):
            await bot.send_message(USER, "x")
        assert fake.in_flight == 1  # still held by the server
    finally:
        await bot.shutdown()
        started = time.monotonic()
        await fake.stop()
    assert time.monotonic() - started < 3
    assert fake.in_flight == 0
    assert fake.sent == []


async def test_unknown_chat_and_bad_input(fake: FakeTelegram, bot: telegram.Bot) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(-999, "x")
    with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
        await bot.send_message(USER, "a <b>b", parse_mode="HTML")
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(USER, "x" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)BUTTON_DATA_INVALID"):
        await bot.send_message(
            USER, "x", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("b", callback_data="d" * 65)]])
        )
    assert fake.sent == []
    msg = await bot.send_message(USER, "<b>Chào</b> &amp; hi", parse_mode="HTML")
    assert msg.text == "Chào & hi"
    assert fake.sent[0].text == "<b>Chào</b> &amp; hi"


async def test_wrong_token_and_unknown_method(fake: FakeTelegram, bot: telegram.Bot) -> None:
    wrong = make_bot(fake, token="999:WRONG")
    with pytest.raises(InvalidToken):
        await wrong.initialize()
    await wrong.shutdown()
    with pytest.raises(telegram.error.EndPointNotFound):
        await bot.do_api_request("noSuchMethod")


async def test_global_limit(fake: FakeTelegram) -> None:
    async with FakeTelegram(global_limit=5, private_limit_per_second=None) as limited:
        chats = [1000 + i for i in range(6)]
        for c in chats:
            limited.add_private(c)
        b = make_bot(limited)
        await b.initialize()
        try:
            for c in chats[:5]:
                await b.send_message(c, "ok")
            with pytest.raises(RetryAfter) as info:
                await b.send_message(chats[5], "over")
            assert retry_after_of(info.value) == 1
            assert limited.rejected_429 == 1
            assert len(limited.sent) == 5
        finally:
            await b.shutdown()


async def test_group_limit_per_minute(fake: FakeTelegram, bot: telegram.Bot) -> None:
    fake.add_group(-555, "Other")
    for i in range(20):
        await bot.send_message(GROUP, f"m{i}")
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(GROUP, "21st")
    assert 55 <= retry_after_of(info.value) <= 60
    assert fake.rejected_429 == 1
    assert len(fake.messages_to(GROUP)) == 20
    await bot.send_message(-555, "other group is independent")


async def test_private_limit_per_second(fake: FakeTelegram, bot: telegram.Bot) -> None:
    await bot.send_message(USER, "1")
    with pytest.raises(RetryAfter):
        await bot.send_message(USER, "2")
    fake.add_private(USER + 1)
    await bot.send_message(USER + 1, "other user is independent")
    assert fake.rejected_429 == 1


def test_limiter_forgets_idle_chats() -> None:
    fake = FakeTelegram(global_limit=None, group_limit_per_minute=20, private_limit_per_second=1)
    now = [1000.0]
    fake._clock = lambda: now[0]
    for i in range(10_000):
        assert fake._rate_limit(-(i + 1)) is None
        assert fake._rate_limit(i + 1) is None
        now[0] += 0.0005
    assert fake._group.tracked_keys() == 10_000  # type: ignore[union-attr]
    now[0] += 61
    assert fake._rate_limit(-1) is None
    assert fake._group.tracked_keys() == 1  # type: ignore[union-attr]
    assert fake._private.tracked_keys() <= 1  # type: ignore[union-attr]


async def test_callback_answer_and_edit(fake: FakeTelegram, bot: telegram.Bot) -> None:
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    sent = await bot.send_message(GROUP, "Vote?", reply_markup=keyboard)
    fake.callback(GROUP, USER, "yes", sent.message_id)
    [update] = await bot.get_updates(timeout=0)
    cq = update.callback_query
    assert cq is not None
    assert cq.data == "yes"
    assert cq.message.message_id == sent.message_id
    assert await cq.answer("Thanks")
    assert fake.answered_callbacks[0]["text"] == "Thanks"
    with pytest.raises(BadRequest, match=r"(?i)query is too old"):
        await cq.answer("twice")
    edited = await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=None)
    assert isinstance(edited, telegram.Message)
    assert edited.reply_markup is None
    with pytest.raises(BadRequest, match=r"(?i)not modified"):
        await bot.edit_message_reply_markup(GROUP, sent.message_id, reply_markup=None)
    edited = await bot.edit_message_text("Closed", GROUP, sent.message_id)
    assert edited.text == "Closed"


async def test_updates_parse_in_ptb(fake: FakeTelegram, bot: telegram.Bot) -> None:
    photo_msg = await bot.send_photo(USER, photo=b"\x89PNG fake bytes", caption="Poster")
    assert photo_msg.photo
    assert photo_msg.caption == "Poster"
    assert fake.sent[-1].photo == "<upload>"
    assert fake.sent[-1].text == "Poster"
    fake.set_limits(private_limit_per_second=None)  # let this test send freely to USER
    doc = await bot.send_document(USER, document=b"%PDF", filename="form.pdf", caption="Form")
    assert doc.document.file_name == "form.pdf"
    assert fake.sent[-1].document == "<upload>"
    copy = await bot.copy_message(GROUP, USER, doc.message_id)
    assert fake.sent[-1].method == "copyMessage"
    assert fake.sent[-1].message_id == copy.message_id

    fake.message(USER, USER, caption="/report broken pump", photo=True)
    fake.message(USER, USER, document=True)
    fake.message(USER, USER, "yes", reply_to_message_id=photo_msg.message_id)
    fake.bot_removed(GROUP, USER)
    fake.bot_added(GROUP, USER)
    fake.migrate(-777, -1007770000, by_id=USER, announce_in_new_chat=True)
    fake.push_update({"message": {"weird": True}})  # malformed updates are queued as-is
    raw = [u for _, u in fake._updates]
    assert len(raw) == 8
    parsed = [Update.de_json(u, bot) for u in raw[:-1]]
    assert parsed[0].message.photo
    assert parsed[0].message.caption_entities[0].type == "bot_command"
    assert parsed[1].message.document.file_name == "document.pdf"
    assert parsed[2].message.reply_to_message.message_id == photo_msg.message_id
    assert parsed[3].my_chat_member.new_chat_member.status == "kicked"
    assert parsed[4].my_chat_member.new_chat_member.status == "member"
    assert parsed[5].message.migrate_to_chat_id == -1007770000
    assert parsed[6].message.migrate_from_chat_id == -777
    chat = await bot.get_chat(GROUP)
    assert chat.title == "Thon 1"


async def test_webhook_delivery_and_conflict(fake: FakeTelegram, bot: telegram.Bot) -> None:
    received: list[tuple[dict, str | None]] = []
    statuses = iter([500])  # first delivery fails, Telegram-style retry follows

    async def hook(request: web.Request) -> web.Response:
        received.append((await request.json(), request.headers.get("X-Telegram-Bot-Api-Secret-Token")))
        return web.Response(status=next(statuses, 200))

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        queued = fake.message(USER, USER, "before webhook")
        assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret_TOKEN")
        assert fake.webhook is not None
        assert fake.webhook["secret_token"] == "s3cret_TOKEN"
        pushed = fake.message(GROUP, USER, "after webhook")
        await fake.wait_for(lambda: len(fake.webhook_responses) >= 3, timeout=5)
        assert fake.webhook_responses == [500, 200, 200]
        assert [u["update_id"] for u, _ in received] == [queued, queued, pushed]
        assert all(secret == "s3cret_TOKEN" for _, secret in received)
        assert (await bot.get_webhook_info()).pending_update_count == 0
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)
        assert await bot.delete_webhook()
        assert fake.webhook is None
        uid = fake.message(USER, USER, "polling again")
        assert [u.update_id for u in await bot.get_updates(timeout=1)] == [uid]
    finally:
        await runner.cleanup()


async def test_second_instance_long_poll_conflicts_first(fake: FakeTelegram, bot: telegram.Bot) -> None:
    other = make_bot(fake)  # a second bot instance; one Bot serialises its own getUpdates
    await other.initialize()
    try:
        first = asyncio.create_task(bot.get_updates(timeout=3))
        await asyncio.sleep(0.2)
        second = asyncio.create_task(other.get_updates(timeout=0))
        with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates"):
            await first
        assert await second == ()
    finally:
        await other.shutdown()


async def test_in_flight_and_response_delay() -> None:
    async with FakeTelegram(response_delay=0.3, private_limit_per_second=None) as slow:
        for c in range(1, 6):
            slow.add_private(c)
        b = make_bot(slow)
        await b.initialize()
        try:
            tasks = [asyncio.create_task(b.send_message(c, "x")) for c in range(1, 6)]
            await slow.wait_for(lambda: slow.in_flight == 5, timeout=3)
            assert len(slow.sent) == 5  # counted/accepted on arrival, answered after the delay
            await asyncio.gather(*tasks)
            assert slow.in_flight == 0
            with pytest.raises(AssertionError, match=r"(?i)condition not met"):
                await slow.wait_for(lambda: slow.in_flight == 99, timeout=0.05)
        finally:
            await b.shutdown()
