"""Running `langso` as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.toml"


def langso(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, env=environment(env), input=stdin, capture_output=True,
        text=True, timeout=120, check=False,
    )


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its LANGSO_ settings, plus `env`; the project importable from any cwd."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("LANGSO_")} | (env or {})
    return environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH", "")]))}


def config_in(folder: Path, web_port: int = 0) -> Path:
    """The shipped config.toml in `folder`: its SQLite path `langso.db` is relative to that folder."""
    text = CONFIG.read_text(encoding="utf-8")
    assert 'database_url = "sqlite:///langso.db"' in text
    assert "port = 8080" in text
    path = folder / "config.toml"
    path.write_text(text.replace("port = 8080", f"port = {web_port}"), encoding="utf-8")
    return path
