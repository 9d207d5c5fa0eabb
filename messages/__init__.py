"""Everything the bot says: jinja2 templates rendered in a sandbox.

What a user typed is passed in as data and never becomes template source. Texts go out as plain
text (no parse mode), so user text cannot inject platform markup either.
"""

from __future__ import annotations

import tomllib
import unicodedata
from datetime import datetime
from functools import cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

TEMPLATES = Path(__file__).resolve().parent / "templates"


_WEEKDAYS = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")
_CRON_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def when_vi(moment: datetime) -> str:
    """19:30 thứ Bảy, 28/11/2026 — the form people read back to check a date."""
    return f"{moment:%H:%M} {_WEEKDAYS[moment.weekday()]}, {moment:%d/%m/%Y}"


def cron_day_vi(day_of_week: str) -> str:
    return "ngày" if day_of_week == "*" else _WEEKDAYS[_CRON_DAYS[day_of_week]]


@cache
def _environment() -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["when_vi"] = when_vi
    env.filters["cron_day_vi"] = cron_day_vi
    return env


def render(template: str, /, **values: object) -> str:
    text = _environment().get_template(f"{template}.j2").render(**values)
    return unicodedata.normalize("NFC", text).strip()


@cache
def _labels() -> dict[str, str]:
    return tomllib.loads((Path(__file__).resolve().parent / "labels.toml").read_text(encoding="utf-8"))


def label(key: str) -> str:
    """A short label (a menu item, a button) by key."""
    return _labels()[key]
