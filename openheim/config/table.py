"""One TOML table being read: every error it raises names the file and the dotted key."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TypeVar

import attrs
import cattrs
from attrs import AttrsInstance
from cattrs.errors import ClassValidationError

from openheim.config.bounds import BOUNDS
from openheim.config.convert import Misfit, first_problem, type_word
from openheim.foundation.errors import ConfigError

T = TypeVar("T")
A = TypeVar("A", bound=AttrsInstance)

#: Names of providers and MCP servers: they appear in ``provider/model`` and ``server__tool``.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def config_error(path: Path, key: str, problem: str, fix: str) -> ConfigError:
    """``FILE: `KEY` PROBLEM; fix: FIX.`` (a fix that asks a question keeps its ``?``)."""
    end = "" if fix.endswith(("?", ".")) else "."
    return ConfigError(f"{path}: `{key}` {problem}; fix: {fix}{end}")


def settings_of(cls: type[AttrsInstance]) -> frozenset[str]:
    """The keys a table for ``cls`` may hold: its attrs fields' names."""
    return frozenset(attrs.fields_dict(cls))


@attrs.frozen
class Table:
    path: Path
    where: str
    data: Mapping[str, object]
    converter: cattrs.Converter = attrs.field(repr=False, eq=False)

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, problem: str, fix: str) -> ConfigError:
        return config_error(self.path, self.key(name), problem, fix)

    def fail_here(self, problem: str, fix: str) -> ConfigError:
        """An error about the table as a whole (its name, or keys that go together)."""
        return config_error(self.path, self.where, problem, fix)

    def check_name(self, name: str) -> None:
        """A named table's name (``[providers.NAME]``), which other settings refer to."""
        if not NAME_RE.match(name):
            raise self.fail_here(
                "has an invalid name", "use letters, digits, `_`, `-` and `.` only"
            )

    def child(self, name: str) -> Table | None:
        """The sub-table ``name``, or None when the file has none."""
        if name not in self.data:
            return None
        value = self.data[name]
        if not isinstance(value, Mapping):
            raise self.fail(name, f"must be a table, got {type_word(type(value))}", "set a table")
        return Table(self.path, self.key(name), value, self.converter)

    def children(self) -> list[tuple[str, Table]]:
        """Every entry of a table of named tables (``[providers.NAME]``), in file order."""
        found = []
        for name in self.data:
            child = self.child(name)
            assert child is not None
            found.append((name, child))
        return found

    def value(self, name: str, kind: type[T]) -> T | None:
        """The value of one key as ``kind``, or None when the file does not give it."""
        if name not in self.data:
            return None
        try:
            return self.converter.structure(self.data[name], kind)
        except Misfit as misfit:
            raise self.fail(name, misfit.problem, misfit.fix) from None

    def required(self, name: str, kind: type[T], fix: str) -> T:
        """The value of a key the file must give; ``fix`` says what to write when it does not."""
        value = self.value(name, kind)
        if value is None:
            raise self.fail(name, "is missing", fix)
        return value

    def check_keys(self, allowed: Collection[str]) -> None:
        """Refuse a key no setting has, before anything is read: a typo is named as such."""
        for name in self.data:
            if name not in allowed:
                close = difflib.get_close_matches(name, sorted(allowed), n=1)
                fix = f"did you mean `{close[0]}`?" if close else "remove it"
                raise self.fail(name, "is not a known setting", fix)

    def structure(self, cls: type[A], **built: object) -> A:
        """``cls`` from this table's keys that are its fields, plus the values in ``built``.

        A field the file leaves out takes the default of ``cls``; that is the only place a
        default is written. ``built`` holds what the reader made itself (names, sub-tables,
        values it checked or resolved).
        """
        fields = settings_of(cls) - built.keys()
        given = {name: value for name, value in self.data.items() if name in fields}
        try:
            result = self.converter.structure({**given, **built}, cls)
        except ClassValidationError as error:
            found = first_problem(error)
            place = f"to [{self.where}]" if self.where else "at the top"
            fix = found.fix or f"add `{found.key} = ...` {place}"
            raise self.fail(found.key, found.problem, fix) from None
        for name, bound in BOUNDS.get(cls, {}).items():
            value = given.get(name)
            if isinstance(value, int | float) and (problem := bound.problem(value)):
                raise self.fail(name, problem, bound.fix)
        return result
