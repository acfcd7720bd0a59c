"""`vigie preview` as a user runs it: real processes, a real warehouse, a real SMTP server that
must receive nothing, and a browser command that must receive the file."""

from __future__ import annotations

import hashlib
import re
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.commands import vigie, vigie_here
from tests.conftest import ConfigWriter
from tests.preview_data import ESCAPED_SCRIPT, STORED_TITLE, fill_crisis, outbox
from vigie.localservers import MailSink
from vigie.settings import load_settings

SOURCES: list[dict[str, object]] = [
    {"name": "Le Quotidien", "url": "https://quotidien.example/rss.xml", "tier": 1}
]
TEAM = """
[[teams]]
name = "Ontario sales"
emails = ["sales-on@laiterie-boreale.example"]
language = "en"
"""


def _written(stdout: str) -> Path:
    """The file the command's line names (after its last ': ')."""
    path = Path(stdout.strip().splitlines()[0].rsplit(": ", 1)[1])
    assert path.is_absolute() and path.is_file(), stdout
    return path


def _subject(page: str) -> str:
    found = re.search(r"<th[^>]*>(?:Objet|Subject)</th><td>([^<]*)</td>", page)
    assert found is not None
    return found.group(1)


def test_each_email_is_written_beside_the_config_and_nothing_is_sent(
    mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = write_config(sources=SOURCES, smtp_port=mail_sink.port)
    expected = {
        "alert": ("[Vigie][", "Pic de mentions pour « marque »"),
        "escalation": ("[Vigie][ESCALADE][", "Que faire maintenant"),
        "source-health": ("[Vigie][SOURCE] ", "Sources à vérifier"),
        "watchdog": ("[Vigie][VEILLE ARRÊTÉE] ", "Dernier cycle qui a veillé"),
        "drill-report": ("[EXERCICE] Vigie : bilan", "Délai de détection"),
        "sitrep": ("[Vigie][INCIDENT] marque — point de situation n° 1", "Que faire maintenant"),
        "incident-report": ("[Vigie][INCIDENT] marque — rapport d’incident", "Chronologie"),
        "digest": ("[Vigie][RÉSUMÉ] Laiterie Boréale — ", "Volumes et tonalité"),
        "readiness": (
            "[Vigie] La cellule de crise de Laiterie Boréale est prête",
            "Ce qu’il ne faut pas faire",
        ),
    }
    for kind, (subject, content) in expected.items():
        result = vigie_here("--config", str(config), "preview", kind)
        assert result.returncode == 0, result.stderr
        path = _written(result.stdout)
        assert path == config.parent / "vigie-preview" / f"{kind}-fr.html"
        assert f"{kind} email in French with " in result.stdout
        assert "sample" in result.stdout
        page = path.read_text(encoding="utf-8")
        assert _subject(page).startswith(subject)
        assert content in page
        if kind in (
            "alert",
            "escalation",
            "digest",
            "readiness",
            "sitrep",
        ):  # the others name no one
            assert "Laiterie Boréale" in page
    assert not (config.parent / "wh").exists()  # the warehouse was not even created
    assert mail_sink.messages() == []


def test_stored_data_is_previewed_escaped_and_the_warehouse_is_left_as_it_was(
    mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = write_config(sources=SOURCES, smtp_port=mail_sink.port)
    settings = load_settings(config)
    # A crisis that ended before the current hour, so the digest that would run now holds it.
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(minutes=10)
    alert_id = fill_crisis(settings, now=now)
    path = settings.warehouse_path
    before = hashlib.sha256(path.read_bytes()).hexdigest()

    alert = vigie_here("--config", str(config), "preview", "alert")
    digest = vigie_here("--config", str(config), "preview", "digest", "--stored")
    assert alert.returncode == 0 and digest.returncode == 0, alert.stderr + digest.stderr
    assert f"alert email in French with stored data (alert {alert_id} on 'marque'" in alert.stdout
    assert "digest email in French with stored data (the daily period from" in digest.stdout
    report = vigie_here("--config", str(config), "preview", "incident-report", "--stored")
    assert report.returncode == 0, report.stderr
    assert f"stored data (an incident started at alert {alert_id} on 'marque')" in report.stdout
    for result in (alert, digest, report):
        page = _written(result.stdout).read_text(encoding="utf-8")
        assert ESCAPED_SCRIPT in page and "<script" not in page
        # The report's stories are those collected during the incident's own span.
        assert STORED_TITLE in page or result is report

    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    # Only the email the watch cycle queued when it opened the alert, still unsent.
    assert outbox(path) == [(f"{alert_id}.opened", False)]
    assert mail_sink.messages() == []


def test_errors_are_one_line_that_says_what_to_do(
    mail_sink: MailSink, write_config: ConfigWriter
) -> None:
    config = str(write_config(sources=SOURCES, smtp_port=mail_sink.port))
    stored = vigie_here("--config", config, "preview", "alert", "--stored")
    assert stored.returncode == 1
    assert stored.stdout == ""
    (line,) = stored.stderr.strip().splitlines()
    assert line.startswith("vigie: no alert stored in ")
    assert line.endswith("run the watch first (vigie run --once), or preview with --sample")
    unknown = vigie_here("--config", config, "preview", "memo")
    assert unknown.returncode == 2 and "invalid choice: 'memo'" in unknown.stderr
    both = vigie_here("--config", config, "preview", "alert", "--sample", "--stored")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    team = vigie_here("--config", config, "preview", "digest", "--team", "x")
    assert team.returncode == 2
    assert team.stderr.strip() == "vigie: --team applies to readiness reminders only"
    assert "Traceback" not in stored.stderr + team.stderr


def test_language_output_and_open(
    mail_sink: MailSink, write_config: ConfigWriter, tmp_path: Path
) -> None:
    config = str(write_config(sources=SOURCES, smtp_port=mail_sink.port, extra=TEAM))
    # An empty warehouse: previews fall back to the sample and queue nothing in it.
    assert vigie_here("--config", config, "db", "migrate").returncode == 0
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {opened}\n', encoding="utf-8")
    browser.chmod(browser.stat().st_mode | stat.S_IEXEC)
    out = tmp_path / "previews"
    out.mkdir()
    # A process of its own: the `webbrowser` module reads BROWSER once per process.
    result = vigie(
        "--config",
        config,
        "preview",
        "readiness",
        "--team",
        "Ontario sales",
        "--language",
        "fr",
        "--output",
        str(out),
        "--open",
        env={"BROWSER": str(browser)},
    )
    assert result.returncode == 0, result.stderr
    path = _written(result.stdout)
    assert path == out / "readiness-fr.html"
    assert "with the configured cell and team 'Ontario sales'" in result.stdout
    assert _subject(path.read_text(encoding="utf-8")) == (
        "[Vigie] La cellule de crise de Laiterie Boréale est prête — rappel pour Ontario sales"
    )
    assert opened.read_text(encoding="utf-8").strip() == path.as_uri()
    english = vigie_here("--config", config, "preview", "alert", "--sample", "--language", "en")
    assert english.returncode == 0, english.stderr
    page = _written(english.stdout).read_text(encoding="utf-8")
    assert "spike in mentions of “marque”" in _subject(page)
    assert "alert email in English with sample data (a fictional crisis; --sample)" in (
        english.stdout
    )
    assert outbox(load_settings(config).warehouse_path) == []
    assert mail_sink.messages() == []
