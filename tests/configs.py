"""Small TOML configurations for tests, written into a test's tmp_path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vigie.settings import Settings, load_settings

if TYPE_CHECKING:
    from pathlib import Path

# The organisation, a warehouse beside the file and the brand's watch: what the collection
# tests put their sources after.
WATCH_TOML = """
[organisation]
name = "Laiterie Boréale"

[warehouse]
path = "wh/vigie.duckdb"

[[watch]]
name = "marque"
query = '("laiterie boréale" OR boreale) NOT recrutement'
"""

MINIMAL_TOML = """\
[organisation]
name = "Laiterie Boréale"
language = "fr"
timezone = "America/Toronto"

[[watch]]
name = "marque"
query = '("laiterie boréale" OR boreale) NOT recrutement'

[[sources]]
name = "Le Quotidien du Nord"
url = "https://quotidien-du-nord.example/rss.xml"

[email]
sender = "vigie@laiterie-boreale.example"
"""

CELL_TOML = """
[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@laiterie-boreale.example"
role = "lead"
level = 1
platforms = ["facebook", "x"]

[[cell.members]]
name = "Louis Tremblay"
email = "louis.tremblay@laiterie-boreale.example"
role = "spokesperson"
level = 1

[[cell.members]]
name = "Sophie Roy"
email = "sophie.roy@laiterie-boreale.example"
role = "legal"
level = 2
"""


def write_toml(tmp_path: Path, text: str, name: str = "vigie.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def settings_from(tmp_path: Path, text: str) -> Settings:
    return load_settings(write_toml(tmp_path, text))


# A cell with nothing missing: every key role backed up, an operator, a charter, two teams
# (one reading French, one English) and a shared address to forward things to.
READY_CELL_TOML = """
[cell]
address = "cellule@laiterie-boreale.example"
charter = [
    "Nous répondons en moins d’une heure, avec des faits vérifiés.",
    "Nous ne supprimons jamais un commentaire critique.",
]

[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@laiterie-boreale.example"
role = "lead"
level = 1
backup = "Jean Gagnon"
platforms = ["facebook", "x"]
phone = "+1 514 555 0101"
languages = ["fr", "en"]

[[cell.members]]
name = "Louis Tremblay"
email = "louis.tremblay@laiterie-boreale.example"
role = "spokesperson"
level = 1
backup = "Awa Diallo"
platforms = ["facebook", "instagram"]

[[cell.members]]
name = "Sophie Roy"
email = "sophie.roy@laiterie-boreale.example"
role = "legal"
level = 2
backup = "Marc Côté"

[[cell.members]]
name = "Marc Côté"
email = "marc.cote@laiterie-boreale.example"
role = "legal"
level = 2

[[cell.members]]
name = "Jean Gagnon"
email = "jean.gagnon@laiterie-boreale.example"
role = "executive"
level = 3
backup = "Awa Diallo"

[[cell.members]]
name = "Chloé Martin"
email = "chloe.martin@laiterie-boreale.example"
role = "operator"
level = 1
backup = "Awa Diallo"

[[teams]]
name = "Service à la clientèle"
emails = ["clientele@laiterie-boreale.example", "superviseurs@laiterie-boreale.example"]

[[teams]]
name = "Ontario sales"
emails = ["sales-on@laiterie-boreale.example"]
language = "en"
cron = "0 8 * * 1"
"""
