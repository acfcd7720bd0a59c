"""One exception hierarchy for Vigie.

Expected errors derive from `VigieError`; the command line prints their message on one line and
exits non-zero without a traceback. Anything else is a programming error and is allowed to crash.
"""

from __future__ import annotations

import unicodedata


def one_line(value: object, limit: int | None = None) -> str:
    """`str(value)` on one line (every run of whitespace, line breaks too, becomes a space),
    cut to `limit` characters: what a library says as the cause inside an error of ours."""
    text = " ".join(str(value).split())
    return text if limit is None else text[:limit]


class VigieError(Exception):
    """Base of every error Vigie expects and reports to the user."""


class ConfigError(VigieError):
    """The configuration file is missing, unreadable or invalid; the message names the key."""


class PrefectUnreachable(VigieError):
    """The Prefect API does not answer: before a cycle (it does not start), or during one (its
    `summary` is the cycle's when the cycle was loaded all the same, else None)."""

    def __init__(self, message: str, summary: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.summary = summary


class SourceError(VigieError):
    """A source could not be collected; recorded in `source_runs`, never fatal to a cycle."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class FetchError(SourceError):
    """The HTTP exchange with a source failed (network, status, size, timeout)."""

    def __init__(self, source: str, reason: str, *, http_status: int | None = None) -> None:
        super().__init__(source, reason)
        self.http_status = http_status


class ParseError(SourceError):
    """The body of a source is not a usable feed."""


class QueryError(VigieError):
    """A watch query cannot be parsed; `position` (1-based, in characters) says where.

    `str(err)` stays on one line ("position 14: expected a closing parenthesis ...") so a
    configuration error is still one line per key; `caret()` adds the query with a `^` under
    the position, for places that can show several lines.
    """

    def __init__(self, reason: str, *, query: str | None = None, position: int | None = None):
        super().__init__(reason if position is None else f"position {position}: {reason}")
        self.reason = reason
        self.query = query
        self.position = position

    def caret(self) -> str:
        """The message, then the query on one line with a `^` under the faulty character."""
        if self.query is None or self.position is None:
            return str(self)
        shown = "".join(" " if ch.isspace() else ch for ch in self.query)
        before = shown[: self.position - 1]
        return f"{self}\n  {shown}\n  {' ' * _columns(before)}^"


def _columns(text: str) -> int:
    """Terminal columns `text` takes: wide (CJK) characters count two, combining marks none."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


class ValidationFailed(VigieError):
    """Data quality validation could not run at all (not: some rows failed)."""


class WarehouseError(VigieError):
    """The DuckDB warehouse cannot be opened, migrated or written."""


class WarehouseDamaged(WarehouseError):
    """The warehouse file cannot be read (truncated, corrupt): a restore of a backup mends it.
    The message names the file and the command to run; `reason` is what was found."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


class NotifyError(VigieError):
    """An email could not be handed to the SMTP server."""
