"""Several `langso run` processes on one PostgreSQL database, against one fake Telegram server: each
update handled once and in order per chat, one poller per platform taken over when it dies, polling
refused by another program backed off, and SQLite kept to one bot process."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import select

from bench.surveys import HAMLET, HEAD_NAME, classify, question_names, seed
from bot.app import App
from storage.db import create_engine, session_factory
from storage.models import InboxUpdate, SurveyResponse
from tests.cli_helpers import ROOT, config_in, environment, langso
from tests.conftest import TOKEN, settings_for
from tests.fake_telegram import FakeTelegram
from tests.survey_answers import ANSWERS

SECRET = "scale-webhook-secret"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RESIDENTS = 20
FIRST_USER = 3_000_000


class Bot:
    """One `langso run` child process, its log in a file."""

    def __init__(self, process: asyncio.subprocess.Process, log: Path, port: int) -> None:
        self.process, self.log, self.port = process, log, port

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@asynccontextmanager
async def bots(
    tmp_path: Path, count: int, database_url: str, fake: FakeTelegram, *, webhook: bool = False
) -> AsyncIterator[list[Bot]]:
    """`count` bot processes on one database, each with its own web port; all killed at the end."""
    started: list[Bot] = []
    try:
        for n in range(count):
            port = _free_port()
            folder = tmp_path / f"bot{n}"
            folder.mkdir()
            config = config_in(folder, port)
            text = config.read_text(encoding="utf-8").replace("per_private_per_second = 1", "per_private_per_second = 50")
            if webhook:  # the first `mode = "polling"` is Telegram's
                text = text.replace('mode = "polling"\nwebhook_url = ""',
                                    f'mode = "webhook"\nwebhook_url = "http://127.0.0.1:{port}/telegram/webhook"', 1)
            config.write_text(text, encoding="utf-8")
            env = {"LANGSO_CONFIG": str(config), "LANGSO_DATABASE_URL": database_url, "LANGSO_TELEGRAM_TOKEN": TOKEN,
                   "LANGSO_TELEGRAM_API_URL": fake.url, "LANGSO_WEBHOOK_SECRET": SECRET}
            log = folder / "bot.log"
            with log.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot", "run", cwd=ROOT, env=environment(env), stdout=out, stderr=out,
                )
            started.append(Bot(process, log, port))
        async with aiohttp.ClientSession() as http:
            for bot in started:
                await _until_up(http, bot)
        yield started
    finally:
        for bot in started:
            if bot.process.returncode is None:
                bot.process.kill()
            await bot.process.wait()


async def _until_up(http: aiohttp.ClientSession, bot: Bot, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert bot.process.returncode is None, bot.text()[-3000:]
        assert time.monotonic() < deadline, f"not up after {timeout} s\n{bot.text()[-3000:]}"
        try:
            async with http.get(f"http://127.0.0.1:{bot.port}/healthz") as answer:
                if answer.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _update(update_id: int, user: int, text: str) -> dict[str, Any]:
    person = {"id": user, "is_bot": False, "first_name": f"Dân {user}"}
    return {"update_id": update_id, "message": {"message_id": update_id, "date": int(time.time()),
                                                "chat": {"id": user, "type": "private", "first_name": person["first_name"]},
                                                "from": person, "text": text}}


# --- 1. webhook mode behind a load balancer: each chat in order ----------------------------------


async def test_two_processes_behind_a_load_balancer_keep_every_answer_and_each_chats_order(
    tmp_path: Path, postgres_url: str
) -> None:
    """20 residents each type their survey answers one after another without waiting for the bot, and
    the load balancer (the test) sends each message to the other process than the last one: one
    chat's turns run one at a time, oldest first, whichever process received them."""
    campaign = await seed(postgres_url, RESIDENTS)
    script = [f"/start ks{campaign}", "1", "1", HEAD_NAME, HAMLET, *ANSWERS[:5]]
    users = [FIRST_USER + n for n in range(RESIDENTS)]
    async with FakeTelegram(TOKEN, private_limit_per_second=None) as fake:
        for user in users:
            fake.add_private(user)
        async with bots(tmp_path, 2, postgres_url, fake, webhook=True) as processes, aiohttp.ClientSession() as http:
            ids = iter(range(500_000, 600_000))

            async def resident(n: int) -> None:
                user = FIRST_USER + n
                for k, text in enumerate(script):
                    bot = processes[(n + k) % 2]
                    async with http.post(f"http://127.0.0.1:{bot.port}/telegram/webhook", json=_update(next(ids), user, text),
                                         headers={SECRET_HEADER: SECRET}) as answer:
                        assert answer.status == 200  # kept: the next message is stored after it

            await asyncio.gather(*(resident(n) for n in range(RESIDENTS)))
            await fake.wait_for(lambda: all(_kinds(fake, u)[-1:] == ["q6"] for u in users), timeout=60)
            logs = [bot.text() for bot in processes]
    expected = ["consent", "household", "head", "hamlet", "info", "q1", "q2", "q3", "q4", "q5", "q6"]
    for user in users:
        assert _kinds(fake, user) == expected, (user, [m.text[:60] for m in fake.messages_to(user) if m.text])
    for log in logs:
        assert "Traceback" not in log, log[-3000:]
    engine = create_engine(postgres_url)
    try:
        async with session_factory(engine)() as session:
            responses = (await session.exec(select(SurveyResponse))).all()
            inbox = (await session.exec(select(InboxUpdate))).all()
    finally:
        await engine.dispose()
    assert len(inbox) == RESIDENTS * len(script)
    assert all(row.processed_at is not None and not row.error for row in inbox)
    assert len(responses) == RESIDENTS
    names = question_names()
    typed = dict(zip([names[n] for n in range(1, 6)], [5, 4, 3, 3, "fibre"], strict=True))  # ANSWERS[:5] as stored
    for response in responses:
        assert response.answers == typed


def _kinds(fake: FakeTelegram, user: int) -> list[str]:
    return [classify(m.text or "")[0] for m in fake.messages_to(user)]


# --- 2. one poller, taken over when it dies -------------------------------------------------------


class CountingFake(FakeTelegram):
    """Notes each getUpdates: when, and from which client connection (one per polling process: a
    process polls over a pool of one connection), and how many it refused with 409."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.polls: list[tuple[float, int]] = []
        self.conflicts = 0
        self.ours: list[float] = []  # getUpdates naming allowed_updates, as the bot's do
        self.deletes: list[float] = []  # deleteWebhook

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower().endswith("/getupdates"):
            peer = request.transport.get_extra_info("peername") if request.transport else None
            self.polls.append((time.monotonic(), peer[1] if peer else 0))
        return await super()._handle(request)

    async def _get_updates(self, params: dict) -> Any:
        if "allowed_updates" in params:
            self.ours.append(time.monotonic())
        reply = await super()._get_updates(params)
        self.conflicts += reply.status == 409
        return reply

    async def _delete_webhook(self, params: dict) -> Any:
        self.deletes.append(time.monotonic())
        return await super()._delete_webhook(params)

    def pollers(self, start: float, end: float = float("inf")) -> set[int]:
        return {port for at, port in self.polls if start <= at < end}


async def test_one_of_three_processes_polls_and_another_takes_over_within_10_s_when_it_is_killed(
    tmp_path: Path, postgres_url: str
) -> None:
    """Residents keep writing while the poller is SIGKILLed: every message is answered once (a reply the
    dead process had committed but not sent waits in the inbox for the next start), none twice."""
    users = [FIRST_USER + n for n in range(8)]
    async with CountingFake(TOKEN, private_limit_per_second=None) as fake:
        for user in users:
            fake.add_private(user)
        async with bots(tmp_path, 3, postgres_url, fake) as processes:
            pushed: Counter[int] = Counter()

            async def write(seconds: float) -> None:
                for n in range(int(seconds / 0.1)):
                    user = users[n % len(users)]
                    fake.message(user, user, "/trogiup")
                    pushed[user] += 1
                    await asyncio.sleep(0.1)

            await write(3.0)
            steady = time.monotonic()
            await write(3.0)
            before = fake.pollers(steady)
            polling = [bot for bot in processes if "this process polls" in bot.text()]
            assert len(before) == 1, (before, [bot.text()[-500:] for bot in processes])
            assert len(polling) == 1, (before, [bot.text()[-500:] for bot in processes])
            assert fake.conflicts == 0
            standby = next(bot for bot in processes if bot is not polling[0])
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{standby.port}/healthz") as answer:
                report = await answer.json()  # healthy without polling: a proxy must not restart it
            assert answer.status == 200
            assert report["channels"]["telegram"]["polled_by"] == "another process"
            polling[0].process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await write(12.0)
            after = sorted((at, port) for at, port in fake.polls if at > killed and port not in before)
            assert after, "nobody polls after the kill"
            print(f"another process polled {after[0][0] - killed:.1f} s after the kill")
            assert after[0][0] - killed < 10.0
            assert len(fake.pollers(after[0][0] + 1.0)) == 1  # and only that one
            per_help = 0
            await fake.wait_for(lambda: fake.pending_updates == 0, timeout=30)
            unsent = await _unsent_replies(postgres_url, users)

            def answered() -> bool:
                nonlocal per_help
                per_help = len(fake.messages_to(users[0])) // max(1, pushed[users[0]])
                return all(len(fake.messages_to(u)) + unsent[u] >= per_help * pushed[u] for u in users)

            await fake.wait_for(answered, timeout=30)
            await asyncio.sleep(1.0)  # a second answer to any message would come now
            unsent = await _unsent_replies(postgres_url, users)
            survivors = [bot for bot in processes if bot is not polling[0]]
            for bot in survivors:
                assert "Traceback" not in bot.text(), bot.text()[-3000:]
    assert per_help >= 1
    for user in users:  # each message answered exactly once, or its reply kept for the next start
        assert len(fake.messages_to(user)) + unsent[user] == per_help * pushed[user], user
    rows = await _inbox(postgres_url)
    assert len(rows) == sum(pushed.values())  # every message kept once
    assert all(row.processed_at is not None and not row.error for row in rows)


async def _inbox(database_url: str) -> list[InboxUpdate]:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return list((await session.exec(select(InboxUpdate))).all())
    finally:
        await engine.dispose()


async def _unsent_replies(database_url: str, users: list[int]) -> Counter[int]:
    """Replies committed with their turn but not sent: the killed process was about to send them."""
    unsent: Counter[int] = Counter()
    for row in await _inbox(database_url):
        if row.reply_pending and row.replies:
            unsent[int(row.chat_id or 0)] += len(row.replies)
    return unsent


# --- 3. another program polls with the token -------------------------------------------------------


async def test_polling_refused_because_another_program_polls_backs_off_and_says_why_once(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Another program long-polls with the same token and calls again at once when Telegram ends its
    call (409 "terminated by other getUpdates request"): the bot waits longer each time, never removes a
    webhook for it, and logs Telegram's words once."""
    caplog.set_level(logging.WARNING, logger="bot.channels.telegram")
    async with CountingFake(TOKEN) as fake, aiohttp.ClientSession() as http:
        app = App(settings_for(sqlite_url, fake.url))
        await app.start()

        async def other_program() -> None:
            while True:
                async with http.post(f"{fake.url}/bot{TOKEN}/getUpdates", data={"timeout": "25"}) as answer:
                    await answer.read()

        other = None
        try:
            await fake.wait_for(lambda: bool(fake.ours))
            other = asyncio.create_task(other_program())
            await asyncio.sleep(6.0)
            since = time.monotonic() - 5.0
            ours, deletes = [t for t in fake.ours if t > since], [t for t in fake.deletes if t > since]
        finally:
            if other is not None:
                other.cancel()
            await app.stop()
    print(f"over 5 s of conflict: {len(ours)} getUpdates, {len(deletes)} deleteWebhook")
    assert fake.conflicts > 0  # the other program was there
    assert len(ours) <= 4
    assert not deletes
    said = [r.getMessage() for r in caplog.records if "refuses getUpdates" in r.getMessage()]
    assert len(said) == 1, said
    assert "terminated by other getUpdates request" in said[0], said


# --- 4. SQLite: one bot process ---------------------------------------------------------------------


async def test_a_second_langso_run_on_the_same_sqlite_file_refuses_while_cli_commands_work(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'langso.db'}"
    async with FakeTelegram(TOKEN) as fake, bots(tmp_path, 1, database, fake) as [first]:
        env = {"LANGSO_CONFIG": str(config_in(tmp_path)), "LANGSO_DATABASE_URL": database,  # its own free port
               "LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": fake.url}
        second = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", cwd=ROOT, env=environment(env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(second.communicate(), 30)
        except TimeoutError:
            second.kill()
            await second.wait()
            pytest.fail("a second langso run started on the same SQLite file")
        listed = await asyncio.to_thread(langso, "admin", "place", "list", env=env)
        assert first.process.returncode is None  # still running
    lines = (out + err).decode().strip().splitlines()
    assert second.returncode == 2, lines
    assert len(lines) == 1, lines
    assert "PostgreSQL" in lines[0], lines
    assert str(tmp_path / "langso.db") in lines[0], lines
    assert listed.returncode == 0, listed.stderr
