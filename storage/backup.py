"""`langso db backup` / `langso db restore`.

SQLite: the copy is made by SQLite's online backup API, page by page under its own locking, so it is
consistent while the bot writes (a file copy could catch a half-written page or miss the WAL). A
restore first checks the file (a SQLite database, intact, our schema at a version this code knows),
keeps the database it replaces as `<db>.before-restore`, and copies the backup in through the same API
so the live database's WAL stays consistent.

PostgreSQL: pg_dump -Fc / pg_restore with the URL's parts (the password goes in PGPASSWORD, never on
the command line), run when the tools are installed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import make_url

from messages import render
from storage.migrate import alembic_config


class BackupError(Exception):
    """A refused backup or restore; str() is the explanation for the operator."""

    def __init__(self, template: str, **values: object) -> None:
        super().__init__(render(template, **values))


def backup_sqlite(database: Path, target: Path) -> None:
    """A consistent, self-contained copy (no -wal file needed) of a live SQLite database."""
    if target.exists():
        raise BackupError("backup_target_exists", path=str(target))
    partial = target.with_name(f"{target.name}.partial")
    _copy(database, partial)
    verdict = _integrity(partial)
    if verdict != "ok":
        partial.unlink()
        raise BackupError("backup_damaged", database=str(database), verdict=verdict)
    partial.replace(target)  # a backup file is complete or absent


def restore_sqlite(backup: Path, database: Path, url: str) -> Path | None:
    """Put `backup` in place of `database`; returns where the replaced database was kept."""
    check_backup(backup, url)
    kept = None
    if database.exists():
        kept = database.with_name(f"{database.name}.before-restore")
        partial = kept.with_name(f"{kept.name}.partial")
        partial.unlink(missing_ok=True)
        _copy(database, partial)
        partial.replace(kept)
    database.parent.mkdir(parents=True, exist_ok=True)
    with closing(_open(backup, "ro")) as source, closing(sqlite3.connect(database)) as live:
        source.backup(live)
    return kept


def check_backup(backup: Path, url: str) -> None:
    """A SQLite file that passes integrity_check and holds our schema at a revision this code has."""
    if not backup.is_file():
        raise BackupError("restore_missing", path=str(backup))
    try:
        verdict = _integrity(backup)
        with closing(_open(backup, "ro")) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            version = db.execute("SELECT version_num FROM alembic_version").fetchone() if "alembic_version" in tables else None
    except sqlite3.DatabaseError:
        raise BackupError("restore_not_sqlite", path=str(backup)) from None
    if verdict != "ok":
        raise BackupError("restore_damaged", path=str(backup), verdict=verdict)
    if version is None:
        raise BackupError("restore_not_ours", path=str(backup))
    try:
        known = ScriptDirectory.from_config(alembic_config(url)).get_revision(version[0])
    except CommandError:
        known = None
    if known is None:
        raise BackupError("restore_too_new", path=str(backup), version=version[0])


def _integrity(path: Path) -> str:
    """"ok", or SQLite's findings on one line (they span several), cut short for the operator's line."""
    with closing(_open(path, "ro")) as db:
        findings = "; ".join(" ".join(row[0].split()) for row in db.execute("PRAGMA integrity_check"))
    return findings if len(findings) <= 300 else f"{findings[:300]}…"


def _copy(database: Path, target: Path) -> None:
    with closing(_open(database, "rw")) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one file, readable without the live one's WAL


def _open(path: Path, mode: str) -> sqlite3.Connection:
    """An existing file only: sqlite3.connect would create an empty database at a wrong path."""
    if not path.is_file():
        raise BackupError("restore_missing", path=str(path))
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode={mode}", uri=True)


@dataclass(frozen=True)
class Command:
    """A pg_dump or pg_restore call: what to show the operator and what to run."""

    argv: list[str]
    password: str | None

    def shown(self) -> str:
        prefix = "PGPASSWORD=… " if self.password else ""
        return prefix + shlex.join(self.argv)

    def run(self) -> subprocess.CompletedProcess[str] | None:
        """The tool's result, or None when it is not installed."""
        if shutil.which(self.argv[0]) is None:
            return None
        env = os.environ | ({"PGPASSWORD": self.password} if self.password else {})
        return subprocess.run(self.argv, env=env, capture_output=True, text=True, check=False)


def pg_dump(url: str, target: Path) -> Command:
    return Command(["pg_dump", "--format=custom", *_connection(url), f"--file={target}"], make_url(url).password)


def pg_restore(url: str, backup: Path) -> Command:
    # --clean --if-exists: the backup's tables replace the ones there; --no-owner: another role may restore
    argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", *_connection(url), str(backup)]
    return Command(argv, make_url(url).password)


def _connection(url: str) -> list[str]:
    parsed = make_url(url)
    parts = [f"--host={parsed.host}" if parsed.host else "", f"--port={parsed.port}" if parsed.port else "",
             f"--username={parsed.username}" if parsed.username else "", f"--dbname={parsed.database or ''}"]
    return [part for part in parts if part]
