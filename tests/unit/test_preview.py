"""Unit tests of `cli.preview` with the built-in sample (an in-memory warehouse; the
configured one is never created): which data and language each preview uses, the page's
headers, inline charts and plain-text part, and where the file goes."""

from __future__ import annotations

import base64
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from cli.preview import make_preview, output_path, preview_page, write_preview
from tests.configs import CELL_TOML, MINIMAL_TOML, READY_CELL_TOML, settings_from
from vigie.errors import ConfigError, VigieError
from vigie.settings import Settings

NOW = datetime(2026, 11, 25, 14, 7, tzinfo=UTC)
CONFIG = MINIMAL_TOML.replace("Laiterie Boréale", "Fromagerie Lac-Bleu", 1) + CELL_TOML


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_from(tmp_path, CONFIG)


def test_without_a_warehouse_the_alert_is_the_sample_about_the_configured_organisation(
    settings: Settings,
) -> None:
    preview = make_preview(settings, "alert", now=NOW)
    message = preview.message
    assert (preview.data, preview.language) == ("sample", "fr")
    assert preview.detail == "sample data (a fictional crisis; no alert stored yet)"
    assert message.subject.startswith("[Vigie][")
    assert "Fromagerie Lac-Bleu : pic de mentions « marque »" in message.subject
    # The crisis is about the configured organisation, in French and in English.
    assert "Rappel de produits : Fromagerie Lac-Bleu retire plusieurs lots" in message.html
    assert "Fromagerie Lac-Bleu recalls several product lots" in message.html
    # It goes to the configured cell's first level, with the authorised platforms.
    assert message.recipients == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
    )
    assert "autorisé·e à répondre sur : facebook, x" in message.html
    assert len(message.images) == 1
    assert not settings.warehouse_path.exists()


def test_sample_asked_for_is_said_so(settings: Settings) -> None:
    preview = make_preview(settings, "digest", data="sample", now=NOW)
    assert preview.detail == "sample data (a fictional crisis; --sample)"


def test_the_language_option_overrides_the_organisations(settings: Settings) -> None:
    preview = make_preview(settings, "alert", language="en", now=NOW)
    assert preview.language == "en"
    assert "Fromagerie Lac-Bleu: spike in mentions of “marque”" in preview.message.subject
    page = preview_page(preview, settings, now=NOW)
    assert "<th" in page and ">Subject</th>" in page and "Preview — nothing was sent" in page


def test_the_sample_digest_covers_the_day_that_just_ended(settings: Settings) -> None:
    preview = make_preview(settings, "digest", now=NOW)
    assert preview.message.subject == "[Vigie][RÉSUMÉ] Fromagerie Lac-Bleu — 25 novembre 2026"
    # The crisis, a failing source and the acknowledged alert are in it.
    assert "Rappel de produits : Fromagerie Lac-Bleu retire plusieurs lots" in preview.message.html
    assert "Blogue du terroir" in preview.message.html
    assert "prise en charge par Awa Diallo" in preview.message.html
    assert preview.message.text  # the digest has its own plain-text part
    weekly = make_preview(settings, "digest", period="weekly", now=NOW)
    assert "[Vigie][RÉSUMÉ HEBDOMADAIRE]" in weekly.message.subject
    assert output_path(settings, weekly, None, "weekly").name == "digest-weekly-fr.html"


def test_readiness_follows_the_teams_language_unless_overridden(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML + READY_CELL_TOML)
    first = make_preview(settings, "readiness", now=NOW)
    assert (first.data, first.language) == ("configuration", "fr")
    assert first.detail == "the configured cell and team 'Service à la clientèle'"
    sales = make_preview(settings, "readiness", team="Ontario sales", now=NOW)
    assert sales.language == "en"
    assert sales.message.subject == (
        "[Vigie] Laiterie Boréale's crisis cell is ready — reminder for Ontario sales"
    )
    forced = make_preview(settings, "readiness", team="Ontario sales", language="fr", now=NOW)
    assert forced.language == "fr"
    assert forced.message.subject.startswith("[Vigie] La cellule de crise de Laiterie Boréale")
    with pytest.raises(ConfigError, match="no team named 'Ventes'"):
        make_preview(settings, "readiness", team="Ventes", now=NOW)


def test_readiness_without_teams_uses_a_sample_team_and_the_configured_cell(
    settings: Settings,
) -> None:
    preview = make_preview(settings, "readiness", now=NOW)
    assert preview.data == "sample_team"
    assert preview.message.recipients == ("service-clientele@example.org",)
    assert "Awa Diallo" in preview.message.html and "Sophie Roy" in preview.message.html
    with pytest.raises(VigieError, match=r"no team is configured.*--sample"):
        make_preview(settings, "readiness", data="stored", now=NOW)


@pytest.mark.parametrize("kind", ["alert", "digest"])
def test_stored_data_asked_for_without_a_warehouse_suggests_the_sample(
    settings: Settings, kind: str
) -> None:
    with pytest.raises(
        VigieError, match=r"no (alert|mention) stored in .*or preview with --sample"
    ):
        make_preview(settings, kind, data="stored", now=NOW)  # type: ignore[arg-type]
    assert not settings.warehouse_path.exists()


def test_the_page_shows_the_headers_the_html_with_its_charts_inline_and_the_plain_text(
    settings: Settings,
) -> None:
    preview = make_preview(settings, "digest", now=NOW)
    page = preview_page(preview, settings, now=NOW)
    assert f"<td>{preview.message.subject}</td>" in page
    assert "<td>Vigie &lt;vigie@laiterie-boreale.example&gt;</td>" in page
    assert "<td>awa.diallo@laiterie-boreale.example, louis.tremblay@" in page
    assert "Données : d’exemple (fictives)." in page
    assert "cid:" not in page
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == len(preview.message.images) == 1
    assert Image.open(io.BytesIO(base64.b64decode(images[0]))).size == (600, 220)
    plain = re.search(r"<pre[^>]*>(.*)</pre>", page, re.S)
    assert plain is not None and plain.group(1).startswith("Résumé quotidien — Fromagerie")
    # One document: the email's own <html> and <body> are not nested in the page.
    assert page.count("<body") == 1 and page.count("</html>") == 1


def test_a_cell_without_members_shows_that_nobody_would_receive_it(tmp_path: Path) -> None:
    settings = settings_from(tmp_path, MINIMAL_TOML)
    preview = make_preview(settings, "alert", now=NOW)
    assert preview.message.recipients == ()
    assert "(personne : la cellule n’a pas de membre)" in preview_page(preview, settings, now=NOW)


def test_the_file_goes_beside_the_configuration_or_where_asked(
    settings: Settings, tmp_path: Path
) -> None:
    preview = make_preview(settings, "alert", data="sample", language="en", now=NOW)
    default = output_path(settings, preview, None)
    assert default == tmp_path / "vigie-preview" / "alert-en.html"
    folder = tmp_path / "out"
    folder.mkdir()
    assert output_path(settings, preview, str(folder)) == folder / "alert-en.html"
    assert output_path(settings, preview, str(tmp_path / "x.html")) == tmp_path / "x.html"
    written = write_preview("<p>x</p>", default)
    assert written.read_text(encoding="utf-8") == "<p>x</p>"
    (tmp_path / "blocked").write_text("a file, not a folder", encoding="utf-8")
    with pytest.raises(VigieError, match="cannot write the preview to"):
        write_preview("<p>x</p>", tmp_path / "blocked" / "alert-en.html")
