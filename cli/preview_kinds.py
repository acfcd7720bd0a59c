"""The emails `vigie preview` renders: a module of its own so that the command line's parser
lists them without importing what renders them."""

from __future__ import annotations

from typing import Literal, get_args

Kind = Literal[
    "alert",
    "escalation",
    "digest",
    "readiness",
    "source-health",
    "watchdog",
    "drill-report",
    "sitrep",
    "incident-report",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
