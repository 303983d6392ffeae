"""One fake LLM, one real ``openheim serve`` and one headless Chromium for the whole folder."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.ui.harness import FakeLlm, UiServer, open_browser, running_stack
from tests.ui.page import Page

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeLlm, UiServer]]:
    with running_stack(tmp_path_factory.mktemp("ui")) as both:
        yield both


@pytest.fixture
def llm(stack: tuple[FakeLlm, UiServer]) -> FakeLlm:
    return stack[0]


@pytest.fixture
def server(stack: tuple[FakeLlm, UiServer]) -> UiServer:
    return stack[1]


@pytest.fixture(scope="session")
def browser() -> Iterator[WebDriver]:
    driver = open_browser()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser: WebDriver, server: UiServer) -> Iterator[Page]:
    """The page, checked afterwards for console errors (every test: "no console errors")."""
    browser.set_window_size(1400, 900)
    shown = Page(browser, server)
    shown.console_errors()  # what earlier tests left
    yield shown
    errors = shown.console_errors()
    assert errors == [], f"console errors: {errors}"
