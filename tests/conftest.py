"""Fixtures: the fake Telegram server, databases (SQLite files; PostgreSQL when one answers), and a
harness that runs the real bot against them."""

from __future__ import annotations

import os
import shutil
import tomllib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest

from bot.app import App
from bot.config import DEFAULT_CONFIG, Settings, build
from storage.migrate import upgrade
from tests.console_helpers import PUBLIC_URL, seed_strangers
from tests.fake_telegram import FakeTelegram
from tests.fake_zalo import FakeZalo
from tests.harness import Harness

PG_ADMIN = os.environ.get("LANGSO_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
TOKEN = "123456:TEST-TOKEN"


def settings_for(
    database_url: str, api_url: str | None = None, env: dict[str, str] | None = None, **sections: dict
) -> Settings:
    """The shipped config.toml with quiet hours off and a realistic private-chat pace, plus overrides."""
    raw = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))
    raw["quiet_hours"] = {"start": "00:00", "end": "00:00"}
    raw["telegram"]["per_private_per_second"] = 20
    raw["web"]["port"] = 0  # any free port: tests run side by side, and the bot's web server always runs
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    environ = {"LANGSO_DATABASE_URL": database_url} | (env or {})
    if api_url:
        environ |= {"LANGSO_TELEGRAM_TOKEN": TOKEN, "LANGSO_TELEGRAM_API_URL": api_url}
    return build(raw, environ)


def _admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL is not reachable ({PG_ADMIN}): {str(exc).strip()}")


def _postgres_url(name: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(PG_ADMIN)
    host, port = params.get("host", "127.0.0.1"), params.get("port", 5432)
    return f"postgresql://{params.get('user', 'postgres')}@{host}:{port}/{name}"


def _postgres_database(template: str | None = None) -> Iterator[str]:
    """A database of its own for one test, dropped after it: new and empty, or a copy of `template`."""
    name = f"langso_{uuid.uuid4().hex[:12]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        try:
            yield _postgres_url(name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# Migrating a new database takes about half a second (a second on PostgreSQL), and most tests start the
# bot on one: they get a copy of one migrated at the start of the session, which the bot's own start-up
# finds at head. Tests of migrating a new database (test_process, test_logs, test_cli) make their own.
@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "langso.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str]:
    """The name of a PostgreSQL database at head, to copy (CREATE DATABASE … TEMPLATE)."""
    for url in _postgres_database():
        upgrade(url)
        name = url.rsplit("/", 1)[1]
        with _admin() as admin:  # a template must have no connection left when it is copied
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        yield name


def _migrated_sqlite_in(folder: Path, template: Path) -> str:
    path = folder / "langso.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path, migrated_sqlite: Path) -> str:
    return _migrated_sqlite_in(tmp_path, migrated_sqlite)


@pytest.fixture
def postgres_url(migrated_postgres: str) -> Iterator[str]:
    yield from _postgres_database(migrated_postgres)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield _migrated_sqlite_in(tmp_path, request.getfixturevalue("migrated_sqlite"))
    else:
        yield from _postgres_database(request.getfixturevalue("migrated_postgres"))


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(TOKEN, private_limit_per_second=20) as server:
        yield server


@pytest.fixture
async def zalo() -> AsyncIterator[FakeZalo]:
    async with FakeZalo() as server:
        yield server


@pytest.fixture
async def app_on_both(fake: FakeTelegram, zalo: FakeZalo, sqlite_url: str) -> AsyncIterator[App]:
    """The real bot on SQLite, serving the fake Telegram and the fake Zalo at once; no places yet."""
    app = App(settings_for(sqlite_url, fake.url, env={"LANGSO_ZALO_TOKEN": zalo.token, "LANGSO_ZALO_API_URL": zalo.url}))
    await app.start()
    yield app
    await app.stop()


@pytest.fixture
async def harness(fake: FakeTelegram, sqlite_url: str) -> AsyncIterator[Harness]:
    h = Harness(fake, settings_for(sqlite_url, fake.url))
    await h.start()
    await h.seed_commune()
    yield h
    await h.stop()


@pytest.fixture
async def console(fake: FakeTelegram, sqlite_url: str) -> AsyncIterator[Harness]:
    """The harness with [web] public_url set (the web console), plus a head of another village and an
    official of another commune (tests/console_helpers.py)."""
    h = Harness(fake, settings_for(sqlite_url, fake.url, web={"public_url": PUBLIC_URL}))
    await h.start()
    await h.seed_commune()
    await seed_strangers(h)
    yield h
    await h.stop()
