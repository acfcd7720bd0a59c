"""Configuration: one TOML file turned into one frozen, validated `Settings` object.

The file is `--config`, else `$VIGIE_CONFIG`, else `vigie.toml`. Every error names the file and
the key (`vigie.toml: sources[1].url: ...`). Secrets never live in the file: the SMTP password
comes from the environment variable named by `email.password_env` (default
`VIGIE_SMTP_PASSWORD`) and is held in `Secrets`, apart from the settings that get logged.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from vigie.errors import ConfigError, QueryError
from vigie.query import Node, parse_query

DEFAULT_CONFIG = "vigie.toml"
CONFIG_ENV = "VIGIE_CONFIG"

Platform = Literal["news", "blog", "social", "forum", "video", "other"]
Role = Literal[
    "lead", "spokesperson", "legal", "communications", "social_media", "executive", "operator"
]
# Kinds of DESIGN.md that this version collects; the others arrive with the collection issue.
SUPPORTED_KINDS = ("rss",)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    language: Literal["fr", "en"] = "fr"
    timezone: str = "UTC"
    other_names: tuple[str, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from err
        return value


class Warehouse(_Model):
    path: Path = Path("data/vigie.duckdb")


class Watch(_Model):
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\w .'-]+$")]
    query: Annotated[str, Field(min_length=1, max_length=2000)]

    @field_validator("query")
    @classmethod
    def _parsable(cls, value: str) -> str:
        try:
            parse_query(value)
        except QueryError as err:
            raise ValueError(str(err)) from err
        return value

    @property
    def parsed(self) -> Node:
        return parse_query(self.query)


class Source(_Model):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    kind: str = "rss"
    url: Annotated[str, Field(max_length=2000)]
    platform: Platform = "news"
    tier: Annotated[int, Field(ge=1, le=3)] = 3
    language: Literal["fr", "en"] | None = None
    # Poll this source at most every `poll_minutes` (None: every watch cycle).
    poll_minutes: Annotated[int, Field(ge=1, le=10080)] | None = None

    @field_validator("kind")
    @classmethod
    def _supported_kind(cls, value: str) -> str:
        if value not in SUPPORTED_KINDS:
            raise ValueError(
                f"kind {value!r} is not supported by this version (supported: "
                + ", ".join(SUPPORTED_KINDS)
                + ")"
            )
        return value

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.lower().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class Email(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    sender: EmailStr
    sender_name: str = "Vigie"
    username: str | None = None
    security: Literal["none", "starttls", "ssl"] = "starttls"
    ca_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 30.0
    password_env: str = "VIGIE_SMTP_PASSWORD"

    @model_validator(mode="after")
    def _login_as_sender(self) -> Email:
        # yagmail logs in with the address it sends from; a different login cannot be honoured.
        if self.username is not None and self.username != self.sender:
            raise ValueError("username must be the same address as sender (yagmail logs in as it)")
        return self


class Member(_Model):
    name: Annotated[str, Field(min_length=1, max_length=120)]
    email: EmailStr
    role: Role
    level: Annotated[int, Field(ge=1, le=9)] = 1
    platforms: tuple[str, ...] = ()
    phone: str | None = None


class Cell(_Model):
    members: tuple[Member, ...] = ()


class Team(_Model):
    name: str
    emails: tuple[EmailStr, ...]
    language: Literal["fr", "en"] | None = None


class Schedule(_Model):
    watch_every_minutes: Annotated[int, Field(ge=1, le=1440)] = 10
    digest_cron: str = "30 7 * * 1-5"
    readiness_cron: str = "0 9 1 * *"


class Collection(_Model):
    connect_timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    read_timeout_s: Annotated[float, Field(gt=0, le=300)] = 20.0
    max_bytes: Annotated[int, Field(ge=1024, le=200_000_000)] = 10_000_000
    max_entries: Annotated[int, Field(ge=1, le=100_000)] = 2000
    # Requests in flight at once, over all hosts and per host (politeness towards one site).
    concurrency: Annotated[int, Field(ge=1, le=256)] = 32
    per_host: Annotated[int, Field(ge=1, le=256)] = 8
    retries: Annotated[int, Field(ge=0, le=5)] = 1
    deadline_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    user_agent: str = "Vigie/0.1 (+crisis early-warning; self-hosted)"


class Detection(_Model):
    # Whole 5-minute buckets: detection reads the 5-minute aggregates.
    window_minutes: Annotated[int, Field(ge=5, le=1440, multiple_of=5)] = 60
    # A week of hourly windows: the volume detector compares the same time of day.
    baseline_windows: Annotated[int, Field(ge=3, le=5000)] = 168
    min_mentions: Annotated[int, Field(ge=1)] = 5
    threshold: Annotated[float, Field(gt=0)] = 4.0
    future_tolerance_minutes: Annotated[int, Field(ge=0)] = 30
    horizon_days: Annotated[int, Field(ge=1)] = 3650
    sensitivity: Literal["low", "medium", "high"] = "medium"
    # An open alert whose topic has not triggered for this long is resolved.
    calm_minutes: Annotated[int, Field(ge=5)] = 360
    # Extra crisis vocabulary, term -> weight in [0, 1]; a trailing * is a prefix.
    vocabulary: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}

    @model_validator(mode="after")
    def _whole_day(self) -> Detection:
        if 1440 % self.window_minutes:
            raise ValueError("window_minutes must divide a day (5, 10, 15, 20, 30, 60, ...)")
        return self


class Retention(_Model):
    # Raw text (titles, summaries, authors, quarantined records) older than this is erased;
    # ids, URLs and the 5-minute aggregates are kept forever. 0 keeps everything.
    raw_text_days: Annotated[int, Field(ge=0)] = 365


class Quality(_Model):
    # A source whose batch has more than this share of rows quarantined is marked degraded
    # (and the operators are told once), when the batch has at least `min_rows` rows.
    max_quarantine_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_rows: Annotated[int, Field(ge=1)] = 3


class Settings(_Model):
    organisation: Organisation
    warehouse: Warehouse = Warehouse()
    watch: Annotated[tuple[Watch, ...], Field(min_length=1)]
    sources: Annotated[tuple[Source, ...], Field(min_length=1)]
    email: Email
    cell: Cell = Cell()
    teams: tuple[Team, ...] = ()
    schedule: Schedule = Schedule()
    collection: Collection = Collection()
    detection: Detection = Detection()
    retention: Retention = Retention()
    quality: Quality = Quality()
    config_path: Path = Path(DEFAULT_CONFIG)

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for label, names in (
            ("watch", [w.name for w in self.watch]),
            ("sources", [s.name for s in self.sources]),
        ):
            seen: set[str] = set()
            for index, name in enumerate(names):
                if name in seen:
                    raise ValueError(f"{label}[{index}].name: {name!r} is used twice")
                seen.add(name)
        return self

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file, relative paths taken from the config file's folder."""
        path = self.warehouse.path
        return path if path.is_absolute() else self.config_path.parent / path

    def level_members(self, level: int) -> tuple[Member, ...]:
        return tuple(m for m in self.cell.members if m.level == level)

    @property
    def operators(self) -> tuple[Member, ...]:
        """Who hears about the watch's own health: the cell's operators, else its first level."""
        return tuple(m for m in self.cell.members if m.role == "operator") or self.first_level

    @property
    def first_level(self) -> tuple[Member, ...]:
        """The members an alert goes to first: the lowest escalation level present."""
        if not self.cell.members:
            return ()
        return self.level_members(min(m.level for m in self.cell.members))


class Secrets(BaseModel):
    """What may not be logged; built from the environment, never from the file."""

    model_config = ConfigDict(frozen=True)
    smtp_password: SecretStr | None = None


def resolve_config_path(
    explicit: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None
) -> Path:
    """`--config`, else `$VIGIE_CONFIG`, else `vigie.toml` in the current folder."""
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit)
    return Path(env.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _key(loc: tuple[int | str, ...]) -> str:
    key = ""
    for part in loc:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not key:
            key = part
        else:
            key += f".{part}"
    return key or "(top level)"


def _describe(err: ValidationError, path: Path) -> str:
    errors = err.errors()
    # A misspelt key also makes the right one "missing": name the typo first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check its spelling)"
    elif first["type"] == "missing":
        message = "is required"
    # Errors raised by a model validator name their key in the message already.
    key = _key(tuple(first["loc"]))
    # Errors on an enclosing key (a list that "should have at least 1 item") are echoes.
    loc = tuple(first["loc"])
    more = sum(1 for e in errors if e is not first and tuple(e["loc"]) != loc[: len(e["loc"])])
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {key}: {message}{suffix}"


def load_settings(path: str | os.PathLike[str]) -> Settings:
    """Read and validate a configuration file.

    Raises:
        ConfigError: the file is missing, not TOML, or a key is invalid; the message names it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(
            f"{path}: no such configuration file (pass --config, set {CONFIG_ENV}, "
            "or copy vigie.example.toml to vigie.toml)"
        ) from err
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read: {err.strerror}") from err
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: is not UTF-8 text") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from err
    data["config_path"] = path
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from err


def load_secrets(settings: Settings, env: Mapping[str, str] | None = None) -> Secrets:
    """Read the secrets the settings need from `env` (default: the process environment).

    Raises:
        ConfigError: a login is configured but its password variable is not set.
    """
    env = os.environ if env is None else env
    password = env.get(settings.email.password_env)
    if settings.email.username and not password:
        raise ConfigError(
            f"{settings.email.password_env} is not set: email.username is configured, "
            "so the SMTP password must come from that environment variable"
        )
    return Secrets(smtp_password=SecretStr(password) if password else None)
