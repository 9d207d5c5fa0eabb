"""Split a long text into parts that fit a platform's limit, at the gentlest boundary available:
paragraphs first, then lines, then sentences, then words; only an unbroken run is cut hard."""

from __future__ import annotations

import re

_BOUNDARIES = (re.compile(r"\n\s*\n"), re.compile(r"\n"), re.compile(r"(?<=[.!?…])\s+"), re.compile(r"\s+"))


def split_text(text: str, limit: int) -> list[str]:
    text = text.strip()
    if len(text) <= limit:
        return [text] if text else []
    return [part for part in _split(text, limit, 0) if part]


def _split(text: str, limit: int, level: int) -> list[str]:
    if len(text) <= limit:
        return [text.strip()]
    if level == len(_BOUNDARIES):
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    separator = _BOUNDARIES[level]
    pieces = [p for p in separator.split(text) if p.strip()]
    joiner = ("\n\n", "\n", " ", " ")[level]
    parts: list[str] = []
    current = ""
    for piece in pieces:
        piece = piece.strip()
        candidate = f"{current}{joiner}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            parts.append(current)
        if len(piece) <= limit:
            current = piece
        else:  # one piece alone is too long: break it at the next finer boundary
            finer = _split(piece, limit, level + 1)
            parts.extend(finer[:-1])
            current = finer[-1]
    if current:
        parts.append(current)
    return parts
