"""The REPL draws the model's thinking dimmed, apart from the answer that follows it."""

from __future__ import annotations

import io

from rich.console import Console

from openheim.agent.events import MessageChunk, ThoughtChunk
from openheim.repl.view import ReplView
from openheim.testing import Reply
from tests.repl.conftest import ReplHome
from tests.repl.test_piped import run_piped

DIM_ITALIC = "\x1b[2;3m"


def view_on_a_terminal() -> tuple[ReplView, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system="standard", width=100)
    return ReplView(console, Console(file=io.StringIO())), out


def test_thoughts_are_dimmed_and_the_answer_starts_a_line_of_its_own() -> None:
    view, out = view_on_a_terminal()
    for event in (ThoughtChunk("Let me "), ThoughtChunk("think."), MessageChunk("It is 4.")):
        view.show(event)
    view.end_turn()
    drawn = out.getvalue()
    assert f"{DIM_ITALIC}Let me " in drawn
    assert f"{DIM_ITALIC}think." in drawn
    answer_at = drawn.index("It is 4.")
    assert drawn[answer_at - 1] == "\n"
    assert DIM_ITALIC not in drawn[answer_at - 10 :]  # the answer itself is plain
    assert drawn.endswith("It is 4.\n")


async def test_piped_repl_prints_the_thought_then_the_answer(home: ReplHome) -> None:
    home.write_config(extra_provider='reasoning = "low"\n')
    home.llm.script.extend([Reply.text("It is 4.", thinking="Two and two.")])
    result = await run_piped(home, "2+2?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["Two and two.", "It is 4."]
    assert home.llm.requests[0].body["reasoning_effort"] == "low"
