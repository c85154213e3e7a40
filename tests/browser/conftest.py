"""Browser fixtures: Debian's Chromium (headless) driven by Playwright against a real
``lienthong serve`` in a subprocess, as tests/acceptance runs it.

Playwright's own browser download is never used (``playwright install`` is not run): the
browser is the system's ``chromium``, which ``make test`` installs (see the Makefile). Without
it these tests are skipped with the reason shown. Every test saves screenshots of the pages it
saw under ``test-artifacts/screenshots/`` (ignored by git).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Project, PushEndpoint, make_project, prepare, serving
from tests.support import BA_DINH

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip(
            "browser tests need Debian's chromium: `apt-get install -y chromium` (make test "
            "installs it when run as root)"
        )
    return found


@pytest.fixture(scope="module")
def endpoint() -> Iterator[PushEndpoint]:
    """Ba Đình's push endpoint: 400 at first (its system refuses the package, so the
    delivery dies at once)."""
    with PushEndpoint(400).running() as ep:
        yield ep


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, endpoint: PushEndpoint) -> Iterator[Project]:
    """A served project where Ba Đình takes deliveries by push at *endpoint*."""
    project = prepare(make_project(tmp_path_factory.mktemp("console")))
    agencies = project.root / "config" / "agencies.toml"
    text = agencies.read_text(encoding="utf-8")
    block = re.compile(rf'(code = "{re.escape(BA_DINH)}"(?:\n(?!\[\[).*)*?)\ndelivery = "pull"')
    text, count = block.subn(rf'\1\ndelivery = "push"\npush_url = "{endpoint.url}"', text)
    assert count == 1
    agencies.write_text(text, encoding="utf-8")
    with serving(project) as running:
        yield running


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium_path, headless=True, args=["--no-sandbox"]
        )
        yield launched
        launched.close()


class Shots:
    """Screenshots of one test, numbered in the order taken."""

    def __init__(self, test: str) -> None:
        self.test, self.count = test, 0
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(self, page: Any, what: str) -> None:
        self.count += 1
        page.screenshot(
            path=str(SCREENSHOTS / f"{self.test}-{self.count:02d}-{what}.png"), full_page=True
        )


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(request.node.name)


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page for each test."""
    context = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()
