"""Chat channels through Apprise against a real webhook receiver on 127.0.0.1: an alert reaches
a member's JSON webhook and a team's Mattermost webhook once each, beside its email to a real
SMTP server; a receiver that fails is tried again and gets the message once; one that takes
the message without answering gets an alert once more, marked as a second sending, and never a
third time; a sender gone after the service accepted is settled by its lease; a rerun sends
nothing; the channel's URL is never recorded."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cli.channel_lines import channel_outbox_lines, channel_status_lines
from tasks.detect.signals import Severity
from tasks.detect.volume import TopicAssessment
from tasks.load import send_pending
from tasks.notify.alerts import raise_alerts
from tasks.notify.channels import (
    ChannelOutcome,
    apprise_notify,
    chat_text,
    deliver_channels,
    inert,
)
from tasks.notify.escalation import escalate_unacknowledged
from tasks.notify.incident import IncidentPlan, begin_incident, finish_incident, incident_recipients
from tests.configs import CELL_TOML, MINIMAL_TOML, settings_from
from vigie.localservers import MailSink, WebhookReceiver
from vigie.models import OutboxMessage, VolumeSignal
from vigie.settings import Secrets, Settings
from warehouse.channel_outbox import ChannelOutbox, UnplannedMessage
from warehouse.connection import open_warehouse
from warehouse.store import IncidentStore, Store

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
TOKEN = "usine-tok3n-Hq7Zx"


def _settings(
    tmp_path: Path, smtp_port: int, receiver: WebhookReceiver, nadia_options: str = ""
) -> Settings:
    """CELL_TOML's cell, one more level-1 member with a JSON webhook, and a team with a
    Mattermost webhook that the watch `marque` sends its alerts to."""
    watch = '[[watch]]\nname = "marque"\n'
    return settings_from(
        tmp_path,
        MINIMAL_TOML.replace(watch, watch + 'notify_teams = ["Usine de Rimouski"]\n').replace(
            '[email]\nsender = "vigie@laiterie-boreale.example"\n',
            f'[email]\nsender = "vigie@laiterie-boreale.example"\nhost = "127.0.0.1"\n'
            f'port = {smtp_port}\nsecurity = "none"\ntimeout_s = 5\n',
        )
        + CELL_TOML
        + f"""
[[cell.members]]
name = "Nadia Cloutier"
email = "nadia.cloutier@laiterie-boreale.example"
role = "communications"
level = 1
channels = ["{receiver.url("json", "/nadia")}{nadia_options}"]

[[teams]]
name = "Usine de Rimouski"
emails = ["usine@laiterie-boreale.example"]
channels = ["{receiver.url("mmost", "/" + TOKEN)}"]

[[teams]]
name = "Ventes"
emails = ["ventes@laiterie-boreale.example"]
channels = ["{receiver.url("json", "/ventes")}"]
""",
    )


@contextmanager
def _store(path: Path) -> Iterator[Store]:
    with open_warehouse(path) as con:
        yield Store(con)


@contextmanager
def _outbox(path: Path) -> Iterator[ChannelOutbox]:
    with open_warehouse(path) as con:
        yield ChannelOutbox(con)


def _open_alert(settings: Settings, at: datetime = NOW) -> str:
    signal = VolumeSignal("marque", at - timedelta(hours=1), at, 40, 3.0, 1.0, 0.99, 9.0, True)
    severity = Severity(72.0, "crise", {"volume": 35.0}, {})  # type: ignore[arg-type]
    with _store(settings.warehouse_path) as store:
        changes = raise_alerts(
            store, settings, [TopicAssessment(signal, 0.99, severity)], now=at, run_url=None
        )
    return changes.opened[0]


def _rows(settings: Settings) -> list[tuple[object, ...]]:
    with open_warehouse(settings.warehouse_path) as con:
        return con.execute("SELECT * FROM channel_outbox").fetchall()


def test_an_alert_reaches_the_email_and_each_channel_once_and_a_rerun_sends_nothing(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    alert_id = _open_alert(settings)

    report = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)

    [email] = mail_sink.messages()
    # The topic's own team gets the alert by email too; the other team does not.
    assert "usine@laiterie-boreale.example" in email["To"]
    assert "ventes@" not in email["To"]
    [nadia] = webhook_receiver.at("/nadia")
    assert nadia["title"] == "Vigie — CRISE : « marque »"
    assert "CRISE sur « marque »" in nadia["message"] and "40 mentions" in nadia["message"]
    assert f"vigie ack {alert_id}" in nadia["message"]
    assert nadia["type"] == "failure"  # critical: the service shows it as urgent
    [usine] = webhook_receiver.at(f"/hooks/{TOKEN}")  # Mattermost's incoming webhook
    assert "CRISE" in usine["text"] and "marque" in usine["text"]
    assert webhook_receiver.at("/ventes") == []
    assert len(report.channels_sent) == 2 and report.channels_failed == {}

    again = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    later = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW + timedelta(hours=2))
    assert again.channels_sent == later.channels_sent == []
    assert webhook_receiver.requests == 2 and len(mail_sink.messages()) == 1
    # The URL (and the Mattermost token in it) is nowhere in the warehouse's rows.
    assert TOKEN not in repr(_rows(settings)) and "127.0.0.1" not in repr(_rows(settings))


def test_a_receiver_that_fails_then_recovers_gets_the_message_once(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    _open_alert(settings)
    webhook_receiver.fail_next(3, status=500)

    first = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert len(mail_sink.messages()) == 1  # the email does not wait for the channels
    assert sorted(first.channels_failed.values()) == ["the service answered HTTP 500"] * 2
    second = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    # Critical: tried again at the next delivery, with no back-off.
    assert len(second.channels_sent) == 1 and len(second.channels_failed) == 1
    third = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert len(third.channels_sent) == 1
    fourth = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert fourth.channels_sent == [] and fourth.channels_failed == {}

    assert len(webhook_receiver.at("/nadia")) == 1
    assert len(webhook_receiver.at(f"/hooks/{TOKEN}")) == 1
    assert webhook_receiver.requests == 5  # 3 refused, then one each
    rows = _rows(settings)
    assert all(row[-1] is not None for row in rows)  # sent_at
    assert TOKEN not in repr(rows)


def test_an_alert_taken_without_an_answer_goes_once_more_as_a_second_sending(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    # Apprise waits 1 s for Nadia's webhook's answer (`rto`: its read timeout).
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver, "?rto=1")
    alert_id = _open_alert(settings)
    # The receiver keeps the next two messages and answers after 2.5 s (the team's webhook
    # waits 4 s).
    webhook_receiver.hold_next(2, 2.5)
    outbox = lambda: _outbox(settings.warehouse_path)  # noqa: E731

    first = deliver_channels(settings=settings, now=NOW, open_outbox=outbox)
    assert len(first.uncertain) == 1 and len(first.sent) == 1
    webhook_receiver.hold_next(1, 2.5)
    second = deliver_channels(settings=settings, now=NOW, open_outbox=outbox)
    assert len(second.uncertain) == 1  # the second sending was uncertain too
    third = deliver_channels(settings=settings, now=NOW + timedelta(hours=1), open_outbox=outbox)
    assert third.sent == [] and third.failed == {}

    first_copy, second_copy = webhook_receiver.at("/nadia")
    assert not first_copy["message"].startswith("Second envoi")
    assert second_copy["message"].startswith(
        "Second envoi : le premier envoi de ce message n’a pas pu être confirmé."
    )
    with open_warehouse(settings.warehouse_path) as con:
        [(uncertain_at, sendings, error)] = con.execute(
            "SELECT uncertain_at, uncertain_sendings, last_error FROM channel_outbox "
            "WHERE label LIKE 'Nadia%'"
        ).fetchall()
    assert uncertain_at is not None and sendings == 2  # left for a person
    assert error == (
        "delivery uncertain: the request went out and no answer came (the service may have it)"
    )
    # `vigie status` and `vigie outbox list` name it for a person, without the URL; once
    # someone has checked, `vigie outbox resend` sends it again.
    with open_warehouse(settings.warehouse_path) as con:
        status = channel_status_lines(con)
        listed = channel_outbox_lines(con)
        assert ChannelOutbox(con).resend(f"{alert_id}.opened") == 1
    assert status[0] == "Channel messages waiting: 1"
    assert status[1].startswith(f"  {alert_id}.opened [alert] to Nadia Cloutier · json #")
    assert "UNCERTAIN, not sent again" in status[1]
    assert listed[0].startswith(f"{alert_id}.opened [alert] to Nadia Cloutier · json #")
    assert "/nadia" not in " ".join(status + listed)
    resent = deliver_channels(settings=settings, now=NOW, open_outbox=outbox)
    assert len(resent.sent) == 1 and len(webhook_receiver.at("/nadia")) == 3


def test_a_sender_gone_after_the_service_accepted_is_settled_when_its_lease_ends(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    # A claim's lease starts at the real time when the given one lags behind it.
    now = datetime.now(UTC)
    _open_alert(settings, now)
    outbox = lambda: _outbox(settings.warehouse_path)  # noqa: E731

    class Gone(Exception):
        pass

    def die(key: str) -> None:
        raise Gone(key)

    with pytest.raises(Gone):
        deliver_channels(settings=settings, now=now, open_outbox=outbox, on_accepted=die)
    assert len(webhook_receiver.received) == 1
    # Its claim stands while its lease lasts (this process is alive): nothing is sent again.
    during = deliver_channels(settings=settings, now=now, open_outbox=outbox)
    assert during.uncertain == [] and len(during.sent) == 1  # the other channel
    after = deliver_channels(settings=settings, now=now + timedelta(minutes=5), open_outbox=outbox)
    assert len(after.uncertain) == 1 and len(after.sent) == 1  # the alert's second sending
    bodies = [hook.body for hook in webhook_receiver.received]
    assert len(bodies) == 3
    assert any("Second envoi" in str(body) for body in bodies[2:])
    final = deliver_channels(settings=settings, now=now + timedelta(hours=1), open_outbox=outbox)
    assert final.sent == [] and len(webhook_receiver.received) == 3


def test_a_service_that_cannot_be_reached_is_one_reason_without_the_url(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    outcome = apprise_notify(f"json://127.0.0.1:1/{TOKEN}", "t", "b", False)
    assert outcome == ChannelOutcome("refused", "the service could not be reached")
    # Apprise's own lines (they print the URL) reach neither the logs nor the terminal.
    out, err = capfd.readouterr()
    assert TOKEN not in out + err + caplog.text
    assert logging.getLogger("apprise").propagate  # restored after the call


def test_chat_text_carries_nothing_a_chat_would_act_on() -> None:
    hostile = "[Vigie] <script>x</script> [clic](javascript:alert(1)) @channel <!here>\u202e\r\n"
    message = UnplannedMessage(
        "inc.1", "incident", None, ("a@example.org",), hostile, "", True, False
    )
    title, body = chat_text(message, None, language="en", timezone="UTC")
    assert title == "Vigie — incident report"
    for mark in "<>[]()@!/\u202e\r\n":
        assert mark not in body
    assert inert("a" * 500, 50).endswith("…") and len(inert("a" * 500, 50)) == 50


def test_an_escalation_reaches_the_next_levels_channels_once(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    level_two = f"""
[[cell.members]]
name = "Marc Gagnon"
email = "marc.gagnon@laiterie-boreale.example"
role = "executive"
level = 2
channels = ["{webhook_receiver.url("json", "/marc")}"]
"""
    settings = settings_from(tmp_path, settings.config_path.read_text() + level_two)
    alert_id = _open_alert(settings)
    send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    assert webhook_receiver.at("/marc") == []  # level 2 is not on duty for a new alert

    later = NOW + timedelta(minutes=settings.escalation.delay_minutes + 1)
    with _store(settings.warehouse_path) as store:
        assert escalate_unacknowledged(store, settings, now=later) == [f"{alert_id}: level 1 -> 2"]
    send_pending(settings.warehouse_path, settings, Secrets(), now=later)
    send_pending(settings.warehouse_path, settings, Secrets(), now=later)
    [marc] = webhook_receiver.at("/marc")
    assert marc["title"] == "Vigie — personne n’a pris en charge : CRISE « marque »"
    assert "le vôtre" in marc["message"] and f"vigie ack {alert_id}" in marc["message"]
    assert len(webhook_receiver.at("/nadia")) == 1  # level 1 was told once, at the opening


def test_the_watchdogs_notice_reaches_the_operators_channels_once(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    from cli.watchdog import check_watch

    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    operator = f"""
[[cell.members]]
name = "Léa Gauthier"
email = "lea.gauthier@laiterie-boreale.example"
role = "operator"
channels = ["{webhook_receiver.url("json", "/lea")}"]
"""
    settings = settings_from(tmp_path, settings.config_path.read_text() + operator)
    for minute in (0, 1):  # cron runs it every minute
        at = NOW + timedelta(minutes=minute)
        with _store(settings.warehouse_path) as store:
            check_watch(store, settings, now=at)
        send_pending(settings.warehouse_path, settings, Secrets(), now=at)
    [lea] = webhook_receiver.at("/lea")
    assert lea["title"] == "Vigie — LA VEILLE EST ARRÊTÉE"
    assert lea["message"].startswith("La veille ne tourne plus")
    assert lea["type"] == "failure"
    assert webhook_receiver.at("/nadia") == []  # the operators alone hear of the watch
    assert len(mail_sink.messages()) == 1


def test_an_incident_report_reaches_the_cells_channels_once_with_its_title_inert(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    plan = IncidentPlan.of(NOW, cadence_minutes=5, duration_hours=2, sitrep_every_minutes=60)
    name = "Rappel <b>lait</b> [voir](https://evil.example/x) @channel"
    with open_warehouse(settings.warehouse_path) as con:
        incident, _ = begin_incident(IncidentStore(con), name, {}, plan, "run-1")
    recipients = incident_recipients(settings, [])
    for _ in range(2):  # a retried task closes nothing twice and sends nothing twice
        finish_incident(
            settings,
            Secrets(),
            incident,
            status="stopped",
            ended_at=NOW + timedelta(hours=1),
            recipients=recipients,
        )
    [report] = webhook_receiver.at("/nadia")
    assert report["title"] == "Vigie — rapport d’incident"
    assert report["message"].startswith("Un rapport d’incident vient d’être envoyé par email")
    assert "Rappel" in report["message"]
    for mark in "<>[]()@/":
        assert mark not in report["message"]
    assert webhook_receiver.requests == 1 and len(mail_sink.messages()) == 1


def test_the_unreadable_warehouse_alarm_reaches_the_operators_channels_once_per_incident(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver
) -> None:
    from cli.channel_alarm import channel_alarm_file, clear_channel_alarm, tell_channels_unreadable

    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    operator = f"""
[[cell.members]]
name = "Léa Gauthier"
email = "lea.gauthier@laiterie-boreale.example"
role = "operator"
channels = ["{webhook_receiver.url("json", "/lea")}"]
"""
    settings = settings_from(tmp_path, settings.config_path.read_text() + operator)
    path = tmp_path / "broken" / "vigie.duckdb"  # a warehouse that cannot be read
    path.parent.mkdir()
    path.write_bytes(b"not a DuckDB file")
    notice = OutboxMessage(
        "watchdog.unreadable.20261125T150000Z",
        "watchdog_unreadable",
        ("lea.gauthier@laiterie-boreale.example",),
        "[Vigie] entrepôt illisible",
        "<p>x</p>",
        text=f"L’entrepôt {path} ne peut pas être lu : <b>fichier tronqué</b>.\n",
        critical=True,
    )
    webhook_receiver.fail_next(1, status=503)
    [refused] = tell_channels_unreadable(settings, path, notice)
    assert refused.startswith("Not told now, the next run tries again: Léa Gauthier · json #")
    assert refused.endswith("(the service answered HTTP 503)")
    [told] = tell_channels_unreadable(settings, path, notice)
    assert told.startswith("Told on Léa Gauthier · json #")
    assert tell_channels_unreadable(settings, path, notice) == []  # cron runs it again
    [lea] = webhook_receiver.at("/lea")
    assert lea["title"] == "Vigie — LA VEILLE EST ARRÊTÉE : entrepôt illisible"
    assert "fichier tronqué" in lea["message"] and "<b>" not in lea["message"]
    assert webhook_receiver.at("/nadia") == []  # operators only

    # The warehouse reads again, then a new incident: told once more.
    clear_channel_alarm(path)
    assert not channel_alarm_file(path).exists()
    later = dataclasses.replace(notice, message_id="watchdog.unreadable.20261126T090000Z")
    assert len(tell_channels_unreadable(settings, path, later)) == 1
    assert len(webhook_receiver.at("/lea")) == 2


@pytest.mark.parametrize("language", ["fr", "en"])
def test_the_cycle_summary_counts_channel_sends_beside_the_emails(
    tmp_path: Path, mail_sink: MailSink, webhook_receiver: WebhookReceiver, language: str
) -> None:
    """The delivery's channel sends and failures reach the typed cycle summary and the
    summary artifact's counts, next to the emails'."""
    from tasks.notify.alerts import AlertChanges
    from tasks.publish.report import StepClock, cycle_summary, summary_markdown

    settings = _settings(tmp_path, mail_sink.port, webhook_receiver)
    _open_alert(settings)
    webhook_receiver.fail_next(1, status=500)
    report = send_pending(settings.warehouse_path, settings, Secrets(), now=NOW)
    summary = cycle_summary(
        cycle_id="c-1",
        clock=StepClock(),
        outcomes=[],
        collected=0,
        matched=0,
        quarantined=0,
        new_mentions=0,
        alerts=AlertChanges(),
        emails_sent=len(report.sent),
        emails_failed=report.failed,
        channels_sent=len(report.channels_sent),
        channels_failed=report.channels_failed,
    )
    assert (summary["emails_sent"], summary["channels_sent"]) == (1, 1)
    assert list(summary["channels_failed"].values()) == ["the service answered HTTP 500"]
    assert TOKEN not in repr(summary)
    markdown = summary_markdown(summary, language=language)
    sent, failed = (
        ("messages envoyés sur les canaux", "messages en échec sur les canaux")
        if language == "fr"
        else ("channel messages sent", "channel messages failed")
    )
    assert f"| {sent} | 1 |" in markdown and f"| {failed} | 1 |" in markdown
    assert "the service answered HTTP 500" in markdown
