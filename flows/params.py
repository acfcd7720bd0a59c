"""Parameter types the flows share, with the bounds the Prefect UI enforces.

Prefect 3.9 builds a flow's parameter form from its signature: bounds come from these `Field`s,
but each description comes from the `Args:` section of the flow's docstring (a `description`
given here would be dropped), so every flow documents its parameters there.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

ConfigPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=4096,
    ),
]
