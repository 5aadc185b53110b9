"""Debian's Chromium driven by Playwright, for the browser tests (tests/ui, tests/deployment/test_ui.py).

Chromium comes from scripts/bootstrap-browser.sh (``apt-get install chromium``); Playwright never
downloads a browser here. A missing binary is a test failure, not a skip. Screenshots go to
``CAROL_UI_SCREENSHOT_DIR`` (default ``docs/img``, where the docs pages show them).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def screenshot_dir() -> Path:
    """Where screenshots go: ``$CAROL_UI_SCREENSHOT_DIR``, else the docs' image folder."""
    target = Path(os.environ.get("CAROL_UI_SCREENSHOT_DIR") or REPO / "docs" / "img")
    target.mkdir(parents=True, exist_ok=True)
    return target


@contextmanager
def chromium() -> Iterator[Browser]:
    """Launch /usr/bin/chromium through Playwright; closed on exit."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap-browser.sh (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def fresh_page(browser: Browser, width: int, height: int, timeout_ms: int) -> Iterator[Page]:
    """A page in a new browser context (nothing carried over from another test); closed on exit."""
    context = browser.new_context(viewport={"width": width, "height": height})
    context.set_default_timeout(timeout_ms)
    try:
        yield context.new_page()
    finally:
        context.close()
