"""What the Prefect UI shows of watch cycles, read back through a real (temporary) Prefect
server's API: the `watch-cycle-summary` and `top-stories` artifacts, and the `vigie.*` events
an automation would match, after cycles against the bundled scenario served on 127.0.0.1."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tasks.publish.events import WATCH_WATCHED, watch_key
from tests.conftest import ConfigWriter
from tests.e2e.prefect_events import wait_for_events
from vigie import scenario
from vigie.localservers import FeedServer, MailSink
from vigie.settings import load_settings

pytestmark = pytest.mark.prefect

# A hostile post that names the brand, so it is kept and loaded; from a "major outlet" (tier 1)
# so that it ranks among the top 10 stories of the scenario.
HOSTILE_TITLE = (
    "Boréale [clic](javascript:alert(1)) ![pixel](https://tracker.example/p.png) "
    "**scandale** | www.evil.example"
)
HOSTILE_SOURCE = "Forum [hostile](javascript:alert(2)) | **gras**"


def _artifacts(flow_run_id: Any) -> dict[str, Any]:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {a.key: a for a in artifacts if a.key}


def _latest_run_of(key: str) -> Any:
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactCollectionFilter,
        ArtifactCollectionFilterKey,
    )

    with get_client(sync_client=True) as client:
        [latest] = client.read_latest_artifacts(
            artifact_filter=ArtifactCollectionFilter(key=ArtifactCollectionFilterKey(any_=[key]))
        )
    return latest.flow_run_id


def _watched(events: list[Any]) -> list[Any]:
    return [e for e in events if e.event == WATCH_WATCHED]


def _markdown_links(text: str) -> list[str]:
    return re.findall(r"(?<!\\)\]\(([^)]*)\)", text)


def test_a_watch_cycle_shows_its_summary_and_top_stories_and_emits_alert_and_source_events(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    anchor = datetime.now(UTC)
    since = anchor - timedelta(seconds=1)
    urls = scenario.publish(feed_server, "calm", anchor)
    hostile_url = feed_server.set("/hostile/rss.xml", scenario.rss_document("H", [], anchor))
    sources: list[dict[str, object]] = [
        {"name": s.name, "url": urls[s.name], "platform": s.platform, "tier": s.tier}
        for s in scenario.SOURCES
    ]
    sources.append({"name": HOSTILE_SOURCE, "url": hostile_url, "platform": "news", "tier": 1})
    config = write_config(sources=sources, smtp_port=mail_sink.port)

    calm = watch_cycle(str(config))
    assert calm["health_changes"] == ["Blogue du terroir: ok -> not_a_feed"]

    scenario.publish(feed_server, "burst", anchor)
    post = scenario.Item(
        HOSTILE_TITLE, "https://hostile.example/posts/a_(b)", "<p>x</p>", timedelta(minutes=5)
    )
    feed_server.set("/hostile/rss.xml", scenario.rss_document("H", [post], anchor))
    state = watch_cycle(str(config), return_state=True)
    burst = state.result()
    [alert_id] = burst["alerts_opened"]
    run_id = state.state_details.flow_run_id

    # The cycle that opened the crisis says so in its final state, message and tags.
    assert state.is_completed() and state.name == "Crise"
    assert state.message == f"Crise ouverte : « marque » ({alert_id})"
    from prefect import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    assert {"level:crise", "topic:marque"} <= set(run.tags)
    assert run.state is not None and run.state.name == "Crise"

    artifacts = _artifacts(run_id)
    assert {"watch-cycle-summary", "top-stories", "validation", "quarantine", "situation"} <= set(
        artifacts
    )
    # They belong to the flow run itself, one click from its page, not to a task run.
    assert all(a.task_run_id is None for a in artifacts.values())
    summary = str(artifacts["watch-cycle-summary"].data)
    assert f"| nouvelles mentions | {burst['new_mentions']} |" in summary
    assert "| lignes en quarantaine | 1 |" in summary
    assert "| alertes ouvertes | 1 |" in summary
    assert f"| emails envoyés | {burst['emails_sent']} |" in summary
    assert "| Blogue du terroir | not a feed: an HTML page |" in summary
    assert "## Durée de chaque étape" in summary and "| fetch |" in summary
    assert f"- **Crise** ouverte : « marque » ({alert_id.replace('-', chr(92) + '-')})" in summary
    # Links only to the stories' http(s) pages; the hostile title, a link's label, has its own
    # "links" turned into look-alike brackets (Prefect shows escapes in labels as they are).
    links = _markdown_links(summary)
    assert links and all(link.startswith(("http://", "https://")) for link in links)
    assert "https://quotidien-du-nord.example/articles/rappel-de-fromages" in links[0]
    assert "javascript" not in "".join(links) and "tracker.example" not in "".join(links)
    assert "(clic)(javascript:alert(1))" in summary
    # The situation now: the open crisis, nobody in charge yet, the blog down.
    situation = str(artifacts["situation"].data)
    assert "| **CRISE** | marque |" in situation and "| **personne** |" in situation
    assert "| Blogue du terroir | ne renvoie pas de flux |" in situation

    table = artifacts["top-stories"].data
    rows = json.loads(table) if isinstance(table, str) else table
    # The title links to the story.
    assert rows[0]["article"].startswith("[Rappel de fromages de la Laiterie Boréale")
    assert "](https://quotidien-du-nord.example/articles/" in rows[0]["article"]
    assert rows[0]["média"] == "Le Quotidien du Nord" and rows[0]["rang"] == 1
    assert rows[0]["sujet"] == "marque"
    [hostile] = [r for r in rows if "clic" in r["article"]]
    assert hostile["média"].startswith("Forum \\[hostile\\]\\(javascript:alert\\(2\\)\\)")
    assert hostile["article"].endswith("](https://hostile.example/posts/a_%28b%29)")
    assert "**" not in hostile["article"] and "![" not in hostile["article"]
    assert _markdown_links(hostile["article"]) == ["https://hostile.example/posts/a_%28b%29"]
    # Stable keys: the latest of each is this run's.
    assert _latest_run_of("top-stories") == run_id
    assert _latest_run_of("watch-cycle-summary") == run_id
    assert _latest_run_of("situation") == run_id

    def arrived(events: list[Any]) -> bool:
        names = {e.event for e in events}
        return {"vigie.source.down", "vigie.alert.opened"} <= names

    events = wait_for_events(since, arrived)
    assert arrived(events), [e.event for e in events]
    [down] = [e for e in events if e.event == "vigie.source.down"]
    assert down.resource.id == "vigie.source.blogue-du-terroir"
    assert down.resource.name == "Blogue du terroir"
    assert down.payload["state"] == "not_a_feed"
    [opened] = [e for e in events if e.event == "vigie.alert.opened"]
    assert opened.resource.id == f"vigie.alert.{alert_id}"
    assert opened.resource["vigie.alert.level"] == "crise"
    assert opened.resource["vigie.alert.topic"] == "marque"
    assert opened.resource["vigie.drill"] == "false"
    assert opened.payload["level"] == "crise" and opened.payload["mentions"] > 0
    assert opened.payload["ui_url"].endswith(f"/flow-run/{run_id}")
    # Emitted within the flow run: Prefect relates the event to the run.
    assert str(run_id) in {r.id.rsplit(".", 1)[-1] for r in opened.related}

    rerun = watch_cycle(str(config))
    assert rerun["alerts_opened"] == [] and rerun["health_changes"] == []
    later = wait_for_events(since, lambda e: False, timeout_s=6)
    later = wait_for_events(since, lambda e: len(_watched(e)) >= 3)
    assert sorted(e.event for e in later if e not in _watched(later)) == [
        "vigie.alert.opened",
        "vigie.source.down",
    ]
    # Every cycle in which a source answered says so (the dead man's switch automation's event).
    cycles = [calm["cycle_id"], burst["cycle_id"], rerun["cycle_id"]]
    assert [e.payload["cycle_id"] for e in _watched(later)] == cycles
    resource = f"vigie.watch.{watch_key(load_settings(config))}"
    assert {e.resource.id for e in _watched(later)} == {resource}
