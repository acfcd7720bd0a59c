"""Email text for people: Jinja2 templates with autoescaping, one catalogue of French and
English texts, and the locale's numbers, dates and month names (Babel).

The templates are `tasks/notify/templates/*.j2`: those ending in `.html.j2` are autoescaped, so
whatever came from a feed is inert however it is passed; `.txt.j2` ones give plain text and
`.md.j2` ones markdown for the Prefect UI (their values escaped by the caller's `md_*`). The
texts are `tasks/notify/catalogue/{fr,en}.toml`, with the same keys in both (a test checks it).
Times are shown in the organisation's time zone; nothing is read from the machine's locale.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.dates import format_datetime, format_timedelta, get_timezone_location
from babel.lists import format_list
from babel.numbers import format_decimal

CATALOGUE_FOLDER = Path(__file__).resolve().parent / "catalogue"
TEMPLATE_FOLDER = Path(__file__).resolve().parent / "templates"
# The Babel locale of each email language: the language alone, no region's conventions.
LOCALES = {"fr": "fr", "en": "en"}


@cache
def catalogue(language: str) -> dict[str, Any]:
    """The texts of `language` (`fr` or `en`), as nested tables."""
    with (CATALOGUE_FOLDER / f"{language}.toml").open("rb") as file:
        return tomllib.load(file)


@cache
def environment() -> jinja2.Environment:
    """The templates' environment: HTML autoescaped, an unknown name an error, not a blank."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_FOLDER),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",),
            disabled_extensions=("txt.j2", "md.j2"),
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    """`template` (a name under tasks/notify/templates) filled with `context`."""
    return environment().get_template(template).render(**context)


class Texts:
    """The catalogue of one language with its formats: `texts("alert.heading", topic=...)`."""

    def __init__(self, language: str, timezone: str = "UTC") -> None:
        self.language = language
        self.locale = LOCALES[language]
        self.zone = ZoneInfo(timezone)
        self._texts = catalogue(language)

    def __call__(self, key: str, **values: object) -> str:
        """The text at the dotted `key`, its `{names}` replaced by `values` (already formatted
        by the caller: numbers and dates through `number` and `when`)."""
        found: Any = self._texts
        for part in key.split("."):
            found = found[part]
        return str(found).format(**values) if values else str(found)

    def get(self, table: str, name: str) -> str:
        """A name of a table (`levels`, `roles`, `signals`), or `name` itself when unknown."""
        return str(self._texts[table].get(name, name))

    def plural(self, key: str, n: int, **values: object) -> str:
        """The text at `key` (a table of CLDR plural forms: `one`, `other`, ...) for the count
        `n`, with `{n}` the count as the language writes it: "1 source", "0 mention" in French
        but "0 mentions" in English (Babel's plural rules)."""
        found: Any = self._texts
        for part in key.split("."):
            found = found[part]
        form = Locale.parse(self.locale).plural_form(n)
        return str(found.get(form, found["other"])).format(n=self.number(n, 0), **values)

    def duration(self, seconds: float) -> str:
        """A span of time in words, rounded as people say it ("3 heures", "25 minutes")."""
        return format_timedelta(timedelta(seconds=seconds), threshold=1.5, locale=self.locale)

    def number(self, value: float, digits: int = 1) -> str:
        """`value` with at most `digits` decimals, as the language writes it ("78,3", "1 204")."""
        pattern = "#,##0" + ("." + "#" * digits if digits else "")
        return format_decimal(value, format=pattern, locale=self.locale)

    def when(self, moment: datetime, *, seconds: bool = False) -> str:
        """A moment in local time, with the day and the month's name ("lundi 7 décembre 2026 à
        14:05"), to the second with `seconds`."""
        pattern = self("formats.datetime_seconds" if seconds else "formats.datetime")
        return format_datetime(moment, pattern, tzinfo=self.zone, locale=self.locale)

    def time(self, moment: datetime) -> str:
        """The local time of day alone ("14:05")."""
        return format_datetime(moment, self("formats.time"), tzinfo=self.zone, locale=self.locale)

    def zone_name(self) -> str:
        """Which clock the times follow ("heure de Toronto", or "UTC")."""
        if self.zone.key in ("UTC", "Etc/UTC", "GMT", "Etc/GMT"):
            return "UTC"
        city = get_timezone_location(self.zone, locale=self.locale, return_city=True)
        return self("formats.zone", city=city)

    def listing(self, items: Iterable[str]) -> str:
        """Items as a sentence lists them ("a, b et c")."""
        listed = list(items)
        return format_list(listed, locale=self.locale) if listed else ""


def safe_href(url: str | None) -> str | None:
    """`url` when it is a web address (a template escapes it), else None: never a `javascript:`
    or `data:` link."""
    if url and url.lower().startswith(("http://", "https://")):
        return url
    return None


def rebase_link(url: str | None, *, local_ui: str | None, public_ui: str | None) -> str | None:
    """`url`, a page of the Prefect UI at `local_ui`, at the public address instead (the UI the
    cell reaches); unchanged when either address is unknown or `url` is elsewhere."""
    if not url or not local_ui or not public_ui:
        return url
    local = local_ui.rstrip("/")
    if url == local or url.startswith(local + "/"):
        return public_ui.rstrip("/") + url[len(local) :]
    return url


def is_loopback_url(url: str) -> bool:
    """True when `url` names this machine (127.0.0.0/8, ::1, localhost): a link nobody else
    can open."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_ui_warning(public_ui: str | None, api_ui: str | None) -> str | None:
    """`vigie check`'s line when the emails' Prefect links (`[prefect] public_ui_url`, else the
    API's own UI) name this machine, where nobody of the cell can open them."""
    address = public_ui or api_ui
    if not address or not is_loopback_url(address):
        return None
    return (
        f"Warning: the emails' Prefect links (take charge, the watch cycle) point at {address}, "
        "which only this machine can open: set [prefect] public_ui_url to the address the cell "
        "reaches"
    )
