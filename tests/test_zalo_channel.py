"""ZaloChannel over real HTTP against FakeZalo: start-up, long polling, parsing, sending and the mapping
of every platform failure onto a delivery Outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from bot.channels.zalo import ZaloChannel, update_key
from bot.startup import StartError
from handlers.chat import Attachment, Button, ChatKind, ChatRef, Event, Outcome, Outgoing
from tests.fake_zalo import FakeZalo

TEXT = "message.text.received"


@pytest.fixture
async def fake() -> AsyncIterator[FakeZalo]:
    async with FakeZalo() as server:
        yield server


@pytest.fixture
async def channel(fake: FakeZalo) -> AsyncIterator[ZaloChannel]:
    ch = ZaloChannel(fake.token, fake.url, connections=4)
    ch.poll_timeout = 1  # idle polls end quickly
    ch.send_timeout = 1.0  # a held request times out quickly
    await ch.start()
    yield ch
    await ch.stop()


@contextlib.asynccontextmanager
async def polling(channel: ZaloChannel, stored: list[tuple[str, dict[str, Any]]]) -> AsyncIterator[asyncio.Task]:
    async def store(key: str, payload: dict[str, Any]) -> None:
        stored.append((key, payload))

    task = asyncio.create_task(channel.poll(store))
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def out(chat_id: str, text: str, **kw: Any) -> Outgoing:
    return Outgoing(ChatRef("zalo", chat_id), text, **kw)


def update(event: str, text: str = "", chat_type: str = "PRIVATE", **message: Any) -> dict[str, Any]:
    return {
        "event_name": event,
        "message": {
            "message_id": "m-1",
            "date": 1_750_000_000_000,
            "text": text,
            "chat": {"id": "chat-1", "chat_type": chat_type},
            "from": {"id": "user-1", "display_name": "Chị Lan", "is_bot": False},
            **message,
        },
    }


# --- start --------------------------------------------------------------------------------------


async def test_start_calls_get_me(fake: FakeZalo, channel: ZaloChannel) -> None:
    assert ("getMe", {}) in fake.calls
    assert channel.bot_id == fake.bot["id"]
    assert channel.username == fake.bot["account_name"]
    assert (channel.platform, channel.text_limit, channel.caption_limit) == ("zalo", 2000, 2000)


async def test_start_with_a_wrong_token_raises(fake: FakeZalo) -> None:
    ch = ZaloChannel("wrong-token", fake.url, connections=1)
    with pytest.raises(StartError) as raised:
        await ch.start()
    assert raised.value.reason == "token"


# --- receive ------------------------------------------------------------------------------------


async def test_poll_stores_messages_that_parse(fake: FakeZalo, channel: ZaloChannel) -> None:
    stored: list[tuple[str, dict[str, Any]]] = []
    async with polling(channel, stored):
        private_id = fake.push(TEXT, chat_id="p-1", from_id="u-1", text="xin chao", display_name="An")
        group_id = fake.push(TEXT, chat_id="g-1", from_id="u-2", text="/hoi vneid", chat_type="GROUP")
        await fake.wait_for(lambda: len(stored) == 2, timeout=5)

    assert [key for key, _ in stored] == [f"{TEXT}:{private_id}", f"{TEXT}:{group_id}"]
    first, second = (channel.parse(payload) for _, payload in stored)
    assert first is not None
    assert second is not None
    assert (first.platform, first.chat_id, first.chat_kind, first.user_id, first.user_name, first.text) == (
        "zalo", "p-1", ChatKind.PRIVATE, "u-1", "An", "xin chao",
    )
    assert first.event is Event.MESSAGE
    assert (second.chat_id, second.chat_kind, second.user_id, second.text) == ("g-1", ChatKind.GROUP, "u-2", "/hoi vneid")


async def test_idle_poll_is_not_an_error(
    fake: FakeZalo, channel: ZaloChannel, caplog: pytest.LogCaptureFixture
) -> None:
    stored: list[tuple[str, dict[str, Any]]] = []
    with caplog.at_level(logging.INFO, logger="bot.channels.zalo"):
        async with polling(channel, stored) as task:
            await fake.wait_for(lambda: fake.idle_polls >= 1, timeout=5)
            fake.push(TEXT, chat_id="p-1", from_id="u-1", text="after idle")  # still polling
            await fake.wait_for(lambda: len(stored) == 1, timeout=5)
            assert not task.done()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert channel.parse(stored[0][1]).text == "after idle"  # type: ignore[union-attr]


async def test_wrapped_and_bare_payloads_parse_alike(channel: ZaloChannel) -> None:
    bare = update(TEXT, "chào")
    wrapped = {"ok": True, "result": bare}
    assert channel.parse(bare) == channel.parse(wrapped)
    parsed = channel.parse(wrapped)
    assert parsed is not None
    assert (parsed.chat_id, parsed.user_id, parsed.text) == ("chat-1", "user-1", "chào")
    assert update_key(bare) == update_key(wrapped) == f"{TEXT}:m-1"
    assert update_key({"ok": True}) is None


async def test_image_parses_to_a_photo_attachment(channel: ZaloChannel) -> None:
    parsed = channel.parse(
        update("message.image.received", chat_type="GROUP", photo_url="https://img.example/a.jpg", caption="ảnh")
    )
    assert parsed is not None
    assert parsed.attachment == Attachment("photo", "https://img.example/a.jpg", "zalo")
    assert (parsed.chat_kind, parsed.text) == (ChatKind.GROUP, "ảnh")


async def test_unknown_event_parses_to_none(channel: ZaloChannel) -> None:
    assert channel.parse(update("user.follow.received")) is None
    assert channel.parse({"ok": True, "result": {"event_name": "something.new"}}) is None


async def test_webhook_receives_wrapped_update_with_secret(fake: FakeZalo, channel: ZaloChannel) -> None:
    received: list[tuple[str | None, dict[str, Any]]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.headers.get("X-Bot-Api-Secret-Token"), await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/zalo", hook)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        await channel.set_webhook(f"http://127.0.0.1:{port}/zalo", "s3cret-token")
        mid = fake.push(TEXT, chat_id="p-9", from_id="u-9", text="qua webhook")
        await fake.wait_for(lambda: len(received) == 1, timeout=5)
    finally:
        await runner.cleanup()
    secret, body = received[0]
    assert secret == "s3cret-token"
    assert body["ok"] is True
    assert update_key(body) == f"{TEXT}:{mid}"
    assert channel.parse(body).text == "qua webhook"  # type: ignore[union-attr]


# --- send ---------------------------------------------------------------------------------------


async def test_send_text(fake: FakeZalo, channel: ZaloChannel) -> None:
    result = await channel.send(out("p-1", "Chọn 1 hoặc 2", buttons=(Button("1", "1"),)))
    assert result.outcome is Outcome.SENT
    assert result.message_id
    [sent] = fake.sent
    assert (sent.chat_id, sent.method, sent.text, sent.photo) == ("p-1", "sendMessage", "Chọn 1 hoặc 2", None)
    assert sent.message_id == result.message_id


async def test_send_photo(fake: FakeZalo, channel: ZaloChannel) -> None:
    photo = Attachment("photo", "https://img.example/p.jpg", "zalo")
    result = await channel.send(out("p-1", "chú thích", attachment=photo))
    assert result.outcome is Outcome.SENT
    [sent] = fake.sent
    assert (sent.method, sent.text, sent.photo) == ("sendPhoto", "chú thích", "https://img.example/p.jpg")


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [("429", Outcome.THROTTLED), ("403", Outcome.STOPPED), ("500", Outcome.FAILED), ("drop", Outcome.FAILED)],
)
async def test_send_failures_map_onto_outcomes(fake: FakeZalo, channel: ZaloChannel, kind: str, outcome: Outcome) -> None:
    fake.fail_next("p-1", kind)
    result = await channel.send(out("p-1", "hello"))
    assert result.outcome is outcome, result
    assert result.detail
    if kind == "429":
        assert result.retry_after == fake.retry_after
    assert fake.sent == []
    again = await channel.send(out("p-1", "hello"))  # the fault was one-off; the session still works
    assert again.outcome is Outcome.SENT


async def test_send_time_out_is_failed(fake: FakeZalo, channel: ZaloChannel) -> None:
    fake.fail_next("p-1", "timeout")
    result = await channel.send(out("p-1", "hello"))
    assert result.outcome is Outcome.FAILED
    assert "timed out" in result.detail


async def test_too_long_text_is_rejected_not_split(fake: FakeZalo, channel: ZaloChannel) -> None:
    result = await channel.send(out("p-1", "x" * 2001))
    assert result.outcome is Outcome.REJECTED
    assert fake.sent == []
    assert len(fake.calls) == 2  # getMe, then exactly one sendMessage
    assert (await channel.send(out("p-1", "x" * 2000))).outcome is Outcome.SENT
