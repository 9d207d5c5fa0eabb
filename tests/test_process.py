"""`langso` as real processes: a clean stop on SIGTERM, and CLI commands started at once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT
from tests.conftest import _postgres_database
from tests.fake_telegram import FakeTelegram

TOKEN = "424242:PROCESS-TEST-SECRET-TOKEN"


def _environ(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")} | env


async def test_sigterm_stops_the_bot_cleanly_with_exit_code_0(tmp_path: Path) -> None:
    async with FakeTelegram(TOKEN) as fake:
        fake.add_private(7)
        env = {
            "LANGSO_TELEGRAM_TOKEN": TOKEN,
            "LANGSO_TELEGRAM_API_URL": fake.url,
            "LANGSO_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        }
        # -v: debug logging, where python-telegram-bot itself prints the API URL with the token in it
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "-v", "run", cwd=ROOT, env=_environ(env),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            fake.message(7, 7, "/start")
            await fake.wait_for(lambda: bool(fake.messages_to(7)), timeout=60)  # polling and answering
            bot.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(bot.communicate(), 60)
        finally:
            if bot.returncode is None:
                bot.kill()
                await bot.wait()
    log = stderr.decode()
    assert bot.returncode == 0, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
    assert "getUpdates" in log  # it did log at debug level
    assert TOKEN not in log
    assert TOKEN.split(":")[1] not in log


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_cli_commands_at_once_on_a_new_database_both_succeed(tmp_path: Path, backend: str) -> None:
    """Both migrate the same new database: one waits for the other instead of dying mid-migration."""
    for attempt in range(4):
        with _new_database(backend, tmp_path / f"new-{attempt}.db") as url:
            env = _environ({"LANGSO_DATABASE_URL": url})
            commands = (["db", "upgrade"], ["admin", "place", "list"])
            processes = [
                subprocess.Popen(
                    [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, text=True,
                )
                for args in commands
            ]
            for process in processes:
                _, stderr = process.communicate(timeout=120)
                assert process.returncode == 0, f"attempt {attempt}: {process.args}\n{stderr[-3000:]}"
                assert "Traceback" not in stderr, stderr[-3000:]


@contextmanager
def _new_database(backend: str, sqlite_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{sqlite_path}"
    else:
        yield from _postgres_database()
