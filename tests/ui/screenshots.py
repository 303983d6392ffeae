"""Screenshots of the browser UI's main states for the docs: ``make screenshots`` (or
``python -m tests.ui.screenshots [FOLDER]``) writes PNGs to ``docs/ui/``.

The same stack as the tests: the scripted fake LLM, the real ``openheim serve``, headless
Chromium. Not a test; run it after changing how the page looks.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from openheim.testing import Reply
from tests.processes import unique_seconds
from tests.ui.harness import FakeLlm, UiServer, missing_browser, open_browser, running_stack
from tests.ui.page import Page, sel

ANSWER = """I added a `greet` function and a test for it:

```python
def greet(name: str) -> str:
    return f"Hello, {name}!"
```

| File | Change |
|---|---|
| `app.py` | new `greet` |
| `test_app.py` | one test |

Run `pytest -q` to check it."""

PLAN = """Steps:

1. Read `app.py`
2. Add the function
3. Run the tests"""


def shoot(page: Page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.driver.save_screenshot(str(path))
    print(f"wrote {path}")


def chat_with_diff(page: Page, llm: FakeLlm, server: UiServer, folder: Path) -> None:
    server.workspace.mkdir(parents=True, exist_ok=True)
    (server.workspace / "app.py").write_text('def main():\n    print("hi")\n')
    llm.add(
        Reply.text(PLAN, thinking="The user wants a greet function; app.py is small."),
        Reply.tool_call(
            "write_file",
            {
                "path": "app.py",
                "content": 'def greet(name: str) -> str:\n    return f"Hello, {name}!"\n\n\n'
                'def main():\n    print(greet("world"))\n',
            },
            id="call_edit",
        ),
        Reply.text(ANSWER, pieces=12),
    )
    page.open()
    page.new_session()
    page.send("Plan a greet function for app.py")
    page.wait_assistant("Run the tests")
    page.wait_idle()
    page.send("Go ahead: add greet() to app.py")
    page.wait_assistant("to check it")
    page.wait_idle()
    page.open_entry("app.py")
    page.wait(lambda: "greet" in page.by("file-content").text, "the file")
    shoot(page, folder, "chat-tool-diff")


def permission(page: Page, llm: FakeLlm, folder: Path) -> None:
    llm.add(
        Reply.tool_call("execute_command", {"command": "echo '3 passed in 0.05s'"}, id="call_run"),
        Reply.text("All tests pass."),
    )
    page.send("Run the tests")
    page.wait_for(sel("permission-allow"))
    shoot(page, folder, "permission")
    page.by("permission-allow").click()
    page.wait_idle()


def files(page: Page, server: UiServer, folder: Path) -> None:
    (server.workspace / "src").mkdir(exist_ok=True)
    (server.workspace / "src" / "util.py").write_text(
        "import os\n\n\nclass Config:\n    # Where the data lives.\n    root = os.getcwd()\n"
    )
    page.open_entry("src")
    page.open_entry("src/util.py")
    page.wait(lambda: "class Config" in page.by("file-content").text, "the file")
    page.by("file-edit").click()
    shoot(page, folder, "files")
    page.by("file-cancel-edit").click()


def phone(page: Page, llm: FakeLlm, folder: Path) -> None:
    page.driver.set_window_size(390, 844)
    llm.add(
        Reply.tool_call("execute_command", {"command": f"sleep {unique_seconds(0)}"}),
        Reply.text("Done. The **build** is green."),
    )
    page.open()
    page.by("tab-sessions").click()
    page.new_session()
    page.send("Is the build green?")
    page.wait_for(sel("permission-allow")).click()
    page.wait_assistant("is green")
    page.wait_idle()
    shoot(page, folder, "phone")


def main(argv: list[str]) -> int:
    why = missing_browser()
    if why:
        print(f"screenshots: {why}", file=sys.stderr)
        return 1
    folder = Path(argv[0]) if argv else Path(__file__).parents[2] / "docs" / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, running_stack(Path(tmp)) as (llm, server):
        driver = open_browser()
        try:
            page = Page(driver, server)
            chat_with_diff(page, llm, server, folder)
            permission(page, llm, folder)
            files(page, server, folder)
            phone(page, llm, folder)
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
