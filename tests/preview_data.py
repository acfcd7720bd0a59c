"""A real warehouse holding a small crisis, for the preview tests: mentions loaded with
`Store.load_cycle` (some with a hostile `<script>` title) and the alert opened by the watch
cycle's own `tasks.notify.alerts.raise_alerts`, which queues its email in the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from cli.preview_sample import sample_mention, source_outcome
from tasks.detect.signals import assess_severity
from tasks.detect.volume import TopicAssessment
from tasks.notify.alerts import raise_alerts
from vigie.models import Mention, VolumeSignal
from vigie.settings import Settings
from warehouse.connection import open_warehouse
from warehouse.store import Store

SCRIPT_TITLE = "<script>alert('x')</script> Boréale rappelle ses fromages"
ESCAPED_SCRIPT = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Boréale rappelle ses fromages"
STORED_TITLE = "Rappel : la Laiterie Boréale retire trois fromages au lait cru"
SUMMARY = "Des clients malades ; une enquête est ouverte."


def fill_crisis(settings: Settings, *, now: datetime) -> str:
    """Load two calm days and a crisis ending at `now` (a whole 5 minutes) into the configured
    warehouse from its first source; open the alert at `now` and return its id."""
    source = settings.sources[0]
    window = timedelta(minutes=settings.detection.window_minutes)
    start = now - window

    def mention(number: int, at: datetime, title: str, story: str) -> Mention:
        return sample_mention(
            number,
            source,
            title,
            SUMMARY,
            language="fr",
            sentiment=-0.7,
            published_at=at,
            story=story,
            topics=("marque",),
        )

    calm = [
        mention(n, now - timedelta(hours=3 * n + 2), f"Boréale, nouvelle {n}", f"c{n}")
        for n in range(1, 8)
    ]
    titles = [(STORED_TITLE, "recall")] * 5 + [(SCRIPT_TITLE, "script")] * 3
    crisis = [
        mention(100 + n, start + timedelta(minutes=5 * n + 1), title, story)
        for n, (title, story) in enumerate(titles)
    ]
    signal = VolumeSignal("marque", start, now, len(crisis), 1.0, 0.4, 0.95, 8.7, True)
    first = now - timedelta(days=2)
    with open_warehouse(settings.warehouse_path) as con:
        store = Store(con)
        store.load_cycle("c1", settings.sources, [source_outcome(source, first)], calm, [], first)
        store.load_cycle("c2", settings.sources, [source_outcome(source, now)], crisis, [], now)
        mentions, _ = store.window_mentions("marque", start=start, end=now)
        severity = assess_severity(
            mentions, volume_score=0.95, enough_volume=True, baseline_negative_share=0.1
        )
        changes = raise_alerts(
            store, settings, [TopicAssessment(signal, 0.95, severity)], now=now, run_url=None
        )
    (alert_id,) = changes.opened
    return alert_id


def outbox(path: Path) -> list[tuple[str, bool]]:
    """Every message of the outbox: (id, sent)."""
    with open_warehouse(path) as con:
        rows = con.execute(
            "SELECT message_id, sent_at IS NOT NULL FROM outbox ORDER BY message_id"
        ).fetchall()
    return [(str(mid), bool(sent)) for mid, sent in rows]
