"""Volume charts: valid, small, deterministic PNG files, with the alert's moment marked by a thin
line, a round count axis and the language's month names."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from PIL import Image

from tasks.notify.chart import (
    BAR,
    MARKER,
    _tick_label,
    ascii_label,
    chart_cid,
    count_ticks,
    volume_chart_png,
)
from tasks.notify.rendering import Texts

START = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _series(hours: int = 48) -> list[tuple[datetime, int]]:
    return [
        (START + timedelta(hours=i), (i * 7) % 5 + (30 if 40 <= i <= 43 else 0))
        for i in range(hours)
    ]


def _image(png: bytes) -> Image.Image:
    return Image.open(io.BytesIO(png)).convert("RGB")


def _red_columns(image: Image.Image) -> set[int]:
    width, height = image.size
    return {
        x for x in range(width) for y in range(30, height - 28) if image.getpixel((x, y)) == MARKER
    }


def test_a_chart_is_a_small_png_of_the_expected_size() -> None:
    png = volume_chart_png(
        _series(), marker=None, title="marque : mentions par heure", language="fr"
    )
    assert png.startswith(PNG_SIGNATURE)
    assert _image(png).size == (600, 220)
    assert len(png) < 30_000


def test_the_same_series_gives_the_same_bytes() -> None:
    options = {"marker": START + timedelta(hours=41), "title": "Boréale", "language": "fr"}
    first = volume_chart_png(_series(), **options)  # type: ignore[arg-type]
    second = volume_chart_png(list(reversed(_series())), **options)  # type: ignore[arg-type]
    assert first == second


def test_the_alert_moment_is_drawn_in_red_where_it_falls() -> None:
    marker = START + timedelta(hours=41, minutes=30)
    marked = _image(volume_chart_png(_series(), marker=marker, title="t", language="en"))
    plain = _image(volume_chart_png(_series(), marker=None, title="t", language="en"))
    assert not _red_columns(plain)
    columns = _red_columns(marked)
    # The plot spans x 44..588 for 48 hours: hour 41.5 is near x = 44 + 544 * 41.5 / 48.
    expected = 44 + 544 * 41.5 / 48
    assert columns and min(abs(x - expected) for x in columns) <= 2
    assert max(columns) < 600 - 12 and min(columns) > 44 + 544 * 40 / 48 - 2


def test_a_marker_outside_the_series_draws_no_line() -> None:
    png = volume_chart_png(_series(), marker=START - timedelta(days=3), title="t", language="fr")
    assert not _red_columns(_image(png))


def test_an_empty_series_gives_a_valid_chart_that_differs_from_a_full_one() -> None:
    empty = volume_chart_png([], marker=None, title="marque", language="fr")
    zeros = volume_chart_png(
        [(START + timedelta(hours=i), 0) for i in range(24)],
        marker=None,
        title="marque",
        language="fr",
    )
    full = volume_chart_png(_series(), marker=None, title="marque", language="fr")
    for png in (empty, zeros):
        assert png.startswith(PNG_SIGNATURE)
        assert _image(png).size == (600, 220)
    assert empty != full


def test_labels_are_folded_to_what_the_builtin_font_can_draw() -> None:
    assert ascii_label("Laiterie Boréale — « rappel »") == 'Laiterie Boreale - " rappel "'
    assert ascii_label("x" * 100, max_chars=10) == "xxxxxxx..."


def test_a_topic_chart_id_is_stable_and_header_safe() -> None:
    cid = chart_cid("marque boréale")
    assert cid == chart_cid("marque boréale") != chart_cid("autre")
    assert cid.startswith("volume-") and cid.isascii() and " " not in cid


def test_small_counts_beside_a_large_peak_and_many_bars_still_draw() -> None:
    def bottom_row(small: int) -> list[tuple[int, ...]]:
        points = [(START + timedelta(hours=i), small if i % 2 else 5000) for i in range(168)]
        png = volume_chart_png(
            points, marker=START + timedelta(hours=100), title="t", language="en"
        )
        assert len(png) < 30_000
        image = _image(png)
        return [image.getpixel((x, 220 - 28 - 1)) for x in range(44, 588)]  # type: ignore[misc]

    white = (255, 255, 255)
    # The bars of 1 mention are one pixel high above the axis, not missing.
    assert bottom_row(1).count(white) < bottom_row(0).count(white) - 100


def test_the_count_axis_has_a_few_round_ticks_above_the_peak() -> None:
    assert count_ticks(0) == [0]
    assert count_ticks(1) == [0, 1]
    assert count_ticks(46) == [0, 20, 40, 60]
    assert count_ticks(5000) == [0, 2000, 4000, 6000]
    for peak in range(1, 3000, 7):
        ticks = count_ticks(peak)
        assert 2 <= len(ticks) <= 5 and ticks[-1] >= peak, peak


def test_axis_days_are_written_in_the_language() -> None:
    midnight = datetime(2026, 12, 6, 0, 0, tzinfo=ZoneInfo("America/Toronto"))
    fr = Texts("fr", "America/Toronto")
    en = Texts("en", "America/Toronto")
    assert _tick_label(midnight, timedelta(hours=6), fr) == "6 déc."
    assert _tick_label(midnight, timedelta(hours=6), en) == "Dec 6"
    assert _tick_label(midnight.replace(hour=14), timedelta(hours=6), fr) == "14 h"


def test_the_alert_is_a_thin_marker_line_and_its_bar_stays_a_data_bar() -> None:
    marker = START + timedelta(hours=41, minutes=30)
    image = _image(volume_chart_png(_series(), marker=marker, title="t", language="en"))
    x = round(44 + 544 * 41.5 / 48)
    # Below the label, the marker is one or two pixels wide, not a bar's width.
    red_in_plot = {
        column
        for column in range(44, 588)
        for y in range(60, 220 - 28)
        if image.getpixel((column, y)) == MARKER
    }
    assert red_in_plot and max(red_in_plot) - min(red_in_plot) <= 1
    assert min(abs(column - x) for column in red_in_plot) <= 1
    # The bar of the alert's hour keeps the data colour.
    bar_x = round(44 + 544 * 41.2 / 48)
    assert image.getpixel((bar_x, 220 - 28 - 2)) == BAR


def test_finding_the_font_does_not_import_prefect() -> None:
    """The preview and the digest draw charts without Prefect (importing it costs seconds)."""
    code = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from tasks.notify.chart import _font_path, volume_chart_png\n"
        "volume_chart_png([(datetime(2026, 12, 6, tzinfo=UTC), 3)], marker=None, title='t')\n"
        "assert _font_path() is not None and _font_path().name.startswith('Geist')\n"
        "assert 'prefect' not in sys.modules, 'prefect was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
