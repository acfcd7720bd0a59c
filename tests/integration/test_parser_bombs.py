"""Issue 20, item 6: four 9.8 MB feeds of nested elements took 76 s to parse and 1.9 GB across
the process tree. Documents nested deeper than `MAX_DEPTH`, and documents with more elements than
feedparser should work through, are refused with a reason before any parser builds them; the
feeds beside them are loaded. Parsed in a process of its own, measured by `wait4`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tasks.collect.xmlbounds import MAX_DEPTH, MAX_FALLBACK_ELEMENTS

ROOT = Path(__file__).resolve().parents[2]
HEAD = (
    b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
    b"<item><title>Bombe</title><link>https://bombe.example/1</link><description>"
)
SIZE = 9_800_000
GOOD = (
    '<?xml version="1.0"?><rss version="2.0"><channel><title>Bon</title>'
    + "".join(
        f"<item><title>Rappel {n}</title><link>https://presse.example/{n}</link></item>"
        for n in range(3)
    )
    + "</channel></rss>"
)
# Parses the documents of a folder as one cycle does (collect_sources), prints the outcomes.
PARSE = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from tasks.collect.fetch import collect_sources
    from vigie.models import FetchResult
    from vigie.settings import Source

    folder = Path(sys.argv[1])
    sources, fetched = [], []
    for path in sorted(folder.iterdir()):
        url = f"http://127.0.0.1/{path.name}"
        sources.append(Source(name=path.stem, url=url))
        fetched.append(FetchResult(source=path.stem, url=url, status="ok",
            started_at=datetime.now(UTC), duration_s=0.0, http_status=200,
            body=path.read_bytes(), headers={}))
    mentions, outcomes = collect_sources(sources, fetched, collected_at=datetime.now(UTC),
                                         max_entries=100)
    # This image's own peak (VmHWM starts again at exec, unlike ru_maxrss, which keeps the
    # parent's size at fork: a test worker of 600 MB would count), and its children's.
    status = Path("/proc/self/status").read_text()
    own_kb = int(next(l for l in status.splitlines() if l.startswith("VmHWM:")).split()[1])
    import resource
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"outcomes": {o.fetch.source: [o.status, o.error] for o in outcomes},
                      "mentions": sorted(m.source for m in mentions),
                      "peak_kb": max(own_kb, children_kb)}))
    """
)


def test_deeply_nested_and_huge_feeds_are_refused_in_bounded_time_and_memory(
    tmp_path: Path,
) -> None:
    pairs = (SIZE - len(HEAD)) // 7
    nested = HEAD + b"<a>" * pairs + b"</a>" * pairs + b"</description></item></channel></rss>"
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    for n in range(3):
        (feeds / f"nested-{n}.xml").write_bytes(nested)
    # Not well-formed (a bare "&"): the C parser gives up, feedparser would take them all.
    flat = HEAD + b"& " + b"<a>x</a>" * (SIZE // 8) + b"</description></item></channel></rss>"
    (feeds / "flat-broken.xml").write_bytes(flat)
    (feeds / "good.xml").write_text(GOOD)

    began = time.monotonic()
    with (tmp_path / "out.json").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", PARSE, str(tmp_path / "feeds")],
            cwd=ROOT,
            stdout=out,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    # wait4 gives the child's CPU time; 300 s is a hang guard (it took minutes before).
    while (waited := os.wait4(process.pid, os.WNOHANG))[0] == 0:
        if time.monotonic() - began > 300:
            process.kill()
            process.wait()
            raise AssertionError("parsing the nested feeds did not end in 300 s")
        time.sleep(0.2)
    elapsed = time.monotonic() - began
    _, status, usage = waited
    process.returncode = os.waitstatus_to_exitcode(status)
    output = (tmp_path / "out.json").read_bytes()
    assert process.returncode == 0
    result = json.loads(output)
    peak_mb = result["peak_kb"] / 1024
    outcomes = result["outcomes"]
    for n in range(3):
        assert outcomes[f"nested-{n}"] == [
            "error",
            f"elements nested deeper than {MAX_DEPTH} levels (refused: parser bomb)",
        ]
    assert outcomes["flat-broken"][0] == "error"
    assert outcomes["flat-broken"][1].startswith("too many elements for the lenient parser")
    assert f"at most {MAX_FALLBACK_ELEMENTS:,}" in outcomes["flat-broken"][1]
    assert outcomes["good"] == ["ok", None]
    assert result["mentions"] == ["good"] * 3
    cpu_s = usage.ru_utime + usage.ru_stime
    print(f"parsed in {elapsed:.1f} s ({cpu_s:.1f} s of CPU), peak {peak_mb:.0f} MB")
    assert peak_mb < 600  # 39 MB of documents; nested in a tree, one took 445 MB alone
    assert cpu_s < 60  # one nested feed alone took over 300 s before
