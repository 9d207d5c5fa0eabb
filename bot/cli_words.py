"""`langso`'s help texts and argparse's own sentences in Vietnamese, from messages/cli.toml."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

_TEXTS = tomllib.loads((Path(__file__).resolve().parent.parent / "messages" / "cli.toml").read_text(encoding="utf-8"))
HELP: dict[str, str] = _TEXTS["help"]
WORDS: dict[str, str] = _TEXTS["words"]
_ARGPARSE: dict[str, str] = _TEXTS["argparse"]


def translate_argparse() -> None:
    """argparse looks its sentences up through gettext as `argparse._` when it uses them: ours answer
    in Vietnamese; a sentence we have not translated stays in English."""
    argparse._ = lambda message: _ARGPARSE.get(message, message)  # type: ignore[attr-defined]
