"""The bundled demo scenario: a fictional Québec dairy, Laiterie Boréale, goes from calm to crisis.

`calm` is two days of ordinary coverage (a few mentions a day among unrelated news);
`burst` adds, in the last hour, a wave of negative coverage about a product recall that spreads
from a major daily to radio and a consumer forum, with syndicated copies. Feeds are generated
relative to an anchor time so the scenario always looks current, and deterministically so the
same phase always produces the same documents (and the same ETags).
"""

from __future__ import annotations

import email.utils
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from xml.sax.saxutils import escape

from vigie.localservers import FeedServer

Phase = Literal["calm", "burst"]
ORGANISATION = "Laiterie Boréale"


@dataclass(frozen=True)
class Item:
    title: str
    link: str
    summary: str
    age: timedelta


@dataclass(frozen=True)
class ScenarioSource:
    name: str
    path: str
    fmt: Literal["rss", "atom", "html"]
    platform: str
    tier: int


SOURCES = (
    ScenarioSource("Le Quotidien du Nord", "/quotidien/rss.xml", "rss", "news", 1),
    ScenarioSource("Radio Boréale Info", "/radio/atom.xml", "atom", "news", 2),
    ScenarioSource("Forum Lait et Fromages", "/forum/rss.xml", "rss", "forum", 3),
    # A source that moved: its URL now answers with an HTML page instead of a feed.
    ScenarioSource("Blogue du terroir", "/blogue/feed", "html", "blog", 3),
)

_CALM = {
    "/quotidien/rss.xml": [
        ("La Laiterie Boréale agrandit son usine de Saguenay", 3),
        ("Météo : un week-end doux sur le Nord", 5),
        ("Hockey : victoire des Cuirassiers en prolongation", 9),
        ("Prix du lait : la Laiterie Boréale signe avec les producteurs", 20),
        ("Le conseil municipal adopte son budget", 27),
        ("Foire agricole : la Laiterie Boréale primée pour son cheddar", 41),
    ],
    "/radio/atom.xml": [
        ("Entrevue : la directrice de la Laiterie Boréale parle d'innovation", 7),
        ("Circulation difficile sur la route 175", 12),
        ("La Laiterie Boréale recrute 40 personnes (recrutement)", 15),
        ("Festival des fromages : programme dévoilé", 33),
    ],
    "/forum/rss.xml": [
        ("Votre fromage en grains préféré ? (Boréale ou autre)", 11),
        ("Recette : poutine maison", 23),
        ("Le yogourt grec de Laiterie Boréale, vos avis ?", 38),
    ],
}

_BURST: dict[str, list[tuple[str, int] | tuple[str, int, str]]] = {
    "/quotidien/rss.xml": [
        ("Rappel de fromages de la Laiterie Boréale : risque de listeria", 48),
        ("Listeria : ce que l'on sait du rappel de la Laiterie Boréale", 30),
        ("Intoxications : des familles accusent la Laiterie Boréale", 14),
        ("La Laiterie Boréale refuse de commenter le rappel", 6),
    ],
    "/radio/atom.xml": [
        ("Rappel de fromages de la Laiterie Boréale : risque de listeria", 44),
        ("Listeria : l'Agence d'inspection enquête sur la Laiterie Boréale", 26),
        ("Boycott de la Laiterie Boréale : l'appel circule sur les réseaux", 10),
        ("Des épiceries retirent les produits Boréale de leurs tablettes", 4),
    ],
    "/forum/rss.xml": [
        ("Malade après le fromage Boréale ?", 52),
        ("Rappel Boréale : quels lots sont touchés ?", 40),
        ("Boréale : mon enfant hospitalisé, je suis furieux", 33),
        ("On boycotte la Laiterie Boréale ?", 25),
        ("Boréale : remboursement ou pas ?", 19),
        ("Scandale Boréale : ils savaient depuis une semaine", 12),
        ("Pétition contre la Laiterie Boréale", 8),
        ("Boréale : le service client ne répond plus", 3),
        # A hostile post: its link is a script, so validation quarantines it.
        ("Boréale : la vidéo qu'ils veulent cacher", 2, "javascript:alert(document.cookie)"),
    ],
}

_HOSTS = {
    "/quotidien/rss.xml": "https://quotidien-du-nord.example",
    "/radio/atom.xml": "https://radio-boreale.example",
    "/forum/rss.xml": "https://forum-lait.example",
}


def _slug(title: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in title.lower()).strip("-")[:60]


def items_for(path: str, phase: Phase) -> list[Item]:
    """The entries of one feed in a phase; calm ages are hours, burst ages are minutes."""
    host = _HOSTS[path]
    items = [
        Item(
            title,
            f"{host}/articles/{_slug(title)}?utm_source=rss&utm_medium=feed",
            f"<p>{escape(title)}. <em>Lire la suite</em> sur notre site.</p>",
            timedelta(hours=hours),
        )
        for title, hours in _CALM[path]
    ]
    if phase == "burst":
        for title, minutes, *link in _BURST[path]:
            items.append(
                Item(
                    title,
                    link[0] if link else f"{host}/articles/{_slug(title)}",
                    f"<p>{escape(title)}.</p><script>alert('x')</script>",
                    timedelta(minutes=minutes),
                )
            )
    return sorted(items, key=lambda item: item.age)


def rss_document(title: str, items: Sequence[Item], anchor: datetime) -> str:
    entries = "".join(
        "<item>"
        f"<title>{escape(item.title)}</title>"
        f"<link>{escape(item.link)}</link>"
        f'<guid isPermaLink="false">{escape(_slug(item.title))}</guid>'
        f"<pubDate>{email.utils.format_datetime(anchor - item.age)}</pubDate>"
        f"<description>{escape(item.summary)}</description>"
        "</item>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.org/</link>"
        f"<description>{escape(title)}</description><language>fr-CA</language>"
        f"{entries}</channel></rss>"
    )


def atom_document(title: str, items: Sequence[Item], anchor: datetime) -> str:
    entries = "".join(
        "<entry>"
        f"<title>{escape(item.title)}</title>"
        f'<link href="{escape(item.link)}"/>'
        f"<id>urn:radio:{escape(_slug(item.title))}</id>"
        f"<published>{(anchor - item.age).isoformat()}</published>"
        f"<updated>{(anchor - item.age).isoformat()}</updated>"
        f'<summary type="html">{escape(item.summary)}</summary>'
        "</entry>"
        for item in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="fr-CA">'
        f"<title>{escape(title)}</title><id>urn:radio:feed</id>"
        f"<updated>{anchor.isoformat()}</updated>{entries}</feed>"
    )


_HTML_PAGE = (
    "<!DOCTYPE html><html><head><title>Blogue du terroir</title></head>"
    "<body><h1>Notre blogue a déménagé</h1></body></html>"
)


def publish(server: FeedServer, phase: Phase, anchor: datetime) -> dict[str, str]:
    """Serve every scenario source for `phase`; return each source's URL by name."""
    urls: dict[str, str] = {}
    for source in SOURCES:
        if source.fmt == "html":
            urls[source.name] = server.set(
                source.path, _HTML_PAGE, content_type="text/html; charset=utf-8"
            )
            continue
        items = items_for(source.path, phase)
        if source.fmt == "rss":
            body = rss_document(source.name, items, anchor)
        else:
            body = atom_document(source.name, items, anchor)
        content_type = (
            "application/atom+xml; charset=utf-8"
            if source.fmt == "atom"
            else "application/rss+xml; charset=utf-8"
        )
        urls[source.name] = server.set(source.path, body, content_type=content_type)
    return urls


def config_toml(
    *, feed_server: FeedServer, smtp_port: int, warehouse: str, urls: dict[str, str]
) -> str:
    """The demo's configuration file, pointing at the local feed and SMTP servers."""
    sources = "".join(
        "\n[[sources]]\n"
        f'name = "{s.name}"\nkind = "rss"\nurl = "{urls[s.name]}"\n'
        f'platform = "{s.platform}"\ntier = {s.tier}\n'
        for s in SOURCES
    )
    return f'''# Generated by `vigie demo`: a fictional organisation watched on local servers.
[organisation]
name = "{ORGANISATION}"
language = "fr"
timezone = "America/Toronto"

[warehouse]
path = "{warehouse}"

[[watch]]
name = "marque"
query = '("laiterie boréale" OR boreale) NOT recrutement'

[[watch]]
name = "direction"
query = '"Isabelle Gagnon" OR "directrice de la laiterie"'
{sources}
[email]
host = "127.0.0.1"
port = {smtp_port}
sender = "vigie@laiterie-boreale.example"
security = "none"
timeout_s = 10

[[cell.members]]
name = "Awa Diallo"
email = "awa.diallo@laiterie-boreale.example"
role = "lead"
level = 1
platforms = ["facebook", "x"]

[[cell.members]]
name = "Louis Tremblay"
email = "louis.tremblay@laiterie-boreale.example"
role = "spokesperson"
level = 1
platforms = ["facebook", "instagram", "x"]

[[cell.members]]
name = "Maître Sophie Roy"
email = "sophie.roy@laiterie-boreale.example"
role = "legal"
level = 2

[[cell.members]]                # told about the sources (the moved blog), not the lead
name = "Chloé Martin"
email = "chloe.martin@laiterie-boreale.example"
role = "operator"
level = 3

[[teams]]
name = "Service à la clientèle"
emails = ["clientele@laiterie-boreale.example"]

[collection]
# The demo's cycles run seconds apart, the burst arriving between them: every feed is fetched
# each cycle, where adaptive polling would wait for each one's next poll.
adaptive_polling = false

[detection]
window_minutes = 60
baseline_windows = 48
min_mentions = 5
threshold = 4.0
'''
