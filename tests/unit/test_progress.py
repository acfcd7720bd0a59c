"""The progress line of long commands: redrawn on a terminal, a few plain lines elsewhere."""

from __future__ import annotations

import io
import threading

from vigie.progress import ProgressBar, listener, reporting


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, as stderr does in an interactive shell."""

    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_ends_its_line() -> None:
    stream = _Terminal()
    with ProgressBar("fetching", "sources", stream=stream) as bar:
        bar(0, 40)
        bar(40, 40)
    text = stream.getvalue()
    assert text.count("\r\x1b[2K") >= 2  # drawn, then redrawn over itself
    assert "fetching " + "━" * 30 + " 40/40 sources (100%)\n" in text
    assert text.count("\n") == 1


def test_off_a_terminal_a_quick_job_prints_nothing() -> None:
    stream = io.StringIO()
    with ProgressBar("exporting", "rows", stream=stream, quiet_for_s=3600) as bar:
        for done in range(0, 1001):
            bar(done, 1000)
    assert stream.getvalue() == ""


def test_off_a_terminal_a_long_job_prints_at_most_four_plain_lines() -> None:
    stream = io.StringIO()
    with ProgressBar("replaying", "steps", stream=stream, quiet_for_s=0) as bar:
        for done in range(0, 10_001):
            bar(done, 10_000)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "replaying: 2,500/10,000 steps (25%)",
        "replaying: 5,000/10,000 steps (50%)",
        "replaying: 7,500/10,000 steps (75%)",
        "replaying: 10,000/10,000 steps (100%)",
    ]


def test_off_a_terminal_a_job_that_stops_between_quarters_says_where() -> None:
    stream = io.StringIO()
    with ProgressBar("replaying", "steps", stream=stream, quiet_for_s=0) as bar:
        bar(30, 100)
        bar(40, 100)
    assert stream.getvalue().splitlines() == [
        "replaying: 30/100 steps (30%)",
        "replaying: 40/100 steps (40%)",
    ]


def test_a_step_reports_to_the_listener_only_inside_the_block() -> None:
    seen: list[tuple[int, int]] = []

    def record(done: int, total: int) -> None:
        seen.append((done, total))

    assert listener("fetch") is None
    with reporting("fetch", record):
        found = listener("fetch")
        assert found is not None
        worker = threading.Thread(target=found, args=(1, 2))  # steps report from threads
        worker.start()
        worker.join()
    assert listener("fetch") is None
    assert seen == [(1, 2)]
