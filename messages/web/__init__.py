"""The web console's pages: jinja2 templates with autoescape on, in an environment of their own (the
chat texts' sandbox renders plain text). What a person typed is only ever a value, escaped as HTML."""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from messages import cron_day_vi, label, when_vi

PAGES = Path(__file__).resolve().parent
STATIC = PAGES / "static"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(PAGES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when_vi"] = when_vi
    env.filters["cron_day_vi"] = cron_day_vi
    env.globals["label"] = label
    return env


def render_page(template: str, /, **values: object) -> str:
    return unicodedata.normalize("NFC", _environment().get_template(template).render(**values))
