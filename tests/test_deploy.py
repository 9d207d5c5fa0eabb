"""The deploy recipe's systemd unit: systemd accepts it as written, and it waits for the bot's graceful stop."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from bot.config import DEFAULT_CONFIG

UNIT = Path(__file__).resolve().parent.parent / "deploy" / "langso.service"


def _setting(name: str) -> str:
    [value] = re.findall(rf"^{name}=(.*)$", UNIT.read_text(encoding="utf-8"), re.MULTILINE)
    return value


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    # verify wants ExecStart's program to exist: this checkout's langso stands in for /opt/langso's
    langso = Path(sys.executable).parent / "langso"
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(_setting("ExecStart").split()[0], str(langso)), encoding="utf-8")
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)
    # an unknown or misspelt setting is only a warning, and the unit would run without it
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout + result.stderr, result.stdout + result.stderr


def test_the_unit_waits_for_the_bots_graceful_stop() -> None:
    lease = tomllib.loads(DEFAULT_CONFIG.read_text(encoding="utf-8"))["delivery"]["lease_seconds"]
    assert _setting("KillSignal") == "SIGTERM"
    assert int(_setting("TimeoutStopSec")) > lease  # sends in flight get up to lease_seconds to finish
