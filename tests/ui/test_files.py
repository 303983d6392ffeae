"""The file pane: the live tree, viewing and saving a file, new folder, rename, delete."""

from __future__ import annotations

import pytest

from openheim.testing import Reply
from tests.ui.harness import FakeLlm, UiServer, missing_browser
from tests.ui.page import Page, sel

pytestmark = pytest.mark.skipif(missing_browser() is not None, reason=f"{missing_browser()}")


def test_a_file_a_tool_creates_appears_in_the_tree_live(page: Page, llm: FakeLlm) -> None:
    llm.add(
        Reply.tool_call("write_file", {"path": "made-by-tool.md", "content": "# made\n"}),
        Reply.text("Made it."),
    )
    page.open()
    page.new_session()
    assert not page.find_all(f'{sel("file-tree")} li[data-path="made-by-tool.md"]')
    page.send("make a file")
    page.tree_entry("made-by-tool.md")  # pushed by the fs watch, no reload
    page.wait_idle()


def test_open_edit_and_save_a_file(page: Page, server: UiServer) -> None:
    from selenium.webdriver.common.keys import Keys

    source = server.workspace / "edit_me.py"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_text("def greet():\n    return 'hello'\n")
    page.open()
    page.open_entry("edit_me.py")
    viewer = page.wait_for(sel("file-viewer"))
    page.wait(lambda: "def greet" in page.by("file-content").text, "the file's text")
    assert page.find_all(".tok-keyword", viewer)  # highlighted, read-only
    assert not page.by("file-editor").is_displayed()

    page.by("file-edit").click()
    editor = page.by("file-editor")
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys("print('saved from the browser')\n")
    page.by("file-save").click()
    page.wait(lambda: page.by("file-content").is_displayed(), "the saved view")
    assert source.read_text() == "print('saved from the browser')\n"

    # A change on disk shows in the open file.
    source.write_text("x = 1\n")
    page.wait(lambda: "x = 1" in page.by("file-content").text, "the file to reload")


def test_new_folder_rename_and_delete_with_confirmation(page: Page, server: UiServer) -> None:
    page.open()
    page.by("file-new-folder").click()
    page.answer_dialog("drafts")
    page.tree_entry("drafts")
    assert (server.workspace / "drafts").is_dir()

    page.by("file-rename").click()  # the new folder is selected
    page.answer_dialog("final")
    page.tree_entry("final")
    assert (server.workspace / "final").is_dir()
    assert not (server.workspace / "drafts").exists()

    page.by("file-delete").click()
    dialog = page.wait_for("dialog[open]")
    assert "final" in dialog.text
    page.by("dialog-cancel", dialog).click()  # cancelled: nothing happens
    page.wait(lambda: not page.find_all("dialog[open]"), "the dialog to close")
    assert (server.workspace / "final").is_dir()

    page.by("file-delete").click()
    page.answer_dialog()
    page.wait(
        lambda: not page.find_all(f'{sel("file-tree")} li[data-path="final"]'),
        "the folder to leave the tree",
    )
    assert not (server.workspace / "final").exists()
