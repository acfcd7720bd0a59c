"""The watch cycle as a Prefect flow on a real (temporary) Prefect server, against the bundled
scenario served over HTTP on 127.0.0.1 and a real SMTP server."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import ConfigWriter
from vigie import scenario
from vigie.localservers import FeedServer, MailSink
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect


def _scenario_sources(urls: dict[str, str]) -> list[dict[str, object]]:
    return [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(path) as con:
        return con.execute(sql).fetchall()


def test_calm_then_burst_sends_one_alert_and_a_rerun_sends_nothing(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(sources=_scenario_sources(urls), smtp_port=mail_sink.port)
    warehouse = config.parent / "wh" / "vigie.duckdb"

    calm = watch_cycle(str(config))
    assert calm["alerts_opened"] == []
    assert calm["new_mentions"] == 6
    # The blog, an HTML page from the start, is reported once, at once: the cell has no
    # operator, so to Vigie's own address, not to the lead or the spokesperson.
    assert calm["health_changes"] == ["Blogue du terroir: ok -> not_a_feed"]
    assert calm["emails_sent"] == 1
    [notice] = mail_sink.messages()
    assert notice["Subject"] == (
        "[Vigie][SOURCE] La source ne renvoie pas de flux : Blogue du terroir"
    )
    assert notice["To"] == "vigie@laiterie-boreale.example"

    scenario.publish(feed_server, "burst", anchor)
    burst = watch_cycle(str(config))
    assert len(burst["alerts_opened"]) == 1
    assert burst["emails_sent"] == 1
    assert burst["health_changes"] == []
    assert burst["new_mentions"] == 15  # the recall carried by two outlets is one mention
    assert burst["quarantined"] == 1

    [_, email] = mail_sink.messages()
    assert [a.addr_spec for a in email["To"].addresses] == [
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
    ]
    assert email["Subject"] == (
        "[Vigie][CRISE] Laiterie Boréale : pic de mentions « marque » (15 en 60 min)"
    )
    assert burst["topics"]["marque"]["level"] == "crise"
    body = email.get_body(("html",)).get_content()  # type: ignore[union-attr]
    # The tier-1 daily's recall story comes first, with its link; forum posts follow.
    first_title = "Rappel de fromages de la Laiterie Boréale : risque de listeria"
    assert html.escape(first_title) in body
    assert 'href="https://quotidien-du-nord.example/articles/rappel-de-fromages' in body
    forum_post = html.escape("Boréale : le service client ne répond plus")
    assert body.index(html.escape(first_title)) < body.index(forum_post)
    assert "javascript:" not in body
    assert "<script>" not in body
    assert "Gravité" in body and "vocabulaire de crise" in body
    assert "Médias majeurs : Le Quotidien du Nord" in body
    assert "sophie.roy" not in body  # level 2 is not on duty for a new alert
    # A real plain-text alternative, and the volume chart inline (no remote image).
    parts = [part.get_content_type() for part in email.walk()]
    assert parts[:3] == ["multipart/alternative", "text/plain", "multipart/related"]
    assert "image/png" in parts and 'src="cid:volume-' in body
    plain = email.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<" not in plain and "Rappel de fromages" in plain

    from prefect.artifacts import Artifact

    validation = Artifact.get("validation")
    assert validation is not None and "expect_column_values_to_match_regex" in str(validation.data)
    quarantine = Artifact.get("quarantine")
    assert quarantine is not None and "javascript:alert" in str(quarantine.data)

    rerun = watch_cycle(str(config))
    assert rerun["new_mentions"] == 0
    assert rerun["alerts_opened"] == [] and rerun["emails_sent"] == 0
    assert rerun["sources_not_modified"] == 3
    assert len(mail_sink.messages()) == 2

    assert _rows(warehouse, "SELECT count(*) FROM mentions") == [(21,)]
    assert _rows(warehouse, "SELECT count(*) FROM alerts WHERE status = 'open'") == [(1,)]
    assert _rows(warehouse, "SELECT kind FROM alert_events") == [("opened",)]
    assert _rows(warehouse, "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL") == [(2,)]
    failures = _rows(
        warehouse,
        "SELECT DISTINCT source, error FROM source_runs WHERE status = 'error'",
    )
    assert failures == [("Blogue du terroir", "not a feed: an HTML page")]


def test_a_cycle_with_failing_sources_completes_and_records_each_reason(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    good = {"name": "good", "url": urls["Le Quotidien du Nord"], "platform": "news", "tier": 1}
    broken = [
        {"name": "missing", "url": feed_server.url("/nothing.xml")},
        {"name": "crashing", "url": feed_server.set("/500", "x", status=500)},
        {"name": "slow", "url": feed_server.set("/slow", "x", delay_s=4)},
        {"name": "garbage", "url": feed_server.set("/garbage", b"\x00\xff{]")},
    ]
    config = write_config(sources=[good, *broken], smtp_port=mail_sink.port)

    state = watch_cycle(str(config), return_state=True)
    assert state.is_completed()
    summary = state.result()
    assert summary["sources_ok"] == 1
    assert summary["sources_failed"] == {
        "missing": "HTTP 404 Not Found",
        "crashing": "HTTP 500 Internal Server Error",
        "slow": "timed out",
        "garbage": "not a feed (SAXParseException)",
    }
    assert summary["new_mentions"] == 3


def test_a_crisis_whose_emails_the_server_refuses_ends_failed_and_named_so(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from prefect import get_client

    from flows.watch_cycle import watch_cycle
    from tasks.publish.situation import cycle_result

    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(sources=_scenario_sources(urls), smtp_port=mail_sink.port)
    calm = watch_cycle(str(config), return_state=True)
    assert calm.is_completed() and calm.name == "Completed"  # the blog's notice was sent
    scenario.publish(feed_server, "burst", anchor)
    mail_sink.refuse_with = "500 5.0.0 refused"
    state = watch_cycle(str(config), return_state=True)
    # Visibly not fine: Failed (the dashboard counts it), named for the crisis and the emails.
    assert state.is_failed() and state.name == "Crise : emails en échec", state
    summary = cycle_result(state)
    [alert_id] = summary["alerts_opened"]
    assert summary["emails_sent"] == 0 and summary["emails_failed"]
    assert state.message is not None
    assert state.message.startswith(f"Crise ouverte : « marque » ({alert_id}); ")
    assert "non envoyé" in state.message and "(s)" not in state.message
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)  # type: ignore[arg-type]
    assert {"level:crise", "topic:marque", "emails-failed"} <= set(run.tags)
    assert mail_sink.messages()[1:] == []  # nothing arrived but the calm cycle's notice
