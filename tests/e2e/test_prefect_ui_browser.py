"""The Prefect UI path of the crisis cell, in a real headless Chromium driven by Playwright.

A real `prefect server start` (the session's `prefect_server`), `vigie serve` against the bundled
scenario on the local feed server and a local SMTP server; then, in the browser, as a person:
1. the deployments page lists every Vigie deployment, ready, with its schedules;
2. a watch cycle started with "Run > Quick run" completes, and its page shows the
   `watch-cycle-summary` and `situation` artifacts and the `top-stories` table;
3. incident-mode started with "Run > Custom run" (a name, one extra query, a short duration)
   completes, and its situation report reaches the SMTP server;
4. the link of the crisis alert's email opens the paused acknowledge-alert run, which takes a
   name in its "Resume" form and completes; the acknowledgement is in `alert_events`.

Screenshots of each step go to $VIGIE_SCREENSHOTS (or the test's tmp_path/screenshots) and are
listed in the test's output. Chromium is Debian's (`apt-get install chromium`), started by this
test with a fresh profile and no network beyond 127.0.0.1, and stopped by its PID; Playwright
connects to it over CDP (it downloads no browser). Without Chromium the test is skipped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tasks.publish.situation import SITUATION_KEY
from tests.conftest import ConfigWriter
from tests.e2e import served
from tests.e2e.prefect_server import PrefectServer, stop_process
from vigie import scenario
from vigie.deployments import DeploymentSpec, read_deployments
from vigie.localservers import FeedServer, MailSink
from warehouse.connection import open_warehouse

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = os.environ.get("VIGIE_CHROMIUM") or shutil.which("chromium")
pytestmark = [
    pytest.mark.prefect,
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="Chromium not found: install it with `apt-get install chromium` (.ci/run does)",
    ),
]
# Without these Chromium reaches for the internet (updates, sync, field trials, QUIC probes).
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# The machine is slow and shared: the UI can take seconds to render a page.
UI_TIMEOUT_MS = 90_000
RUN_TIMEOUT_MS = 240_000
# Wide enough that the deployments table shows every schedule instead of a "+1" chip.
WIDE = {"width": 2560, "height": 1100}
NORMAL = {"width": 1400, "height": 1000}
# The UI scrolls inside its own panel, so a full-page screenshot is the viewport: artifacts are
# shot through a tall one.
TALL = {"width": 1400, "height": 2600}
# What the UI writes for each cron of prefect.yaml (cronstrue's English, times in 12-hour form).
CRON_TEXT = {
    "30 7 * * 1-5": "At 07:30 AM, Monday through Friday",
    "0 9 1 * *": "At 09:00 AM on day 1 of the month",
    "0 8 * * 1": "At 08:00 AM, only on Monday",
    "15 3 * * *": "At 03:15 AM every day",
}
# With SQLite, the server answers 503 to a write that meets another one (STACK.md gotcha 5);
# Prefect's Python client retries, the UI shows this toast and a person clicks again.
REFUSED = re.compile(r"Failed to|Something went wrong")
INCIDENT = {
    "name": "rappel",
    "extra_queries": "listeria",
    "cadence_minutes": "0.05",
    "duration_hours": "0.0056",  # 20 seconds
    "sitrep_every_minutes": "0.15",
}
# The form's labels (flows/incident.py): plain words, not the parameters' names.
LABELS = {
    "name": "Incident name",
    "extra_queries": "Extra queries to watch",
    "cadence_minutes": "Minutes between two watch cycles",
    "duration_hours": "How long it lasts, in hours",
    "sitrep_every_minutes": "Minutes between two situation reports",
}


@pytest.fixture
def screenshots(tmp_path: Path) -> Callable[..., Path]:
    """Save a screenshot of the page under the output folder and list it in the test's log."""
    folder = Path(os.environ.get("VIGIE_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    taken: list[Path] = []

    def shoot(page: Page, name: str, *, tall: bool = False) -> Path:
        path = folder / f"{len(taken) + 1:02d}-{name}.png"
        if tall:
            page.set_viewport_size(TALL)
        page.screenshot(path=str(path), full_page=True)
        if tall:
            page.set_viewport_size(NORMAL)
        taken.append(path)
        print(f"screenshot: {path}")
        return path

    return shoot


@contextlib.contextmanager
def running_chromium(profile: Path, log: Path) -> Iterator[str]:
    """Start Chromium headless with a fresh profile and a free DevTools port; yield the CDP
    address; stop it by its PID."""
    assert CHROMIUM is not None
    profile.mkdir(parents=True)
    command = [
        CHROMIUM,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        "about:blank",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    try:
        # Chromium writes the port it bound, then the browser's path, once it listens.
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while len(lines := _read_lines(port_file)) < 2:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{lines[0]}"
    finally:
        stop_process(process)


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A page of a real headless Chromium, connected to by Playwright over CDP."""
    from playwright.sync_api import sync_playwright

    with (
        running_chromium(tmp_path / "chromium-profile", tmp_path / "chromium.log") as cdp,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.connect_over_cdp(cdp)
        try:
            page = browser.contexts[0].new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.set_viewport_size(NORMAL)
            yield page
        finally:
            browser.close()


def _until_accepted(page: Page, action: Callable[[], None], accepted: Locator, what: str) -> None:
    """Do `action` (a click that writes) until the UI shows `accepted`, again when the server
    refused it (the UI's error toast), at most 5 times."""
    refused = page.get_by_text(REFUSED)
    for attempt in range(1, 6):
        before = refused.count()
        action()
        accepted.or_(refused.nth(before)).first.wait_for()
        if accepted.first.is_visible():
            return
        print(f"{what}: the server refused (attempt {attempt}), clicking again")
    raise AssertionError(f"{what}: refused 5 times")


def _wait_state(page: Page, state: str, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
    """Wait until the run's page shows `state` in its state badge (the page refreshes itself)."""
    page.locator(".state-badge", has_text=state).first.wait_for(timeout=timeout_ms)


def _open_tab(page: Page, tab: str, shows: Locator) -> None:
    """Click the run's tab `tab` until it shows `shows`: a click while the page re-renders
    (the run just finished) can be lost, and a tab can keep what it read before the run's
    last writes (seen: "did not produce any artifacts" on a completed cycle), so later
    tries reload the page first."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(4):
        if attempt:
            print(f"{tab}: not shown after {attempt} click(s); reloading the run's page")
            page.reload()
        page.locator(".p-tab", has_text=tab).first.click()
        try:
            shows.first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    shows.first.wait_for()


def _reload_until(page: Page, shows: Locator, attempts: int = 4) -> None:
    """Wait until the page shows `shows`, reloading it between tries: a page can keep what
    it read before the server had the last writes."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        if attempt:
            page.reload()
        try:
            shows.first.wait_for(timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    shows.first.wait_for()


def _open_latest_situation(page: Page, ui: str, text: str) -> Locator:
    """The `situation` artifact's page (a timeline of its versions, newest first), then its
    newest version, until a row of that version shows `text`; return that row."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    row = page.locator("tr", has_text=text).first
    for attempt in range(4):
        page.goto(f"{ui}/artifacts/key/{SITUATION_KEY}")
        page.locator("a[href*='/artifacts/artifact/']").first.click()
        try:
            row.wait_for(timeout=20_000)
            return row
        except PlaywrightTimeout:
            print(f"situation: no row with {text!r} in the newest version (try {attempt + 1})")
    row.wait_for()
    return row


def _open_run_by_state(page: Page, ui: str, state: str) -> str:
    """The runs list, until a flow run in state `state` (its badge's exact text) shows; return
    that run's address."""
    page.goto(f"{ui}/runs")
    badge = page.locator(".state-badge", has_text=re.compile(rf"^\s*{re.escape(state)}\s*$"))
    item = page.locator(".flow-run-list-item").filter(has=badge).first
    _reload_until(page, item)
    item.scroll_into_view_if_needed()
    href = item.locator("a[href*='/runs/flow-run/']").first.get_attribute("href")
    assert href is not None, item.inner_html()
    return href if href.startswith("http") else f"{ui}{href}"


def _open_deployment(page: Page, ui: str, deployment: str) -> None:
    page.goto(f"{ui}/deployments")
    page.get_by_role("link", name=deployment, exact=True).first.click()


def _choose_run(page: Page, menu_item: str) -> None:
    """The deployment's "Run" menu, then `menu_item` (Quick run, Custom run)."""
    page.get_by_role("button", name="Run", exact=True).click()
    page.get_by_text(menu_item, exact=True).click()


def _view_scheduled_run(page: Page, submit: Callable[[], None], what: str) -> None:
    """Submit, then follow the toast's "View run" to the new run's page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    view = page.get_by_role("button", name="View run")
    _until_accepted(page, submit, view, what)
    run_page = re.compile(r"/runs/flow-run/")
    # A submit sends the form back to the deployment's page; a click on the toast during that
    # navigation is lost (seen in CI: the page stayed on the deployment's runs), so click the
    # newest toast again while it shows, then open the newest run of the list as a person would.
    for _ in range(3):
        with contextlib.suppress(PlaywrightTimeout):
            view.last.click(timeout=10_000)
        try:
            page.wait_for_url(run_page, timeout=20_000)
            return
        except PlaywrightTimeout:
            print(f"{what}: the run's page did not open after a click on View run")
    page.get_by_role("tab", name="Runs").or_(page.locator(".p-tab", has_text="Runs")).first.click()
    page.locator("a[href*='/runs/flow-run/']").first.click()
    page.wait_for_url(run_page)


def _form_property(page: Page, name: str) -> Locator:
    """The parameter `name` of a run form (its label is not tied to its input)."""
    text = re.escape(name)
    label = page.locator(".schema-form-property__label", has_text=re.compile(rf"^{text}( \(|$)"))
    return page.locator(".schema-form-property").filter(has=label).first


def _expected_schedules(spec: DeploymentSpec) -> list[str]:
    texts = []
    for schedule in spec.schedules:
        if schedule.cron is not None:
            assert schedule.cron in CRON_TEXT, f"add the UI's text of {schedule.cron!r}"
            texts.append(CRON_TEXT[schedule.cron])
        elif schedule.interval_s is not None:
            texts.append(f"Every {schedule.interval_s / 60:g} minutes")
    return texts


def test_the_cell_uses_vigie_through_the_prefect_ui_in_a_real_browser(
    page: Page,
    screenshots: Callable[..., Path],
    prefect_server: PrefectServer,
    tmp_path: Path,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    project = served.copy_project(tmp_path / "project")
    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(sources=served.scenario_sources(urls), smtp_port=mail_sink.port)
    specs = read_deployments(project / "prefect.yaml")
    serve = served.start_serve(prefect_server, "serve-browser", config, project, tmp_path)
    ui = prefect_server.api_url.removesuffix("/api")
    try:
        with served.prefect_client(prefect_server) as client:
            deployments = served.wait_served(client, config, [s.name for s in specs], serve)

        # 1. Every deployment, ready (served), with its schedules as the UI words them.
        page.set_viewport_size(WIDE)
        page.goto(f"{ui}/deployments")
        for spec in specs:
            row = page.locator("tr").filter(
                has=page.get_by_role("link", name=spec.name, exact=True)
            )
            row.first.wait_for()
            text = row.first.inner_text()
            assert "Ready" in text, (spec.name, text)
            for schedule in _expected_schedules(spec):
                assert schedule in text, (spec.name, schedule, text)
            if not spec.schedules:
                assert not re.search(r"\bEvery\b|\bAt \d", text), (spec.name, text)
        screenshots(page, "deployments")
        page.set_viewport_size(NORMAL)

        # 2. A watch cycle from "Quick run": its page, its summary, its top stories.
        _open_deployment(page, ui, "watch-cycle")
        _view_scheduled_run(page, lambda: _choose_run(page, "Quick run"), "quick run")
        _wait_state(page, "Completed")
        assert page.get_by_text(re.compile(r"^watch-cycle 20\d\d-")).first.is_visible()
        _open_tab(page, "Artifacts", page.get_by_text("top-stories", exact=True))
        # The situation now, an artifact of the run itself, replaced by every cycle.
        page.get_by_text("situation", exact=True).first.wait_for()
        screenshots(page, "watch-cycle-artifacts")
        page.get_by_text("watch-cycle-summary", exact=True).click()
        page.get_by_text("Articles principaux", exact=True).wait_for()
        row = page.locator("tr", has_text="nouvelles mentions").first.inner_text()
        assert row.split() == ["nouvelles", "mentions", "6"]
        assert page.locator("tr", has_text="not a feed: an HTML page").first.is_visible()
        assert page.get_by_text("La Laiterie Boréale agrandit son usine de Saguenay").is_visible()
        screenshots(page, "watch-cycle-summary", tall=True)
        page.go_back()
        _open_tab(page, "Artifacts", page.get_by_text("top-stories", exact=True))
        page.get_by_text("top-stories", exact=True).click()
        page.get_by_text("4 Items").wait_for()
        header = page.locator("tr").first.inner_text()
        for column in ("article", "sujet", "média", "rang", "mentions", "vu d’abord"):
            assert column in header, header
        story = page.locator("tr", has_text="Prix du lait : la Laiterie Boréale signe").first
        assert "Le Quotidien du Nord" in story.inner_text()
        screenshots(page, "top-stories", tall=True)

        # 3. The storm; incident-mode from "Custom run" with a name and one extra query.
        scenario.publish(feed_server, "burst", anchor)
        _open_deployment(page, ui, "incident-mode")
        _choose_run(page, "Custom run")
        _form_property(page, LABELS["name"]).locator("textarea").fill(INCIDENT["name"])
        queries = _form_property(page, LABELS["extra_queries"])
        # An empty list by default: no "list | None" switch before "Add item".
        queries.get_by_role("button", name="Add item").click()
        queries.locator("textarea").first.fill(INCIDENT["extra_queries"])
        for name in ("cadence_minutes", "duration_hours", "sitrep_every_minutes"):
            _form_property(page, LABELS[name]).locator("input").fill(INCIDENT[name])
        screenshots(page, "incident-form")
        submit = page.get_by_role("button", name="Submit", exact=True)
        _view_scheduled_run(page, submit.click, "custom run of incident-mode")
        page.get_by_text("incident rappel", exact=True).first.wait_for()
        _wait_state(page, "Completed")
        _open_tab(page, "Parameters", page.get_by_text('"listeria"'))
        screenshots(page, "incident-completed")
        # Numbered as sent: the first is n° 1 even when a slow first cycle made it cover more.
        sitreps = served.wait_mail(mail_sink, "[Vigie][INCIDENT] rappel — point de situation n° 1 ")
        assert sitreps, [str(m["Subject"]) for m in mail_sink.messages()]
        final = "[Vigie][INCIDENT] rappel — rapport d’incident (terminé)"
        assert served.wait_mail(mail_sink, final), [str(m["Subject"]) for m in mail_sink.messages()]

        # 4. The crisis alert's email links to the paused acknowledgement; a name resumes it.
        [alert, *_] = served.wait_mail(mail_sink, "[Vigie][CRISE]")
        html = alert.get_body(preferencelist=("html",))
        assert html is not None
        page.set_content(html.get_content())
        link = page.get_by_role("link", name="Prendre en charge dans Prefect")
        href = link.get_attribute("href")
        assert href is not None and href.startswith(f"{ui}/runs/flow-run/"), href
        page.goto(href)
        _wait_state(page, "Paused", UI_TIMEOUT_MS)
        title = page.get_by_text(re.compile(r"^acknowledge al-")).first.inner_text()
        alert_id = title.split()[1]
        screenshots(page, "acknowledgement-paused")
        modal = page.locator(".p-modal__card")
        resume = page.get_by_role("button", name="Resume", exact=True)
        resume.click()
        modal.get_by_text("Your name: you take charge of this alert").wait_for()
        modal.locator("textarea").fill("Awa Diallo")
        screenshots(page, "acknowledgement-form")
        resumed = page.locator(".state-badge", has_text=re.compile("Running|Completed"))
        _until_accepted(
            page,
            modal.get_by_role("button", name="Submit", exact=True).click,
            resumed,
            "resume of the acknowledgement",
        )
        _wait_state(page, "Completed")
        page.get_by_text("Resuming flow run execution!").wait_for()
        screenshots(page, "acknowledgement-completed")

        # 5. The cycle that opened the crisis stands out in the runs list: its state is named
        # "Crise", its message names the alert, its `situation` shows nobody in charge yet.
        crisis_run = _open_run_by_state(page, ui, "Crise")
        screenshots(page, "runs-list-crisis")
        page.goto(crisis_run)
        _wait_state(page, "Crise", UI_TIMEOUT_MS)
        # A Completed state of its own name: the data is loaded and the cell was told.
        crisis_badge = page.locator(".state-badge", has_text="Crise").first.get_attribute("class")
        assert "state--completed" in (crisis_badge or ""), crisis_badge
        opened = re.compile(rf"Crise ouverte\s*:\s*«\s*marque\s*»\s*\({re.escape(alert_id)}\)")
        _open_tab(page, "Details", page.get_by_text(opened))
        page.get_by_text("State Message", exact=True).first.wait_for()
        screenshots(page, "crisis-run-details")
        _open_tab(page, "Artifacts", page.get_by_text("situation", exact=True))
        page.get_by_text("situation", exact=True).first.click()
        alert_row = page.locator("tr", has_text="CRISE").first
        alert_row.wait_for()
        before = alert_row.inner_text()
        assert re.search(r"CRISE\s+marque\b.*\bpersonne\b", before, re.S), before
        screenshots(page, "situation-before-taking-charge", tall=True)

        # 6. The next cycle's `situation` names who took charge. The cycle is started with the
        # Python client, which retries what a busy server refuses: a Quick run here was
        # refused 5 times in a row while the incident the crisis started ran its cycle.
        with served.prefect_client(prefect_server) as client:
            next_cycle = client.create_flow_run_from_deployment(deployments["watch-cycle"].id)
        page.goto(f"{ui}/runs/flow-run/{next_cycle.id}")
        _wait_state(page, "Completed")
        taken = _open_latest_situation(page, ui, "Awa Diallo")
        after = taken.inner_text()
        assert re.search(r"CRISE\s+marque\b.*\bAwa Diallo\b", after, re.S), after
        screenshots(page, "situation-taken-in-charge", tall=True)
    except BaseException:
        # A screenshot that times out too (a loaded machine) must not hide the failure.
        with contextlib.suppress(Exception):
            screenshots(page, "where-it-failed")
        raise
    finally:
        serve.stop()

    with open_warehouse(config.parent / "wh" / "vigie.duckdb", lock_wait_s=30) as con:
        events = con.execute(
            "SELECT kind, detail->>'by' FROM alert_events WHERE alert_id = ? ORDER BY occurred_at",
            [alert_id],
        ).fetchall()
    assert ("acknowledged", "Awa Diallo") in events, events


def test_a_cycle_whose_emails_failed_is_failed_and_named_so_in_the_ui(
    request: pytest.FixtureRequest,
    page: Page,
    screenshots: Callable[..., Path],
    prefect_server: PrefectServer,
    tmp_path: Path,
    feed_server: FeedServer,
    mail_sink: MailSink,
    write_config: ConfigWriter,
) -> None:
    """The SMTP server refuses every email: the cycle that opens the crisis is red in the runs
    list, Failed and named "Crise : emails en échec", and its message says nobody was told."""
    anchor = datetime.now(UTC)
    urls = scenario.publish(feed_server, "calm", anchor)
    config = write_config(sources=served.scenario_sources(urls), smtp_port=mail_sink.port)
    mail_sink.refuse_with = "554 5.7.1 refused"
    request.addfinalizer(lambda: _delete_runs_left_scheduled(prefect_server, since=anchor))
    ui = prefect_server.api_url.removesuffix("/api")
    for phase in ("calm", "burst"):
        scenario.publish(feed_server, phase, anchor)
        cycle = prefect_server.run(
            [served.VIGIE, "--config", str(config), "run", "--once"], cwd=tmp_path
        )
        assert cycle.returncode == 0, cycle.stdout + cycle.stderr
    assert mail_sink.messages() == [] and mail_sink.refused > 0
    try:
        failed_run = _open_run_by_state(page, ui, "Crise : emails en échec")
        screenshots(page, "runs-list-emails-failed")
        page.goto(failed_run)
        badge = page.locator(".state-badge", has_text="Crise : emails en échec").first
        badge.wait_for()
        # Failed, not a green Completed: the badge is the Failed one (its icon and colour).
        assert "state--failed" in (badge.get_attribute("class") or ""), badge.get_attribute("class")
        opened = re.compile(r"Crise ouverte\s*:\s*«\s*marque\s*»")
        _open_tab(page, "Details", page.get_by_text(opened))
        # The message is long: the UI cuts it after the alert and shows the rest on demand.
        see_more = page.get_by_text("See More", exact=True)
        if see_more.count():
            see_more.first.click()
        page.get_by_text(re.compile(r"emails? non envoyés? ")).first.wait_for()
        screenshots(page, "emails-failed-run-details")
    except BaseException:
        # A screenshot that times out too (a loaded machine) must not hide the failure.
        with contextlib.suppress(Exception):
            screenshots(page, "where-it-failed")
        raise


def _delete_runs_left_scheduled(server: PrefectServer, since: datetime) -> None:
    """Delete the runs this test's crisis scheduled (its acknowledgement, the automation's
    incident): no serve runs them here, and a later test serving the same deployments on this
    session's server would run them with this test's configuration."""
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    scheduled = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.SCHEDULED]))
    )
    with served.prefect_client(server) as client:
        for run in client.read_flow_runs(flow_run_filter=scheduled):
            if not run.auto_scheduled and run.created is not None and run.created >= since:
                client.delete_flow_run(run.id)
