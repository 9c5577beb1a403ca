"""Fixtures of the browser tests: Playwright driving the system's Chromium, and a screenshot
of every test's page saved as a test artifact.

Playwright cannot download its own browser here, so it launches Debian's `chromium`
(`make browser` installs it; FRAUDOPS_TEST_CHROMIUM names another binary). Without it the
tests are skipped, except under CI=true, where they fail.

Playwright's sync API runs an asyncio loop of its own in the test's thread, marked as the
thread's running loop from the moment it starts until it stops: `asyncio.run` in that thread
would refuse to start meanwhile. So each test gets its own Playwright, started by `browser`
and stopped at its teardown (nothing leaks into the next test of the same xdist worker);
request `page` or `browser` after any fixture that runs asyncio code in the test's thread,
and run asyncio code of the test body in `with asyncio_outside_playwright():`. Servers running
their own loop in another thread (uvicorn, aiosmtpd) need nothing.
"""

import asyncio
import os
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("FRAUDOPS_TEST_CHROMIUM", "/usr/bin/chromium"))
SCREENSHOTS = Path(
    os.environ.get("FRAUDOPS_TEST_SCREENSHOTS", REPO / "test-artifacts" / "screenshots")
)
VIEWPORT = {"width": 1280, "height": 800}
# Root runs Chromium without its sandbox (which needs user namespaces it refuses to root).
LAUNCH_ARGS = ["--no-sandbox", "--disable-dev-shm-usage"]

Screenshot = Callable[..., Path]


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """The system's Chromium; skipped when missing, except under CI=true."""
    if not os.access(CHROMIUM, os.X_OK):
        message = f"Chromium is not installed at {CHROMIUM}: make browser"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the browser tests must run, not skip)")
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def browser(chromium_executable: Path) -> Iterator[Browser]:
    """A headless Chromium driven by a Playwright of this test's own."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_executable), headless=True, args=LAUNCH_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def screenshot_path(request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """Where a screenshot of this test goes: one file per test (and name), per xdist worker
    safe since test ids are unique."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid.removeprefix("tests/"))

    def path(name: str = "") -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / f"{stem}{'-' + name if name else ''}.png"

    return path


@pytest.fixture
def page(browser: Browser, screenshot_path: Callable[[str], Path]) -> Iterator[Page]:
    """A fresh page (its own context: no cookies shared between tests); its last state is
    saved as `<test id>.png` in the screenshots folder, also when the test fails."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    opened = context.new_page()
    try:
        yield opened
    finally:
        if not opened.is_closed():
            opened.screenshot(path=screenshot_path(""), full_page=True)
        context.close()


@pytest.fixture
def screenshot(page: Page, screenshot_path: Callable[[str], Path]) -> Screenshot:
    """Save the page now as `<test id>-<name>.png`; returns the file."""

    def take(name: str) -> Path:
        path = screenshot_path(name)
        page.screenshot(path=path, full_page=True)
        return path

    return take


@contextmanager
def _asyncio_allowed() -> Iterator[None]:
    """Playwright's loop unmarked as the thread's running loop for the block, marked again
    after. Safe: that loop only runs while a Playwright call waits, never during the block."""
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture
def asyncio_outside_playwright() -> Callable[[], AbstractContextManager[None]]:
    """`with asyncio_outside_playwright(): asyncio.run(...)` in a test that holds a page."""
    return _asyncio_allowed
