"""The digest on a real DuckDB file filled through `Store.load_cycle`, and its email received
by a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import io
import smtplib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from PIL import Image

from tasks.notify.chart import MARKER, alert_chart, chart_cid
from tasks.notify.delivery import compose_email
from tasks.notify.digest import build_digest, render_digest
from tests.configs import CELL_TOML, settings_from
from vigie.localservers import MailSink
from vigie.models import FetchResult, Mention, SourceOutcome, VolumeSignal
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

# 07:00 in Toronto: the daily period is [24 Nov 12:00, 25 Nov 12:00) UTC, the one before it
# [23 Nov 12:00, 24 Nov 12:00).
END = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
START = END - timedelta(days=1)

TOML = (
    """\
[organisation]
name = "Laiterie Boréale"
language = "fr"
timezone = "America/Toronto"

[warehouse]
path = "wh.duckdb"

[[watch]]
name = "marque"
query = 'boreale'

[[watch]]
name = "rappel"
query = 'rappel'

[[sources]]
name = "Le Quotidien"
url = "https://quotidien.example/rss.xml"
tier = 1

[[sources]]
name = "Radio Nord"
url = "https://radio.example/rss.xml"
tier = 2

[[sources]]
name = "Blogue"
url = "https://blogue.example/rss.xml"
platform = "blog"

[[sources]]
name = "Forum"
url = "https://forum.example/rss.xml"
platform = "forum"

[email]
sender = "vigie@laiterie-boreale.example"
"""
    + CELL_TOML
    + """
[[cell.members]]
name = "Awa Diallo (suppléance)"
email = "Awa.Diallo@laiterie-boreale.example"
role = "lead"
level = 3
"""
)


def _settings(tmp_path: Path, language: str = "fr") -> Settings:
    return settings_from(tmp_path, TOML.replace('language = "fr"', f'language = "{language}"'))


def _mention(
    n: int,
    source: str,
    published_at: datetime,
    story: str,
    *,
    sentiment: float | None = None,
    topics: tuple[str, ...] = ("marque",),
    title: str | None = None,
    url: str | None = None,
    seen_in: tuple[str, ...] = (),
) -> Mention:
    tier = {"Le Quotidien": 1, "Radio Nord": 2}.get(source, 3)
    return Mention(
        mention_id=f"m{n}",
        source=source,
        platform="news",
        tier=tier,
        url=url or f"https://{source.split()[0].lower()}.example/{n}",
        title=title or f"Laiterie Boréale, histoire {story} ({n})",
        summary="",
        author=None,
        published_at=published_at,
        collected_at=published_at + timedelta(minutes=5),
        language="fr",
        story_id=story,
        topics=topics,
        sentiment=sentiment,
        seen_in=seen_in,
    )


def _outcome(source: str, at: datetime, error: str | None = None) -> SourceOutcome:
    status = "error" if error else "ok"
    fetch = FetchResult(
        source=source,
        url="https://x.example/",
        status=status,
        started_at=at,
        duration_s=0.1,
        error=error,
    )  # type: ignore[arg-type]
    return SourceOutcome(fetch, status, items=0, error=error)  # type: ignore[arg-type]


def _signal(topic: str, at: datetime) -> VolumeSignal:
    return VolumeSignal(topic, at - timedelta(hours=1), at, 12, 2.0, 1.0, 0.9, 8.0, True)


SCRIPT_TITLE = "<script>alert('x')</script> Boréale rappelle ses fromages"


def _fill(path: Path, settings: Settings) -> None:
    t = START  # 24 Nov 12:00 UTC
    before = [
        _mention(1, "Blogue", t - timedelta(hours=20), "old1", sentiment=-0.5),
        _mention(2, "Blogue", t - timedelta(hours=10), "old2", sentiment=0.0),
        _mention(3, "Forum", t - timedelta(hours=5), "old3", sentiment=0.4),
        _mention(4, "Forum", t - timedelta(minutes=1), "old4", sentiment=0.0),
    ]
    now = [
        # Story A: four mentions on two minor sources.
        _mention(10, "Blogue", t + timedelta(hours=1), "A", sentiment=-0.6),
        _mention(11, "Blogue", t + timedelta(hours=2), "A", sentiment=-0.6),
        _mention(12, "Forum", t + timedelta(hours=3), "A", sentiment=-0.6),
        _mention(13, "Forum", t + timedelta(hours=4), "A", sentiment=0.6),
        # Story B: one mention, but in a major outlet (and a hostile title).
        _mention(
            20,
            "Le Quotidien",
            t + timedelta(hours=8),
            "B",
            sentiment=-0.7,
            topics=("marque", "rappel"),
            title=SCRIPT_TITLE,
        ),
        # Story C: three mentions on one source, with a link that is not http(s).
        _mention(30, "Blogue", t + timedelta(hours=9), "C", sentiment=-0.8),
        _mention(31, "Blogue", t + timedelta(hours=10), "C", url="javascript:alert(1)"),
        _mention(32, "Blogue", t + timedelta(hours=11), "C", sentiment=-0.9),
        # Story D: one mention carried by two sources (a merged duplicate).
        _mention(
            40,
            "Forum",
            t + timedelta(hours=20),
            "D",
            sentiment=0.3,
            topics=("marque", "rappel"),
            seen_in=("Blogue",),
        ),
        _mention(50, "Forum", END - timedelta(minutes=1), "E"),
    ]
    after = [_mention(60, "Forum", END + timedelta(minutes=1), "F", sentiment=-0.9)]
    sources = settings.sources
    with open_warehouse(path) as con:
        store = Store(con)
        store.load_cycle(
            "c1",
            sources,
            [_outcome("Radio Nord", t - timedelta(hours=2), "HTTP 500 (before the period)")],
            before,
            [],
            t - timedelta(hours=2),
        )
        store.load_cycle(
            "c2",
            sources,
            [
                _outcome("Radio Nord", t + timedelta(hours=3), "HTTP 500"),
                _outcome("Forum", t + timedelta(hours=3), "timeout after 20 s"),
            ],
            now[:6],
            [],
            t + timedelta(hours=3),
        )
        store.load_cycle(
            "c3",
            sources,
            [
                _outcome("Radio Nord", t + timedelta(hours=21), "HTTP 503\r\nInjected: yes"),
                _outcome("Forum", t + timedelta(hours=21)),
            ],
            now[6:],
            [],
            t + timedelta(hours=21),
        )
        store.load_cycle(
            "c4", sources, [_outcome("Radio Nord", END + timedelta(hours=1))], after, [], END
        )
        # Alerts: resolved before the period, still active from before it, opened in it and
        # acknowledged, opened after it.
        for alert_id, topic, at in (
            ("al-0", "marque", t - timedelta(hours=30)),
            ("al-1", "rappel", t - timedelta(hours=26)),
            ("al-2", "marque", t + timedelta(hours=8, minutes=20)),
            ("al-3", "marque", END + timedelta(minutes=30)),
        ):
            store.open_alert(
                alert_id,
                _signal(topic, at),
                level="alerte" if alert_id == "al-2" else "vigilance",
                reason="volume",
                now=at,
                messages=[],
            )
        store.resolve_alert("al-0", t - timedelta(hours=6), "calm")
        store.acknowledge_alert("al-2", "Awa Diallo", t + timedelta(hours=8, minutes=45))


@pytest.fixture
def filled(tmp_path: Path) -> tuple[Path, Settings]:
    settings = _settings(tmp_path)
    path = tmp_path / "wh.duckdb"
    _fill(path, settings)
    return path, settings


def _build(path: Path, settings: Settings, period: str = "daily"):  # type: ignore[no-untyped-def]
    with open_warehouse(path) as con:
        return build_digest(Store(con), settings, period=period, end=END)  # type: ignore[arg-type]


def _red(png: bytes) -> int:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for pixel in image.getdata() if pixel == MARKER)


def test_volumes_and_negative_share_against_the_previous_period(
    filled: tuple[Path, Settings],
) -> None:
    digest = _build(*filled)
    assert (digest.start, digest.end, digest.previous_start) == (
        START,
        END,
        START - timedelta(days=1),
    )
    marque, rappel = digest.topics
    assert (marque.topic, marque.mentions, marque.previous) == ("marque", 10, 4)
    assert marque.change_pct == pytest.approx(150.0)
    # This period: 6 negative of 8 scored (two unscored); before: 1 negative of 4.
    assert (marque.negative, marque.scored) == (6, 8)
    assert marque.negative_share == pytest.approx(0.75)
    assert marque.previous_negative_share == pytest.approx(0.25)
    assert (rappel.mentions, rappel.previous, rappel.change_pct) == (2, 0, None)
    assert rappel.negative_share == pytest.approx(0.5)
    assert rappel.previous_negative_share is None


def test_top_stories_put_major_outlets_first_then_wider_then_bigger(
    filled: tuple[Path, Settings],
) -> None:
    stories = _build(*filled).stories
    assert [s.story_id for s in stories] == ["B", "A", "D", "C", "E"]
    by_id = {s.story_id: s for s in stories}
    assert (by_id["A"].mentions, by_id["A"].sources) == (4, 2)
    assert (by_id["D"].mentions, by_id["D"].sources) == (1, 2)
    assert (by_id["C"].mentions, by_id["C"].sources) == (3, 1)
    assert by_id["B"].title == SCRIPT_TITLE and by_id["B"].tier == 1
    assert by_id["B"].topics == ("marque", "rappel")
    # The story's link is its first mention's; C's first mention has an https link.
    assert by_id["C"].url == "https://blogue.example/30"


def test_failed_sources_count_only_the_period(filled: tuple[Path, Settings]) -> None:
    failed = {f.source: f for f in _build(*filled).failed_sources}
    assert set(failed) == {"Radio Nord", "Forum"}
    radio, forum = failed["Radio Nord"], failed["Forum"]
    assert (radio.failures, radio.runs, radio.still_failing) == (2, 2, True)
    assert radio.last_error == "HTTP 503\r\nInjected: yes"
    assert (forum.failures, forum.runs, forum.still_failing) == (1, 2, False)
    assert [f.source for f in _build(*filled).failed_sources] == ["Radio Nord", "Forum"]


def test_alerts_opened_or_active_in_the_period(filled: tuple[Path, Settings]) -> None:
    alerts = _build(*filled).alerts
    assert [a.alert_id for a in alerts] == ["al-1", "al-2"]
    active, opened = alerts
    assert (active.status, active.acknowledged_by) == ("open", None)
    assert (opened.level, opened.status, opened.acknowledged_by) == (
        "alerte",
        "acknowledged",
        "Awa Diallo",
    )
    assert opened.acknowledged_at == START + timedelta(hours=8, minutes=45)


def test_each_topic_has_a_chart_and_the_alert_opened_in_the_period_is_marked(
    filled: tuple[Path, Settings],
) -> None:
    digest = _build(*filled)
    marque, rappel = digest.topics
    assert marque.chart is not None and rappel.chart is not None
    assert marque.chart.cid == chart_cid("marque")
    assert _red(marque.chart.png) > 0  # al-2 opened at 20:20 UTC
    assert _red(rappel.chart.png) == 0  # al-1 opened before the period
    assert len(marque.chart.png) < 30_000
    assert _build(*filled).images == digest.images  # same warehouse, same bytes


def test_the_weekly_digest_covers_seven_days(filled: tuple[Path, Settings]) -> None:
    weekly = _build(*filled, period="weekly")
    assert weekly.start == END - timedelta(days=7)
    assert weekly.topics[0].mentions == 14 and weekly.topics[0].previous == 0
    assert [a.alert_id for a in weekly.alerts] == ["al-0", "al-1", "al-2"]


def test_rendered_digest_is_queued_once_for_the_whole_cell(
    filled: tuple[Path, Settings],
) -> None:
    path, settings = filled
    message = render_digest(_build(path, settings), settings)
    assert message.message_id == "digest.daily.20261125T120000Z"
    assert message.kind == "digest"
    assert message.recipients == (
        "awa.diallo@laiterie-boreale.example",
        "louis.tremblay@laiterie-boreale.example",
        "sophie.roy@laiterie-boreale.example",
    )
    with open_warehouse(path) as con:
        store = Store(con)
        store.queue(message, END)
        again = render_digest(_build(path, settings), settings)
        store.queue(again, END)
        pending = [m for m in store.pending_messages(10) if m.kind == "digest"]
    assert len(pending) == 1
    # The outbox keeps the charts (it returns them ordered by cid) and the plain text.
    assert set(pending[0].images) == set(message.images) and len(message.images) == 2
    assert pending[0].text == message.text


def test_alert_chart_reads_hourly_counts_and_marks_the_moment(
    filled: tuple[Path, Settings],
) -> None:
    path, _ = filled
    with open_warehouse(path) as con:
        store = Store(con)
        marked = alert_chart(
            store, "marque", end=END, marker=START + timedelta(hours=8, minutes=20)
        )
        plain = alert_chart(store, "marque", end=END, marker=None)
        empty = alert_chart(store, "personne", end=END, marker=None, language="en")
    assert marked.cid == chart_cid("marque")
    assert _red(marked.png) > 0 and _red(plain.png) == 0
    assert marked.png.startswith(b"\x89PNG") and empty.png.startswith(b"\x89PNG")
    assert marked.png != plain.png != empty.png


def _tree(part: EmailMessage) -> object:
    if part.is_multipart():
        return (part.get_content_type(), [_tree(p) for p in part.iter_parts()])  # type: ignore[arg-type]
    return part.get_content_type()


def test_the_digest_email_arrives_with_text_html_and_inline_charts(
    filled: tuple[Path, Settings], mail_sink: MailSink
) -> None:
    path, settings = filled
    message = render_digest(_build(path, settings), settings)
    mime = compose_email(message, sender="vigie@laiterie-boreale.example", sender_name="Vigie")
    with smtplib.SMTP("127.0.0.1", mail_sink.port, timeout=10) as smtp:
        smtp.send_message(mime)
    (received,) = mail_sink.messages()
    assert _tree(received) == (
        "multipart/alternative",
        ["text/plain", ("multipart/related", ["text/html", "image/png", "image/png"])],
    )
    assert received["Subject"] == "[Vigie][RÉSUMÉ] Laiterie Boréale — 25 novembre 2026"
    assert received["Message-ID"] == "<digest.daily.20261125T120000Z@vigie>"
    text_part, related = received.iter_parts()
    html_part, *images = related.iter_parts()  # type: ignore[attr-defined]
    text = text_part.get_content()  # type: ignore[attr-defined]
    body = html_part.get_content()
    assert "Laiterie Boréale" in text and "part négative 75 %" in text
    assert "Laiterie Boréale" in body and "Résumé quotidien" in body
    for image, expected in zip(images, message.images, strict=True):
        cid = image["Content-ID"].strip("<>")
        assert cid == expected.cid
        assert f'src="cid:{cid}"' in body
        assert image.get_content() == expected.png
    # The raw bytes on the wire are ASCII (encoded words, quoted-printable, base64).
    raw = next(iter(sorted(mail_sink.folder.glob("*.eml")))).read_bytes()
    assert b"Bor\xc3\xa9ale" not in raw
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [a.addr_spec for a in parsed["To"].addresses] == list(message.recipients)
