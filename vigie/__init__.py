"""Vigie: a self-hosted early-warning system for press and social-media crises.

Importing the package turns off the telemetry of Prefect and Great Expectations, so that every
entry point (the `vigie` command, flow modules loaded by a Prefect worker, tests) is silent on the
network before either library is imported. The values are forced: telemetry is never on.
"""

from __future__ import annotations

import os

TELEMETRY_OFF: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "GX_ANALYTICS_ENABLED": "false",
}


def disable_telemetry() -> None:
    """Set the environment variables that keep Prefect and GX from calling home."""
    for name, value in TELEMETRY_OFF.items():
        os.environ[name] = value


disable_telemetry()

__version__ = "0.1.0"
