"""A headless Debian Chromium page driven by Playwright, for the tests that look at the Dagster UI.

The browser is Debian's chromium (scripts/install_test_tools.sh); Playwright never downloads one. A
missing chromium fails those tests rather than skipping them, so a CI run always checks the UI.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless on a closed network: without the background-networking flags Chromium keeps calling home.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The code location loads in a subprocess of the webserver; on a busy machine that takes a while.
UI_TIMEOUT_MS = 120_000


@contextmanager
def chromium_page(profile: Path) -> Iterator[Page]:
    """A page of a fresh headless Chromium profile in `profile` (an empty directory)."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install_test_tools.sh (make test does)")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1250},
        )
        # The first visit asks to join the community in a modal that would hide the page.
        context.add_init_script("window.localStorage.setItem('communityNux', '\"1\"')")
        opened = context.new_page()
        opened.set_default_timeout(UI_TIMEOUT_MS)
        yield opened
        context.close()
