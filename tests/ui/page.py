"""The page as the tests drive it: find by ``data-testid``, wait on DOM conditions, type."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tests.ui.harness import DEADLINE, TOKEN, UiServer

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.remote.webelement import WebElement


def sel(name: str) -> str:
    """The CSS selector of a `data-testid`."""
    return f'[data-testid="{name}"]'


class Page:
    def __init__(self, driver: WebDriver, server: UiServer) -> None:
        self.driver = driver
        self.server = server
        #: Console errors a test expects (patterns), e.g. refused sockets while restarting.
        self.allowed_console: list[re.Pattern[str]] = []

    # --- finding and waiting -------------------------------------------------------------------

    def find(self, selector: str, within: WebElement | None = None) -> WebElement:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_element(By.CSS_SELECTOR, selector)

    def find_all(self, selector: str, within: WebElement | None = None) -> list[WebElement]:
        from selenium.webdriver.common.by import By

        return (within or self.driver).find_elements(By.CSS_SELECTOR, selector)

    def by(self, name: str, within: WebElement | None = None) -> WebElement:
        return self.find(sel(name), within)

    def all(self, name: str, within: WebElement | None = None) -> list[WebElement]:
        return self.find_all(sel(name), within)

    def wait(self, condition: Callable[[], object], what: str, seconds: float = DEADLINE) -> None:
        """Until ``condition()`` is truthy (WebDriverWait: re-checks the DOM, no fixed sleep)."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        def check(_: object) -> object:
            try:
                return condition()
            except StaleElementReferenceException:
                return False

        WebDriverWait(self.driver, seconds, poll_frequency=0.02).until(check, message=what)

    def wait_for(self, selector: str, what: str = "") -> WebElement:
        self.wait(lambda: self.find_all(selector), what or selector)
        return self.find(selector)

    def js(self, script: str, *args: object) -> object:
        return self.driver.execute_script(script, *args)

    # --- the app ---------------------------------------------------------------------------

    def connection_state(self) -> str:
        return self.by("connection-status").get_attribute("data-state") or ""

    def wait_connected(self) -> None:
        self.wait(lambda: self.connection_state() == "connected", "the page to connect")
        # The first session list is in once the page asked for it after connecting.
        self.wait(lambda: self.find_all(f"{sel('session-list')} > li"), "the session list")

    def open(self, path: str = "/") -> None:
        """Load the page with the token in the URL, as a link from the operator would."""
        separator = "&" if "?" in path else "?"
        self.driver.get(f"{self.server.url}{path}{separator}token={TOKEN}")
        self.wait_connected()

    def new_session(self) -> None:
        self.by("new-session").click()
        self.wait_for(sel("chat-empty"), "an empty chat")

    def type_prompt(self, text: str) -> None:
        from selenium.webdriver.common.keys import Keys

        prompt = self.by("prompt-input")
        prompt.clear()
        lines = text.split("\n")
        for n, line in enumerate(lines):
            prompt.send_keys(line)
            if n < len(lines) - 1:
                prompt.send_keys(Keys.SHIFT, Keys.ENTER)

    def send(self, text: str) -> None:
        """Type ``text`` (newlines as Shift+Enter) and press Enter."""
        from selenium.webdriver.common.keys import Keys

        self.type_prompt(text)
        self.by("prompt-input").send_keys(Keys.ENTER)

    def running(self) -> bool:
        return self.by("cancel").is_displayed()

    def wait_idle(self) -> None:
        self.wait(lambda: not self.running(), "the turn to end")

    def texts(self, name: str) -> list[str]:
        return [el.get_attribute("textContent") or "" for el in self.all(name)]

    def wait_assistant(self, text: str) -> WebElement:
        self.wait(
            lambda: any(text in t for t in self.texts("message-assistant")), f"the answer {text!r}"
        )
        return next(
            el
            for el in self.all("message-assistant")
            if text in (el.get_attribute("textContent") or "")
        )

    def tool_card(self, index: int = -1) -> WebElement:
        self.wait(lambda: self.all("tool-call"), "a tool card")
        return self.all("tool-call")[index]

    def wait_status(self, card: WebElement, status: str) -> None:
        self.wait(
            lambda: card.get_attribute("data-status") == status, f"the tool card to be {status}"
        )

    def session_id(self) -> str:
        url = str(self.js("return window.location.hash"))
        match = re.fullmatch(r"#session=([0-9a-f-]{36})", url)
        assert match, url
        return match.group(1)

    def tree_entry(self, rel: str) -> WebElement:
        return self.wait_for(f'{sel("file-tree")} li[data-path="{rel}"]', f"{rel} in the tree")

    def open_entry(self, rel: str) -> None:
        """Click a tree entry (a folder toggles, a file opens)."""
        from selenium.common.exceptions import (
            ElementNotInteractableException,
            StaleElementReferenceException,
        )

        def clicked() -> bool:
            try:
                self.find("button", self.tree_entry(rel)).click()
            except (StaleElementReferenceException, ElementNotInteractableException):
                return False  # the tree was redrawn under the click: find it again
            return True

        self.wait(clicked, f"a click on {rel}")

    def answer_dialog(self, value: str | None = None) -> None:
        dialog = self.wait_for("dialog[open]", "the dialog")
        if value is not None:
            field = self.by("dialog-input", dialog)
            field.clear()
            field.send_keys(value)
        self.by("dialog-ok", dialog).click()
        self.wait(lambda: not self.find_all("dialog[open]"), "the dialog to close")

    def console_errors(self) -> list[str]:
        """SEVERE browser log entries since the last call, minus the ones the test expects."""
        entries = self.driver.get_log("browser")
        return [
            entry["message"]
            for entry in entries
            if entry["level"] == "SEVERE"
            and not any(p.search(entry["message"]) for p in self.allowed_console)
        ]

    def allow_console(self, patterns: Sequence[str]) -> None:
        self.allowed_console.extend(re.compile(p) for p in patterns)
