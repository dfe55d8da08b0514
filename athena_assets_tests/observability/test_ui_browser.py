"""The Dagster UI as a user meets it, in a real headless Chromium driven by Playwright.

After a small materialisation on the session's stack, `dagster-webserver` serves the code location
(workspace.yaml) on that instance; the browser opens the global asset lineage and the event_embeddings
page, and checks that every asset group of the definitions and a plotted model-call metric show.
Screenshots go to the test's temporary directory; with ATHENA_UPDATE_DOCS_SCREENSHOTS=1 they also
replace docs/lineage.png and docs/event_embeddings_plots.png.

The browser: athena_assets_tests/browser.py.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import httpx
import pytest
from playwright.sync_api import Page, expect

from athena_assets.definitions import defs
from athena_assets.defs.memory.embeddings import event_embeddings
from athena_assets_tests.browser import chromium_page
from athena_assets_tests.helpers import REPO, StackHandle, embed_day
from resources.stack.llama_server import free_port

DOCS = REPO / "docs"
UPDATE_DOCS = "ATHENA_UPDATE_DOCS_SCREENSHOTS"
DAY = date(2026, 10, 20)
PLOTTED_DAYS = 5


def _screenshot(page: Page, directory: Path, name: str) -> Path:
    path = directory / name
    page.screenshot(path=str(path))
    if os.environ.get(UPDATE_DOCS) == "1":
        shutil.copyfile(path, DOCS / name)
    return path


@pytest.fixture(scope="module")
def materialised(
    stack: StackHandle, tmp_path_factory: pytest.TempPathFactory
) -> list[dg.ExecuteInProcessResult]:
    """A few days of events and embeddings (a private schema), one run per day with a growing number of
    events, so the pages have runs and the metric plots have several points."""
    tmp = tmp_path_factory.mktemp("ui-data")
    resources = stack.private_resources(tmp)
    results = []
    for offset in range(PLOTTED_DAYS):
        day = DAY + timedelta(days=offset)
        rows = [
            {
                "id": f"ui{offset}-{i}",
                "occurred_at": f"{day}T1{i % 10}:00:00Z",
                "content": f"ui event {i} of {day}",
            }
            for i in range(3 + 4 * offset)
        ]
        results.append(embed_day(stack, resources, rows, str(day), tmp))
    return results


@pytest.fixture(scope="module")
def webserver(
    stack: StackHandle,
    materialised: list[dg.ExecuteInProcessResult],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`dagster-webserver` on workspace.yaml and the stack's instance; its base URL."""
    port = free_port()
    env = stack.environ()
    command = [
        str(Path(sys.executable).with_name("dagster-webserver")),
        *("-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")),
    ]
    log_path = tmp_path_factory.mktemp("webserver") / "webserver.log"
    with log_path.open("wb") as log:
        # Its own process group: the webserver starts a code-server child, and both must stop.
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"dagster-webserver exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"dagster-webserver did not answer in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    """A page of a fresh headless Chromium profile."""
    with chromium_page(tmp_path_factory.mktemp("chromium-profile")) as opened:
        yield opened


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots of this run go."""
    return tmp_path_factory.mktemp("screenshots")


@pytest.mark.timeout(420)
def test_the_lineage_shows_every_asset_group_and_asset(webserver: str, page: Page, screenshots: Path) -> None:
    specs = list(defs.resolve_all_asset_specs())
    groups = sorted({spec.group_name for spec in specs if spec.group_name})
    assert {"models", "memory", "consolidation", "prompts"} <= set(groups)
    page.goto(f"{webserver}/asset-groups")
    for group in groups:
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    # Groups open collapsed; ⌥E expands them all (remembered), and the reload fits the graph to the page.
    page.keyboard.press("Alt+KeyE")
    page.reload()
    for group in groups:
        expect(page.get_by_text(group, exact=True).first).to_be_visible()
    # Each node loads its latest events after the graph is drawn; the screenshot waits for them.
    expect(page.get_by_text(re.compile(r"^Loading"))).to_have_count(0)
    assert _screenshot(page, screenshots, "lineage.png").stat().st_size > 10_000
    # A graph fitted to the page hides node labels once it holds many assets: the catalog lists them all.
    page.goto(f"{webserver}/assets")
    for spec in specs:
        expect(page.get_by_text(spec.key.to_user_string(), exact=True).first).to_be_visible()


@pytest.mark.timeout(420)
def test_an_asset_page_plots_its_model_call_metrics(webserver: str, page: Page, screenshots: Path) -> None:
    page.goto(f"{webserver}/assets/event_embeddings")
    description = event_embeddings.descriptions_by_key[dg.AssetKey("event_embeddings")]
    expect(page.get_by_text(description.strip().splitlines()[0]).first).to_be_visible()
    expect(page.get_by_text("memory", exact=True).first).to_be_visible()
    # Per event rather than per partition: the observations' metrics are plotted over time.
    page.get_by_role("button", name="Plots").click()
    page.get_by_role("button", name="Events").click()
    title = page.get_by_text("avg_latency_ms", exact=True).first
    expect(title).to_be_visible()
    expect(page.locator("canvas").first).to_be_visible()
    # Only what means something for embeddings is plotted: no compression fields, always 0 here.
    expect(page.get_by_text("tokens_per_second", exact=True).first).to_be_visible()
    for meaningless in ("compression_ratio", "compressed_tokens", "tokens_saved"):
        expect(page.get_by_text(meaningless, exact=True)).to_have_count(0)
    title.scroll_into_view_if_needed()
    assert _screenshot(page, screenshots, "event_embeddings_plots.png").stat().st_size > 10_000
