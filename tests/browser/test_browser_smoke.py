"""The browser test set-up works: Playwright's Chromium loads a page of a real `fraudops
serve` (uvicorn in its own process) and saves its screenshot."""

import asyncio
import struct
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from playwright.sync_api import Page

from service_process import running_service

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header."""
    header = path.read_bytes()[:24]
    assert PNG_SIGNATURE == header[:8]
    width, height = struct.unpack(">II", header[16:24])
    return int(width), int(height)


def test_chromium_renders_a_page_of_a_real_service_and_saves_its_screenshot(
    tmp_path: Path, page: Page, screenshot: Callable[[str], Path]
) -> None:
    """/healthz of a running `fraudops serve` opens in Chromium; its text is on the page and
    the screenshot is a PNG of the viewport's width."""
    with running_service(tmp_path / "home", ready=False) as service:
        response = page.goto(f"{service.url}/healthz")
        assert response is not None
        assert 200 == response.status
        assert '{"status":"ok"}' == page.locator("body").inner_text().strip()
        saved = screenshot("healthz")
    width, height = png_size(saved)
    assert 1280 == width
    assert height >= 800


def test_asyncio_code_runs_beside_an_open_page(
    page: Page, asyncio_outside_playwright: Callable[[], AbstractContextManager[None]]
) -> None:
    """With a page open, asyncio.run works inside the helper, and the page afterwards."""

    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    page.set_content("<main><h1>fraudops</h1></main>")
    with asyncio_outside_playwright():
        assert 42 == asyncio.run(answer())
    assert "fraudops" == page.get_by_role("heading").inner_text()
