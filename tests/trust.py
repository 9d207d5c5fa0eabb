"""Small helpers shared by the trust tests."""

from __future__ import annotations

import re


def link_code(text: str) -> str:
    """The /lienket code in the bot's message (shown as groups of digits), digits only."""
    found = re.search(r"/lienket ([\d ]+\d)", text)
    assert found, f"no link code in {text!r}"
    return found.group(1).replace(" ", "")
