"""Each platform's webhook has its own secret: knowing Telegram's does not open Zalo's door."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from sqlmodel import func, select

from bot.app import App
from storage.models import InboxUpdate
from tests.cli_helpers import langso
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo

TELEGRAM_SECRET, ZALO_SECRET = "tg-only-secret", "zalo-only-secret"


def _zalo_update(message_id: str) -> dict:
    return {"event_name": "message.text.received",
            "message": {"message_id": message_id, "date": 0, "text": "/trogiup",
                        "chat": {"id": "u-9", "chat_type": "PRIVATE"}, "from": {"id": "u-9", "display_name": "Bà Lan"}}}


async def test_zalo_webhook_refuses_the_telegram_secret_and_takes_its_own(
    fake: FakeTelegram, sqlite_url: str, unused_tcp_port: int
) -> None:
    root = f"http://127.0.0.1:{unused_tcp_port}"
    async with FakeZalo() as zalo:
        settings = settings_for(
            sqlite_url,
            fake.url,
            env={"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url,
                 "LANGSO_TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET, "LANGSO_ZALO_WEBHOOK_SECRET": ZALO_SECRET},
            telegram={"mode": "webhook", "webhook_url": f"{root}/telegram/webhook"},
            zalo={"mode": "webhook", "webhook_url": f"{root}/zalo/webhook"},
            web={"port": unused_tcp_port},
        )
        app = App(settings)
        await app.start()
        try:
            assert fake.webhook
            assert fake.webhook["secret_token"] == TELEGRAM_SECRET
            assert zalo.webhook
            assert zalo.webhook["secret_token"] == ZALO_SECRET
            async with aiohttp.ClientSession() as client:
                for headers in ({"X-Bot-Api-Secret-Token": TELEGRAM_SECRET},
                                {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}):
                    async with client.post(f"{root}/zalo/webhook", json=_zalo_update("m-1"), headers=headers) as answer:
                        assert answer.status == 403
                async with app.sessions() as session:
                    assert (await session.exec(select(func.count()).select_from(InboxUpdate))).one() == 0
                async with client.post(f"{root}/zalo/webhook", json=_zalo_update("m-1"),
                                       headers={"X-Bot-Api-Secret-Token": ZALO_SECRET}) as answer:
                    assert answer.status == 200
            await zalo.wait_for(lambda: len(zalo.messages_to("u-9")) == 1)
            assert "Làng số bot" in zalo.messages_to("u-9")[0].text
            # Telegram's own deliveries carry its own secret and are handled as before
            fake.add_private(5)
            fake.message(5, 5, "/trogiup")
            await fake.wait_for(lambda: len(fake.messages_to(5)) == 1)
            assert fake.webhook_responses[-1] == 200
        finally:
            await app.stop()


def test_webhook_mode_needs_a_secret_for_that_platform(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    shipped = (Path(__file__).resolve().parent.parent / "config.toml").read_text(encoding="utf-8")
    head, zalo_section = shipped.split("\n[zalo]\n")
    zalo_section = zalo_section.replace('mode = "polling"', 'mode = "webhook"', 1).replace(
        'webhook_url = ""', 'webhook_url = "https://bot.example/zalo/webhook"', 1
    )
    config.write_text(f"{head}\n[zalo]\n{zalo_section}", encoding="utf-8")
    env = {"LANGSO_CONFIG": str(config), "LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
           "LANGSO_ZALO_TOKEN": "99:zalo", "LANGSO_TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET}
    result = langso("run", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "LANGSO_ZALO_WEBHOOK_SECRET" in result.stderr, result.stderr
