"""Numbers people type. Only ASCII digits count, and only a few of them: "²", "５", "٣" or 5,000 digits
are not a number (str.isdigit() accepts them, int() then fails or a database id look-up overflows)."""

from __future__ import annotations

MAX_DIGITS = 9  # every id and count we look up fits; beyond it, it is not something a person meant


def whole_number(text: str, max_digits: int = MAX_DIGITS) -> int | None:
    """The number `text` is (surrounding spaces allowed), or None."""
    text = text.strip()
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
