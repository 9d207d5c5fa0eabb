"""Secret codes people type (account links, invitations, households): made of digits, so they can be
read out over the phone and typed on any keyboard; shown in groups; read back whatever spaces, dots or
dashes the person put in. Codes that are only ever matched are kept as SHA-256 digests."""

from __future__ import annotations

import hashlib
import re
import secrets

_SEPARATORS = re.compile(r"[\s.\-_]")


def new_digits(count: int) -> str:
    """`count` random digits (a leading zero is as likely as any)."""
    return f"{secrets.randbelow(10**count):0{count}d}"


def digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def grouped(code: str, size: int) -> str:
    """"1234 5678 9012": easier to read out and to copy by hand."""
    return " ".join(code[i : i + size] for i in range(0, len(code), size))


def typed(text: str, longest: int) -> str | None:
    """The digits someone typed (spaces, dots, dashes dropped), or None if it cannot be a code."""
    code = _SEPARATORS.sub("", text)
    return code if 0 < len(code) <= longest and code.isascii() and code.isdigit() else None
