"""`langso db`: upgrade, where, backup, restore."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.config import Settings
from messages import render
from storage import backup
from storage.db import shown, sqlite_path
from storage.migrate import upgrade


def run(args: argparse.Namespace, settings: Settings) -> int:
    url = settings.database_url
    if args.db_command == "where":
        print(render("db_where", database=shown(url)))
        return 0
    if args.db_command == "upgrade":
        upgrade(url)
        print(render("db_upgraded"))
        return 0
    path, database = Path(args.path), sqlite_path(url)
    try:
        if database is None:
            return _postgres(args.db_command, url, path)
        if args.db_command == "backup":
            backup.backup_sqlite(database, path)
            print(render("backup_done", database=shown(url), path=str(path), size=_size(path)))
        else:
            kept = backup.restore_sqlite(path, database, url)
            print(render("restore_done", database=shown(url), path=str(path), kept=str(kept) if kept else ""))
    except backup.BackupError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


def _postgres(command: str, url: str, path: Path) -> int:
    tool = backup.pg_dump(url, path) if command == "backup" else backup.pg_restore(url, path)
    result = tool.run()
    ok = result is not None and result.returncode == 0
    error = (result.stderr.strip().splitlines() or ["?"])[-1] if result is not None and not ok else ""
    print(render("backup_postgres", tool=tool.argv[0], ran=None if result is None else ok, error=error,
                 command=tool.shown()), file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"
