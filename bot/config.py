"""Settings: config.toml for working defaults, the environment for secrets and endpoints.

A bad or missing setting raises ConfigError with one line naming the setting and the reason,
which the CLI prints before exiting.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from handlers.context import BotLinks, HandlerSettings, QuietHours

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(Exception):
    """One setting is wrong; str(error) is the line shown to the operator."""


@dataclass(frozen=True)
class Limits:
    per_bot_per_second: float
    per_group_per_minute: int
    per_private_per_second: float


@dataclass(frozen=True)
class ChannelSettings:
    token: str | None
    api_url: str
    mode: str
    webhook_url: str
    limits: Limits
    webhook_secret: str | None = None  # LANGSO_<NAME>_WEBHOOK_SECRET, else LANGSO_WEBHOOK_SECRET
    # the bot's username, for links printed outside the running bot (`langso admin invite`)
    username: str = ""
    # a link that opens a chat with the bot (Zalo: printed as the poster's second QR code)
    share_url: str = ""


@dataclass(frozen=True)
class DeliverySettings:
    max_in_flight: int = 32
    max_attempts: int = 8
    lease_seconds: int = 60


@dataclass(frozen=True)
class PrivacySettings:
    inbox_retention_days: int = 30  # handled updates (what people wrote) are deleted after this long


@dataclass(frozen=True)
class DemoVillage:
    code: str
    name: str


@dataclass(frozen=True)
class DemoSettings:
    commune_code: str
    commune_name: str
    villages: tuple[DemoVillage, ...]
    # never the real bot's database: [demo] database_url, else langso-demo.db next to the config file
    database_url: str = "sqlite:///langso-demo.db"
    output: Path = Path("demo-output")  # the charts and exports the demo receives


@dataclass(frozen=True)
class Settings:
    database_url: str
    handler: HandlerSettings
    telegram: ChannelSettings
    zalo: ChannelSettings
    web_host: str
    web_port: int
    delivery: DeliverySettings
    demo: DemoSettings
    privacy: PrivacySettings = field(default_factory=PrivacySettings)
    source: Path = field(default=DEFAULT_CONFIG)
    log_json: bool = False  # LANGSO_LOG_FORMAT=json: one JSON object a line
    media_keep_days: int = 30  # [media] keep_days: files notices carry across platforms, and their links


def load(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    path = Path(env.get("LANGSO_CONFIG") or DEFAULT_CONFIG)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"LANGSO_CONFIG: không tìm thấy tệp cấu hình {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: tệp cấu hình không hợp lệ ({exc})") from None
    return build(raw, env, path)


def build(raw: dict, env: Mapping[str, str], path: Path = DEFAULT_CONFIG) -> Settings:
    """Settings from a parsed config file and an environment (tests build them this way too).
    A relative SQLite path in the file is relative to the file; in LANGSO_DATABASE_URL, to the cwd."""
    database_url = env.get("LANGSO_DATABASE_URL") or _beside(path, str(_get(raw, "database_url", str)))
    _check_database_url(database_url)
    log_format = env.get("LANGSO_LOG_FORMAT") or "text"
    if log_format not in ("text", "json"):
        raise ConfigError(f"LANGSO_LOG_FORMAT: chỉ nhận 'text' hoặc 'json', nhận được {log_format!r}")

    tz_name = str(_get(raw, "timezone", str))
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone: múi giờ không tồn tại: {tz_name!r}") from None

    quiet = raw.get("quiet_hours", {})
    quiet_hours = QuietHours(
        start=_clock(quiet.get("start", "21:00"), "quiet_hours.start"),
        end=_clock(quiet.get("end", "06:00"), "quiet_hours.end"),
    )

    telegram = _channel("telegram", raw, env, "https://api.telegram.org", (30, 20, 1))
    if telegram.token is not None and ":" not in telegram.token:
        raise ConfigError("LANGSO_TELEGRAM_TOKEN: không đúng dạng <số>:<chuỗi> của BotFather")
    zalo = _channel("zalo", raw, env, "https://bot-api.zaloplatforms.com", (10, 20, 1))

    web = raw.get("web", {})
    delivery = raw.get("delivery", {})
    demo = raw.get("demo", {})
    return Settings(
        database_url=database_url,
        handler=HandlerSettings(
            timezone=tz,
            quiet_hours=quiet_hours,
            targets=_targets(raw.get("targets", {})),
            links=BotLinks(telegram.username, zalo.share_url, _public_url(web.get("public_url", ""))),
        ),
        telegram=telegram,
        zalo=zalo,
        web_host=web.get("host", "127.0.0.1"),
        web_port=int(web.get("port", 8080)),
        delivery=DeliverySettings(
            max_in_flight=int(_positive(delivery.get("max_in_flight", 32), "delivery.max_in_flight")),
            max_attempts=int(_positive(delivery.get("max_attempts", 8), "delivery.max_attempts")),
            lease_seconds=int(_positive(delivery.get("lease_seconds", 60), "delivery.lease_seconds")),
        ),
        demo=DemoSettings(
            commune_code=demo.get("commune_code", "XA-DEMO"),
            commune_name=demo.get("commune_name", "Xã Demo"),
            villages=tuple(DemoVillage(v["code"], v["name"]) for v in demo.get("villages", [])),
            database_url=_beside(path, demo.get("database_url", "sqlite:///langso-demo.db")),
            output=path.resolve().parent / "demo-output",
        ),
        privacy=PrivacySettings(
            inbox_retention_days=_days(raw.get("privacy", {}).get("inbox_retention_days", 30),
                                       "privacy.inbox_retention_days"),
        ),
        source=path,
        log_json=log_format == "json",
        media_keep_days=_days(raw.get("media", {}).get("keep_days", 30), "media.keep_days"),
    )


def _channel(
    name: str,
    raw: dict,
    env: Mapping[str, str],
    default_url: str,
    default_limits: tuple[float, int, float],
) -> ChannelSettings:
    """One platform's settings: token, endpoint and webhook secret from LANGSO_<NAME>_TOKEN / _API_URL /
    _WEBHOOK_SECRET (LANGSO_WEBHOOK_SECRET serves every platform without its own), the rest from the
    [name] section of the config file."""
    section = raw.get(name, {})
    upper = name.upper()
    token = env.get(f"LANGSO_{upper}_TOKEN") or None
    webhook_secret = env.get(f"LANGSO_{upper}_WEBHOOK_SECRET") or env.get("LANGSO_WEBHOOK_SECRET") or None
    api_url = (env.get(f"LANGSO_{upper}_API_URL") or section.get("api_url", default_url)).rstrip("/")
    if urlparse(api_url).scheme not in ("http", "https"):
        raise ConfigError(f"LANGSO_{upper}_API_URL: cần một địa chỉ http(s), nhận được {api_url!r}")
    mode = section.get("mode", "polling")
    if mode not in ("polling", "webhook"):
        raise ConfigError(f"{name}.mode: chỉ nhận 'polling' hoặc 'webhook', nhận được {mode!r}")
    if mode == "webhook" and token:
        if not section.get("webhook_url"):
            raise ConfigError(f"{name}.webhook_url: chế độ webhook cần địa chỉ công khai của bot")
        if not webhook_secret:
            raise ConfigError(
                f"LANGSO_{upper}_WEBHOOK_SECRET (hoặc LANGSO_WEBHOOK_SECRET): chế độ webhook cần một chuỗi bí mật"
            )
    per_bot, per_group, per_private = default_limits
    limits = Limits(
        per_bot_per_second=_positive(section.get("per_bot_per_second", per_bot), f"{name}.per_bot_per_second"),
        per_group_per_minute=int(
            _positive(section.get("per_group_per_minute", per_group), f"{name}.per_group_per_minute")
        ),
        per_private_per_second=_positive(
            section.get("per_private_per_second", per_private), f"{name}.per_private_per_second"
        ),
    )
    username = str(section.get("username", "")).strip().removeprefix("@")
    share_url = str(section.get("share_url", "")).strip()
    if share_url and urlparse(share_url).scheme not in ("http", "https"):
        raise ConfigError(f"{name}.share_url: cần một địa chỉ http(s), nhận được {share_url!r}")
    return ChannelSettings(
        token, api_url, mode, section.get("webhook_url", ""), limits, webhook_secret, username, share_url
    )


def _public_url(value: object) -> str:
    """[web] public_url: the web console's address as people's browsers reach it (behind the proxy)."""
    url = str(value).strip().rstrip("/")
    if url and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
        raise ConfigError(f"web.public_url: cần một địa chỉ http(s)://…, nhận được {url!r}")
    return url


def _targets(section: object) -> dict[str, float]:
    """[targets]: indicator code -> percent, overriding the survey file's targets."""
    if not isinstance(section, dict):
        raise ConfigError("targets: cần một bảng mã chỉ tiêu = phần trăm")
    targets = {}
    for code, value in section.items():
        if not isinstance(value, (int, float)) or not 0 < value <= 100:
            raise ConfigError(f"targets.{code}: cần phần trăm từ 1 đến 100, nhận được {value!r}")
        targets[code] = float(value)
    return targets


def _get(raw: dict, key: str, kind: type) -> object:
    if key not in raw:
        raise ConfigError(f"{key}: thiếu trong tệp cấu hình")
    value = raw[key]
    if not isinstance(value, kind):
        raise ConfigError(f"{key}: cần kiểu {kind.__name__}")
    return value


def _beside(config: Path, url: str) -> str:
    """A SQLite URL with a relative path made absolute against the config file's folder."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # _check_database_url says what is wrong with it
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return parsed.set(database=str(config.resolve().parent / database)).render_as_string(hide_password=False)


def _check_database_url(url: str) -> None:
    scheme = urlparse(url).scheme.split("+")[0]
    if scheme not in ("sqlite", "postgresql", "postgres"):
        raise ConfigError(
            f"LANGSO_DATABASE_URL: chỉ hỗ trợ sqlite:/// hoặc postgresql://, nhận được {url.split(':', maxsplit=1)[0]!r}"
        )


def _clock(value: str, key: str) -> time:
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: cần giờ dạng HH:MM, nhận được {value!r}") from None


def _days(value: object, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}: cần một số ngày nguyên, ít nhất 1, nhận được {value!r}")
    return value


def _positive(value: object, key: str) -> float:
    if not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{key}: cần một số dương, nhận được {value!r}")
    return float(value)
