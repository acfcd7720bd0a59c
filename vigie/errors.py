"""One exception hierarchy for Vigie.

Expected errors derive from `VigieError`; the command line prints their message on one line and
exits non-zero without a traceback. Anything else is a programming error and is allowed to crash.
"""

from __future__ import annotations


class VigieError(Exception):
    """Base of every error Vigie expects and reports to the user."""


class ConfigError(VigieError):
    """The configuration file is missing, unreadable or invalid; the message names the key."""


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
    """A watch query cannot be parsed."""


class ValidationFailed(VigieError):
    """Data quality validation could not run at all (not: some rows failed)."""


class WarehouseError(VigieError):
    """The DuckDB warehouse cannot be opened, migrated or written."""


class NotifyError(VigieError):
    """An email could not be handed to the SMTP server."""
