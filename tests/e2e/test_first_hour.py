"""A newcomer's first hour, through the `vigie` command: `vigie init` writes the configuration
without asking anything, its sources are pointed at the local FeedServer (serving the captured
responses of tests/fixtures/sources for every kind) and its email at a local MailSink; then
`vigie check`, `vigie sources test` and `vigie run --once --json` run on the generated file.
The commands run in this process (`vigie_here`), but `vigie init` in a terminal, a process of its
own behind a pty."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from tests.commands import VIGIE, vigie_here
from tests.integration.test_collect_kinds import serve_first_cycle
from vigie.localservers import FeedServer, MailSink
from vigie.settings import DEFAULT_BASE_URLS, load_settings
from warehouse.connection import open_warehouse

# The services a generated file names, all served here by one FeedServer (their paths differ).
# Every service vigie init suggests a source on (not GDELT yet: issue 23's note).
SERVICES = (
    *(url for kind, url in DEFAULT_BASE_URLS.items() if kind != "gdelt"),
    "https://mastodon.social",
)


def _init(folder: Path, *options: str) -> subprocess.CompletedProcess[str]:
    return vigie_here(
        "init",
        "--yes",
        "--name",
        "Laiterie Boréale",
        "--aliases",
        "boreale",
        "--people",
        "Awa Diallo, Louis Tremblay",
        "--languages",
        "fr,en",
        "--region",
        "CA",
        *options,
        cwd=folder,
    )


def _point_at_local_servers(config: Path, feeds: FeedServer, mail: MailSink) -> None:
    text = config.read_text(encoding="utf-8")
    for service in SERVICES:
        assert service in text, service
        text = text.replace(service, feeds.url("").rstrip("/"))
    for old, new in (
        ('host = "smtp.a-remplir.example"', 'host = "127.0.0.1"'),
        ("port = 587", f"port = {mail.port}"),
        ('security = "starttls"', 'security = "none"'),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    config.write_text(text, encoding="utf-8")


def _sources_test_merged(folder: Path) -> bool:
    return vigie_here("sources", "--help", cwd=folder).returncode == 0


@pytest.fixture
def first_hour(tmp_path: Path, feed_server: FeedServer, mail_sink: MailSink) -> Path:
    """A folder where `vigie init` wrote vigie.toml, pointed at the local servers."""
    created = _init(tmp_path)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("vigie.toml: written / écrit (3 watch queries")
    serve_first_cycle(feed_server)
    _point_at_local_servers(tmp_path / "vigie.toml", feed_server, mail_sink)
    return tmp_path


def test_the_generated_file_passes_check_and_the_cell_check_says_what_to_fill_in(
    first_hour: Path,
) -> None:
    generated = load_settings(first_hour / "vigie.toml")
    assert [s.kind for s in generated.sources] == [
        "news_search",
        "news_search",
        "reddit",
        "mastodon",
        "bluesky",
        "hackernews",
    ]
    assert [w.name for w in generated.watch] == ["organisation", "personnes", "crise"]

    check = vigie_here("check", cwd=first_hour)
    assert check.returncode == 0, check.stderr
    assert "vigie.toml: valid" in check.stdout
    assert "Mastodon [mastodon, social, tier 3] http://127.0.0.1:" in check.stdout
    assert (
        "Warning: still to fill in (À REMPLIR / TO FILL IN): email.sender, cell.members[0], "
        "cell.members[1], cell.members[2]"
    ) in check.stdout

    cell = vigie_here("cell", "check", cwd=first_hour)
    assert cell.returncode == 1, cell.stderr
    # In the organisation's language (French here).
    assert "MANQUE    cell.members[0] : encore à remplir (À REMPLIR / TO FILL IN" in cell.stdout
    assert "La cellule n’est PAS prête" in cell.stdout


def test_sources_test_fetches_every_generated_source_with_items_that_match(
    first_hour: Path,
) -> None:
    if not _sources_test_merged(first_hour):
        pytest.skip("vigie sources test not merged yet")
    tested = vigie_here("sources", "test", "--json", cwd=first_hour)
    assert tested.returncode == 0, tested.stderr
    report = json.loads(tested.stdout)
    assert report["stored"] is False
    by_name = {s["name"]: s for s in report["sources"]}
    assert set(by_name) == {s.name for s in load_settings(first_hour / "vigie.toml").sources}
    for name, source in by_name.items():
        assert source["status"] == "ok", (name, source)
        assert source["items"] > 0, name
        assert source["matched"] > 0, name
        assert source["newest_at"], name
    assert not (first_hour / "data").exists()  # nothing stored


@pytest.mark.prefect
def test_one_watch_cycle_on_the_generated_file_stores_mentions_of_every_source(
    first_hour: Path, prefect_harness: str
) -> None:
    run = vigie_here(
        "run", "--once", "--json", cwd=first_hour, env={"PREFECT_API_URL": prefect_harness}
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # The cell is still init's placeholders: the watch starts, and says what to fill in.
    assert "Warning: still to fill in" in run.stderr
    assert "cell.members[0]" in run.stderr
    summary = json.loads(run.stdout)
    assert summary["sources_failed"] == {}
    assert summary["sources_ok"] == 6
    assert summary["new_mentions"] > 0

    with open_warehouse(first_hour / "data" / "vigie.duckdb") as con:
        # Both news search feeds get the same captured answer: one mention, two sightings.
        by_source = dict(
            con.execute("SELECT source, count(*) FROM mention_sightings GROUP BY source").fetchall()
        )
        stored = con.execute("SELECT count(*) FROM mentions").fetchall()[0][0]
        topics = dict(
            con.execute(
                "SELECT topic, count(*) FROM (SELECT unnest(topics) AS topic FROM mentions) "
                "GROUP BY topic"
            ).fetchall()
        )
    assert set(by_source) == {s.name for s in load_settings(first_hour / "vigie.toml").sources}
    assert stored == summary["new_mentions"]
    assert by_source["Google News (en-CA)"] == by_source["Google Actualités (fr-CA)"]
    assert topics["organisation"] == stored
    assert topics["crise"] > 0  # the captured responses are about a cheddar recall


def test_init_without_a_name_and_without_a_terminal_is_one_line_naming_the_option(
    tmp_path: Path,
) -> None:
    result = vigie_here("init", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("vigie: --name is required when vigie init cannot ask")
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "vigie.toml").exists()


def test_init_never_overwrites_a_file_without_force(tmp_path: Path) -> None:
    mine = tmp_path / "vigie.toml"
    mine.write_text("# my own configuration\n", encoding="utf-8")
    refused = _init(tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        "vigie: vigie.toml already exists: pass --force to replace it, or --output another file\n"
    )
    assert mine.read_text(encoding="utf-8") == "# my own configuration\n"

    elsewhere = _init(tmp_path, "--output", "conf/veille.toml")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "vigie --config conf/veille.toml check" in elsewhere.stdout
    load_settings(tmp_path / "conf" / "veille.toml")

    forced = _init(tmp_path, "--force")
    assert forced.returncode == 0, forced.stderr
    assert load_settings(mine).organisation.name == "Laiterie Boréale"


def _read_until(fd: int, wanted: str, seen: list[str], timeout: float = 60) -> None:
    """Read the terminal's output until `wanted` shows (or fail with what was shown).

    `seen` keeps what came after `wanted`: one read can bring an error and the next prompt.
    """
    deadline = time.monotonic() + timeout
    while wanted not in "".join(seen):
        remaining = deadline - time.monotonic()
        ready, _, _ = select.select([fd], [], [], max(0.0, remaining))
        if not ready:
            raise AssertionError(f"{wanted!r} never shown; the terminal showed {''.join(seen)!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the process ended and closed the terminal
            chunk = b""
        if not chunk:
            raise AssertionError(f"{wanted!r} never shown; the terminal showed {''.join(seen)!r}")
        seen.append(chunk.decode("utf-8", "replace"))
    rest = "".join(seen).split(wanted, 1)[1]
    seen[:] = [rest]


def test_in_a_terminal_init_asks_plainly_and_asks_again_after_a_bad_answer(
    tmp_path: Path,
) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [*VIGIE, "init"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=tmp_path,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        start_new_session=True,
    )
    os.close(terminal)
    seen: list[str] = []
    try:
        for prompt, answer in (
            ("Nom de l'organisation / Organisation name: ", "Société de transport de Montréal"),
            ("Other names and products, comma-separated: ", "STM, OPUS"),
            ("People to watch (executives, spokespeople), comma-separated: ", ""),
            ("two-letter code [CA]: ", "Canada"),
            ("'Canada' does not fit. Country: a two-letter code such as CA, FR, BE or CH.", None),
            ("two-letter code [CA]: ", ""),
            ("Languages to watch (fr, en or fr,en) [fr,en]: ", "ca"),
            ("« ca » ne convient pas. Langues : fr, en (séparées par des virgules).", None),
            ("Languages to watch (fr, en or fr,en) [fr,en]: ", "fr"),
            ("Time zone [America/Toronto]: ", "america/montreal"),
            ("Crisis cell lead: name (Enter: later): ", "Marie Roy"),
            ("Crisis cell lead: email: ", "marie.roy@stm.example"),
            ("Crisis cell lead: phone (optional): ", "+1 514 555 0101"),
            ("Spokesperson: name (Enter: later): ", ""),
            ("Legal counsel: name (Enter: later): ", ""),
            ("Vigie operator (source notices): name (Enter: later): ", ""),
            ("vigie.toml: written / écrit", None),
        ):
            _read_until(controller, prompt, seen)
            if answer is not None:
                os.write(controller, answer.encode("utf-8") + b"\n")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(controller)
    settings = load_settings(tmp_path / "vigie.toml")
    assert settings.organisation.name == "Société de transport de Montréal"
    assert settings.organisation.other_names == ("STM", "OPUS")
    assert [w.name for w in settings.watch] == ["organisation", "crise"]
    assert [(s.language, s.region) for s in settings.sources if s.kind == "news_search"] == [
        ("fr", "CA")
    ]
    assert settings.organisation.timezone == "America/Montreal"
    lead = settings.cell.members[0]
    assert (lead.name, lead.email, lead.phone) == (
        "Marie Roy",
        "marie.roy@stm.example",
        "+1 514 555 0101",
    )
