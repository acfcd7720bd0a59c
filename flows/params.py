"""Parameter types the flows share, with the description and bounds the Prefect UI shows."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ConfigPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
        description="The Vigie configuration file (TOML); a relative path is read from the "
        "deployment's working directory.",
    ),
]
