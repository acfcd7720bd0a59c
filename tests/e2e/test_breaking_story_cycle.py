"""A breaking story through real watch cycles: ten outlets' feeds served over HTTP on 127.0.0.1
carry the same story within an hour while the topic's volume stays ordinary; a real SMTP server
receives the one email that names the story, and a rerun sends nothing twice."""

from __future__ import annotations

import email.utils
import html
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from tests.conftest import ConfigWriter
from vigie.localservers import FeedServer, MailSink
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

OUTLETS = [f"Média {n}" for n in range(10)]
PER_HOUR = 12  # the topic's usual volume: twelve small stories an hour, one outlet each
# More than the week the volume detector compares the same time of day with.
HISTORY_HOURS = 8 * 24
STORY = "Rappel de fromages de la Laiterie Boréale : risque de listeria"


def _item(title: str, link: str, at: datetime) -> str:
    return (
        f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
        f"<guid>{escape(link)}</guid>"
        f"<pubDate>{email.utils.format_datetime(at)}</pubDate>"
        f"<description>{escape(title)}.</description></item>"
    )


def _feeds(base: datetime, *, breaking: bool) -> dict[int, list[str]]:
    """Each outlet's items: eight days of ordinary stories (each its own, words of its own), and
    with `breaking`, the hour after `base`: the story in all ten outlets, two ordinary items."""
    items: dict[int, list[str]] = {n: [] for n in range(len(OUTLETS))}
    for hour in range(1, HISTORY_HOURS + 1):
        for k in range(PER_HOUR):
            n = (hour * PER_HOUR + k) % len(OUTLETS)
            number = hour * PER_HOUR + k
            title = f"Laiterie Boréale : a{number} b{number} c{number} d{number}"
            at = base - timedelta(hours=hour) + timedelta(minutes=2 + 5 * k)
            items[n].append(_item(title, f"https://media-{n}.example/n/{number}", at))
    if breaking:
        for n in range(len(OUTLETS)):
            at = base + timedelta(minutes=4 + 5 * n)
            items[n].append(_item(STORY, f"https://media-{n}.example/rappel-listeria", at))
        for n, minutes in ((0, 7), (1, 37)):
            title = f"Laiterie Boréale : e{minutes} f{minutes} g{minutes} h{minutes}"
            items[n].append(_item(title, f"https://media-{n}.example/o/{minutes}", base))
    return items


def _publish(server: FeedServer, base: datetime, *, breaking: bool) -> list[str]:
    urls = []
    for n, entries in _feeds(base, breaking=breaking).items():
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>{escape(OUTLETS[n])}</title><link>https://media-{n}.example/</link>"
            f"<description>actualités</description>{''.join(entries)}</channel></rss>"
        )
        urls.append(server.set(f"/media-{n}/rss.xml", body))
    return urls


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with open_warehouse(path) as con:
        return con.execute(sql).fetchall()


def test_one_story_across_ten_outlets_in_an_hour_alerts_once_while_volume_is_ordinary(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    from flows.watch_cycle import watch_cycle

    wall = datetime.now(UTC).replace(second=0, microsecond=0)
    base = wall - timedelta(hours=1, minutes=wall.minute % 5)
    urls = _publish(feed_server, base, breaking=False)
    sources = [
        {"name": name, "url": url, "platform": "news", "tier": 2}
        for name, url in zip(OUTLETS, urls, strict=True)
    ]
    config = write_config(sources=sources, smtp_port=mail_sink.port)
    warehouse = config.parent / "wh" / "vigie.duckdb"

    calm = watch_cycle(str(config), now=base)
    assert calm["new_mentions"] == HISTORY_HOURS * PER_HOUR
    assert calm["alerts_opened"] == [] and calm["breaking_stories"] == []

    _publish(feed_server, base, breaking=True)
    now = base + timedelta(hours=1)
    cycle = watch_cycle(str(config), now=now)
    # The story's ten copies share one headline: one mention seen in ten outlets (title dedup),
    # beside the two ordinary items.
    assert cycle["new_mentions"] == 3
    # The topic's volume stays ordinary: no volume alert.
    topic = cycle["topics"]["marque"]
    assert topic["mentions"] == 3  # fewer than the usual PER_HOUR: volume says nothing
    assert topic["level"] in ("veille", "vigilance") and topic["volume_score"] < 0.5
    [story] = cycle["breaking_stories"]
    assert (story["title"], story["sources"], story["needed"]) == (STORY, 10, 5.0)
    assert len(cycle["alerts_opened"]) == 1 and cycle["emails_sent"] == 1

    [message] = mail_sink.messages()
    assert message["Subject"] == (
        f"[Vigie][{story['level'].upper()}] Laiterie Boréale : une histoire se propage vite "
        f"« {STORY} » (10 sources en 60 min)"
    )
    body = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert html.escape(STORY) in body
    assert 'href="https://media-0.example/rappel-listeria"' in body  # the first to carry it
    positions = [body.index(f">{html.escape(name)}</a>") for name in OUTLETS]
    assert positions == sorted(positions)  # every outlet, in the order it picked the story up
    assert "10 sources différentes ont repris cette histoire" in body

    [(story_id, level)] = _rows(warehouse, "SELECT story_id, level FROM alerts")
    assert story_id is not None and level == story["level"]

    rerun = watch_cycle(str(config), now=now)
    later = watch_cycle(str(config), now=now + timedelta(minutes=10))
    for again in (rerun, later):
        assert again["new_mentions"] == 0 and again["alerts_opened"] == []
        assert again["emails_sent"] == 0
    assert len(mail_sink.messages()) == 1
    assert _rows(warehouse, "SELECT count(*) FROM alerts") == [(1,)]
    assert _rows(warehouse, "SELECT count(*) FROM outbox") == [(1,)]
