"""What reaches the logs: never a secret, at any level; no personal data at INFO and above.

The code itself logs ids, sizes, method names and exception types (`describe`, `size_of`). As a second
line, `install` puts one log-record factory in front of every handler at start-up: each record's
message and traceback are rendered once, every configured secret in them becomes "***", and at INFO and
above what database errors quote of stored values (SQL parameters, PostgreSQL's DETAIL lines) is cut.

`configure` sets up the one handler on stderr (text, or one JSON object a line for log collectors) and
keeps the libraries' chatter at WARNING unless -v.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import quote

import aiohttp
from sqlalchemy.engine import make_url

from bot.config import Settings

REDACTED = "***"
# What a database error quotes of the row it refused: the statement's values, or PostgreSQL's DETAIL
# ("Key (text)=(…) already exists", "Failing row contains (…)"). Both can be what a resident wrote.
_QUOTED_VALUES = (
    (re.compile(r"^\[parameters: .*\]$", re.MULTILINE), f"[parameters: {REDACTED}]"),
    (re.compile(r"^DETAIL: .*$", re.MULTILINE), f"DETAIL: {REDACTED}"),
)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret the settings hold, as written and as it appears percent-encoded in a URL."""
    found: list[str | None] = [make_url(settings.database_url).password]
    for channel in (settings.telegram, settings.zalo):
        found += [channel.token, channel.webhook_secret]
        if channel.token and ":" in channel.token:  # "<bot id>:<secret>": the part after the colon alone
            found.append(channel.token.split(":", 1)[1])
    variants = {form for value in found if value for form in (value, quote(value, safe=""))}
    return sorted(variants)


def install(secrets: Iterable[str]) -> Callable[[], None]:
    """Clean every log record created from now on, and uncaught tracebacks; returns the undo."""
    pattern = _pattern(secrets)
    previous_factory, previous_hook = logging.getLogRecordFactory(), sys.excepthook

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous_factory(*args, **kwargs)
        _clean(record, pattern)
        return record

    def excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        sys.stderr.write(_scrub("".join(traceback.format_exception(kind, value, tb)), pattern, personal=True))

    def undo() -> None:
        logging.setLogRecordFactory(previous_factory)
        sys.excepthook = previous_hook

    logging.setLogRecordFactory(factory)
    sys.excepthook = excepthook
    return undo


# Libraries that log routine steps at INFO (migrations run, jobs added, fonts found, requests made)
LIBRARIES = ("aiosqlite", "alembic", "apscheduler", "fontTools", "httpcore", "httpx", "matplotlib", "PIL", "telegram")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(*, verbose: bool, as_json: bool) -> None:
    """The root logger writes to stderr: everything with -v, else INFO and up, libraries WARNING and up."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and exc_info as text."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:  # a record made before `install`
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


class _Held(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def held_back() -> Iterator[None]:
    """The start-up's log records wait until the start is over, then go out in order; a failed start
    drops them (its one line on stderr says what to fix) unless the root logs DEBUG (-v)."""
    root = logging.getLogger()
    handlers, held = root.handlers[:], _Held()
    root.handlers = [held]
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        root.handlers = handlers
        if not failed or root.isEnabledFor(logging.DEBUG):
            for record in held.records:
                for handler in handlers:
                    if record.levelno >= handler.level:
                        handler.handle(record)


def describe(exc: BaseException) -> str:
    """An HTTP client failure as its type and what it says that cannot hold a URL: aiohttp puts the
    request URL, which carries the bot token, into several of its exceptions' messages."""
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"{name} {exc.status} {exc.message}".rstrip()
    if isinstance(exc, OSError) and exc.strerror:
        return f"{name}: {exc.strerror}"
    return name


def trace_of(exc: BaseException) -> str:
    """Where an error happened, frame by frame, without its message: a handler's exception can quote
    what a person wrote (a ValueError over their text), and INFO+ logs carry no personal data."""
    frames = "".join(traceback.format_list(traceback.extract_tb(exc.__traceback__)))
    return f"{frames}{type(exc).__module__}.{type(exc).__name__}"


def size_of(payload: object) -> int:
    """Bytes of a decoded JSON payload, to log instead of its content."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    # longest first: a whole token is replaced before the part of it that is a secret too
    ordered = sorted({s for s in secrets if s}, key=lambda value: (-len(value), value))
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def _clean(record: logging.LogRecord, pattern: re.Pattern[str] | None) -> None:
    personal = record.levelno >= logging.INFO
    try:
        message = record.getMessage()
    except Exception:  # a wrong format string: logging would report it later; keep what was given
        message = f"{record.msg!r} % {record.args!r}"
    record.msg, record.args = _scrub(message, pattern, personal), None
    if record.exc_info:
        # rendered here, cleaned, and the exception objects dropped: no handler can render them again
        record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
    if record.exc_text:
        record.exc_text = _scrub(record.exc_text, pattern, personal)
    if record.stack_info:
        record.stack_info = _scrub(record.stack_info, pattern, personal)


def _scrub(text: str, pattern: re.Pattern[str] | None, personal: bool) -> str:
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    if personal:
        for quoted, replacement in _QUOTED_VALUES:
            text = quoted.sub(replacement, text)
    return text
