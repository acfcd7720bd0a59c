"""Issue 8's faults and hostile input through whole cycles: `vigie run --once` against real local
HTTP servers (hostile sources beside good feeds), a real SMTP server (aiosmtpd, or a raw one that
drops the connection) and the session's Prefect server. The cycle whose peak memory is measured
runs as a process of its own; the others in this process (`vigie_here`, which captures the log
lines a process would print): their faults are the servers', not the process's.

The pieces are tested one by one elsewhere (tests/integration/test_hostile_sources.py,
test_notify_smtp.py, test_hostile_corpus.py); here they meet the whole cycle: it completes, exits
0 with its one-line summary, records each fault with its reason, loses nothing, sends nothing
twice, stays bounded in memory, and nothing hostile reaches a terminal, a log or an email.
"""

from __future__ import annotations

import email
import email.policy
import html
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tasks.notify.emails import MAX_SUBJECT_CHARS
from tests.commands import VIGIE, vigie_here
from tests.conftest import ConfigWriter
from tests.e2e.served import scenario_sources
from tests.hostile import (
    dribbles,
    endless_body,
    gzip_bomb,
    hostile_server,
    never_answers,
    reason_phrase,
    resets_mid_body,
    smtp_drops_mid_data,
    smtp_never_greets,
    smtp_refuses_permanently,
)
from tests.integration.test_hostile_corpus import LINKS, TITLES, _rss, _unsafe
from vigie import scenario
from vigie.localservers import FeedServer, MailSink, free_port
from warehouse.connection import open_warehouse

pytestmark = pytest.mark.prefect

ONE_LINE = re.compile(
    r"cycle \S+: (?P<ok>\d+) sources ok, (?P<failed>\d+) failed, (?P<new>\d+) new mentions, "
    r"(?P<alerts>\d+) alerts opened, (?P<sent>\d+) emails sent \(\d+\.\d s\)"
)
# What must never reach a terminal, a log or a header from feed text: C0 controls but tab and
# newline (ESC starts terminal sequences, CR rewrites a line), DEL and the C1 controls (0x9b is
# a one-byte CSI), zero-width and bidirectional characters.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
# A reason phrase a hostile server chooses: a terminal escape sequence (clear the screen, red),
# a carriage return, a C1 CSI, and UTF-8 bidi override bytes (read as Latin-1 by HTTP clients).
HOSTILE_REASON = b"Not Found\x1b[2J\x1b[31m\rFAKE OK \x9b31m \xe2\x80\xae gpj.exe"
# A generous bound on the peak memory of one cycle's process tree: Prefect, Great
# Expectations, pandas and the sentiment models take a few hundred MB. The gzip bomb inflates to
# 2 GB and the endless body streams up to 600 MB: reading either past its size cap, or keeping
# every body of a 10,000-entry cycle, goes well past 1.5 GB.
MAX_CYCLE_RSS = 1_500_000_000


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    max_rss_bytes: int


class Vigie:
    """`vigie` as a real process against the session's Prefect server; `finish()` reaps it with
    os.wait4, which gives the peak RSS of the process and the children it waited for (the parse
    workers), measured by the kernel."""

    def __init__(self, config: Path, prefect_api: str, *args: str) -> None:
        self.out = config.parent / f"vigie-{time.time_ns()}.out"
        self.err = self.out.with_suffix(".err")
        env = {**os.environ, **_client_env(prefect_api)}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = subprocess.Popen(
                [*VIGIE, "--config", str(config), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=config.parent,
                env=env,
            )

    def finish(self, timeout_s: float = 300) -> Finished:
        """Wait for the process; a hang guard, far above a cycle's bounds, kills it."""
        deadline = time.monotonic() + timeout_s
        while True:
            pid, status, usage = os.wait4(self.process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"vigie did not finish in {timeout_s:.0f} s")
            time.sleep(0.1)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        return Finished(
            self.process.returncode,
            self.out.read_text(encoding="utf-8", errors="surrogateescape"),
            self.err.read_text(encoding="utf-8", errors="surrogateescape"),
            usage.ru_maxrss * 1024,  # kilobytes on Linux
        )


def _rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with open_warehouse(warehouse) as con:
        return con.execute(sql).fetchall()


def _client_env(prefect_api: str) -> dict[str, str]:
    """What a `vigie` against the session's Prefect server needs on top of the environment."""
    # Several cycles share the SQLite test server: ride out its 503 bursts.
    return {"PREFECT_API_URL": prefect_api, "PREFECT_CLIENT_MAX_RETRIES": "8"}


def _run_here(config: Path, prefect_api: str, *args: str) -> Finished:
    """`vigie ARGS...` in this process (`vigie_here`), for a test whose faults are its servers'
    and not the process's: the imports are paid once. No peak RSS: that is `Vigie`'s."""
    run = vigie_here(
        "--config", str(config), *args, env=_client_env(prefect_api), cwd=config.parent
    )
    return Finished(run.returncode, run.stdout, run.stderr, 0)


def _summary_line(finished: Finished) -> re.Match[str]:
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Traceback" not in finished.stderr, finished.stderr[-3000:]
    lines = finished.stdout.splitlines()
    assert len(lines) == 1, finished.stdout
    match = ONE_LINE.fullmatch(lines[0])
    assert match is not None, lines[0]
    return match


def _good_feed(prefix: str, count: int, *, twice: bool = False) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>La Laiterie Boréale rappelle le lot {prefix}-{n}</title>"
        f"<link>https://presse.example/{prefix}/{n}</link>"
        f"<guid>https://presse.example/{prefix}/{n}</guid>"
        f"<pubDate>{(now - timedelta(minutes=n + 1)).strftime('%a, %d %b %Y %H:%M:%S +0000')}"
        "</pubDate></item>"
        for n in range(count)
    )
    items = items * 2 if twice else items
    channel = f"<channel><title>{prefix}</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def test_a_cycle_beside_every_hostile_source_completes_records_each_fault_and_stays_bounded(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    urls = {
        "good a": feed_server.set("/a.xml", _good_feed("a", 3)),
        "good b": feed_server.set("/b.xml", _good_feed("b", 3)),
        "doubled": feed_server.set("/doubled.xml", _good_feed("d", 3, twice=True)),
        "error page": feed_server.set(
            "/error.xml",
            "<!DOCTYPE html><html><body><h1>503 Service Unavailable</h1></body></html>",
            content_type="text/html",
        ),
        "429 storm": feed_server.set(
            "/busy.xml", "slow down", status=429, headers={"Retry-After": "1"}
        ),
        "loop": feed_server.set("/l1.xml", "", status=302, location=feed_server.url("/l2.xml")),
        "to a file": feed_server.set("/f.xml", "", status=301, location="file:///etc/passwd"),
        "gzip bomb": feed_server.set(
            "/bomb.xml", gzip_bomb(), headers={"Content-Encoding": "gzip"}
        ),
    }
    feed_server.set("/l2.xml", "", status=302, location=feed_server.url("/l1.xml"))
    with ExitStack() as stack:
        for name, behaviour in [
            ("never answers", never_answers),
            ("dribbles", dribbles),
            ("endless", endless_body),
            ("reset", resets_mid_body),
        ]:
            urls[name] = stack.enter_context(hostile_server(behaviour))
        config = write_config(
            sources=[{"name": name, "url": url} for name, url in urls.items()],
            smtp_port=mail_sink.port,
        )
        # A short deadline bounds the cycle: a source never holds it longer than this.
        text = config.read_text(encoding="utf-8").replace("deadline_s = 10", "deadline_s = 4")
        config.write_text(text, encoding="utf-8")
        started = time.monotonic()
        finished = Vigie(config, prefect_harness, "run", "--once").finish()
        print(f"cycle took {time.monotonic() - started:.1f} s")

    line = _summary_line(finished)
    assert (line["ok"], line["failed"], line["new"]) == ("3", "9", "9")
    warehouse = config.parent / "wh" / "vigie.duckdb"
    reasons = dict(
        (source, (status, error))
        for source, status, error in _rows(
            warehouse, "SELECT source, status, error FROM source_runs"
        )
    )
    assert reasons["good a"] == reasons["good b"] == reasons["doubled"] == ("ok", None)
    # Its read timeout, or the deadline when the retry is cut short by it: either says so.
    status, error = reasons["never answers"]
    assert status == "error" and error in (
        "timed out",
        "total deadline exceeded while waiting for the response headers",
    ), error
    assert reasons["dribbles"] == ("error", "total deadline exceeded while reading the body")
    assert reasons["endless"] == ("error", "response larger than 10000000 bytes (size cap)")
    assert reasons["gzip bomb"] == ("error", "response larger than 10000000 bytes (size cap)")
    assert reasons["reset"][0] == "error"
    assert str(reasons["reset"][1]).startswith("body could not be read")
    assert reasons["error page"] == ("error", "not a feed: an HTML page")
    assert reasons["429 storm"] == ("error", "HTTP 429 Too Many Requests")
    assert reasons["loop"] == ("error", "too many redirects")
    assert reasons["to a file"] == ("error", "redirected to a non-HTTP URL (refused)")
    # The good feeds' mentions are loaded; the doubled ids are one mention each.
    loaded = sorted(url for (url,) in _rows(warehouse, "SELECT url FROM mentions"))
    assert loaded == sorted(
        f"https://presse.example/{prefix}/{n}" for prefix in "abd" for n in range(3)
    )
    print(f"peak RSS of the cycle: {finished.max_rss_bytes / 1e6:.0f} MB")
    assert 50_000_000 < finished.max_rss_bytes < MAX_CYCLE_RSS


def _port(url: str) -> int:
    """The port of a hostile server's URL (http://127.0.0.1:PORT/)."""
    return int(url.split(":")[2].split("/")[0])


def test_smtp_faults_inside_cycles_keep_the_alert_until_a_server_takes_it_once(
    prefect_harness: str,
    feed_server: FeedServer,
    write_config: ConfigWriter,
    tmp_path: Path,
) -> None:
    """A calm cycle, then a burst whose alert is due while the SMTP server is down, then
    cycles where it answers 451, drops the connection in the middle of DATA, never greets,
    refuses every recipient for good (554), and answers 3 s late (inside its 10 s timeout).
    Each cycle completes and exits 0; the alert stays in the outbox with each reason, and the
    slow server gets it, exactly once."""
    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    # The blog answers with an HTML page, whose notice would be a second email: left out.
    feeds = [s for s in scenario_sources(urls) if s["name"] != "Blogue du terroir"]
    config = write_config(sources=feeds, smtp_port=1)
    template = config.read_text(encoding="utf-8")
    warehouse = config.parent / "wh" / "vigie.duckdb"

    def cycle(port: int) -> re.Match[str]:
        config.write_text(template.replace("port = 1\n", f"port = {port}\n"), encoding="utf-8")
        # In this process: seven cycles, each a process of its own would pay the imports again
        # (about 6 s of CPU each); the faults are the SMTP servers', not the process's.
        run = vigie_here(
            "--config",
            str(config),
            "run",
            "--once",
            env=_client_env(prefect_harness),
            cwd=config.parent,
        )
        return _summary_line(Finished(run.returncode, run.stdout, run.stderr, 0))

    def outbox() -> list[tuple[Any, ...]]:
        return _rows(warehouse, "SELECT kind, attempts, last_error, sent_at FROM outbox")

    assert cycle(free_port())["alerts"] == "0"  # the baseline; nothing to send
    scenario.publish(feed_server, "burst", anchor)
    with (
        MailSink(tmp_path / "inbox") as sink,
        hostile_server(smtp_drops_mid_data) as dropping,
        hostile_server(smtp_never_greets) as silent,
        hostile_server(smtp_refuses_permanently) as refusing,
    ):
        sink.refuse_with = "451 4.3.0 Mailbox busy, try again later"
        faults = [
            ("down", free_port(), "ConnectionRefusedError"),
            ("451", sink.port, "SMTP 451: 4.3.0 Mailbox busy"),
            ("drops mid-DATA", _port(dropping), "SMTPServerDisconnected"),
            ("never greets", _port(silent), "timed out"),
            ("554 for good", _port(refusing), "every recipient was refused (SMTP 554"),
        ]
        for attempts, (fault, port, reason) in enumerate(faults, start=1):
            line = cycle(port)
            assert (line["alerts"], line["sent"]) == ("1" if fault == "down" else "0", "0"), fault
            [(kind, tried, error, sent_at)] = outbox()
            assert (kind, tried, sent_at) == ("alert", attempts, None), fault
            assert reason in error, (fault, error)
            # The next attempt waits 1, 2, 4 minutes (test_notify_smtp.py proves the back-off);
            # here that time has passed.
            with open_warehouse(warehouse) as con:
                con.execute("UPDATE outbox SET not_before = now() - INTERVAL 1 MINUTE")
        assert sink.messages() == []

        sink.refuse_with = None
        sink.answer_after_s = 3
        assert cycle(sink.port)["sent"] == "1"
        [(_, _, _, sent_at)] = outbox()
        assert sent_at is not None
        # Another delivery sends nothing: the alert went once.
        again = _run_here(config, prefect_harness, "escalate")
        assert again.returncode == 0, again.stderr[-2000:]
        assert "emails sent 0, failed 0" in again.stdout
        [received] = sink.messages()
    assert received["Subject"].startswith("[Vigie][CRISE] Laiterie Boréale")


def _strings(value: object) -> Iterator[str]:
    """Every string inside `value` (JSON-like data), without escaping anything."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _links_vigie_makes(config: Path, prefect_api: str) -> tuple[str, ...]:
    """The links the configuration makes: the cell's addresses, the Prefect UI's pages."""
    return (
        *(
            f"mailto:{line.split('= ')[1].strip(chr(34))}"
            for line in config.read_text(encoding="utf-8").splitlines()
            if line.startswith("email = ")
        ),
        prefect_api.removesuffix("/api"),
    )


def _email_problems(raw: bytes, allowed: tuple[str, ...]) -> list[str]:
    """What is wrong with one received email: a control character or a line break in a
    header, an injected header, an unbounded subject or size, anything active or misleading
    in its HTML, a control character in its text."""
    problems = []
    head = raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n ", b" ").replace(b"\r\n\t", b" ")
    for line in head.split(b"\r\n"):
        if re.search(rb"[\x00-\x08\x0a-\x1f\x7f-\xff]", line):
            problems.append(f"header line {line[:80]!r}")
        if line.lower().startswith((b"bcc:", b"x-evil:")):
            problems.append(f"injected {line[:80]!r}")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    subject = str(message["Subject"])
    if len(subject) > MAX_SUBJECT_CHARS or RAW_CONTROL.search(subject) or "\n" in subject:
        problems.append(f"subject {subject!r}")
    if len(raw) > 2_000_000:
        problems.append(f"{len(raw)} bytes")
    for part in message.walk():
        if part.get_content_type() == "text/html":
            # SMTP's CRLF line ends are the transport's; a lone CR would still be found.
            markup = part.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
            problems += _unsafe(markup, allowed)
            problems += [repr(c) for c in RAW_CONTROL.findall(html.unescape(markup))]
        elif part.get_content_type() == "text/plain":
            text = part.get_content().replace("\r\n", "\n")  # type: ignore[attr-defined]
            problems += [repr(c) for c in RAW_CONTROL.findall(text)]
    return problems


def test_a_hostile_corpus_through_vigie_run_is_inert_in_outputs_logs_and_every_email(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    """test_hostile_corpus.py's corpus served over HTTP, beside a server whose reason phrase
    holds terminal escapes, through `vigie run`, `vigie status` and `vigie digest`: their
    stdout and stderr, the run's Prefect logs and artifacts, and every email sent (the source
    notice that carries the server's reason, the digest that carries the titles) hold no raw
    control character, nothing active, no link that is not https, no broken header."""
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        LogFilter,
        LogFilterFlowRunId,
    )
    from prefect.client.schemas.sorting import FlowRunSort

    laughs = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
    urls = {
        "corpus": feed_server.set("/corpus.xml", _rss(list(zip(TITLES, LINKS, strict=True)))),
        "laughs": feed_server.set(
            "/laughs.xml", _rss([("Laiterie Boréale &lol2;", "https://presse.example/l")], laughs)
        ),
        "bad utf-8": feed_server.set(
            "/bad.xml",
            _rss([("Laiterie Boréale rappel", "https://presse.example/u")])
            .encode()
            .replace(b"rappel", b"rap\xff\xfepel"),
        ),
    }
    with hostile_server(reason_phrase(HOSTILE_REASON)) as hostile_url:
        sources = [
            {"name": name, "url": url, "tier": 1 if name == "corpus" else 3}
            for name, url in [*urls.items(), ("hostile reason", hostile_url)]
        ]
        # A failing source is told to the operators at once: its notice carries the reason.
        extra = "\n[health]\nfailures_before_notice = 1\n"
        config = write_config(sources=sources, smtp_port=mail_sink.port, extra=extra)
        run = _run_here(config, prefect_harness, "run", "--once", "--json")
    assert run.returncode == 0, run.stderr[-3000:]
    summary = json.loads(run.stdout)
    failed = summary["sources_failed"]
    assert failed["hostile reason"] == "HTTP 404 Not Found[2J[31mFAKE OK 31m â® gpj.exe"
    assert "entities" in failed["laughs"]
    # The titles with a javascript:, data: or file: link are quarantined (their artifact
    # shows them too), the others loaded.
    assert summary["new_mentions"] + summary["quarantined"] >= len(TITLES), summary
    status = _run_here(config, prefect_harness, "status")
    assert status.returncode == 0 and "hostile reason" in status.stdout, status.stderr
    # The digest of the day up to now: the corpus was published minutes ago.
    end = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    digest = _run_here(config, prefect_harness, "digest", "--period", "daily", "--end", end)
    assert digest.returncode == 0, digest.stdout + digest.stderr

    outputs = {
        "run stdout": run.stdout,
        "run stderr": run.stderr,
        "status": status.stdout + status.stderr,
        "digest": digest.stdout + digest.stderr,
    }
    # Prefect's logs and artifacts of the run (the cycle id ends with the run's id).
    run_prefix = summary["cycle_id"].rsplit("-", 1)[1]
    with get_client(sync_client=True) as client:
        [flow_run] = [
            r
            for r in client.read_flow_runs(sort=FlowRunSort.START_TIME_DESC, limit=50)
            if str(r.id).startswith(run_prefix)
        ]
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run.id])))
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id]))
        )
    assert logs and {a.key for a in artifacts} >= {"watch-cycle-summary", "top-stories"}
    outputs["logs"] = "\n".join(log.message for log in logs)
    outputs["artifacts"] = "\n".join(
        text for a in artifacts for text in _strings([a.data, a.description])
    )
    assert "caché" in outputs["artifacts"]  # the corpus did reach the UI
    assert {name: RAW_CONTROL.findall(text) for name, text in outputs.items()} == {
        name: [] for name in outputs
    }

    received = sorted(mail_sink.folder.glob("*.eml"))
    bodies = {
        str(m["Subject"]): m.get_body(("html",)).get_content()  # type: ignore[union-attr]
        for m in mail_sink.messages()
    }
    # One notice for every source that failed in the cycle.
    [notice] = [b for s, b in bodies.items() if s.startswith("[Vigie][SOURCE]")]
    assert "<strong>hostile reason</strong> n’a jamais répondu" in notice
    assert "Not Found[2J[31mFAKE OK" in notice  # the server's reason, inert
    [digest_body] = [b for s, b in bodies.items() if s.startswith("[Vigie][RÉSUMÉ]")]
    assert "intrus@evil.example" in digest_body  # the corpus reached it (the CR/LF title)
    allowed = _links_vigie_makes(config, prefect_harness)
    assert {path.name: _email_problems(path.read_bytes(), allowed) for path in received} == {
        path.name: [] for path in received
    }


def test_the_alert_and_its_escalation_sent_by_whole_cycles_carry_the_corpus_inertly(
    prefect_harness: str,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    """A calm cycle, then a burst in which a major outlet carries test_hostile_corpus.py's
    titles and links: the alert `vigie run` sends, and the escalation `vigie escalate` sends
    when nobody acknowledged it, show the corpus with nothing active, no link that is not
    https, no control character and no broken header."""
    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    # The blog answers with an HTML page, whose notice would be another email: left out.
    feeds = [s for s in scenario_sources(urls) if s["name"] != "Blogue du terroir"]
    corpus = feed_server.set("/corpus.xml", _rss([]))
    config = write_config(
        sources=[*feeds, {"name": "corpus", "url": corpus, "tier": 1}], smtp_port=mail_sink.port
    )
    baseline = _run_here(config, prefect_harness, "run", "--once")
    assert _summary_line(baseline)["alerts"] == "0"
    scenario.publish(feed_server, "burst", anchor)
    feed_server.set("/corpus.xml", _rss(list(zip(TITLES, LINKS, strict=True))))
    burst = _run_here(config, prefect_harness, "run", "--once")
    assert _summary_line(burst)["alerts"] == "1", burst.stdout + burst.stderr[-2000:]
    # Nobody acknowledged it for an hour (test_escalation.py proves the delay itself).
    with open_warehouse(config.parent / "wh" / "vigie.duckdb") as con:
        con.execute(
            "UPDATE alerts SET opened_at = opened_at - INTERVAL 1 HOUR, "
            "paged_at = paged_at - INTERVAL 1 HOUR"
        )
    escalate = _run_here(config, prefect_harness, "escalate")
    assert escalate.returncode == 0 and "emails sent 1," in escalate.stdout, escalate.stdout
    assert RAW_CONTROL.findall(escalate.stdout + escalate.stderr) == []

    received = {str(m["Subject"]): m for m in mail_sink.messages()}
    [alert] = [m for s, m in received.items() if s.startswith("[Vigie][CRISE]")]
    [escalation] = [m for s, m in received.items() if "ESCALADE" in s.upper()]
    for message in (alert, escalation):
        markup = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        assert "caché" in markup or "intrus@evil.example" in markup, markup[:3000]
    allowed = _links_vigie_makes(config, prefect_harness)
    paths = sorted(mail_sink.folder.glob("*.eml"))
    assert {p.name: _email_problems(p.read_bytes(), allowed) for p in paths} == {
        p.name: [] for p in paths
    }
