"""The chat in a real browser: a prompt's tool card and streamed answer, permissions, cancel,
model picker, the XSS reply, reload and replay, and reconnecting after a server restart."""

from __future__ import annotations

import pytest

from openheim.testing import Reply
from tests.processes import unique_seconds
from tests.ui.harness import FakeLlm, missing_browser
from tests.ui.page import Page, sel

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"{missing_browser()}")

ANSWER = "Wrote it. **Bold** and `code`.\n\n```python\ndef hello():\n    return 'hi'\n```\n"


def test_a_prompt_shows_the_tool_card_then_the_streamed_answer(page: Page, llm: FakeLlm) -> None:
    llm.add(
        Reply.tool_call(
            "write_file", {"path": "notes/hello.txt", "content": "one\ntwo\n"}, id="call_w"
        ),
        Reply.text(ANSWER, pieces=8),
    )
    page.open()
    page.new_session()
    page.send("Write a note\nplease")  # Shift+Enter made the second line

    user = page.wait_for(sel("message-user"))
    assert user.text == "Write a note\nplease"
    card = page.tool_card()
    page.wait_status(card, "completed")
    assert card.get_attribute("data-kind") == "edit"
    assert page.by("tool-status", card).text == "done"
    assert "notes/hello.txt" in page.by("diff", card).text  # an edit's output is a diff
    assert page.find_all(".diff-add", card)

    answer = page.wait_assistant("Wrote it.")
    page.wait_idle()
    assert page.find("strong", answer).text == "Bold"
    assert page.find("code", answer).text == "code"
    assert page.find_all(".codeblock .tok-keyword", answer)  # highlighted python
    usage = page.wait_for(sel("usage"))
    assert "tokens in context" in usage.text
    assert page.session_id() in page.by("session-list").get_attribute("innerHTML")


def test_permission_allow_and_reject(page: Page, llm: FakeLlm, server) -> None:
    llm.add(
        Reply.tool_call("execute_command", {"command": "echo allowed-run"}, id="call_a"),
        Reply.text("Ran it."),
        Reply.tool_call("execute_command", {"command": "echo never-run"}, id="call_r"),
        Reply.text("Did not run it."),
    )
    page.open()
    page.new_session()
    page.send("run something")
    allow = page.wait_for(sel("permission-allow"), "the permission buttons")
    assert page.all("permission-reject")
    allow.click()
    card = page.tool_card(0)
    page.wait_status(card, "completed")
    assert "allowed-run" in page.by("tool-output", card).get_attribute("textContent")
    page.wait_assistant("Ran it.")
    page.wait_idle()

    page.send("and another")
    page.wait(lambda: len(page.all("tool-call")) == 2, "the second card")
    page.wait_for(sel("permission-reject"), "the permission buttons").click()
    card = page.tool_card(1)
    page.wait_status(card, "failed")
    page.wait_assistant("Did not run it.")
    page.wait_idle()
    assert not page.all("permission-allow")  # answered requests lose their buttons


def test_escape_cancels_a_running_command(page: Page, llm: FakeLlm) -> None:
    from selenium.webdriver.common.keys import Keys

    llm.add(Reply.tool_call("execute_command", {"command": f"sleep {unique_seconds(30)}"}))
    page.open()
    page.new_session()
    page.send("wait a while")
    page.wait_for(sel("permission-allow")).click()
    card = page.tool_card()
    page.wait_status(card, "in_progress")
    assert page.running()
    assert page.by("tool-status", card).text == "running"
    page.by("prompt-input").send_keys(Keys.ESCAPE)
    page.wait_status(card, "failed")
    page.wait_idle()
    assert page.by("stop-note").text == "Stopped."


def test_the_cancel_button_stops_a_turn(page: Page, llm: FakeLlm) -> None:
    llm.add(Reply.tool_call("execute_command", {"command": f"sleep {unique_seconds(30)}"}))
    page.open()
    page.new_session()
    page.send("wait again")
    page.wait_for(sel("permission-allow")).click()
    card = page.tool_card()
    page.wait_status(card, "in_progress")
    page.by("cancel").click()
    page.wait_status(card, "failed")
    page.wait_idle()


def test_a_model_reply_with_markup_renders_as_text(page: Page, llm: FakeLlm) -> None:
    hostile = (
        'Look: <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> '
        "[click](javascript:window.__pwned=3) [ok](https://example.com/a)"
    )
    llm.add(Reply.text(hostile, pieces=5))
    page.open()
    page.new_session()
    page.send("say something nasty")
    answer = page.wait_assistant("</script>")
    page.wait_idle()
    assert "<img src=x onerror=" in answer.text
    assert "<script>window.__pwned=2</script>" in answer.text
    log = page.find("#chat-log")
    assert page.find_all("img, script, iframe", log) == []
    links = page.find_all("a", answer)
    assert [a.get_attribute("href") for a in links] == ["https://example.com/a"]
    assert links[0].get_attribute("rel") == "noopener noreferrer nofollow"
    assert page.js("return window.__pwned") is None


def test_the_model_picker_switches_the_model(page: Page, llm: FakeLlm) -> None:
    from selenium.webdriver.support.ui import Select

    llm.add(Reply.text("First."), Reply.text("Second."))
    page.open()
    page.new_session()
    page.send("first")
    page.wait_assistant("First.")
    page.wait_idle()
    picker = Select(page.by("model-picker"))
    assert picker.first_selected_option.get_attribute("value") == "fake/fake-model"
    assert page.all("mode-picker")
    picker.select_by_value("fake/other-model")
    page.wait(
        lambda: (
            Select(page.by("model-picker")).first_selected_option.get_attribute("value")
            == "fake/other-model"
        ),
        "the new model",
    )
    before = llm.request_count()
    page.send("second")
    page.wait_assistant("Second.")
    page.wait_idle()
    assert llm.request_body(before)["model"] == "other-model"


def test_a_reload_lists_the_session_and_replays_it(page: Page, llm: FakeLlm) -> None:
    llm.add(
        Reply.tool_call("read_file", {"path": "notes/hello.txt"}, id="call_read"),
        Reply.text("It says one, two."),
    )
    page.open()
    page.new_session()
    page.send("What does the note say?")
    page.wait_assistant("It says one, two.")
    page.wait_idle()
    session_id = page.session_id()

    page.driver.refresh()
    page.wait_connected()
    entry = page.wait_for(f'{sel("session-list")} li[data-session-id="{session_id}"]')
    assert "What does the note say?" in entry.text
    page.wait_assistant("It says one, two.")
    assert page.texts("message-user") == ["What does the note say?"]
    assert page.tool_card().get_attribute("data-status") == "completed"

    # Another session, then back to this one from the list.
    page.new_session()
    page.find(f'{sel("session-list")} li[data-session-id="{session_id}"] button').click()
    page.wait_assistant("It says one, two.")
    assert page.session_id() == session_id


def test_the_page_reconnects_after_the_server_restarts(page: Page, llm: FakeLlm, server) -> None:
    # Sockets refused while the server is down are expected console noise here.
    page.allow_console([r"WebSocket connection to .* failed", r"ERR_CONNECTION_REFUSED"])
    llm.add(Reply.text("Before the restart."), Reply.text("After the restart."))
    page.open()
    page.new_session()
    page.send("hello")
    page.wait_assistant("Before the restart.")
    page.wait_idle()
    session_id = page.session_id()

    server.restart()
    page.wait_connected()
    page.wait_assistant("Before the restart.")  # replayed by session/load
    assert page.session_id() == session_id
    page.send("still there?")
    page.wait_assistant("After the restart.")
    page.wait_idle()
    assert page.texts("message-user") == ["hello", "still there?"]
