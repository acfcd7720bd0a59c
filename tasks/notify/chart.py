"""Volume charts as small PNG files, shown inline in emails (`<img src="cid:...">`).

Drawn with Pillow and the Geist font that the Prefect wheel ships (SIL Open Font License):
nothing is downloaded, and the same input gives the same bytes. Geist draws French accents, so
month names are the language's own (Babel: "6 déc.", "Dec 6"); letters it lacks (other scripts)
are folded. Without that file, Pillow's built-in font is used and labels are folded to ASCII.
Times on the axis are in the organisation's time zone. The count axis has a few round ticks;
the alert is a thin marker line with its label, and the bar of the alert's window carries its
count, the figure the email's text gives.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from zoneinfo import ZoneInfo

from babel.dates import format_datetime
from PIL import Image, ImageDraw, ImageFont

from tasks.notify.rendering import LOCALES, Texts
from vigie.models import InlineImage
from warehouse.store import Store

WIDTH = 600
HEIGHT = 220
# Plot area inside the image: room for the title above, the y label left, the hours below.
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 30, 28

BACKGROUND = (255, 255, 255)
AXIS = (120, 120, 120)
GRID = (225, 225, 225)
TEXT = (40, 40, 40)
BAR = (70, 110, 170)
MARKER = (200, 60, 40)
# At most this many count ticks above 0, at round steps (1, 2, 5 times a power of ten).
COUNT_TICKS = 4
# The font file inside the Prefect wheel (a pinned dependency), found without importing Prefect.
FONT_FILE = "server/ui-v2/fonts/Geist-VariableFont_wght.ttf"
# Candidate spacings of the time axis ticks, smallest first: the first that gives at most
# MAX_TICKS labels is used.
TICK_STEPS = (
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=3),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(days=1),
    timedelta(days=2),
    timedelta(days=7),
)
MAX_TICKS = 8


_PUNCTUATION = str.maketrans({"—": "-", "–": "-", "«": '"', "»": '"', "’": "'", "“": '"', "”": '"'})


def ascii_label(text: str, max_chars: int = 60) -> str:
    """`text` as the built-in font can draw it: accents dropped, other symbols removed."""
    folded = unicodedata.normalize("NFKD", text.translate(_PUNCTUATION))
    kept = "".join(ch for ch in folded if " " <= ch <= "~")
    kept = " ".join(kept.split())
    return kept if len(kept) <= max_chars else kept[: max_chars - 3] + "..."


@cache
def _font_path() -> Path | None:
    # find_spec locates the package without running it: importing Prefect costs seconds.
    spec = find_spec("prefect")
    folders = list(spec.submodule_search_locations or []) if spec else []
    path = Path(folders[0]) / FONT_FILE if folders else None
    return path if path is not None and path.is_file() else None


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _font_path()
    if path is not None:
        return ImageFont.truetype(str(path), size)
    # Pillow's own font (FreeType when available, else its bitmap font): no file, no download.
    return ImageFont.load_default(size=size)


def drawable_label(text: str, max_chars: int = 80) -> str:
    """`text` as the chart's font draws it: Latin letters with their accents kept when the
    Geist font is there, others folded; ASCII only with Pillow's built-in font."""
    if _font_path() is None:
        return ascii_label(text, max_chars)
    kept = "".join(ch if ch <= "\u017f" or ch in "«»’“”—–…·" else ascii_label(ch, 4) for ch in text)
    kept = " ".join(kept.split())
    return kept if len(kept) <= max_chars else kept[: max_chars - 1] + "…"


def count_ticks(peak: int) -> list[int]:
    """Round counts for the y axis, 0 first, the last at or above `peak` (at most COUNT_TICKS
    above 0): 1, 2 or 5 times a power of ten apart."""
    if peak <= 0:
        return [0]
    step = 1
    while True:
        for factor in (1, 2, 5):
            candidate = step * factor
            if -(-peak // candidate) <= COUNT_TICKS:
                top = -(-peak // candidate) * candidate
                return list(range(0, top + 1, candidate))
        step *= 10


def _step(points: Sequence[tuple[datetime, int]]) -> timedelta:
    """The width of one bucket: the smallest gap between consecutive points (1 h if alone)."""
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] > a[0]]
    return min(gaps) if gaps else timedelta(hours=1)


def _tick_label(moment: datetime, step: timedelta, texts: Texts) -> str:
    """A day ("6 déc.", "Dec 6") at midnight or for daily ticks, else the hour ("14 h",
    "14:00"), in the language (Babel)."""
    daily = (moment.hour == 0 and moment.minute == 0) or step >= timedelta(days=1)
    pattern = texts("chart.day" if daily else "chart.hour")
    label = format_datetime(moment, pattern, tzinfo=moment.tzinfo, locale=texts.locale)
    return drawable_label(label, 20)


def _ticks(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[list[datetime], timedelta]:
    """Round local times between start and end (midnights, hours divisible by the spacing)."""
    span = end - start
    spacing = next((s for s in TICK_STEPS if span / s <= MAX_TICKS), TICK_STEPS[-1])
    local = start.astimezone(zone)
    moment = local.replace(minute=0, second=0, microsecond=0)
    if moment < local:
        moment += timedelta(hours=1)
    ticks: list[datetime] = []
    # Walk hour by hour in local time (a day is not always 24 hours), keep the round ones.
    while moment <= end and len(ticks) <= MAX_TICKS:
        hours = int(spacing.total_seconds() // 3600)
        if spacing < timedelta(days=1):
            keep = moment.hour % hours == 0
        else:
            days = hours // 24
            keep = moment.hour == 0 and moment.toordinal() % days == 0
        if keep:
            ticks.append(moment)
        moment = (moment.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
    return ticks, spacing


def volume_chart_png(
    points: Sequence[tuple[datetime, int]],
    *,
    marker: datetime | None,
    title: str,
    language: str = "fr",
    tz: str = "UTC",
) -> bytes:
    """A 600x220 bar chart of mentions per bucket, oldest first; returns PNG bytes.

    `points` are (bucket start, mentions) at a regular step. The count axis has a few round
    ticks with grid lines; `marker` (an alert's moment) is a thin red line labelled with the
    word and the time, and the bar of its bucket carries its count. An empty series gives a
    chart saying so.
    """
    texts = Texts(language if language in LOCALES else "en", tz)
    zone = ZoneInfo(tz)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    small, large = _font(11), _font(13)
    draw.text((LEFT, 8), drawable_label(title, 80), fill=TEXT, font=large)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    ordered = sorted(points)
    peak = max((count for _, count in ordered), default=0)
    ticks = count_ticks(peak)
    top_count = ticks[-1] or 1
    for value in ticks:
        y = round(y1 - (y1 - y0) * value / top_count)
        if value:
            draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((x0 - 6, y), texts.number(value, 0), fill=TEXT, font=small, anchor="rm")
    draw.line([(x0, y1), (x1, y1)], fill=AXIS)
    draw.line([(x0, y0), (x0, y1)], fill=AXIS)
    if not ordered or peak == 0:
        draw.text(
            ((x0 + x1) // 2, (y0 + y1) // 2),
            drawable_label(texts("chart.empty")),
            fill=AXIS,
            font=large,
            anchor="mm",
        )
        if not ordered:
            return _png(image)
    step = _step(ordered)
    start, end = ordered[0][0], ordered[-1][0] + step
    span = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return x0 + (x1 - x0) * (moment - start).total_seconds() / span

    marked_bar: tuple[float, int, int] | None = None
    for moment, count in ordered:
        if count <= 0:
            continue
        left, right = x_of(moment), x_of(moment + step)
        # At least one pixel high: a small count beside a large peak still shows.
        top = min(round(y1 - (y1 - y0) * count / top_count), y1 - 1)
        gap = 1 if right - left > 3 else 0
        draw.rectangle(
            [round(left) + gap, top, max(round(left) + gap, round(right) - 1), y1 - 1], fill=BAR
        )
        if marker is not None and moment <= marker < moment + step:
            marked_bar = ((left + right) / 2, top, count)
    hour_ticks, spacing = _ticks(start, end, zone)
    for tick in hour_ticks:
        x = round(x_of(tick))
        draw.line([(x, y1), (x, y1 + 3)], fill=AXIS)
        draw.text(
            (x, y1 + 5), _tick_label(tick, spacing, texts), fill=TEXT, font=small, anchor="mt"
        )
    if marker is not None and start <= marker <= end:
        x = round(x_of(marker))
        # A thin dashed line: it marks a moment, and must not read as one more bar of data.
        for y in range(y0 + 16, y1, 6):
            draw.line([(x, y), (x, min(y + 3, y1 - 1))], fill=MARKER, width=1)
        label = drawable_label(texts("chart.marker", time=texts.time(marker)), 30)
        width = draw.textlength(label, font=small)
        left = x + 4 if x + 6 + width < x1 else x - 6 - width
        # On a white patch, so that it stays readable over the bars and grid lines.
        draw.rectangle([left - 1, y0 + 1, left + width + 2, y0 + 14], fill=BACKGROUND)
        draw.text((left + 1, y0 + 2), label, fill=MARKER, font=small, anchor="lt")
        if marked_bar is not None:
            middle, top, count = marked_bar
            # The window's count above its bar (on a white patch, over the marker line): the
            # figure the email's text gives.
            shown = texts.number(count, 0)
            where = (round(middle), max(top - 2, y0 + 28))
            box = draw.textbbox(where, shown, font=small, anchor="mb")
            draw.rectangle([box[0] - 2, box[1] - 1, box[2] + 1, box[3] + 1], fill=BACKGROUND)
            draw.text(where, shown, fill=TEXT, font=small, anchor="mb")
    return _png(image)


def _png(image: Image.Image) -> bytes:
    # A few colours (plus the font's anti-aliasing): a palette keeps the file small.
    paletted = image.quantize(colors=32, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    paletted.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def chart_cid(topic: str, kind: str = "volume") -> str:
    """The Content-ID of a topic's chart: stable, and safe in a header (no spaces, ASCII)."""
    return f"{kind}-{hashlib.sha256(topic.encode('utf-8')).hexdigest()[:12]}"


def hourly_points(
    store: Store, topic: str, *, end: datetime, hours: int, step: timedelta = timedelta(hours=1)
) -> list[tuple[datetime, int]]:
    """Mentions of `topic` per `step` over the `hours` before `end` (from the aggregates)."""
    windows = max(1, int(timedelta(hours=hours) / step))
    counts, _ = store.window_counts(topic, end=end, window=step, windows=windows)
    start = end - step * windows
    return [(start + step * i, count) for i, count in enumerate(counts)]


def alert_chart(
    store: Store,
    topic: str,
    *,
    end: datetime,
    hours: int = 48,
    marker: datetime | None,
    language: str = "fr",
    tz: str = "UTC",
    label: str | None = None,
) -> InlineImage:
    """The chart of an alert's email: the topic's mentions per hour over the `hours` before
    `end` (rounded up to the hour), with the alert's moment marked; titled with the watch's
    `label` when given. Show it in the HTML as `<img src="cid:{image.cid}">`."""
    top = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if top < end:
        top += timedelta(hours=1)
    points = hourly_points(store, topic, end=top, hours=hours)
    texts = Texts(language if language in LOCALES else "en", tz)
    title = texts("chart.title", topic=label or topic)
    png = volume_chart_png(points, marker=marker, title=title, language=language, tz=tz)
    return InlineImage(cid=chart_cid(topic), png=png)
