"""What the Prefect UI shows of a watch cycle: the summary markdown and the top-stories table,
rendered without Prefect; hostile feed text stays inert text. Rendered to HTML with
markdown-it-py (CommonMark and tables, as the UI's renderer reads them) to check what a reader
would get: no tag, no image, and links only to http(s) addresses."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from markdown_it import MarkdownIt

from tasks.publish.report import (
    MAX_CELL_CHARS,
    md_label,
    md_link,
    md_text,
    safe_url,
    summary_markdown,
    top_story_rows,
)

HOSTILE_TITLE = (
    "Boréale <script>alert(1)</script> <img src=x onerror=alert(2)> "
    "[clic](javascript:alert(3)) ![pixel](https://tracker.example/p.png) **gras** | cellule "
    "www.evil.example contact@evil.example https://evil.example/x &lt;b&gt;"
    "\x00\x1b[31m\u202e\r\nfin"
)


def _html(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


def _links(html: str) -> list[str]:
    return re.findall(r'<a href="([^"]*)"', html)


def _summary(**overrides: Any) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "cycle_id": "20261125T141000-abcd1234",
        "duration_s": 3.21,
        "total_s": 5.5,
        "steps": {"prepare": 0.1, "fetch": 1.5, "load": 0.4, "alert": 0.2, "send": 0.3},
        "sources": 5,
        "sources_ok": 2,
        "sources_not_modified": 1,
        "sources_failed": {"Blogue <b>du</b> terroir": "not a feed: an HTML page"},
        "sources_skipped": {"Radio": "polled every 60 min"},
        "entries_parsed": 40,
        "collected": 38,
        "matched": 17,
        "quarantined": 1,
        "new_mentions": 16,
        "alerts_opened": ["al-202611251410-1a2b3c4d"],
        "alerts_escalated": [],
        "alerts_updated": [],
        "alerts_resolved": [],
        "topics": {
            "marque": {"mentions": 16, "volume_score": 0.99, "severity": 81.4, "level": "crise"}
        },
        "emails_sent": 2,
        "emails_failed": {},
        "failed_checks": [],
        "quality_changes": [],
        "health_changes": ["Blogue du terroir: ok -> not_a_feed"],
        "escalations": ["al-202611251300-99999999: level 1 -> 2"],
    }
    summary.update(overrides)
    return summary


STORIES = [
    {
        "story_id": "s1",
        "title": "Rappel de fromages de la Laiterie Boréale : risque de listeria",
        "url": "https://quotidien-du-nord.example/articles/rappel-de-fromages?utm_source=rss",
        "source": "Le Quotidien du Nord",
        "tier": 1,
        "mentions": 2,
        "sources": 2,
        "first_published_at": datetime(2026, 11, 25, 13, 22, tzinfo=UTC),
        "topics": ["marque"],
    },
    {
        "story_id": "s2",
        "title": HOSTILE_TITLE,
        "url": "javascript:alert(document.cookie)",
        "source": "Forum <i>Lait</i> | [x](javascript:alert(4))",
        "tier": 3,
        "mentions": 1,
        "sources": 1,
        "first_published_at": datetime(2026, 11, 25, 14, 1, tzinfo=UTC),
        "topics": ["marque"],
    },
]


def test_the_summary_shows_counts_failed_sources_with_reasons_alerts_emails_and_step_times() -> (
    None
):
    markdown = summary_markdown(_summary(), STORIES)
    assert markdown.startswith("# Watch cycle 20261125T141000\\-abcd1234")
    for row in (
        "| sources ok | 2 |",
        "| sources failed | 1 |",
        "| new mentions | 16 |",
        "| quarantined rows | 1 |",
        "| alerts opened | 1 |",
        "| alerts escalated | 1 |",
        "| emails sent | 2 |",
    ):
        assert row in markdown
    assert "| Blogue \\<b\\>du\\<\\/b\\> terroir | not a feed: an HTML page |" in markdown
    assert "- opened: al\\-202611251410\\-1a2b3c4d" in markdown
    assert "- escalated: al\\-202611251300\\-99999999: level 1 \\-\\> 2" in markdown
    assert "| marque | 16 | 81 | Crisis |" in markdown
    assert "## Time per step" in markdown and "| fetch | 1.50 |" in markdown
    assert "whole cycle 5.50 s" in markdown
    html = _html(markdown)
    assert "<table>" in html and "<td>Blogue &lt;b&gt;du&lt;/b&gt; terroir</td>" in html


def test_hostile_feed_text_in_the_summary_renders_as_text_and_links_only_to_http() -> None:
    html = _html(summary_markdown(_summary(), STORIES))
    assert "<script" not in html and "<img" not in html and "<i>" not in html
    assert "<strong>" not in html
    assert _links(html) == [
        "https://quotidien-du-nord.example/articles/rappel-de-fromages?utm_source=rss"
    ]
    # The hostile story is a row of text: its title and outlet, without a link.
    assert "Boréale &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "[clic](javascript:alert(3))" in html
    assert "\x1b" not in html and "\x00" not in html and "\u202e" not in html


def test_top_story_rows_escape_every_text_and_link_only_http_addresses() -> None:
    rows = top_story_rows(STORIES)
    assert list(rows[0]) == [
        "story",
        "topic",
        "outlet",
        "tier",
        "mentions",
        "sources",
        "first seen",
    ]
    assert rows[0]["tier"] == 1 and rows[0]["mentions"] == 2
    assert rows[0]["first seen"] == "2026-11-25 13:22 UTC"
    # The title is the link to the story.
    assert rows[0]["story"] == (
        "[Rappel de fromages de la Laiterie Boréale : risque de listeria]"
        "(https://quotidien-du-nord.example/articles/rappel-de-fromages?utm_source=rss)"
    )
    hostile = rows[1]
    # The UI renders each text cell as markdown: render them as it would.
    for key in ("story", "outlet", "topic"):
        html = _html(str(hostile[key]))
        assert "<script" not in html and "<img" not in html and "<a " not in html, key
        assert "<em>" not in html and "<strong>" not in html, key
    assert len(str(hostile["story"]).replace("\\", "")) <= 160
    french = top_story_rows(STORIES, "fr")
    assert list(french[0])[:3] == ["article", "sujet", "média"]
    assert french[0]["article"] == rows[0]["story"]


def test_the_summary_names_each_alert_by_level_and_topic_in_the_organisations_language() -> None:
    alerts = {"al-202611251410-1a2b3c4d": {"level": "crise", "topic": "marque"}}
    markdown = summary_markdown(_summary(), STORIES, language="fr", alerts=alerts)
    assert markdown.startswith("# Cycle de veille 20261125T141000\\-abcd1234")
    assert "| nouvelles mentions | 16 |" in markdown
    assert "- **Crise** ouverte : « marque » (al\\-202611251410\\-1a2b3c4d)" in markdown
    assert "| marque | 16 | 81 | Crise |" in markdown
    assert "| fetch | 1,50 |" in markdown and "cycle entier 5,50 s." in markdown
    assert (
        "## Articles principaux" in markdown and "| article | média | rang | mentions |" in markdown
    )
    english = summary_markdown(_summary(), STORIES, alerts=alerts)
    assert "- **Crisis** opened: “marque” (al\\-202611251410\\-1a2b3c4d)" in english


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "java\tscript:alert(1)",
        "java\u200bscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "mailto:x@evil.example",
        "ftp://files.example/a",
        "//evil.example/a",
        "http:///no-host",
        "https://" + "a" * 3000 + ".example",
        "",
    ],
)
def test_only_http_addresses_with_a_host_become_links(url: str) -> None:
    assert safe_url(url) is None
    assert "](" not in md_link("titre", url)
    assert _links(_html(md_link("titre", url))) == []


def test_a_link_address_cannot_break_out_of_its_markdown_link() -> None:
    url = 'https://x.example/a_(b) c?q=<script>&r="1"#[frag]'
    href = safe_url(url)
    assert href == ("https://x.example/a_%28b%29%20c?q=%3Cscript%3E&r=%221%22#%5Bfrag%5D")
    html = _html(md_link("titre", url))
    assert _links(html) == [href.replace("&", "&amp;")]
    assert ">titre</a>" in html


def test_text_is_one_bounded_line_without_control_characters() -> None:
    text = md_text("a\x00b\x1b[31mc\u202ed\r\ne\u2028f" + "x" * 5000)
    assert "\n" not in text and "\r" not in text
    assert not re.search(r"[\x00-\x1f\x7f\u202e\u2028]", text)
    assert len(text.replace("\\", "")) <= MAX_CELL_CHARS
    assert md_text("www.evil.example a@b.example http://e.example") == (
        "www\\.evil\\.example a\\@b\\.example http:\\/\\/e\\.example"
    )


def test_a_link_label_is_readable_and_inert_without_backslashes() -> None:
    # Prefect's renderer shows backslash escapes inside a link's text as they are.
    url = "https://quotidien.example/a"
    assert md_link("Parle d'innovation ? (Boréale ou autre)", url) == (
        "[Parle d'innovation ? (Boréale ou autre)](https://quotidien.example/a)"
    )
    label = md_label(HOSTILE_TITLE)
    assert "\\" not in label and "\n" not in label and "[" not in label and "]" not in label
    html = _html(md_link(HOSTILE_TITLE, url))
    assert _links(html) == [url]  # one link, to the story, whatever the title holds
    assert "<script" not in html and "<img" not in html and "<strong>" not in html
    # In a table cell a label cannot split the row.
    table = _html(f"| story | n |\n|---|---|\n| {md_link('a | b', url)} | 1 |\n")
    assert table.count("<td>") == 2
