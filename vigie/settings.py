"""Configuration: one TOML file turned into one frozen, validated `Settings` object.

The file is `--config`, else `$VIGIE_CONFIG`, else `vigie.toml`. Every error names the file and
the key (`vigie.toml: sources[1].url: ...`). Secrets never live in the file: the SMTP password
comes from the environment variable named by `email.password_env` (default
`VIGIE_SMTP_PASSWORD`) and is held in `Secrets`, apart from the settings that get logged.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import email_validator
from cronsim import CronSim, CronSimError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.networks import validate_email

from vigie.errors import ConfigError, QueryError, one_line
from vigie.query import MAX_QUERY_CHARS, Node, parse_query
from vigie.search import derived_search_query

DEFAULT_CONFIG = "vigie.toml"
CONFIG_ENV = "VIGIE_CONFIG"
# tomllib ends its messages with "(at line 3, column 8)".
_TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")

# Bidirectional overrides and isolates, zero-width characters and the BOM: invisible, and able
# to make a line read otherwise than it is.
_INVISIBLE = frozenset(
    [
        *map(chr, range(0x200B, 0x2010)),
        *map(chr, range(0x202A, 0x202F)),
        *map(chr, range(0x2060, 0x206A)),
        "\ufeff",
    ]
)


def _no_control(value: str) -> str:
    """Text shown to people (terminals, emails) holds no control or invisible character."""
    for ch in value:
        if ch in _INVISIBLE or unicodedata.category(ch) == "Cc":
            raise ValueError(
                f"holds the control character U+{ord(ch):04X}: it would print raw in "
                "terminals and emails; remove it"
            )
    return value


# A name or text of the configuration that commands and emails show.
Shown = AfterValidator(_no_control)

Platform = Literal["news", "blog", "social", "forum", "video", "other"]
Role = Literal[
    "lead", "spokesperson", "legal", "communications", "social_media", "executive", "operator"
]
# Kinds of DESIGN.md that this version collects (tasks/collect/sources.py reads all but rss).
SUPPORTED_KINDS = (
    "rss",
    "jsonfeed",
    "news_search",
    "reddit",
    "mastodon",
    "bluesky",
    "hackernews",
    "json_api",
    "gdelt",
)
# Kinds that search for a query; without `query`, it is derived from the watch queries.
SEARCH_KINDS = ("news_search", "reddit", "mastodon", "bluesky", "hackernews", "gdelt")
# The public service a kind talks to when `url` is not given (tests point `url` elsewhere).
DEFAULT_BASE_URLS = {
    "news_search": "https://news.google.com",
    "reddit": "https://www.reddit.com",
    "bluesky": "https://public.api.bsky.app",
    "hackernews": "https://hn.algolia.com",
    "gdelt": "https://api.gdeltproject.org",
}
DEFAULT_PLATFORMS = {
    "reddit": "forum",
    "hackernews": "forum",
    "mastodon": "social",
    "bluesky": "social",
}
# Keys that only some kinds read: a key given to another kind is an error, not ignored.
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "query": SEARCH_KINDS,
    "region": ("news_search",),
    "instance": ("mastodon",),
    "tag": ("mastodon",),
    "subreddit": ("reddit",),
    "mapping": ("json_api",),
}
# A token header may not replace what Vigie sends itself, nor HTTP's own framing.
_HEADERS_VIGIE_SETS = frozenset(
    {
        "host",
        "user-agent",
        "accept",
        "accept-encoding",
        "if-none-match",
        "if-modified-since",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_HOST_NAME = re.compile(r"(?i)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?")
_DOTTED_PATH = r"^[^.\s]+(\.[^.\s]+)*$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Organisation(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200), Shown]
    language: Literal["fr", "en"] = "fr"
    timezone: str = "UTC"
    other_names: tuple[Annotated[str, Shown], ...] = ()

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


Language = Literal["fr", "en"]


class Watch(_Model):
    name: Annotated[str, Field(min_length=1, max_length=80, pattern=r"^[\w .'-]+$")]
    # What people read in emails ("Hôpital Sainte-Anne"); unset, the name.
    label: Annotated[str, Field(min_length=1, max_length=120), Shown] | None = None
    query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS), Shown]
    # None: every language. Otherwise a mention in another known language does not match;
    # one whose language cannot be told still does (a short post may be about us).
    languages: tuple[Language, ...] | None = None
    # Teams (`[[teams]]` names) that get this topic's alerts too, by email and on their channels.
    notify_teams: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()

    @field_validator("languages")
    @classmethod
    def _some_languages(cls, value: tuple[Language, ...] | None) -> tuple[Language, ...] | None:
        if value is not None and not value:
            raise ValueError("lists no language: leave it out to match every language")
        return value

    @field_validator("query", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        """Too long a query is refused first, naming the watch (before any other check)."""
        if isinstance(value, str) and len(value) > MAX_QUERY_CHARS:
            raise ValueError(
                f"the query of watch {info.data.get('name', '?')!r} has {len(value)} "
                f"characters, more than {MAX_QUERY_CHARS}: split it into several watches"
            )
        return value

    @field_validator("query")
    @classmethod
    def _parsable(cls, value: str, info: ValidationInfo) -> str:
        try:
            parse_query(value)
        except QueryError as err:
            # A fault at a position is shown there; the others (empty, too big) name the watch.
            where = "" if err.position is not None else f"watch {info.data.get('name', '?')!r}: "
            raise ValueError(f"{where}{err}") from err
        return value

    @property
    def parsed(self) -> Node:
        return parse_query(self.query)


JsonPath = Annotated[str, Field(min_length=1, max_length=200, pattern=_DOTTED_PATH)]


class JsonMapping(_Model):
    """Where a `json_api` source keeps each mention field: dotted paths (`data.items`,
    `by.name`, `authors.0.name`); `items` leads to the list, the others are read in each item.
    `items = "."` means the document itself is the list; `next` leads to the next page's URL."""

    items: Annotated[
        str, Field(min_length=1, max_length=200, pattern=r"^(\.|[^.\s]+(\.[^.\s]+)*)$")
    ]
    title: JsonPath
    url: JsonPath
    id: JsonPath | None = None
    summary: JsonPath | None = None
    author: JsonPath | None = None
    published_at: JsonPath | None = None
    reach: JsonPath | None = None
    next: JsonPath | None = None


class Source(_Model):
    name: Annotated[str, Field(min_length=1, max_length=120), Shown]
    kind: str = "rss"
    # For API kinds, the base URL of the service (`https://public.api.bsky.app`); defaults to
    # the public service of the kind (DEFAULT_BASE_URLS), or to `instance` for mastodon.
    url: Annotated[str, Field(max_length=2000), Shown]
    platform: Platform = "news"
    tier: Annotated[int, Field(ge=1, le=3)] = 3
    language: Literal["fr", "en"] | None = None
    # Poll this source at most every `poll_minutes` (None: every watch cycle).
    poll_minutes: Annotated[int, Field(ge=1, le=10080)] | None = None
    query: Annotated[str, Field(min_length=1, max_length=500), Shown] | None = None
    region: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] | None = None
    instance: Annotated[str, Field(min_length=1, max_length=300)] | None = None
    tag: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^#?[^\W]+$")] | None = None
    subreddit: Annotated[str, Field(pattern=r"^(r/)?[A-Za-z0-9_]{2,21}$")] | None = None
    mapping: JsonMapping | None = None
    # A source that needs a token names the environment variable holding it: the token itself
    # never goes in the file. Sent as `Authorization: Bearer <token>`, or raw in `token_header`,
    # or as the query parameter `token_param`; only to the origin of `url`.
    token_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")] | None = None
    token_header: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,60}$")] | None = None
    token_param: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,60}$")] | None = None

    @model_validator(mode="before")
    @classmethod
    def _kind_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        kind = data.get("kind", "rss")
        data = dict(data)
        if kind == "mastodon" and data.get("instance") is None:
            raise ValueError(
                "instance: is required for kind 'mastodon' (for example \"https://mastodon.social\")"
            )
        if kind == "mastodon" and isinstance(data.get("instance"), str):
            if "url" in data:
                raise ValueError("url: a mastodon source names its server with instance, not url")
            instance = data["instance"].strip().rstrip("/")
            if "://" not in instance:
                instance = f"https://{instance}"
            data["url"] = instance
        if isinstance(kind, str) and kind in DEFAULT_BASE_URLS:
            data.setdefault("url", DEFAULT_BASE_URLS[kind])
        if isinstance(kind, str) and kind in DEFAULT_PLATFORMS:
            data.setdefault("platform", DEFAULT_PLATFORMS[kind])
        return data

    @model_validator(mode="after")
    def _kind_keys(self) -> Source:
        for key, kinds in _KIND_KEYS.items():
            if getattr(self, key) is not None and self.kind not in kinds:
                raise ValueError(
                    f"{key}: is not read by kind {self.kind!r} (only by " + ", ".join(kinds) + ")"
                )
        if self.kind == "news_search" and (self.language is None or self.region is None):
            raise ValueError(
                "language and region: are required for kind 'news_search' "
                '(for example language = "fr" and region = "CA")'
            )
        if self.kind == "mastodon" and self.instance is None:
            raise ValueError(
                "instance: is required for kind 'mastodon' (for example \"https://mastodon.social\")"
            )
        if self.kind == "json_api" and self.mapping is None:
            raise ValueError(
                "mapping: is required for kind 'json_api' (at least items, title and url paths)"
            )
        self._check_token()
        return self

    def _check_token(self) -> None:
        if self.token_env is None:
            if self.token_header is not None or self.token_param is not None:
                raise ValueError(
                    "token_env: is required with token_header or token_param (the name of "
                    "the environment variable that holds the token)"
                )
            return
        if self.token_header is not None and self.token_param is not None:
            raise ValueError("token_header and token_param: give one of them, not both")
        if self.token_header is not None and self.token_header.lower() in _HEADERS_VIGIE_SETS:
            raise ValueError(f"token_header: {self.token_header!r} is a header Vigie sets itself")
        parts = urlsplit(self.url)
        if parts.scheme.lower() != "https" and (parts.hostname or "") not in _LOOPBACK_HOSTS:
            raise ValueError(
                "token_env: a token is only sent over https (or to this machine), "
                "and this url is not https"
            )

    @property
    def hashtag(self) -> str | None:
        return self.tag.lstrip("#") if self.tag else None

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


def parse_quiet_hours(value: str) -> tuple[time, time]:
    """`"21:30-07:00"` -> (21:30, 07:00); the span may cross midnight."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", value)
    if not match:
        raise ValueError("must look like 21:00-07:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if max(h1, h2) > 23 or max(m1, m2) > 59 or (h1, m1) == (h2, m2):
        raise ValueError("must be two different times of day between 00:00 and 23:59")
    return time(h1, m1), time(h2, m2)


class Email(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 587
    sender: EmailStr
    sender_name: Annotated[str, Shown] = "Vigie"
    username: str | None = None
    security: Literal["none", "starttls", "ssl"] = "starttls"
    ca_file: Path | None = None
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 30.0
    password_env: str = "VIGIE_SMTP_PASSWORD"
    # Non-critical mail (digests, reminders, notices) waits out these hours, in the
    # organisation's time zone ("21:00-07:00"); alerts and escalations never wait.
    quiet_hours: str | None = None
    # Non-critical messages per recipient per hour; more wait, with one note saying so.
    hourly_cap: Annotated[int, Field(ge=1, le=1000)] = 10

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours_span(cls, value: str | None) -> str | None:
        if value is not None:
            parse_quiet_hours(value)
        return value

    @model_validator(mode="after")
    def _login_as_sender(self) -> Email:
        # yagmail logs in with the address it sends from; a different login cannot be honoured.
        if self.username is not None and self.username != self.sender:
            raise ValueError("username must be the same address as sender (yagmail logs in as it)")
        return self


# `load_settings(..., lenient_cell=True)` validates with this context: the cell's addresses and
# backups are kept as written, for `vigie cell check` to report with everything else missing.
LENIENT_CELL = "lenient_cell"
MAX_CHARTER_RULES = 12
MAX_CHARTER_RULE_CHARS = 300


def address_problem(value: str) -> str | None:
    """Why `value` is not a usable email address (syntax only, no DNS), or None."""
    if "\r" in value or "\n" in value:
        return "contains a line break"
    try:
        email_validator.validate_email(value, check_deliverability=False)
    except email_validator.EmailNotValidError as err:
        return str(err)
    return None


_PHONE_CHARACTERS = re.compile(r"[0-9+\-(). ]+")
MIN_PHONE_DIGITS = 3


def phone_problem(value: str) -> str | None:
    """Why `value` cannot be a phone number (checked loosely: digits, spaces, + - ( ) .,
    and at least three digits), or None."""
    if not _PHONE_CHARACTERS.fullmatch(value.strip()):
        return "is not a phone number: digits, spaces, +, -, parentheses and dots only"
    if sum(ch.isdigit() for ch in value) < MIN_PHONE_DIGITS:
        return f"is not a phone number: at least {MIN_PHONE_DIGITS} digits"
    return None


# Apprise schemes a channel may use: services reached over the network (chat, push, SMS and
# plain webhooks). Every other scheme is refused when the configuration loads: some reach the
# machine itself (desktop notifications, syslog, files) or run code (custom plugins).
CHANNEL_SCHEMES = frozenset(
    {
        "json", "jsons", "form", "forms", "xml", "xmls",  # plain webhooks
        "mmost", "mmosts",  # Mattermost
        "slack",  # Slack
        "workflow", "workflows",  # Microsoft Teams (Power Automate workflows)
        "matrix", "matrixs",  # Matrix
        "rocket", "rockets",  # Rocket.Chat
        "zulip",  # Zulip
        "discord",  # Discord
        "tgram",  # Telegram
        "signal", "signals",  # Signal (signal-cli REST API)
        "ntfy", "ntfys", "gotify", "gotifys", "pover",  # push
        "twilio", "vonage", "nexmo", "clicksend", "bulksms", "smseagle", "smseagles",  # SMS
    }
)  # fmt: skip
MAX_CHANNEL_CHARS = 2000


def channel_problem(url: str) -> str | None:
    """Why `url` cannot be a channel (an Apprise URL of a network service), or None. The
    message never repeats the URL, which may hold a token."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep or not rest:
        return 'is not an Apprise URL (scheme://...), e.g. "mmosts://chat.example.org/TOKEN"'
    if len(url) > MAX_CHANNEL_CHARS:
        return f"is longer than {MAX_CHANNEL_CHARS} characters"
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" or ch in _INVISIBLE for ch in url):
        return "holds a space or a control character"
    if scheme.lower() not in CHANNEL_SCHEMES:
        shown = scheme if re.fullmatch(r"[A-Za-z0-9+.-]{1,20}", scheme) else "this"
        return (
            f"the scheme {shown}:// is not allowed: a channel reaches a chat, push or SMS "
            "service over the network, never this machine's files, desktop or programs "
            f"(allowed: {', '.join(sorted(CHANNEL_SCHEMES))})"
        )
    return None


def _channel(value: SecretStr) -> SecretStr:
    problem = channel_problem(value.get_secret_value())
    if problem:
        raise ValueError(problem)
    return SecretStr(value.get_secret_value().strip())


# An Apprise URL: a secret (it holds the service's token), never printed whole.
ChannelUrl = Annotated[SecretStr, AfterValidator(_channel)]


def _lenient(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get(LENIENT_CELL))


def _address(value: str, info: ValidationInfo) -> str:
    """An email address as EmailStr checks it (normalised), or as written when lenient."""
    if _lenient(info):
        return value.strip()
    return validate_email(value)[1]


def cron_problem(expression: str) -> str | None:
    """Why a five-field cron expression cannot be read, or None."""
    if len(expression.split()) != 5:
        return "must have five fields (minute hour day-of-month month day-of-week)"
    try:
        CronSim(expression, datetime(2026, 1, 1, tzinfo=UTC))
    except CronSimError as err:
        return f"is not a valid cron expression ({err})"
    return None


def _cron(value: str) -> str:
    problem = cron_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class Member(_Model):
    name: Annotated[str, Field(min_length=1, max_length=120), Shown]
    email: str
    role: Role
    level: Annotated[int, Field(ge=1, le=9)] = 1
    # Where this person is trained and authorised to answer in the organisation's name.
    platforms: tuple[Annotated[str, Field(min_length=1, max_length=60), Shown], ...] = ()
    # Shown in alerts and reminders; checked loosely (digits, spaces, + - ( ) .).
    phone: Annotated[str, Field(max_length=40), Shown] | None = None
    # The member who stands in when this one cannot be reached (a `name` of the cell).
    backup: Annotated[str, Field(min_length=1, max_length=120), Shown] | None = None
    # Languages this member works in; None: the organisation's (`Settings.member_languages`).
    languages: tuple[Language, ...] | None = None
    # Chat, push or SMS channels (Apprise URLs) that get this member's alerts, escalations,
    # incident reports and watchdog notices besides the email.
    channels: tuple[ChannelUrl, ...] = ()

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str, info: ValidationInfo) -> str:
        return _address(value, info)

    @field_validator("phone")
    @classmethod
    def _phone_number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or _lenient(info):
            return value
        problem = phone_problem(value)
        if problem:
            raise ValueError(problem)
        return " ".join(value.split())

    @field_validator("languages")
    @classmethod
    def _some_languages(cls, value: tuple[Language, ...] | None) -> tuple[Language, ...] | None:
        if value is not None and not value:
            raise ValueError("lists no language: leave it out for the organisation's")
        return value


CharterRule = Annotated[str, Field(min_length=1, max_length=MAX_CHARTER_RULE_CHARS)]


class Cell(_Model):
    members: tuple[Member, ...] = ()
    # Short rules of engagement (step 5), quoted in alerts and readiness reminders.
    charter: Annotated[tuple[CharterRule, ...], Field(max_length=MAX_CHARTER_RULES)] = ()
    # A shared address of the cell to forward things to; None: the first level's addresses.
    address: str | None = None

    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _address(value, info)

    @field_validator("charter")
    @classmethod
    def _no_blank_rule(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for index, rule in enumerate(value):
            if not rule.strip():
                raise ValueError(f"rule {index + 1} is blank")
        return tuple(" ".join(rule.split()) for rule in value)

    @model_validator(mode="after")
    def _known_backups(self, info: ValidationInfo) -> Cell:
        names = [m.name for m in self.members]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"members[{index}].name: {name!r} is used twice")
        if _lenient(info):
            return self
        for index, member in enumerate(self.members):
            if member.backup is None:
                continue
            if member.backup == member.name:
                raise ValueError(f"members[{index}].backup: {member.name!r} cannot back up itself")
            if member.backup not in names:
                raise ValueError(
                    f"members[{index}].backup: {member.backup!r} is not a member of the cell "
                    "(use a member's name)"
                )
        return self


class Team(_Model):
    name: Annotated[str, Field(min_length=1, max_length=200), Shown]
    emails: Annotated[tuple[str, ...], Field(min_length=1)]
    # The reminder's language; None: the organisation's (`Settings.team_language`).
    language: Language | None = None
    # When the team gets its readiness reminder; None: `schedule.readiness_cron`.
    cron: str | None = None
    # Chat, push or SMS channels (Apprise URLs) that get what is sent to the team's addresses
    # (alerts of the watches that name the team in `notify_teams`) among the kinds channels carry.
    channels: tuple[ChannelUrl, ...] = ()

    @field_validator("emails")
    @classmethod
    def _addresses(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        return tuple(_address(address, info) for address in value)

    @field_validator("cron")
    @classmethod
    def _readable_cron(cls, value: str | None) -> str | None:
        return None if value is None else _cron(value)


class Schedule(_Model):
    watch_every_minutes: Annotated[int, Field(ge=1, le=1440)] = 10
    digest_cron: str = "30 7 * * 1-5"
    readiness_cron: str = "0 9 1 * *"

    @field_validator("readiness_cron")
    @classmethod
    def _readable_cron(cls, value: str) -> str:
        return _cron(value)


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
    # Pages an API source may read per cycle (each search of it), newest first; the entries
    # of all its pages are also bounded by max_entries and their bytes by max_bytes.
    max_pages: Annotated[int, Field(ge=1, le=50)] = 5
    user_agent: str = "Vigie/0.1 (+crisis early-warning; self-hosted)"
    # Fetch on a Dask cluster (docs/scaling.md): a scheduler address ("tcp://host:8786", or
    # tls://), or "local" for a cluster inside the run's process; unset, the run's threads fetch.
    dask_address: str | None = None
    # Sources per Dask task; each batch keeps the bounds above (`per_host` holds per batch).
    dask_batch_size: Annotated[int, Field(ge=1, le=10_000)] = 50
    # Worker processes that parse a large batch of documents (a first poll); 0: one per core,
    # at most 4; 1: parse in the cycle's process.
    parse_processes: Annotated[int, Field(ge=0, le=64)] = 0
    # Hosts a source may reach at an internal address (loopback, private, link-local...):
    # names, addresses or networks ("intranet.example", "10.0.0.5", "10.1.0.0/16"). A source's
    # own URL host is always allowed; any other internal address, met through a redirect or a
    # next page, is refused.
    allow_hosts: tuple[str, ...] = ()
    # Adaptive polling (tasks/collect/schedule.py): each source is polled as often as it
    # publishes, within these bounds; off, every source is polled every watch cycle (or every
    # `poll_minutes`). The minimum, unset, is the watch cadence; the cap of tier-1 sources,
    # unset, half the detection window, so a major outlet's story counts in the window it is in.
    # On by default: at equal recall it makes 80% fewer fetches (bench/bench_polling.py).
    adaptive_polling: bool = True
    poll_min_minutes: Annotated[int, Field(ge=1, le=1440)] | None = None
    poll_max_minutes: Annotated[int, Field(ge=1, le=10080)] = 60
    poll_tier1_max_minutes: Annotated[int, Field(ge=1, le=1440)] | None = None
    poll_incident_max_minutes: Annotated[int, Field(ge=1, le=1440)] = 15
    # A body is fetched and parsed whatever its validators and hash at least this often.
    full_fetch_hours: Annotated[int, Field(ge=1, le=720)] = 24

    @model_validator(mode="after")
    def _poll_bounds(self) -> Collection:
        if self.poll_min_minutes is not None and self.poll_min_minutes > self.poll_max_minutes:
            raise ValueError(
                f"poll_min_minutes ({self.poll_min_minutes}) is above poll_max_minutes "
                f"({self.poll_max_minutes})"
            )
        return self

    def parse_process_count(self) -> int:
        """How many processes parse a large batch (`parse_processes`, 0 resolved)."""
        if self.parse_processes:
            return self.parse_processes
        return max(1, min(os.cpu_count() or 1, 4))

    @field_validator("allow_hosts")
    @classmethod
    def _hosts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
            except ValueError:
                if not _HOST_NAME.fullmatch(entry):
                    raise ValueError(
                        f"{entry!r} is not a host name, an IP address or a network "
                        '(such as "intranet.example", "10.0.0.5" or "10.1.0.0/16")'
                    ) from None
        return value

    @field_validator("dask_address")
    @classmethod
    def _dask_scheduler(cls, value: str | None) -> str | None:
        if value is None or value == "local":
            return value
        problem = 'must be "local" or a Dask scheduler address such as "tcp://10.0.0.5:8786"'
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError as err:
            raise ValueError(problem) from err
        if parts.scheme not in {"tcp", "tls"} or not parts.hostname or port is None:
            raise ValueError(problem)
        if parts.path not in {"", "/"} or parts.query or parts.fragment:
            raise ValueError(problem)
        return value


class Detection(_Model):
    # Whole 5-minute buckets: detection reads the 5-minute aggregates.
    window_minutes: Annotated[int, Field(ge=5, le=1440, multiple_of=5)] = 60
    # A week of hourly windows: the volume detector compares the same time of day.
    baseline_windows: Annotated[int, Field(ge=3, le=5000)] = 168
    min_mentions: Annotated[int, Field(ge=1)] = 5
    # The volume detector's robust z; 3 is what cross-validation on the 53 public NAB series
    # chose (bench/bench_nab_cv.py).
    threshold: Annotated[float, Field(gt=0)] = 3.0
    future_tolerance_minutes: Annotated[int, Field(ge=0)] = 30
    horizon_days: Annotated[int, Field(ge=1)] = 3650
    sensitivity: Literal["low", "medium", "high"] = "medium"
    # An open alert whose topic has not triggered for this long is resolved.
    calm_minutes: Annotated[int, Field(ge=5)] = 360
    # Extra crisis vocabulary, term -> weight in [0, 1]; a trailing * is a prefix.
    vocabulary: dict[str, Annotated[float, Field(ge=0, le=1)]] = {}
    # A story is breaking when the distinct sources that carried it in the window reach this
    # many, and `breaking_factor` times the topic's usual spread (tasks/detect/breaking.py).
    breaking_min_sources: Annotated[int, Field(ge=2, le=10000)] = 5
    breaking_factor: Annotated[float, Field(ge=1, le=1000)] = 3.0

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


class Health(_Model):
    # A source is reported to the operators (once, and again when it recovers) when it failed
    # this many cycles in a row, at once when it answers with an HTML page instead of a feed,
    # or when its newest entry is older than `silence_factor` times its usual gap between
    # entries (and at least `min_silence_hours`).
    failures_before_notice: Annotated[int, Field(ge=1, le=1000)] = 3
    silence_factor: Annotated[float, Field(ge=2, le=1000)] = 10.0
    min_silence_hours: Annotated[float, Field(gt=0, le=24 * 365)] = 24.0
    # Detection ignores windows where sources carrying less than this share of a topic's
    # usual volume were collected: a gap in collection is not calm, nor a baseline.
    min_coverage: Annotated[float, Field(ge=0, le=1)] = 0.5
    # The dead man's switch (`vigie watchdog`): the operators are told when no cycle has
    # completed with a source answering for this long; unset, 3 scheduled cycles (30 min at least).
    watchdog_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] | None = None


class Escalation(_Model):
    # An open alert nobody acknowledged for this long goes to the next level of the cell, and
    # so on up the levels; an acknowledgement stops it.
    delay_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 30


class Prefect(_Model):
    # The Prefect UI as the cell reaches it (`https://vigie.example.org`): the links of emails
    # point there. Unset: the API's own UI (PREFECT_UI_URL), often 127.0.0.1, useless off the
    # server; `vigie check` warns about a loopback address.
    public_ui_url: Annotated[str, Field(max_length=300)] | None = None

    @field_validator("public_ui_url")
    @classmethod
    def _web_address(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value


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
    health: Health = Health()
    escalation: Escalation = Escalation()
    prefect: Prefect = Prefect()
    config_path: Path = Path(DEFAULT_CONFIG)

    @model_validator(mode="before")
    @classmethod
    def _derived_queries(cls, data: Any) -> Any:
        """A search source without `query` searches the positive terms of the watch queries
        (a mastodon source with a `tag` reads only its tag timeline unless given a query)."""
        if not isinstance(data, dict):
            return data
        watches = data.get("watch")
        sources = data.get("sources")
        if not isinstance(watches, list | tuple) or not isinstance(sources, list | tuple):
            return data
        queries = [
            w.query if isinstance(w, Watch) else w.get("query")
            for w in watches
            if isinstance(w, Watch | dict)
        ]
        derived = derived_search_query(q for q in queries if isinstance(q, str))
        if not derived:
            return data
        filled: list[Any] = []
        for source in sources:
            if isinstance(source, Source):
                if source.kind in SEARCH_KINDS and source.query is None and not source.tag:
                    source = source.model_copy(update={"query": derived})
            elif (
                isinstance(source, dict)
                and source.get("kind") in SEARCH_KINDS
                and source.get("query") is None
                and not (source.get("kind") == "mastodon" and source.get("tag"))
            ):
                source = {**source, "query": derived}
            filled.append(source)
        return {**data, "sources": filled}

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for label, names in (
            ("watch", [w.name for w in self.watch]),
            ("sources", [s.name for s in self.sources]),
            ("teams", [t.name for t in self.teams]),
        ):
            seen: set[str] = set()
            for index, name in enumerate(names):
                if name in seen:
                    raise ValueError(f"{label}[{index}].name: {name!r} is used twice")
                seen.add(name)
        teams = {t.name for t in self.teams}
        for index, watch in enumerate(self.watch):
            for name in watch.notify_teams:
                if name not in teams:
                    raise ValueError(
                        f"watch[{index}].notify_teams: {name!r} is not a team (use a "
                        "`[[teams]]` name)"
                    )
        return self

    def team_language(self, team: Team) -> Language:
        return team.language or self.organisation.language

    def team_cron(self, team: Team) -> str:
        return team.cron or self.schedule.readiness_cron

    def member_languages(self, member: Member) -> tuple[Language, ...]:
        return member.languages or (self.organisation.language,)

    def watch_label(self, name: str) -> str:
        """The human label of the watch `name` (its name when it has none, or is unknown)."""
        watch = next((w for w in self.watch if w.name == name), None)
        return (watch.label if watch else None) or name

    def member(self, name: str) -> Member | None:
        return next((m for m in self.cell.members if m.name == name), None)

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file, relative paths taken from the config file's folder."""
        path = self.warehouse.path
        return path if path.is_absolute() else self.config_path.parent / path

    def level_members(self, level: int) -> tuple[Member, ...]:
        return tuple(m for m in self.cell.members if m.level == level)

    @property
    def operators(self) -> tuple[Member, ...]:
        """Who hears that the whole watch stopped (the watchdog): the cell's operators, else its
        first level, since no alert can reach the cell while the watch is stopped."""
        return self.source_operators or self.first_level

    @property
    def source_operators(self) -> tuple[Member, ...]:
        """The members with role "operator": the only ones told about sources (failing,
        silent, degraded), which the rest of the cell cannot repair."""
        return tuple(m for m in self.cell.members if m.role == "operator")

    @property
    def source_notice_recipients(self) -> tuple[str, ...]:
        """Where notices about sources go: the operators; with none, Vigie's own mailbox
        (`email.sender`), never the cell's lead or spokesperson. `vigie check` and `vigie cell
        check` warn that nobody of the cell gets them."""
        return tuple(m.email for m in self.source_operators) or (self.email.sender,)

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
        message = "is required: add it (docs/configuration.md lists every key)"
    # Errors raised by a model validator name their key in the message already.
    key = _key(tuple(first["loc"]))
    # Errors on an enclosing key (a list that "should have at least 1 item") are echoes.
    loc = tuple(first["loc"])
    more = sum(1 for e in errors if e is not first and tuple(e["loc"]) != loc[: len(e["loc"])])
    suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {key}: {message}{suffix}"


def _toml_problem(err: tomllib.TOMLDecodeError) -> str:
    """ "invalid TOML at line 3, column 8: <what tomllib says>; fix that line", on one line."""
    found = _TOML_POSITION.search(str(err))
    if found is None:
        return f"invalid TOML: {one_line(err)}; fix the file, then run `vigie check`"
    reason = str(err)[: found.start()].strip()
    return (
        f"invalid TOML at line {found.group(1)}, column {found.group(2)}: {reason}; "
        "fix that line (text values need quotes), then run `vigie check`"
    )


def load_settings(path: str | os.PathLike[str], *, lenient_cell: bool = False) -> Settings:
    """Read and validate a configuration file.

    With `lenient_cell`, the crisis cell's addresses and backups are kept as written (for
    `vigie cell check` to report them with the rest); every other key is checked as usual.

    Raises:
        ConfigError: the file is missing, not TOML, or a key is invalid; the message names it.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as err:
        raise ConfigError(
            f"{path}: no such configuration file: run `vigie init` to create one, or pass "
            f"--config FILE or set {CONFIG_ENV} to use another"
        ) from err
    except OSError as err:
        raise ConfigError(
            f"{path}: cannot be read: {err.strerror}; check that this user may read it"
        ) from err
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: is not UTF-8 text: save it as UTF-8 in your editor") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {_toml_problem(err)}") from err
    data["config_path"] = path
    try:
        return Settings.model_validate(data, context={LENIENT_CELL: lenient_cell})
    except ValidationError as err:
        raise ConfigError(_describe(err, path)) from err


def source_token(source: Source, env: Mapping[str, str] | None = None) -> str | None:
    """The token `source` needs, from the variable its `token_env` names (None: it needs none).

    Raises:
        ConfigError: the variable is unset or empty, or holds what a request cannot carry;
            the message names the variable, never its value.
    """
    if source.token_env is None:
        return None
    env = os.environ if env is None else env
    value = env.get(source.token_env, "").strip()
    if not value:
        raise ConfigError(f"the token variable {source.token_env} is not set")
    if not all("!" <= ch <= "~" for ch in value):
        raise ConfigError(
            f"the token in {source.token_env} holds spaces, control or non-ASCII characters "
            "(a request cannot carry them)"
        )
    return value


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
            "so the SMTP password must come from that environment variable; set it "
            f"(export {settings.email.password_env}=...) or remove email.username if the "
            "server needs no login"
        )
    return Secrets(smtp_password=SecretStr(password) if password else None)
