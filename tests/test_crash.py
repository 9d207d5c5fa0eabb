"""The bot process is SIGKILLed in the middle of a broadcast to 500 groups and 200 followers' private
chats; after a restart every chat has the notice, and the only duplicates are sends that were in flight
at the kill."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tomllib
from collections import Counter
from pathlib import Path

from bot.config import DEFAULT_CONFIG
from handlers import admin
from storage.db import create_engine, session_factory
from storage.migrate import upgrade
from storage.models import ChatGroup, Follower, Identity, Person, VillageMember
from tests.conftest import TOKEN
from tests.fake_telegram import FakeTelegram

GROUPS = 500
FOLLOWERS = 200
MAX_IN_FLIGHT = 8
HEAD = 42
ROOT = Path(__file__).resolve().parent.parent


def _config(tmp_path: Path) -> Path:
    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    raw = tomllib.loads(text)
    path = tmp_path / "config.toml"
    path.write_text(
        text.replace(f'start = "{raw["quiet_hours"]["start"]}"', 'start = "00:00"')
        .replace(f'end = "{raw["quiet_hours"]["end"]}"', 'end = "00:00"')
        .replace("per_bot_per_second = 30", "per_bot_per_second = 100")
        .replace("max_in_flight = 32", f"max_in_flight = {MAX_IN_FLIGHT}")
        .replace("lease_seconds = 60", "lease_seconds = 3")
        .replace("port = 8080", "port = 0"),  # the web server always runs: any free port
        encoding="utf-8",
    )
    return path


async def _seed(database_url: str, fake: FakeTelegram) -> list[int]:
    await asyncio.to_thread(upgrade, database_url)
    engine = create_engine(database_url)
    chats = [-10_000 - n for n in range(GROUPS)]
    async with session_factory(engine)() as session:
        await admin.add_place(session, "commune", "XA", "Xã", None)
        village = await admin.add_place(session, "village", "THON", "Thôn lớn", "XA")
        await admin.grant_role(session, "telegram", str(HEAD), "village_head", "THON")
        session.add_all(ChatGroup(platform="telegram", chat_id=str(c), place_id=village.id) for c in chats)
        people = [Person(display_name=f"Người {n}") for n in range(FOLLOWERS)]
        session.add_all(people)
        await session.flush()
        for n, person in enumerate(people):
            user = str(900_000 + n)
            session.add(Identity(platform="telegram", user_id=user, person_id=person.id))
            session.add(VillageMember(person_id=person.id, place_id=village.id))
            session.add(Follower(platform="telegram", chat_id=user, following=True))
        await session.commit()
    await engine.dispose()
    for chat in chats:
        fake.add_group(chat)
    followers = [900_000 + n for n in range(FOLLOWERS)]
    for user in followers:
        fake.add_private(user)
    return chats + followers


async def _start_bot(config: Path, database_url: str, fake: FakeTelegram) -> asyncio.subprocess.Process:
    env = os.environ | {
        "LANGSO_CONFIG": str(config),
        "LANGSO_DATABASE_URL": database_url,
        "LANGSO_TELEGRAM_TOKEN": TOKEN,
        "LANGSO_TELEGRAM_API_URL": fake.url,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )


def _notices(fake: FakeTelegram, chats: set[int]) -> Counter[int]:
    return Counter(s.chat_id for s in fake.sent if s.chat_id in chats)


async def test_sigkill_mid_broadcast_loses_nothing(tmp_path: Path, database_url: str) -> None:
    async with FakeTelegram(TOKEN, response_delay=0.01, private_limit_per_second=20) as fake:
        chats = await _seed(database_url, fake)
        wanted = set(chats)
        config = _config(tmp_path)
        bot = await _start_bot(config, database_url, fake)
        try:
            fake.message(HEAD, HEAD, "/thongbao Lịch cắt điện toàn xã ngày mai")
            await fake.wait_for(lambda: len(fake.messages_to(HEAD)) == 1, timeout=30)
            fake.message(HEAD, HEAD, "1")
            await fake.wait_for(lambda: sum(_notices(fake, wanted).values()) >= 150, timeout=30)
            in_flight = fake.in_flight
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
            delivered_before = sum(_notices(fake, wanted).values())
            assert delivered_before < GROUPS + FOLLOWERS, "the broadcast finished before the kill: nothing was tested"

            bot = await _start_bot(config, database_url, fake)
            await fake.wait_for(lambda: set(_notices(fake, wanted)) == wanted, timeout=60)
            await asyncio.sleep(0.5)  # anything still to come would be a duplicate
        finally:
            if bot.returncode is None:
                bot.terminate()
                await bot.wait()
        counts = _notices(fake, wanted)
        duplicates = sum(n - 1 for n in counts.values())
        assert set(counts) == wanted
        # a send is only known done once its row says so: at most the sends in flight can repeat
        assert duplicates <= MAX_IN_FLIGHT, (duplicates, in_flight)
