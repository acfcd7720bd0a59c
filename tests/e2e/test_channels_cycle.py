"""An alert through real watch cycles (Prefect flows on a temporary server, the bundled scenario
served on 127.0.0.1) reaches the crisis cell by email (a real SMTP server) and on its chat
channels (Apprise to a real webhook receiver: a member's JSON webhook, the topic's team on
Mattermost), each exactly once; the rerun sends nothing more anywhere."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.conftest import ConfigWriter
from tests.e2e.test_watch_cycle_flow import _rows, _scenario_sources
from vigie import scenario
from vigie.localservers import FeedServer, MailSink, WebhookReceiver

pytestmark = pytest.mark.prefect

TOKEN = "usine-tok3n-Hq7Zx"


def test_an_alert_reaches_email_and_every_channel_once_and_the_rerun_sends_nothing(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    webhook_receiver: WebhookReceiver,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(
        sources=_scenario_sources(urls),
        smtp_port=mail_sink.port,
        extra=f"""
[[cell.members]]
name = "Nadia Cloutier"
email = "nadia.cloutier@laiterie-boreale.example"
role = "communications"
level = 1
channels = ["{webhook_receiver.url("json", "/nadia")}"]

[[teams]]
name = "Usine de Rimouski"
emails = ["usine@laiterie-boreale.example"]
channels = ["{webhook_receiver.url("mmost", "/" + TOKEN)}"]
""",
    )
    text = config.read_text(encoding="utf-8")
    watch = '[[watch]]\nname = "marque"\n'
    config.write_text(text.replace(watch, watch + 'notify_teams = ["Usine de Rimouski"]\n'))
    warehouse = config.parent / "wh" / "vigie.duckdb"

    calm = watch_cycle(str(config))
    assert calm["alerts_opened"] == []
    # The source notice is email only: channels carry what the cell must act on.
    assert webhook_receiver.requests == 0

    scenario.publish(feed_server, "burst", anchor)
    burst = watch_cycle(str(config))
    [alert_id] = burst["alerts_opened"]
    [_, email] = mail_sink.messages()
    assert email["Subject"].startswith("[Vigie][CRISE]")
    recipients = [a.addr_spec for a in email["To"].addresses]
    assert "nadia.cloutier@laiterie-boreale.example" in recipients
    assert "usine@laiterie-boreale.example" in recipients
    [nadia] = webhook_receiver.at("/nadia")
    assert nadia["title"] == "Vigie — CRISE : « marque »"
    assert f"vigie ack {alert_id}" in nadia["message"]
    [usine] = webhook_receiver.at(f"/hooks/{TOKEN}")
    assert "CRISE sur « marque »" in usine["text"]
    # The cycle's summary counts the channel sends beside the emails.
    assert (burst["channels_sent"], burst["channels_failed"]) == (2, {})

    rerun = watch_cycle(str(config))
    assert rerun["alerts_opened"] == [] and rerun["emails_sent"] == 0
    assert rerun["channels_sent"] == 0
    assert len(mail_sink.messages()) == 2
    assert webhook_receiver.requests == 2
    assert _rows(
        warehouse,
        "SELECT count(*), count(sent_at) FROM channel_outbox WHERE message_id LIKE 'al-%'",
    ) == [(2, 2)]
