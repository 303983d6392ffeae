"""list_dir, glob and grep: .gitignore as git reads it, .git skipped, caps with notes, and the
same grep output from ripgrep and from the Python engine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from openheim.sandbox.policy import SandboxPolicy
from openheim.sandbox.sandbox import NoBackend, Sandbox
from openheim.tools import grep as grep_module
from openheim.tools.base import ToolContext
from openheim.tools.globbing import BadPattern, compile_glob
from openheim.tools.grep import GrepTool
from openheim.tools.ignore import IgnoreRules
from openheim.tools.listing import GlobTool, ListDirTool

ENGINES = ["python", pytest.param("rg", marks=pytest.mark.skipif(
    shutil.which("rg") is None, reason="ripgrep is not installed"))]  # fmt: skip


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A small checkout: ignored build output, a re-included log, nested rules."""
    root = tmp_path / "repo"
    for folder in ("src/sub", "build", ".git", "docs"):
        (root / folder).mkdir(parents=True)
    (root / ".gitignore").write_text("build/\n*.log\n!keep.log\n# a comment\n")
    (root / "src/sub/.gitignore").write_text("generated.py\n")
    files = {
        "src/main.py": "import os\n\ndef main():\n    print('Hello')\n",
        "src/sub/util.py": "def helper():\n    return 'hello world'\n",
        "src/sub/generated.py": "hello = 'generated'\n",
        "build/out.py": "hello = 'built'\n",
        "debug.log": "hello log\n",
        "keep.log": "hello kept\n",
        ".git/config": "hello git\n",
        "docs/readme.md": "# Hello\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "data.bin").write_bytes(b"hello\x00binary")
    return root


def ctx(cwd: Path) -> ToolContext:
    return ToolContext(cwd=cwd)


def test_gitignore_rules_follow_git() -> None:
    rules = IgnoreRules().below("", "*.log\n!keep.log\nbuild/\n/top.txt\n")
    assert rules.ignored("a.log", False) and rules.ignored("x/y.log", False)
    assert not rules.ignored("keep.log", False)
    assert rules.ignored("build", True) and not rules.ignored("build", False)
    assert rules.ignored("top.txt", False) and not rules.ignored("x/top.txt", False)
    deeper = rules.below("x", "!a.log\n")  # a deeper file overrides a shallower one
    assert not deeper.ignored("x/a.log", False) and deeper.ignored("y/a.log", False)
    above = IgnoreRules.from_ancestors([("repo/src", "repo/src/*.tmp\n")])
    assert above.ignored("a.tmp", False) and not above.ignored("sub/a.tmp", False)


def test_globs_translate_precisely() -> None:
    assert compile_glob("*.py").match("a/b.py") and not compile_glob("*.py").match("a.pyc")
    assert compile_glob("src/*.{ts,tsx}").match("src/a.tsx")
    assert not compile_glob("src/*.ts").match("src/x/a.ts")
    assert compile_glob("src/**/*.ts").match("src/a.ts") and compile_glob("**").match("a/b")
    assert compile_glob("[!a]*").match("b") and not compile_glob("[!a]*").match("a")
    with pytest.raises(BadPattern):
        compile_glob("/abs")


async def test_list_dir_skips_git_and_ignored_files_and_sorts(tree: Path) -> None:
    result = await ListDirTool().call({"depth": 3}, ctx(tree))
    assert result.content.splitlines() == [
        ".gitignore (35 B)",
        "data.bin (12 B)",
        "docs/",
        "docs/readme.md (8 B)",
        "keep.log (11 B)",
        "src/",
        "src/main.py (42 B)",
        "src/sub/",
        "src/sub/.gitignore (13 B)",
        "src/sub/util.py (39 B)",
    ]


async def test_list_dir_depth_and_entry_caps_say_so(tree: Path) -> None:
    shallow = await ListDirTool().call({}, ctx(tree))
    assert shallow.content.splitlines()[-1] == (
        "[... deeper folders not listed; raise depth or list a subfolder]"
    )
    assert "src/main.py (42 B)" not in shallow.content
    cut = await ListDirTool(max_entries=2).call({"depth": 3}, ctx(tree))
    assert cut.content.splitlines() == [
        ".gitignore (35 B)",
        "data.bin (12 B)",
        "[... cut at 2 entries; list a subfolder or a smaller depth]",
    ]


async def test_list_dir_in_a_subfolder_applies_the_checkout_rules_above(tree: Path) -> None:
    (tree / "src/trace.log").write_text("x")
    result = await ListDirTool().call({"path": "src"}, ctx(tree))
    assert result.content.splitlines() == [
        "main.py (42 B)",
        "sub/",
        "[... deeper folders not listed; raise depth or list a subfolder]",
    ]
    assert (await ListDirTool().call({"path": "nope"}, ctx(tree))).content == (
        "File not found: nope"
    )


async def test_glob_finds_files_not_ignored(tree: Path) -> None:
    result = await GlobTool().call({"pattern": "**/*.py"}, ctx(tree))
    assert result.content == "src/main.py\nsrc/sub/util.py"
    assert (await GlobTool().call({"pattern": "*.log"}, ctx(tree))).content == "keep.log"
    cut = await GlobTool(max_results=1).call({"pattern": "**/*.py"}, ctx(tree))
    assert cut.content == "src/main.py\n[... cut at 1 files; use a narrower pattern]"
    none = await GlobTool().call({"pattern": "*.rs", "path": "src"}, ctx(tree))
    assert none.content == "No files match *.rs in src"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "python":
        monkeypatch.setattr(grep_module, "_ripgrep", lambda context: None)
    return str(request.param)


async def test_grep_matches_as_path_line_text(tree: Path, engine: str) -> None:
    result = await GrepTool().call({"pattern": "hello", "ignore_case": True}, ctx(tree))
    assert result.content == (
        "docs/readme.md:1: # Hello\n"
        "keep.log:1: hello kept\n"
        "src/main.py:4:     print('Hello')\n"
        "src/sub/util.py:2:     return 'hello world'\n"
        "[4 matches in 4 files]"
    )
    assert [(loc.path, loc.line) for loc in result.locations][:1] == [
        (str(tree / "docs/readme.md"), 1)
    ]


async def test_grep_context_glob_folder_and_file(tree: Path, engine: str) -> None:
    result = await GrepTool().call(
        {"pattern": "print", "path": "src", "glob": "*.py", "context": 1}, ctx(tree)
    )
    assert result.content == (
        "src/main.py-3- def main():\nsrc/main.py:4:     print('Hello')\n[1 match in 1 file]"
    )
    one = await GrepTool().call({"pattern": "helper", "path": "src/sub/util.py"}, ctx(tree))
    assert one.content == "src/sub/util.py:1: def helper():\n[1 match in 1 file]"
    assert (await GrepTool().call({"pattern": "zzz"}, ctx(tree))).content == "No matches"
    bad = await GrepTool().call({"pattern": "("}, ctx(tree))
    assert bad.is_error and bad.content.startswith("Invalid regular expression '(':")


async def test_grep_caps_matches_and_line_length(tmp_path: Path, engine: str) -> None:
    (tmp_path / "many.txt").write_text("".join(f"hit {i}\n" for i in range(10)))
    (tmp_path / "long.txt").write_text("needle " + "x" * 1000 + "\n")
    capped = await GrepTool(max_matches=3).call({"pattern": "hit"}, ctx(tmp_path))
    assert capped.content.splitlines() == [
        "many.txt:1: hit 0",
        "many.txt:2: hit 1",
        "many.txt:3: hit 2",
        "[stopped: more than 3 matches; narrow the pattern, path or glob]",
    ]
    long = await GrepTool().call({"pattern": "needle"}, ctx(tmp_path))
    first = long.content.splitlines()[0]
    assert first.endswith(" [... line cut]") and len(first) < 400


async def test_tree_tools_stay_inside_a_confined_workspace(tmp_path: Path, engine: str) -> None:
    work, other = tmp_path / "work", tmp_path / "other"
    work.mkdir()
    other.mkdir()
    (other / "secret.txt").write_text("needle secret")
    (work / "mine.txt").write_text("needle mine")
    os.symlink(other, work / "link")
    os.symlink(other / "secret.txt", work / "secret-link.txt")
    policy = SandboxPolicy(writable=(work,), readable=(), read_anywhere=False, hidden=())
    confined = ToolContext(cwd=work, sandbox=Sandbox(NoBackend(), policy))
    found = await GrepTool().call({"pattern": "needle"}, confined)
    assert found.content == "mine.txt:1: needle mine\n[1 match in 1 file]"
    for path in ("..", "../other", "link", str(other)):
        for tool, arguments in (
            (GrepTool(), {"pattern": "needle", "path": path}),
            (ListDirTool(), {"path": path}),
            (GlobTool(), {"pattern": "*", "path": path}),
        ):
            result = await tool.call(arguments, confined)
            assert result.content == f"Permission denied: {path} is outside the workspace"
    listing = await ListDirTool().call({}, confined)
    assert listing.content == "link@\nmine.txt (11 B)\nsecret-link.txt@"
