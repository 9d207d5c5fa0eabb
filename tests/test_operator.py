"""What an operator meets running `langso`: one clear line when the bot cannot start, the database the
config file names whatever the current folder, a demo that keeps to its own database and leaves on
Ctrl-C, backups of a live database and their restore."""

from __future__ import annotations

import asyncio
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

from bot.config import load
from bot.demo import show
from handlers.chat import ChatRef, Outgoing, Upload
from tests.cli_helpers import ROOT, config_in, environment, langso
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo

TOKEN = "4242:right-token"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def bound_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


# --- start-up failures ----------------------------------------------------------------------------


def _assert_one_line(result: subprocess.CompletedProcess[str], *cause: str) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "Unclosed" not in result.stderr
    assert all(word in result.stderr for word in cause), result.stderr


@pytest.mark.parametrize("platform", ["telegram", "zalo"])
async def test_a_token_the_platform_rejects_is_one_line(tmp_path: Path, platform: str) -> None:
    async with FakeTelegram(TOKEN) as telegram, FakeZalo(TOKEN) as zalo:
        fake = {"telegram": telegram, "zalo": zalo}[platform]
        env = {"LANGSO_CONFIG": str(config_in(tmp_path)), f"LANGSO_{platform.upper()}_TOKEN": "4242:wrong-token",
               f"LANGSO_{platform.upper()}_API_URL": fake.url}
        result = await asyncio.to_thread(langso, "run", env=env)
    _assert_one_line(result, f"{platform.capitalize()} từ chối mã bot", f"LANGSO_{platform.upper()}_TOKEN")
    assert "wrong-token" not in result.stderr


def test_an_api_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    env = {"LANGSO_CONFIG": str(config_in(tmp_path)), "LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": url}
    _assert_one_line(langso("run", env=env), "không kết nối được tới Telegram", url)


@pytest.mark.parametrize("where", ["sqlite-under-a-file", "postgresql-refusing"])
async def test_a_database_that_cannot_be_opened_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    url = {
        "sqlite-under-a-file": f"sqlite:///{tmp_path / 'a-file' / 'langso.db'}",
        "postgresql-refusing": f"postgresql://bot:pg-secret@127.0.0.1:{closed_port()}/langso",
    }[where]
    async with FakeTelegram(TOKEN) as fake:
        env = {"LANGSO_CONFIG": str(config_in(tmp_path)), "LANGSO_DATABASE_URL": url,
               "LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": fake.url}
        result = await asyncio.to_thread(langso, "run", env=env)
    _assert_one_line(result, "không mở được cơ sở dữ liệu")
    assert "pg-secret" not in result.stderr


async def test_a_web_port_in_use_is_one_line_and_nothing_is_left_polling(tmp_path: Path, bound_port: int) -> None:
    async with FakeTelegram(TOKEN) as fake:
        env = {"LANGSO_CONFIG": str(config_in(tmp_path, web_port=bound_port)), "LANGSO_TELEGRAM_TOKEN": TOKEN,
               "LANGSO_TELEGRAM_API_URL": fake.url}
        result = await asyncio.to_thread(langso, "run", env=env)
    _assert_one_line(result, f"cổng 127.0.0.1:{bound_port}")


# --- which database -------------------------------------------------------------------------------


def test_the_config_files_sqlite_path_is_used_from_any_folder(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc-langso", tmp_path / "elsewhere"
    home.mkdir()
    elsewhere.mkdir()
    env = {"LANGSO_CONFIG": str(config_in(home))}
    add = ("admin", "place", "add", "--kind")
    assert langso(*add, "commune", "--code", "XA-1", "--name", "Xã Một", env=env, cwd=home).returncode == 0
    assert langso(*add, "village", "--code", "T1", "--name", "Thôn Một", "--parent", "XA-1", env=env, cwd=home).returncode == 0

    exported = langso("export", "--survey", "ho-gia-dinh", "--place", "T1", "--format", "csv", env=env, cwd=elsewhere)
    assert exported.returncode == 0, exported.stderr
    assert (elsewhere / "ho-gia-dinh-t1.csv").exists()
    where = langso("db", "where", env=env, cwd=elsewhere)
    assert where.stdout.strip() == f"sqlite:///{home / 'langso.db'}"
    assert not (elsewhere / "langso.db").exists()
    assert str(home / "langso.db") in langso("--help", env=env, cwd=elsewhere).stdout

    # LANGSO_DATABASE_URL from the environment stays relative to the folder the command runs in
    relative = langso("db", "where", env=env | {"LANGSO_DATABASE_URL": "sqlite:///other.db"}, cwd=elsewhere)
    assert relative.stdout.strip() == f"sqlite:///{elsewhere / 'other.db'}"


def test_db_where_hides_the_postgresql_password(tmp_path: Path) -> None:
    env = {"LANGSO_CONFIG": str(config_in(tmp_path)), "LANGSO_DATABASE_URL": "postgresql://bot:pg-secret@db.example/langso"}
    shown = langso("db", "where", env=env)
    assert shown.returncode == 0
    assert shown.stdout.strip() == "postgresql://bot:***@db.example/langso"


# --- the demo ---------------------------------------------------------------------------------


# `python -m bot` with Ctrl-C as a terminal delivers it: a test run started in the background without job
# control (`cmd &`, nohup) ignores SIGINT, and a child would inherit that and never see it
AS_FROM_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'bot'; runpy.run_module('bot', run_name='__main__', alter_sys=True)"
)


def test_ctrl_c_leaves_the_demo_at_once_and_the_real_database_is_untouched(tmp_path: Path) -> None:
    env = environment({"LANGSO_CONFIG": str(config_in(tmp_path))})
    demo = subprocess.Popen([sys.executable, "-c", AS_FROM_A_TERMINAL, "demo"], cwd=tmp_path, env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        seen = ""
        while "] > " not in seen:  # the prompt: the demo waits for a line
            char = demo.stdout.read(1)
            assert char, f"the demo ended early: {demo.communicate()}"
            seen += char
        sent = time.monotonic()
        demo.send_signal(signal.SIGINT)
        code = demo.wait(timeout=10)
        assert time.monotonic() - sent < 5
        assert code == 0
    finally:
        if demo.poll() is None:
            demo.kill()
        demo.communicate()
    assert (tmp_path / "langso-demo.db").exists()
    assert not (tmp_path / "langso.db").exists()


def test_files_the_demo_receives_go_into_its_ignored_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A chart or an export sent in the demo lands in demo-output/ next to the config, whatever the cwd."""
    settings = load({"LANGSO_CONFIG": str(config_in(tmp_path))})
    chart = Outgoing(ChatRef("local", "truong-thon-1"), "Biểu đồ", upload=Upload("photo", "../bao-cao.png", b"PNG"))
    show(chart, settings.demo.output)
    saved = tmp_path / "demo-output" / "bao-cao.png"
    assert saved.read_bytes() == b"PNG"
    assert str(saved) in capsys.readouterr().out
    assert "demo-output/" in (ROOT / ".gitignore").read_text().splitlines()


# --- backup and restore -------------------------------------------------------------------------


class Writer:
    """Rows into the live database from another connection, one committed transaction each, as the
    running bot writes; remembers how many were committed."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._stop = threading.Event()
        self.committed = 0
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with sqlite3.connect(self._database, timeout=30, isolation_level=None) as db:
            db.execute("PRAGMA journal_mode=WAL")
            while not self._stop.is_set():
                n = self.committed + 1
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO place (kind, code, name) VALUES ('village', ?, ?)", (f"W-{n}", "x" * 2000))
                db.execute("COMMIT")
                self.committed = n


def _codes(database: Path) -> set[str]:
    with sqlite3.connect(database) as db:
        return {row[0] for row in db.execute("SELECT code FROM place")}


def test_backup_of_a_database_being_written_and_its_restore(tmp_path: Path) -> None:
    env = {"LANGSO_CONFIG": str(config_in(tmp_path))}
    live = tmp_path / "langso.db"
    assert langso("db", "upgrade", env=env).returncode == 0
    with Writer(live) as writer:
        while writer.committed < 200:
            time.sleep(0.01)
        before = writer.committed
        backed_up = langso("db", "backup", str(tmp_path / "copy.db"), env=env)
        after = writer.committed
    assert backed_up.returncode == 0, backed_up.stderr
    assert after > before  # the writer went on during the backup
    copy = tmp_path / "copy.db"
    with sqlite3.connect(copy) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    in_copy = _codes(copy)
    assert {f"W-{n}" for n in range(1, before + 1)} <= in_copy
    assert len(in_copy) <= after
    assert not Path(f"{copy}-wal").exists()  # one self-contained file
    again = langso("db", "backup", str(copy), env=env)
    assert again.returncode == 1
    assert "đã có" in again.stderr  # an old backup is never overwritten

    with sqlite3.connect(live) as db:
        db.execute("DELETE FROM place")
    restored = langso("db", "restore", str(copy), env=env)
    assert restored.returncode == 0, restored.stderr
    assert "dừng" in restored.stdout  # the bot must be stopped
    assert _codes(live) == in_copy
    assert _codes(tmp_path / "langso.db.before-restore") == set()  # what it replaced is kept


@pytest.mark.parametrize("kind", ["not-sqlite", "not-ours", "newer", "damaged"])
def test_restore_refuses_a_file_that_is_not_a_good_backup(tmp_path: Path, kind: str) -> None:
    env = {"LANGSO_CONFIG": str(config_in(tmp_path))}
    assert langso("admin", "place", "add", "--kind", "commune", "--code", "XA-1", "--name", "Xã Một", env=env).returncode == 0
    bad = tmp_path / "bad.db"
    if kind == "not-sqlite":
        bad.write_text("hello")
    else:
        with sqlite3.connect(bad) as db:
            db.execute("CREATE TABLE t (x)")
            if kind == "newer":
                db.execute("CREATE TABLE alembic_version (version_num TEXT)")
                db.execute("INSERT INTO alembic_version VALUES ('9999_from_the_future')")
        if kind == "damaged":
            _damage(bad)
    refused = langso("db", "restore", str(bad), env=env)
    assert refused.returncode == 1, refused.stderr
    assert refused.stderr.count("\n") == 1
    assert "Traceback" not in refused.stderr
    assert str(bad) in refused.stderr
    assert _codes(tmp_path / "langso.db") == {"XA-1"}  # nothing changed
    assert not (tmp_path / "langso.db.before-restore").exists()


def _damage(path: Path) -> None:
    """Overwrite the table's root page so integrity_check fails while the header still reads."""
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO t VALUES (randomblob(3000))")
        page = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 't'").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
    with path.open("r+b") as raw:
        raw.seek((page - 1) * size + 8)
        raw.write(b"\xff" * 64)
