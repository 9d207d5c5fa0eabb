"""Split a long text into parts that fit a platform's limit, at the gentlest boundary available:
paragraphs first, then lines, then sentences, then words; only an unbroken run is cut hard.

Lengths are in the platform's own measure (`length`): code points by default, UTF-16 code units on
Telegram, where an emoji counts twice. A measure must add up over characters, as both do."""

from __future__ import annotations

import re
from collections.abc import Callable

Measure = Callable[[str], int]

_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"\s+"))
_JOINERS = ("\n\n", "\n", " ", " ")


def split_text(text: str, limit: int, length: Measure = len) -> list[str]:
    text = text.strip()
    if length(text) <= limit:
        return [text] if text else []
    return [part for part in _split(text, limit, 0, length) if part]


def _split(text: str, limit: int, level: int, length: Measure) -> list[str]:
    if length(text) <= limit:
        return [text.strip()]
    if level == len(_BOUNDARIES):
        return _cut(text, limit, length)
    pieces = [p.strip() for p in _BOUNDARIES[level].split(text) if p.strip()]
    joiner = _JOINERS[level]
    parts: list[str] = []
    current, size = "", 0
    for piece in pieces:
        piece_size = length(piece)
        if current and size + length(joiner) + piece_size <= limit:
            current, size = f"{current}{joiner}{piece}", size + length(joiner) + piece_size
            continue
        if current:
            parts.append(current)
        if piece_size <= limit:
            current, size = piece, piece_size
        else:  # one piece alone is too long: break it at the next finer boundary
            finer = _split(piece, limit, level + 1, length)
            parts.extend(finer[:-1])
            current, size = finer[-1], length(finer[-1])
    if current:
        parts.append(current)
    return parts


def _cut(text: str, limit: int, length: Measure) -> list[str]:
    """An unbroken run, cut where the next character would no longer fit."""
    parts: list[str] = []
    start, size = 0, 0
    for i, ch in enumerate(text):
        width = length(ch)
        if size + width > limit:
            parts.append(text[start:i])
            start, size = i, 0
        size += width
    parts.append(text[start:])
    return parts
