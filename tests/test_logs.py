"""What the bot writes to its logs: no secret at any level, even when connections break; no personal
data (what residents wrote, SQL parameters, raw updates) at INFO and above."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Self
from urllib.parse import urlparse

import aiohttp
import pytest
from sqlalchemy import text

from bot import logs
from bot.app import App
from bot.config import Settings
from tests.cli_helpers import langso
from tests.conftest import settings_for
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.harness import Harness

TELEGRAM_TOKEN = "731337:TG-secret-part-Zx81"
ZALO_TOKEN = "8800001:zalo-secret-part-Qm27"
WEBHOOK_SECRETS = {"LANGSO_TELEGRAM_WEBHOOK_SECRET": "tg-hook-secret-77", "LANGSO_ZALO_WEBHOOK_SECRET": "zl-hook-secret-88"}
SECRETS = [TELEGRAM_TOKEN, TELEGRAM_TOKEN.split(":")[1], ZALO_TOKEN, ZALO_TOKEN.split(":")[1], *WEBHOOK_SECRETS.values()]
PHONE = "0912 345 678"
QUESTION = f"Số điện thoại của tôi là {PHONE}, cách cài VNeID thế nào?"
USER, ZALO_USER = 7, "zl-user-7"


class Captured(logging.Handler):
    """Every record that reaches the root logger, formatted as a file handler would (tracebacks too)."""

    def __init__(self, level: int) -> None:
        super().__init__(level)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[tuple[str, str]] = []  # (logger name, formatted record)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.name, self.format(record)))

    def text(self, prefix: str = "") -> str:
        return "\n".join(line for name, line in self.lines if name.startswith(prefix))


@contextlib.contextmanager
def captured(level: int, settings: Settings | None) -> Iterator[Captured]:
    """Root logging at `level` into a Captured; with settings, the bot's redaction installed as
    `langso` installs it at start-up."""
    handler, root = Captured(level), logging.getLogger()
    old_level = root.level
    undo = logs.install(logs.secrets_of(settings)) if settings is not None else None
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        if undo is not None:
            undo()


class FaultProxy:
    """A TCP proxy in front of a fake Bot API server that breaks connections running through it: it
    cuts every open connection (a keep-alive dropped by the far end), or answers the next call of a
    method with a line that is not HTTP (aiohttp then quotes the request URL, token and all)."""

    def __init__(self, target: str) -> None:
        parsed = urlparse(target)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._broken: dict[bytes, int] = {}
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self.cut()
        self._server.close()
        await self._server.wait_closed()

    def garble(self, method: str, times: int = 1) -> None:
        self._broken[f"/{method} ".encode()] = times

    def cut(self) -> None:
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream = await asyncio.open_connection(*self._target)
        self._writers += [writer, upstream]
        back = asyncio.create_task(self._pipe(upstream_reader, writer))
        try:
            while chunk := await reader.read(65536):
                if self._garbled(chunk):
                    writer.write(b"garbage\r\n\r\n")
                    break
                upstream.write(chunk)
                await upstream.drain()
        except ConnectionError:
            pass
        finally:
            for w in (writer, upstream):
                w.close()
            back.cancel()
            await asyncio.gather(back, return_exceptions=True)

    def _garbled(self, chunk: bytes) -> bool:
        request_line = chunk.split(b"\r\n", 1)[0]
        for method, times in self._broken.items():
            if times and method in request_line:
                self._broken[method] = times - 1
                return True
        return False

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[FakeTelegram, FaultProxy, FakeZalo, FaultProxy]]:
    async with (
        FakeTelegram(TELEGRAM_TOKEN, private_limit_per_second=20) as telegram,
        FakeZalo(ZALO_TOKEN) as zalo,
        FaultProxy(telegram.url) as telegram_proxy,
        FaultProxy(zalo.url) as zalo_proxy,
    ):
        telegram.add_private(USER)
        yield telegram, telegram_proxy, zalo, zalo_proxy


@pytest.mark.parametrize("redaction", [True, False], ids=["with-redaction", "sources-alone"])
async def test_no_secret_in_any_log_line_while_connections_break(
    servers: tuple[FakeTelegram, FaultProxy, FakeZalo, FaultProxy], sqlite_url: str, redaction: bool
) -> None:
    """With the start-up redaction nothing logged anywhere shows a secret; without it, the bot's own
    log lines still show none (python-telegram-bot's debug lines print its URL, so they need it)."""
    telegram, telegram_proxy, zalo, zalo_proxy = servers
    env = {"LANGSO_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "LANGSO_TELEGRAM_API_URL": telegram_proxy.url,
           "LANGSO_ZALO_TOKEN": ZALO_TOKEN, "LANGSO_ZALO_API_URL": zalo_proxy.url} | WEBHOOK_SECRETS
    settings = settings_for(sqlite_url, env=env)
    with captured(logging.DEBUG, settings if redaction else None) as log:
        app = App(settings)
        await app.start()
        try:
            await _chat_through_faults(app, telegram, telegram_proxy, zalo, zalo_proxy)
        finally:
            await app.stop()
    everything = log.text()
    assert "getUpdates" in log.text("bot.channels.telegram")
    assert "getUpdates" in log.text("bot.channels.zalo")
    checked = everything if redaction else log.text("bot.")
    for secret in SECRETS:
        assert secret not in checked, _around(checked, secret)


async def _chat_through_faults(app: App, telegram: FakeTelegram, telegram_proxy: FaultProxy, zalo: FakeZalo,
                               zalo_proxy: FaultProxy) -> None:
    """Each platform: a reply; then the long poll is cut and answered with garbage, a reply is garbled
    once and dropped once; the person still gets the next reply."""
    app.remotes["zalo"].poll_timeout = 1.0  # from the next poll on
    await _telegram_reply(telegram, "/start")
    await _zalo_reply(zalo, "/start")
    idle = zalo.idle_polls
    for proxy in (telegram_proxy, zalo_proxy):
        proxy.garble("getUpdates")
        proxy.garble("sendMessage")
        proxy.cut()
    telegram.fail_next(USER, "drop")
    zalo.fail_next(ZALO_USER, "drop")
    # The cut poll still waits in the fake Zalo, and would take (and lose) the next update, as the
    # platform would: write once it has ended and the bot polls again.
    await zalo.wait_for(lambda: zalo.idle_polls >= idle + 2, timeout=20)
    await asyncio.gather(_telegram_reply(telegram, "/trogiup"), _zalo_reply(zalo, "/trogiup"))


async def _telegram_reply(fake: FakeTelegram, text: str) -> None:
    before = len(fake.messages_to(USER))
    fake.message(USER, USER, text)
    await fake.wait_for(lambda: len(fake.messages_to(USER)) > before, timeout=20)


async def _zalo_reply(fake: FakeZalo, text: str) -> None:
    before = len(fake.messages_to(ZALO_USER))
    fake.push("message.text.received", chat_id=ZALO_USER, from_id=ZALO_USER, text=text)
    await fake.wait_for(lambda: len(fake.messages_to(ZALO_USER)) > before, timeout=20)


@pytest.mark.parametrize("redaction", [True, False], ids=["with-redaction", "sources-alone"])
async def test_a_residents_text_and_phone_stay_out_of_the_log(
    database_url: str, unused_tcp_port: int, redaction: bool
) -> None:
    """A turn that fails on a database error quoting the resident's question (the same question twice
    against a unique index), and malformed updates carrying a phone number: at INFO and above the log
    has the update ids, never the text or the number."""
    if not redaction and database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's DETAIL line quotes the refused row itself: only the redaction cuts it")
    webhook = f"http://127.0.0.1:{unused_tcp_port}/telegram/webhook"
    async with FakeTelegram(TELEGRAM_TOKEN, private_limit_per_second=20) as fake:
        settings = settings_for(
            database_url,
            env={"LANGSO_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "LANGSO_TELEGRAM_API_URL": fake.url} | WEBHOOK_SECRETS,
            telegram={"mode": "webhook", "webhook_url": webhook}, web={"port": unused_tcp_port},
        )
        with captured(logging.INFO, settings if redaction else None) as log:
            harness = Harness(fake, settings)
            await harness.start()
            try:
                assert harness.app is not None
                async with harness.app.engine.begin() as connection:  # the second asking cannot be stored
                    await connection.execute(text("CREATE UNIQUE INDEX question_text_once ON question (text)"))
                fake.add_private(USER)
                await harness.send(USER, QUESTION)
                [apology] = await harness.send(USER, QUESTION)
                assert "trục trặc" in apology.text
                await _post_malformed(webhook)
                await harness.app.dispatcher.drain()
            finally:
                await harness.stop()
    logged = log.text()
    assert "handler failed on update" in logged
    assert "IntegrityError" in logged  # the failure is there
    assert "skipping malformed telegram update" in logged
    assert "no id" in logged
    for private in (PHONE, PHONE.replace(" ", ""), "cách cài VNeID", "Nguyễn Văn Sáu"):
        assert private not in logged, _around(logged, private)


async def _post_malformed(url: str) -> None:
    """One update without an id, one whose message cannot be read; both carry a name and a number."""
    contact = {"first_name": "Nguyễn Văn Sáu", "phone_number": PHONE.replace(" ", "")}
    updates = [
        {"message": {"message_id": 1, "text": PHONE, "contact": contact}},
        {"update_id": 99, "message": {"message_id": 1, "date": 0, "chat": "nope", "text": PHONE, "contact": contact}},
    ]
    headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRETS["LANGSO_TELEGRAM_WEBHOOK_SECRET"]}
    async with aiohttp.ClientSession() as client:
        for update in updates:
            async with client.post(url, json=update, headers=headers) as answer:
                assert answer.status == 200


def test_redaction_covers_messages_arguments_tracebacks_and_the_database_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = "pg-Pass/word:42"
    url = f"postgresql://bot:{password.replace('/', '%2F').replace(':', '%3A')}@db.example/langso"
    settings = settings_for(url, env={"LANGSO_TELEGRAM_TOKEN": TELEGRAM_TOKEN})
    log = logging.getLogger("tests.redaction")
    with captured(logging.DEBUG, settings) as handler:
        log.debug("connecting to %s", url)
        # the token in the format string as well as in an argument: both are redacted
        log.info(f"token {TELEGRAM_TOKEN} and its half %s", TELEGRAM_TOKEN.split(":")[1])  # noqa: G004
        try:
            raise ConnectionError(f"refused: postgresql://bot:{password}@db.example")
        except ConnectionError:
            log.exception("database unreachable")
        log.warning("where: %s", "here", stack_info=True)
        try:  # what would stop `langso` with a traceback on stderr
            raise RuntimeError(f"start-up failed for bot{TELEGRAM_TOKEN}")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())
    logged = handler.text() + capsys.readouterr().err
    assert logged.count(logs.REDACTED) >= 5
    assert "database unreachable" in logged
    assert "ConnectionError" in logged
    assert "RuntimeError: start-up failed for bot***" in logged
    for secret in (password, password.replace("/", "%2F").replace(":", "%3A"), TELEGRAM_TOKEN.split(":")[1]):
        assert secret not in logged, _around(logged, secret)


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return text[max(0, at - 300) : at + 300]


# --- what `langso` writes to stderr -----------------------------------------------------------------


def test_libraries_log_at_warning_unless_asked_for_details(tmp_path: Path) -> None:
    """Migrations on a new database: alembic's INFO lines only with -v."""
    quiet = langso("db", "upgrade", env={"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}"})
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    detailed = langso("-v", "db", "upgrade", env={"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}"})
    assert "INFO alembic.runtime.migration: Running upgrade" in detailed.stderr


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    env = {"LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}", "LANGSO_LOG_FORMAT": "json"}
    result = langso("-v", "db", "upgrade", env=env)
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert entries
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert any(e["logger"].startswith("alembic") and e["message"].startswith("Running upgrade") for e in entries)
    wrong = langso("db", "where", env=env | {"LANGSO_LOG_FORMAT": "xml"})
    assert wrong.returncode == 2
    assert "LANGSO_LOG_FORMAT" in wrong.stderr


def test_json_logs_keep_the_redaction_and_carry_the_traceback_as_text(capsys: pytest.CaptureFixture[str]) -> None:
    settings = settings_for("sqlite://", env={"LANGSO_TELEGRAM_TOKEN": TELEGRAM_TOKEN})
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libraries = {name: logging.getLogger(name).level for name in logs.LIBRARIES}
    logs.configure(verbose=False, as_json=True)
    undo = logs.install(logs.secrets_of(settings))
    try:
        try:
            raise ConnectionError(f"refused: https://api.telegram.org/bot{TELEGRAM_TOKEN}/getMe")
        except ConnectionError:
            logging.getLogger("bot.test").exception("start-up for bot%s", TELEGRAM_TOKEN)
        logging.getLogger("apscheduler.scheduler").info("Added job")  # a library's routine step
    finally:
        undo()
        root.handlers, root.level = handlers, level
        for name, library_level in libraries.items():
            logging.getLogger(name).setLevel(library_level)
    [line] = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "bot.test"
    assert entry["message"] == "start-up for bot***"
    assert entry["exc_info"].startswith("Traceback")
    assert "ConnectionError: refused" in entry["exc_info"]
    assert TELEGRAM_TOKEN.split(":")[1] not in line


async def test_a_normal_turn_logs_nothing_personal_at_info(harness: Harness) -> None:
    """A resident joins a village, asks the handbook, and asks what it cannot answer (handed to the
    tech team, who answers): the INFO log has neither the resident's name nor what was written."""
    name, question, unknown = "Nguyễn Thị Hoa", "cách cài VNeID", "con bò nhà tôi bị lở mồm long móng"
    harness.fake.add_private(300, first_name=name)
    with captured(logging.INFO, harness.settings) as log:
        await harness.send(300, "/thamgia THON-1")
        await harness.send(300, question)
        await harness.send(300, f"/hoi {unknown}")
        await harness.settle()
    logged = log.text()
    for private in (name, "Hoa", question, "VNeID", unknown, "lở mồm"):
        assert private not in logged, _around(logged, private)
