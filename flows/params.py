"""Parameter types the flows share, with the bounds the Prefect UI enforces and the labels
it shows.

Prefect 3.9 builds a flow's parameter form from its signature: bounds come from these `Field`s,
but each description comes from the `Args:` section of the flow's docstring (a `description`
given here would be dropped), so every flow documents its parameters there. Prefect also sets
each field's title (the form's label) to the parameter's name; a title in `json_schema_extra`
(`label`) replaces it, so the form says "Configuration file", not "config_path".
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field


def label(title: str) -> dict[str, Any]:
    """The form's label of a parameter (`Field(json_schema_extra=label("..."))`)."""
    return {"title": title}


ConfigPath = Annotated[
    str,
    Field(min_length=1, max_length=4096, json_schema_extra=label("Configuration file")),
]
