"""Volume charts as small PNG files, shown inline in emails (`<img src="cid:...">`).

Drawn with Pillow and its built-in font only: nothing is downloaded, and the same input gives
the same bytes. The built-in font has no accented letters, so every label on the chart is
folded to ASCII (`Boréale` becomes `Boreale`); titles with their accents belong in the HTML.
Times on the axis are in the organisation's time zone.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw, ImageFont

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
MARKED_BAR = (200, 60, 40)
MARKER = (200, 60, 40)

CHART_TEXT = {
    "fr": {
        "empty": "Aucune mention",
        "marker": "alerte",
        "months": "janv fevr mars avr mai juin juil aout sept oct nov dec",
    },
    "en": {
        "empty": "No mentions",
        "marker": "alert",
        "months": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    },
}
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


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # Pillow's own font (FreeType when available, else its bitmap font): no file, no download.
    return ImageFont.load_default(size=size)


def _step(points: Sequence[tuple[datetime, int]]) -> timedelta:
    """The width of one bucket: the smallest gap between consecutive points (1 h if alone)."""
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] > a[0]]
    return min(gaps) if gaps else timedelta(hours=1)


def _tick_label(moment: datetime, step: timedelta, language: str) -> str:
    if (moment.hour == 0 and moment.minute == 0) or step >= timedelta(days=1):
        month = CHART_TEXT[language]["months"].split()[moment.month - 1]
        return f"{moment.day} {month}" if language == "fr" else f"{month} {moment.day}"
    return f"{moment.hour}h" if language == "fr" else f"{moment:%H:%M}"


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

    `points` are (bucket start, mentions) at a regular step; `marker` (an alert's moment) is
    drawn as a red line and its bucket in red. An empty series gives a chart saying so.
    """
    text = CHART_TEXT[language if language in CHART_TEXT else "en"]
    zone = ZoneInfo(tz)
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    draw = ImageDraw.Draw(image)
    small, large = _font(11), _font(13)
    draw.text((LEFT, 8), ascii_label(title, 80), fill=TEXT, font=large)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    draw.line([(x0, y1), (x1, y1)], fill=AXIS)
    draw.line([(x0, y0), (x0, y1)], fill=AXIS)
    ordered = sorted(points)
    peak = max((count for _, count in ordered), default=0)
    if not ordered or peak == 0:
        draw.text(
            ((x0 + x1) // 2, (y0 + y1) // 2), text["empty"], fill=AXIS, font=large, anchor="mm"
        )
        draw.text((x0 - 6, y1), "0", fill=TEXT, font=small, anchor="rm")
        if not ordered:
            return _png(image)
    step = _step(ordered)
    start, end = ordered[0][0], ordered[-1][0] + step
    span = (end - start).total_seconds()

    def x_of(moment: datetime) -> float:
        return x0 + (x1 - x0) * (moment - start).total_seconds() / span

    if peak:
        draw.line([(x0, y0), (x1, y0)], fill=GRID)
        draw.text((x0 - 6, y0), str(peak), fill=TEXT, font=small, anchor="rm")
        draw.text((x0 - 6, y1), "0", fill=TEXT, font=small, anchor="rm")
    for moment, count in ordered:
        if count <= 0:
            continue
        left, right = x_of(moment), x_of(moment + step)
        # At least one pixel high: a small count beside a large peak still shows.
        top = min(round(y1 - (y1 - y0) * count / peak), y1 - 1)
        marked = marker is not None and moment <= marker < moment + step
        gap = 1 if right - left > 3 else 0
        draw.rectangle(
            [round(left) + gap, top, max(round(left) + gap, round(right) - 1), y1 - 1],
            fill=MARKED_BAR if marked else BAR,
        )
    ticks, spacing = _ticks(start, end, zone)
    for tick in ticks:
        x = round(x_of(tick))
        draw.line([(x, y1), (x, y1 + 3)], fill=AXIS)
        draw.text(
            (x, y1 + 5), _tick_label(tick, spacing, language), fill=TEXT, font=small, anchor="mt"
        )
    if marker is not None and start <= marker <= end:
        x = round(x_of(marker))
        draw.line([(x, y0), (x, y1)], fill=MARKER, width=2)
        label = text["marker"]
        width = draw.textlength(label, font=small)
        right_side = x + 6 + width < x1
        left = x + 4 if right_side else x - 6 - width
        # On a white patch, so that it stays readable over the bars.
        draw.rectangle([left - 1, y0 + 1, left + width + 2, y0 + 14], fill=BACKGROUND)
        draw.text((left + 1, y0 + 2), label, fill=MARKER, font=small, anchor="lt")
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
) -> InlineImage:
    """The chart of an alert's email: the topic's mentions per hour over the `hours` before
    `end` (rounded up to the hour), with the alert's moment marked. Show it in the HTML as
    `<img src="cid:{image.cid}">`."""
    top = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    if top < end:
        top += timedelta(hours=1)
    points = hourly_points(store, topic, end=top, hours=hours)
    title = f"{topic}: " + ("mentions par heure" if language == "fr" else "mentions per hour")
    png = volume_chart_png(points, marker=marker, title=title, language=language, tz=tz)
    return InlineImage(cid=chart_cid(topic), png=png)
