"""Signing in: the token asked for, kept in sessionStorage, and never left in the URL."""

from __future__ import annotations

import pytest

from tests.ui.harness import TOKEN, missing_browser
from tests.ui.page import Page, sel

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"{missing_browser()}")


def test_the_page_asks_for_the_token_and_keeps_it_out_of_the_url(page: Page) -> None:
    page.driver.get(page.server.url)
    page.js("sessionStorage.clear()")
    page.driver.refresh()
    field = page.wait_for(sel("token-input"), "the token field")
    page.wait(field.is_displayed, "the login form")
    assert page.connection_state() == "signed-out"

    field.send_keys("not-the-token-0000000000")
    page.by("login-submit").click()
    page.wait(lambda: "not accepted" in page.find("#login-error").text, "the refusal to be shown")

    field.clear()
    field.send_keys(TOKEN)
    page.by("login-submit").click()
    page.wait_connected()
    assert not page.find("#login").is_displayed()
    assert page.js("return sessionStorage.getItem('openheim.token')") == TOKEN

    # A link carrying ?token= signs in too, and the token leaves the address bar at once.
    page.js("sessionStorage.clear()")
    page.open("/?x=1")
    assert TOKEN not in page.driver.current_url
    assert page.driver.current_url.endswith("/?x=1")
    assert TOKEN not in str(page.js("return JSON.stringify(history.state) + document.referrer"))
    assert TOKEN not in page.server.logs()
