"""The watch notices its own failures: real feeds on 127.0.0.1, a real DuckDB file, the notices
queued in the outbox once per change, one email per cycle sent to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

from tasks.collect.fetch import collect_sources, fetch_sources
from tasks.collect.health import check_source_health, entry_freshness
from tasks.detect.volume import assess_watches
from tasks.load import send_pending
from tests.configs import CELL_TOML, settings_from
from vigie.localservers import FeedServer, MailSink, free_port
from vigie.models import FetchResult, SourceOutcome
from vigie.settings import Secrets, Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

START = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def _rss(newest: datetime, count: int = 5, gap: timedelta = timedelta(hours=1)) -> str:
    items = "".join(
        f"<item><title>Laiterie Boréale, nouvelle {k}</title>"
        f"<link>https://quotidien.example/{newest:%Y%m%d%H%M}/{k}</link>"
        f"<pubDate>{format_datetime(newest - gap * k)}</pubDate></item>"
        for k in range(count)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>Q</title>{items}</channel></rss>'
    )


def _settings(tmp_path: Path, url: str) -> Settings:
    return settings_from(
        tmp_path,
        f"""
[organisation]
name = "Laiterie Boréale"
language = "fr"

[warehouse]
path = "{tmp_path / "wh.duckdb"}"

[[watch]]
name = "marque"
query = 'boréale'

[[sources]]
name = "Le Quotidien"
url = "{url}"

[collection]
connect_timeout_s = 1
read_timeout_s = 1
deadline_s = 3
retries = 0

[email]
sender = "vigie@laiterie-boreale.example"

[[cell.members]]
name = "Odile Opérations"
email = "odile@laiterie-boreale.example"
role = "operator"
level = 3
"""
        + CELL_TOML,
    )


def _cycle(settings: Settings, now: datetime) -> list[str]:
    """Fetch, parse, load and judge health as the watch cycle does (without Prefect)."""
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        states = store.source_states()
        fetched = fetch_sources(settings.sources, states, collection=settings.collection)
        mentions, outcomes = collect_sources(
            settings.sources, fetched, collected_at=now, max_entries=100
        )
        matched = [m for m in mentions]  # every test item names the brand
        store.load_cycle(f"c{now:%H%M%S}", settings.sources, outcomes, matched, [], now)
        return check_source_health(store, settings, entry_freshness(mentions), now=now)


def _notices(settings: Settings) -> list[tuple[str, str, list[str]]]:
    with open_warehouse(settings.warehouse_path) as con:
        rows = con.execute(
            "SELECT kind, subject, recipients FROM outbox WHERE kind = 'source_health' "
            "ORDER BY created_at, message_id"
        ).fetchall()
    return [(kind, subject, list(recipients)) for kind, subject, recipients in rows]


def test_a_failing_source_is_reported_once_then_its_recovery(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))
    settings = _settings(tmp_path, url)
    assert _cycle(settings, START) == []
    feed_server.set("/feed.xml", "boom", status=500)
    changes = [_cycle(settings, START + timedelta(minutes=10 * k)) for k in range(1, 6)]
    assert changes == [[], [], ["Le Quotidien: ok -> failing"], [], []]
    notices = _notices(settings)
    assert len(notices) == 1
    assert notices[0][1] == "[Vigie][SOURCE] Source en panne : Le Quotidien"
    assert notices[0][2] == ["odile@laiterie-boreale.example"]  # the operators, not the cell
    feed_server.set("/feed.xml", _rss(START + timedelta(hours=1)))
    assert _cycle(settings, START + timedelta(hours=1)) == ["Le Quotidien: failing -> ok"]
    assert [n[1] for n in _notices(settings)][
        -1
    ] == "[Vigie][SOURCE] Source rétablie : Le Quotidien"
    with open_warehouse(settings.warehouse_path) as con:
        health = Store(con).source_health()[0]
    assert health[7] == "ok"


def test_an_html_page_instead_of_the_feed_is_reported_at_once(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))
    settings = _settings(tmp_path, url)
    _cycle(settings, START)
    feed_server.set(
        "/feed.xml", "<!DOCTYPE html><html><body>Moved</body></html>", content_type="text/html"
    )
    assert _cycle(settings, START + timedelta(minutes=10)) == ["Le Quotidien: ok -> not_a_feed"]
    assert "ne renvoie plus de flux" in _notices(settings)[0][1]


def test_a_feed_that_stops_publishing_is_reported_as_silent(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.set("/feed.xml", _rss(START))  # hourly entries, newest at START
    settings = _settings(tmp_path, url)
    _cycle(settings, START)
    # The feed keeps answering (304) but nothing new appears for more than a day.
    assert _cycle(settings, START + timedelta(hours=12)) == []
    assert _cycle(settings, START + timedelta(hours=25)) == ["Le Quotidien: ok -> silent"]
    assert _cycle(settings, START + timedelta(hours=26)) == []
    with open_warehouse(settings.warehouse_path) as con:
        health = Store(con).source_health()[0]
    assert health[7] == "silent" and "usually publishes every 60 min" in health[9]


def _run(status: str, at: datetime) -> SourceOutcome:
    fetch = FetchResult("Le Quotidien", "http://127.0.0.1/f", status, at, 0.1)  # type: ignore[arg-type]
    return SourceOutcome(fetch, status)  # type: ignore[arg-type]


def test_detection_reads_collection_coverage_from_source_runs(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "http://127.0.0.1:9/feed.xml")
    runs = [
        ("ok", START - timedelta(minutes=10)),
        ("ok", START + timedelta(hours=1, seconds=30)),
        ("error", START + timedelta(hours=2, seconds=30)),
    ]
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        for index, (status, at) in enumerate(runs):
            store.load_cycle(f"c{index}", settings.sources, [_run(status, at)], [], [], at)
        covered, down = (
            assess_watches(store, ["marque"], settings.detection, moment, sources=["Le Quotidien"])
            for moment in (START + timedelta(hours=1), START + timedelta(hours=3))
        )
    # The cycle of 09:00 fetches at 09:00:30: its window 08:00-09:00 counts as collected.
    assert covered[0].coverage == 1.0
    # The window 10:00-11:00 saw only a failed fetch.
    assert down[0].coverage == 0.0


def _watch_settings(
    tmp_path: Path, urls: dict[str, str], smtp_port: int, *, operator: bool = True
) -> Settings:
    """Several sources, a real SMTP server, a notice at the first failure."""
    sources = "".join(
        f'\n[[sources]]\nname = "{name}"\nurl = "{url}"\n' for name, url in urls.items()
    )
    member = (
        '\n[[cell.members]]\nname = "Odile Opérations"\n'
        'email = "odile@laiterie-boreale.example"\nrole = "operator"\nlevel = 3\n'
        if operator
        else ""
    )
    return settings_from(
        tmp_path,
        f"""
[organisation]
name = "Laiterie Boréale"
language = "fr"
timezone = "America/Toronto"

[warehouse]
path = "{tmp_path / "wh.duckdb"}"

[[watch]]
name = "marque"
query = 'boréale'
{sources}
[collection]
connect_timeout_s = 1
read_timeout_s = 1
deadline_s = 3
retries = 0

[health]
failures_before_notice = 1

[email]
host = "127.0.0.1"
port = {smtp_port}
sender = "vigie@laiterie-boreale.example"
security = "none"
timeout_s = 10
{member}"""
        + CELL_TOML,
    )


def _deliver(settings: Settings, now: datetime) -> None:
    report = send_pending(settings.warehouse_path, settings, Secrets(), now=now)
    assert not report.failed, report.failed


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


# English words the old notices mixed into French ones.
ENGLISH = ("answers with", "failed cycle", "instead of a feed", "no longer", " UTC")


def test_several_failing_sources_make_one_email_to_the_operators_in_french_and_local_time(
    feed_server: FeedServer, mail_sink: MailSink, tmp_path: Path
) -> None:
    names = ("Le Quotidien", "Radio Nord", "Blogue du terroir", "Le Matin", "La Gazette")
    paths = {name: f"/{index}.xml" for index, name in enumerate(names)}
    urls = {name: feed_server.set(paths[name], _rss(START)) for name in names}
    settings = _watch_settings(tmp_path, urls, mail_sink.port)
    assert _cycle(settings, START) == []
    # Four sources fail at once, each its own way; La Gazette keeps answering.
    feed_server.set(paths["Le Quotidien"], "absent", status=404)
    feed_server.set(
        paths["Radio Nord"],
        "<!DOCTYPE html><html><body>Nouveau site</body></html>",
        content_type="text/html",
    )
    feed_server.set(paths["Blogue du terroir"], _rss(START), delay_s=1.5)  # read timeout 1 s
    feed_server.set(paths["Le Matin"], "", status=302, location="ftp://matin.example/rss")
    later = START + timedelta(minutes=10)
    assert sorted(_cycle(settings, later)) == [
        "Blogue du terroir: ok -> failing",
        "Le Matin: ok -> failing",
        "Le Quotidien: ok -> failing",
        "Radio Nord: ok -> not_a_feed",
    ]
    _deliver(settings, later)
    [message] = mail_sink.messages()
    assert message["To"] == "odile@laiterie-boreale.example"  # the operator only
    assert message["Subject"] == "[Vigie][SOURCE] 4 sources à vérifier"
    body = _html(message)
    assert (
        "Constaté au cycle de veille du mercredi 25 novembre 2026 à 03:10 (heure de Toronto)."
    ) in body
    assert "Sources à vérifier (4)" in body
    assert (
        "<strong>Le Quotidien</strong> ne répond plus depuis le mercredi 25 novembre 2026 à 03:00 "
        "(1 cycle en échec) : la page n’existe pas ou plus (erreur 404)."
    ) in body
    assert "Détail technique : HTTP 404 Not Found" in body
    assert "<strong>Radio Nord</strong> renvoie une page web au lieu d’un flux" in body
    assert "le serveur ne répond pas dans le délai" in body
    assert "redirection refusée" in body
    assert "Pas de réseau" not in body  # La Gazette answers
    assert [word for word in ENGLISH if word in body] == []
    # The next cycle, still failing, sends nothing more.
    assert _cycle(settings, START + timedelta(minutes=20)) == []
    _deliver(settings, START + timedelta(minutes=20))
    assert len(mail_sink.messages()) == 1


def test_a_source_that_never_answered_is_told_apart_from_one_that_stopped(
    feed_server: FeedServer, mail_sink: MailSink, tmp_path: Path
) -> None:
    urls = {
        "Le Quotidien": feed_server.set("/quotidien.xml", _rss(START)),
        "Le Matin": f"http://127.0.0.1:{free_port()}/rss.xml",  # nothing ever listens there
    }
    settings = _watch_settings(tmp_path, urls, mail_sink.port)
    assert _cycle(settings, START) == ["Le Matin: ok -> failing"]
    _deliver(settings, START)
    feed_server.set("/quotidien.xml", "boom", status=500)
    later = START + timedelta(hours=2)
    assert _cycle(settings, later) == ["Le Quotidien: ok -> failing"]
    _deliver(settings, later)
    never, stopped = mail_sink.messages()
    assert never["Subject"] == "[Vigie][SOURCE] Source jamais collectée : Le Matin"
    assert (
        "<strong>Le Matin</strong> n’a jamais répondu (1 cycle en échec) : connexion impossible"
    ) in _html(never)
    assert "ne répond plus" not in _html(never)
    assert stopped["Subject"] == "[Vigie][SOURCE] Source en panne : Le Quotidien"
    assert (
        "<strong>Le Quotidien</strong> ne répond plus depuis le mercredi 25 novembre 2026 à 03:00 "
        "(1 cycle en échec) : le serveur est en panne (erreur 500)."
    ) in _html(stopped)


def test_when_no_source_can_be_reached_the_notice_says_the_network_is_down(
    mail_sink: MailSink, tmp_path: Path
) -> None:
    with FeedServer() as first, FeedServer() as second:
        urls = {
            "Le Quotidien": first.set("/rss.xml", _rss(START)),
            "Radio Nord": second.set("/rss.xml", _rss(START)),
            "Blogue du terroir": second.set("/blogue.xml", _rss(START)),
        }
        settings = _watch_settings(tmp_path, urls, mail_sink.port)
        assert _cycle(settings, START) == []
    # Both servers are gone: every fetch is refused, as when the machine lost its network.
    later = START + timedelta(minutes=10)
    assert len(_cycle(settings, later)) == 3
    _deliver(settings, later)
    [message] = mail_sink.messages()
    assert message["Subject"] == (
        "[Vigie][SOURCE] Pas de réseau ou de DNS : aucune source ne répond"
    )
    body = _html(message)
    assert body.index("Pas de réseau ou de DNS") < body.index("Sources à vérifier (3)")
    assert body.count("connexion impossible") == 3


def test_without_an_operator_source_notices_go_to_vigies_own_address_only(
    feed_server: FeedServer, mail_sink: MailSink, tmp_path: Path
) -> None:
    urls = {"Le Quotidien": f"http://127.0.0.1:{free_port()}/rss.xml"}
    settings = _watch_settings(tmp_path, urls, mail_sink.port, operator=False)
    assert _cycle(settings, START) == ["Le Quotidien: ok -> failing"]
    _deliver(settings, START)
    [message] = mail_sink.messages()
    # Not the lead nor the spokesperson (level 1), who cannot repair a source.
    assert message["To"] == "vigie@laiterie-boreale.example"
