from pathlib import Path

import pytest

from openheim.agent.prompt import build_system_prompt
from openheim.foundation.errors import SkillError
from openheim.skills import installed_skills, load_skills, parse_skill_names


def make_skills(tmp_path: Path) -> Path:
    (tmp_path / "rust.md").write_text("Use cargo.\n")
    (tmp_path / "debugging.md").write_text("Bisect.\n")
    (tmp_path / "notes.txt").write_text("not a skill")
    return tmp_path


def test_parse_names() -> None:
    assert parse_skill_names(" rust, debugging,,rust ") == ("rust", "debugging")
    assert parse_skill_names("") == ()


def test_load_in_given_order(tmp_path: Path) -> None:
    skills = load_skills(make_skills(tmp_path), ["debugging", "rust"])
    assert [(s.name, s.content) for s in skills] == [
        ("debugging", "Bisect."),
        ("rust", "Use cargo."),
    ]
    prompt = build_system_prompt(cwd="/w", skills=skills)
    assert prompt.index("## Skill: debugging\n\nBisect.") < prompt.index("## Skill: rust")
    assert "/w" in prompt


def test_unknown_skill_lists_installed(tmp_path: Path) -> None:
    with pytest.raises(
        SkillError, match=r"unknown skill 'go'; installed skills in .*: debugging, rust"
    ):
        load_skills(make_skills(tmp_path), ["go"])


def test_path_like_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "skills").mkdir()
    skills_dir = make_skills(tmp_path / "skills")
    (tmp_path / "secret.md").write_text("secret")
    with pytest.raises(SkillError, match="unknown skill '../secret'"):
        load_skills(skills_dir, ["../secret"])


def test_installed_skills(tmp_path: Path) -> None:
    assert installed_skills(make_skills(tmp_path)) == ["debugging", "rust"]
    assert installed_skills(tmp_path / "missing") == []


def test_system_prompt_override() -> None:
    assert build_system_prompt(cwd="/w", override="Be brief.") == "Be brief."
