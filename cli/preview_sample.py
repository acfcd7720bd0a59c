"""The built-in sample of `vigie preview`: a fictional crisis about the configured organisation,
loaded into an in-memory warehouse through the real `Store`, so the sample emails go through
exactly the reads and renderers of real ones.

Two calm days of ordinary coverage in French and English, then, in the last detection window,
a product recall that spreads from a major daily to radio, an English-language outlet and
consumer forums, with negative tone and crisis vocabulary; one source failing; the alert the
watch would have opened, acknowledged by the first member of the cell. Every address is on
`.example` domains; nothing is read from or written to the configured warehouse.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

from tasks.detect.signals import assess_severity
from tasks.detect.volume import alert_reason
from tasks.notify.digest import default_end
from vigie.models import (
    FetchResult,
    HealthChange,
    HealthVerdict,
    Mention,
    SourceCondition,
    SourceOutcome,
    SourceStatus,
    VolumeSignal,
)
from vigie.settings import Settings, Source
from warehouse.connection import connect, migrate
from warehouse.drills import DrillRecord
from warehouse.store import Store

# name, platform, tier, language, site
SAMPLE_SOURCES = (
    ("Le Quotidien du Nord", "news", 1, "fr", "https://quotidien-du-nord.example"),
    ("Radio Nord Info", "news", 2, "fr", "https://radio-nord.example"),
    ("Northern Post", "news", 1, "en", "https://northern-post.example"),
    ("Forum des consommateurs", "forum", 3, "fr", "https://forum-conso.example"),
    ("Consumer Talk", "forum", 3, "en", "https://consumer-talk.example"),
    ("Blogue du terroir", "blog", 3, "fr", "https://blogue-terroir.example"),
)
FAILING_SOURCE = "Blogue du terroir"
FAILURE = "HTTP 503 Service Unavailable"

# Ordinary coverage: (title, language, sentiment); `{org}` is the configured organisation.
CALM_ITEMS = (
    ("{org} inaugure un nouveau centre de distribution", "fr", 0.4),
    ("{org} named among the region's top employers", "en", 0.5),
    ("Portrait : trois générations au service de {org}", "fr", 0.3),
    ("{org} launches a new product line for the holidays", "en", 0.2),
    ("Salon régional : {org} présente ses nouveautés", "fr", 0.1),
    ("{org} soutient la banque alimentaire de la région", "fr", 0.6),
)
# The crisis: (story, title, summary, language, sentiment, copies); each copy is one mention,
# carried by the sources in turn, starting with the story's own outlet.
CRISIS_STORIES = (
    (
        "recall",
        "Rappel de produits : {org} retire plusieurs lots des tablettes",
        "Plusieurs clients disent avoir été malades ; {org} rappelle les lots concernés.",
        "fr",
        -0.7,
        8,
    ),
    (
        "recall-en",
        "{org} recalls several product lots after customers report illness",
        "Health officials opened an investigation; {org} says it is cooperating.",
        "en",
        -0.6,
        5,
    ),
    (
        "sick",
        "Des clients de {org} disent avoir été malades : une enquête est ouverte",
        "Les autorités sanitaires enquêtent sur des cas signalés après le rappel.",
        "fr",
        -0.8,
        4,
    ),
    (
        "boycott",
        "Boycott de {org} ? La colère monte sur les réseaux sociaux",
        "Des internautes appellent au boycott et réclament des explications.",
        "fr",
        -0.7,
        4,
    ),
    (
        "boycott-en",
        "Anyone else sick after buying {org} products? Calls for a boycott grow",
        "A thread with hundreds of replies asks {org} to explain the recall.",
        "en",
        -0.8,
        3,
    ),
)
# The crisis stories' outlets, in the order copies are carried.
STORY_OUTLETS = {
    "recall": ("Le Quotidien du Nord", "Radio Nord Info", "Forum des consommateurs"),
    "recall-en": ("Northern Post", "Consumer Talk"),
    "sick": ("Radio Nord Info", "Le Quotidien du Nord"),
    "boycott": ("Forum des consommateurs",),
    "boycott-en": ("Consumer Talk",),
}
CALM_EVERY = timedelta(hours=3)
HISTORY = timedelta(hours=48)
# The sample's detector figures: a window about nine times the usual spread above its median.
SAMPLE_SCORE, SAMPLE_Z, SAMPLE_MEDIAN, SAMPLE_SPREAD = 0.97, 9.4, 1.0, 0.35


def sample_sources() -> tuple[Source, ...]:
    return tuple(
        Source(name=name, url=f"{site}/feed.xml", platform=platform, tier=tier, language=lang)  # type: ignore[arg-type]
        for name, platform, tier, lang, site in SAMPLE_SOURCES
    )


def sample_mention(
    number: int,
    source: Source,
    title: str,
    summary: str,
    *,
    language: str,
    sentiment: float,
    published_at: datetime,
    story: str,
    topics: tuple[str, ...],
) -> Mention:
    """A mention as the pipeline stores it, carried by `source` (with its platform and tier)."""
    site = source.url.rsplit("/", 1)[0]
    return Mention(
        mention_id=f"sample-{number:03d}",
        source=source.name,
        platform=source.platform,
        tier=source.tier,
        url=f"{site}/articles/{story}-{number}",
        title=title,
        summary=summary,
        author=None,
        published_at=published_at,
        collected_at=published_at + timedelta(minutes=4),
        language=language,
        story_id=f"sample-{story}",
        topics=topics,
        sentiment=sentiment,
    )


def source_outcome(source: Source, at: datetime, error: str | None = None) -> SourceOutcome:
    """One run of `source` at `at`: ok, or failed with `error`."""
    status: SourceStatus = "error" if error else "ok"
    fetch = FetchResult(
        source=source.name,
        url=source.url,
        status=status,
        started_at=at,
        duration_s=0.4,
        http_status=503 if error else 200,
        error=error,
    )
    return SourceOutcome(fetch, status, items=0 if error else 1, error=error)


def sample_anchor(settings: Settings, now: datetime) -> datetime:
    """The end of the sample's story: the last whole hour in the organisation's time zone (the
    end of the digest that would run now), so the crisis falls inside that digest."""
    return default_end(now, settings.organisation.timezone)


def fill_sample(store: Store, settings: Settings, *, now: datetime) -> str:
    """Load the sample into `store` (an empty warehouse); return the sample alert's id."""
    org = settings.organisation.name
    topics = [w.name for w in settings.watch]
    topic = topics[0]
    other = tuple(topics[1:2])
    sources = sample_sources()
    by_name = {s.name: s for s in sources}
    anchor = sample_anchor(settings, now)
    alert_at = anchor - timedelta(minutes=5)
    window = timedelta(minutes=settings.detection.window_minutes)
    window_start = alert_at - window

    calm: list[Mention] = []
    moment = anchor - HISTORY
    number = 0
    while moment < window_start:
        title, language, sentiment = CALM_ITEMS[number % len(CALM_ITEMS)]
        outlet = sources[number % (len(sources) - 1)]
        calm.append(
            sample_mention(
                number,
                outlet,
                title.format(org=org),
                "",
                language=language,
                sentiment=sentiment,
                published_at=moment,
                story=f"calm-{number}",
                topics=(topic, *other) if number % 3 == 0 else (topic,),
            )
        )
        number += 1
        moment += CALM_EVERY

    crisis: list[Mention] = []
    copies = [
        (story, title, summary, language, sentiment, copy)
        for story, title, summary, language, sentiment, count in CRISIS_STORIES
        for copy in range(count)
    ]
    step = window / (len(copies) + 1)
    # Interleaved by copy number: each story starts early in the window and keeps spreading.
    for index, (story, title, summary, language, sentiment, copy) in enumerate(
        sorted(copies, key=lambda item: item[5])
    ):
        outlets = STORY_OUTLETS[story]
        crisis.append(
            sample_mention(
                100 + index,
                by_name[outlets[copy % len(outlets)]],
                title.format(org=org),
                summary.format(org=org),
                language=language,
                sentiment=sentiment,
                published_at=window_start + step * (index + 1),
                story=story,
                topics=(topic,),
            )
        )

    first_cycle = anchor - HISTORY - timedelta(minutes=10)
    store.load_cycle(
        "sample-history",
        sources,
        [source_outcome(s, first_cycle) for s in sources],
        calm,
        [],
        first_cycle,
    )
    outcomes = [
        source_outcome(s, alert_at, FAILURE if s.name == FAILING_SOURCE else None) for s in sources
    ]
    store.load_cycle("sample-crisis", sources, outcomes, crisis, [], alert_at)

    signal = VolumeSignal(
        topic,
        window_start,
        alert_at,
        len(crisis),
        SAMPLE_MEDIAN,
        SAMPLE_SPREAD,
        SAMPLE_SCORE,
        SAMPLE_Z,
        True,
    )
    mentions, _ = store.window_mentions(topic, start=window_start, end=alert_at)
    severity = assess_severity(
        mentions,
        volume_score=SAMPLE_SCORE,
        enough_volume=True,
        baseline_negative_share=0.1,
        sensitivity=settings.detection.sensitivity,
        window_hours=window / timedelta(hours=1),
    )
    level = severity.level if severity.level in ("alerte", "crise") else "alerte"
    alert_id = f"al-{alert_at:%Y%m%d%H%M}-sample"
    store.open_alert(
        alert_id,
        signal,
        level=level,
        reason=alert_reason(signal, severity),
        now=alert_at,
        messages=[],
        severity=severity.score,
        contributions=severity.contributions,
    )
    if settings.first_level:
        store.acknowledge_alert(
            alert_id, settings.first_level[0].name, alert_at + timedelta(minutes=3)
        )
    return alert_id


@contextmanager
def sample_warehouse(settings: Settings, *, now: datetime) -> Iterator[Store]:
    """An in-memory warehouse holding the sample (gone when the block ends)."""
    # DuckDB's in-memory database: the real schema, nothing on disk.
    con = connect(Path(":memory:"))
    try:
        migrate(con)
        store = Store(con)
        fill_sample(store, settings, now=now)
        yield store
    finally:
        con.close()


def sample_health_changes(now: datetime) -> list[HealthChange]:
    """Two sources of the sample that stopped watching: one that stopped answering, one that
    never returned a feed (the source-health notice's preview)."""
    stopped = SourceCondition(
        FAILING_SOURCE, 3, FAILURE, None, 3600.0, "failing", None, now - timedelta(hours=5)
    )
    never = SourceCondition("Consumer Talk", 2, "not a feed: an HTML page", None, None, "ok", None)
    return [
        HealthChange(FAILING_SOURCE, "ok", HealthVerdict("failing", ""), stopped),
        HealthChange("Consumer Talk", "ok", HealthVerdict("not_a_feed", ""), never),
    ]


def sample_drill_record(now: datetime) -> DrillRecord:
    """A drill acknowledged two minutes after its alert (the drill report's preview)."""
    started = now - timedelta(minutes=5)
    return DrillRecord(
        "drill-sample",
        "Exercice / drill",
        "marque",
        started,
        started + timedelta(seconds=5),
        started + timedelta(seconds=17),
        "al-sample",
        started + timedelta(seconds=20),
        started + timedelta(minutes=2, seconds=25),
        "Awa Diallo",
        "acknowledged",
        12.0,
        125.0,
        30,
        started + timedelta(minutes=2, seconds=25),
    )
