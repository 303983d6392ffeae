"""Rendering and screens: plans, thoughts, diffs and Markdown in the real browser, the phone
layout, and labels on every control."""

from __future__ import annotations

import pytest

from openheim.testing import Reply
from tests.ui.harness import FakeLlm, missing_browser
from tests.ui.page import Page, sel

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"{missing_browser()}")

#: Feeds ACP updates to a ChatView of its own, through the page's own modules.
RENDER = """
const done = arguments[arguments.length - 1];
import("/ui/chat.js").then(({ ChatView }) => {
  const log = document.createElement("div");
  log.id = "render-test";
  document.body.append(log);
  const chat = new ChatView(log, { onOpenPath() {} });
  for (const update of arguments[0]) chat.apply(update);
  done();
}, (error) => done(String(error)));
"""

MARKDOWN = (
    "# Title\n\n| a | b |\n|---|--:|\n| 1 | 2 |\n\n- one\n- two\n  - nested\n\n1. x\n2. y\n\n"
    "> quoted\n\nsnake_case_name and a__b__c stay; ~~gone~~ "
)


def test_plans_thoughts_diffs_and_markdown_render(page: Page) -> None:
    page.open()
    entries = [
        {"content": "Read the code", "status": "completed", "priority": "high"},
        {"content": "Fix the bug", "status": "in_progress", "priority": "medium"},
        {"content": "Run the tests", "status": "pending", "priority": "low"},
    ]
    updates = [
        {"sessionUpdate": "agent_thought_chunk", "content": {"type": "text", "text": "Hmm <b>"}},
        {"sessionUpdate": "plan", "entries": [{**e, "status": "pending"} for e in entries]},
        {"sessionUpdate": "plan", "entries": entries},  # a plan update replaces the plan
        {
            "sessionUpdate": "tool_call",
            "toolCallId": "t1",
            "title": "Edit a.py",
            "kind": "edit",
            "status": "pending",
            "rawInput": {"path": "a.py"},
        },
        {
            "sessionUpdate": "tool_call_update",
            "toolCallId": "t1",
            "status": "completed",
            "content": [
                {"type": "diff", "path": "/w/a.py", "oldText": "a\nb\nc\n", "newText": "a\nB\nc\n"}
            ],
        },
        {"sessionUpdate": "usage_update", "used": 1200, "size": 8000},
        {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": MARKDOWN}},
    ]
    assert page.driver.execute_async_script(RENDER, updates) is None
    log = page.find("#render-test")  # outside the grid: hidden from .text, so textContent

    thought = page.by("thought", log)
    assert thought.get_attribute("open") is None  # collapsed, dimmed
    assert thought.get_attribute("textContent") == "ThinkingHmm <b>"
    plan = page.by("plan", log)
    assert len(page.all("plan", log)) == 1
    rows = page.find_all(".plan-entry", plan)
    assert [r.get_attribute("data-status") for r in rows] == [e["status"] for e in entries]
    assert "Read the code" in rows[0].get_attribute("textContent") and "high" in rows[
        0
    ].get_attribute("textContent")

    diff = page.by("diff", log)
    assert [e.get_attribute("textContent") for e in page.find_all(".diff-del", diff)] == ["- b\n"]
    assert [e.get_attribute("textContent") for e in page.find_all(".diff-add", diff)] == ["+ B\n"]
    assert "1,200 / 8,000 tokens" in page.by("usage", log).text

    answer = page.wait_for("#render-test table", "the table")
    assert [c.get_attribute("textContent") for c in page.find_all("td", answer)] == ["1", "2"]
    message = page.by("message-assistant", log)
    assert page.find("h1", message).get_attribute("textContent") == "Title"
    assert page.find("ul ul li", message).get_attribute("textContent") == "nested"
    assert [li.get_attribute("textContent") for li in page.find_all("ol > li", message)] == [
        "x",
        "y",
    ]
    assert page.find("blockquote", message).get_attribute("textContent") == "quoted"
    assert page.find("del", message).get_attribute("textContent") == "gone"
    assert "snake_case_name and a__b__c stay" in message.get_attribute("textContent")
    page.js("document.getElementById('render-test').remove()")


def test_every_control_has_a_label(page: Page) -> None:
    page.open()
    unlabelled = page.js(
        """return [...document.querySelectorAll('input, select, textarea, button')]
          .filter((el) => !(el.labels?.length || el.getAttribute('aria-label') ||
                            el.textContent.trim()))
          .map((el) => el.outerHTML)"""
    )
    assert unlabelled == []


def test_a_phone_screen_gets_one_column_with_tabs(page: Page, llm: FakeLlm) -> None:
    page.driver.set_window_size(390, 844)
    llm.add(Reply.text("Small screen, same answer."))
    page.open()
    width = page.js("return window.innerWidth")
    assert isinstance(width, int)
    assert width <= 390
    assert page.by("tab-chat").is_displayed()
    assert page.find("#chat-pane").is_displayed()
    assert not page.find("#files-pane").is_displayed()
    assert not page.find("#sessions-pane").is_displayed()
    assert page.js("return document.documentElement.scrollWidth") <= width

    page.by("tab-files").click()
    page.wait(lambda: page.find("#files-pane").is_displayed(), "the files tab")
    assert not page.find("#chat-pane").is_displayed()
    page.by("tab-sessions").click()
    page.wait(lambda: page.by("new-session").is_displayed(), "the sessions tab")
    page.by("new-session").click()  # back to the chat
    page.wait(lambda: page.find("#chat-pane").is_displayed(), "the chat tab")
    page.send("hello from a phone")
    page.wait_assistant("Small screen, same answer.")
    page.wait_idle()
    assert page.js("return document.documentElement.scrollWidth") <= width
    assert page.by("send").is_displayed()
    page.wait_for(sel("message-user"))
