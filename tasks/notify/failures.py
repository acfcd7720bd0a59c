"""What a source's recorded error means, by kind, for people.

Collection records each failure as a short technical reason (`tasks.collect.fetch`,
`tasks.collect.normalise`, `tasks.collect.sources`): "timed out", "HTTP 404 Not Found",
"connection failed: NameResolutionError", "not a feed: an HTML page"... The notices to the
operators say it in their language from the kind found here, and keep the reason itself as a
details line. The kinds follow the reasons those modules write; an unknown reason is "other",
never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

FailureKind = Literal[
    "html_page",
    "timeout",
    "http_status",
    "redirect",
    "dns",
    "connection",
    "parse",
    "too_large",
    "other",
]
# The kinds that say the machine running Vigie may have no network: when every source fails
# with one of them, the notice says so first.
NETWORK_KINDS: frozenset[FailureKind] = frozenset({"dns", "connection"})

_HTTP_STATUS = re.compile(r"^HTTP (\d{3})\b")
_PARSE_PREFIXES = (
    "not a feed",
    "not json",
    "empty document",
    "document declares xml entities",
    "not a list of",
    "not a reddit",
    "reddit listing",
    "json feed",
    "not an algolia",
    "not a searchposts",
    "mapping.items",
)


@dataclass(frozen=True, slots=True)
class Failure:
    """One recorded error read: its kind, and the HTTP status when the server gave one."""

    kind: FailureKind
    http_status: int | None = None


def read_failure(error: str | None) -> Failure:
    """The kind of a reason recorded in `sources.last_error` (None or unknown: "other")."""
    reason = (error or "").strip()
    lowered = reason.lower()
    if lowered.startswith("not a feed: an html page"):
        return Failure("html_page")
    status = _HTTP_STATUS.match(reason)
    if status:
        return Failure("http_status", int(status.group(1)))
    if lowered.startswith(("timed out", "total deadline exceeded")):
        return Failure("timeout")
    if lowered.startswith("connection failed:"):
        # urllib3's NameResolutionError: the host name did not resolve (DNS); anything else
        # (NewConnectionError: refused, unreachable; ProxyError) failed to connect.
        return Failure("dns" if "nameresolution" in lowered else "connection")
    if "redirect" in lowered or lowered.endswith("(refused)"):
        return Failure("redirect")
    if lowered.startswith("response larger than"):
        return Failure("too_large")
    if lowered.startswith(_PARSE_PREFIXES):
        return Failure("parse")
    return Failure("other")


def network_down(failing: Iterable[tuple[str | None, str]], *, total: int) -> bool:
    """Whether every one of `total` sources fails to connect (DNS or connection), on at least
    two different hosts: then the fault is the network of the machine, not the sources.

    Args:
        failing: (recorded error, host) of each source whose last fetch failed.
        total: how many sources have been fetched at all.
    """
    hosts: set[str] = set()
    count = 0
    for error, host in failing:
        if read_failure(error).kind not in NETWORK_KINDS:
            return False
        hosts.add(host)
        count += 1
    return count == total and len(hosts) >= 2
