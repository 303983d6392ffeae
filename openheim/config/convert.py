"""Strict TOML-to-attrs structuring: the attrs classes give the defaults, cattrs fills them in.

TOML already parsed the text, so a hook here only checks a value's shape (``true`` is not an
integer, ``"5"`` is not a number) and says what is wrong in words a user can act on. The file
and the dotted key are added by :mod:`openheim.config.table`, which knows where it is reading.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import attrs
import cattrs
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.gen import make_dict_structure_fn

from openheim.foundation.errors import ConfigError

T = TypeVar("T")

_TYPE_WORDS: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}


def type_word(kind: type) -> str:
    return _TYPE_WORDS.get(kind, kind.__name__)


class Misfit(ConfigError):
    """A value of the wrong shape: what is wrong with it and how to fix it, without the key."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _wrong_type(value: object, wanted: str, fix: str = "") -> Misfit:
    return Misfit(f"must be {wanted}, got {type_word(type(value))}", fix or f"set {wanted}")


def _string(value: object, _: type) -> str:
    if not isinstance(value, str):
        raise _wrong_type(value, "a string")
    return value


def _boolean(value: object, _: type) -> bool:
    if not isinstance(value, bool):
        raise _wrong_type(value, "true or false")
    return value


def _integer(value: object, _: type) -> int:
    # bool is an int in Python; TOML keeps them apart and so do we.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(value, "an integer")
    return value


def _number(value: object, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _wrong_type(value, "a number")
    return float(value)


def _path(value: object, _: type) -> Path:
    """Paths reach the converter already resolved against the config file's folder."""
    if isinstance(value, Path):
        return value
    return Path(_string(value, str))


def _strings(value: object, _: type) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise _wrong_type(value, "a list")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise Misfit("must be a list of strings", 'write it as ["a", "b"]')
    return items


def _string_map(value: object, _: type) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _wrong_type(value, "a table")
    if not all(isinstance(item, str) for item in value.values()):
        raise Misfit("values must be strings", "quote every value")
    return {str(key): item for key, item in value.items()}


def choices(kind: type[enum.Enum]) -> str:
    """``"a", "b" or "c"``: the values as they are written in TOML."""
    quoted = [f'"{member.value}"' for member in kind]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _choice(value: object, kind: type[enum.Enum]) -> enum.Enum:
    if isinstance(value, kind):
        return value
    if not isinstance(value, str):
        raise _wrong_type(value, "a string", f"use {choices(kind)}")
    try:
        return kind(value)
    except ValueError:
        raise Misfit(f"is {value!r}", f"use {choices(kind)}") from None


@functools.cache
def config_converter() -> cattrs.Converter:
    """A converter that refuses what TOML would let through loosely and keeps built objects.

    A reader passes values it already built (a provider's ``kind``, a table of prices) next to
    the raw ones; an attrs instance or a resolved :class:`Path` is taken as it is. Built once:
    cattrs generates code per class, which would cost ~20 ms on every parse.
    """
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _string)
    converter.register_structure_hook(bool, _boolean)
    converter.register_structure_hook(int, _integer)
    converter.register_structure_hook(float, _number)
    converter.register_structure_hook(Path, _path)
    # StrEnum too: it is a str, and the str hook would otherwise take it.
    converter.register_structure_hook(enum.Enum, _choice)
    converter.register_structure_hook(enum.StrEnum, _choice)
    converter.register_structure_hook_func(lambda kind: kind == tuple[str, ...], _strings)
    converter.register_structure_hook_func(lambda kind: kind == Mapping[str, str], _string_map)

    def built_or_structured(cls: type[T]) -> Callable[[object, type[T]], T]:
        # Generated on first use: cattrs asks for the hooks of all of Config's sections when
        # it builds Config's, and a file that leaves a section out never needs its code.
        @functools.cache
        def structure() -> Callable[[Mapping[str, object], type[T]], T]:
            return make_dict_structure_fn(
                cls, converter, _cattrs_forbid_extra_keys=True, _cattrs_detailed_validation=True
            )

        def hook(value: object, kind: type[T]) -> T:
            if isinstance(value, cls):
                return value
            if not isinstance(value, Mapping):
                raise _wrong_type(value, "a table")
            return structure()(value, kind)

        return hook

    converter.register_structure_hook_factory(attrs.has, built_or_structured)
    return converter


@attrs.frozen
class Problem:
    """The first thing wrong with a table, by key: ``missing``, ``unknown`` or a misfit."""

    key: str
    problem: str
    fix: str | None = None


def first_problem(error: ClassValidationError) -> Problem:
    """The first field's error out of what cattrs raised for one flat table."""
    with_notes, without_notes = error.group_exceptions()
    for exc, note in with_notes:
        return _problem(note.name, exc)
    for exc in without_notes:
        if isinstance(exc, ForbiddenExtraKeysError):
            return Problem(sorted(exc.extra_fields)[0], "is not a known setting", "remove it")
    return Problem(error.cl.__name__, f"is invalid: {error}")


def _problem(key: str, error: BaseException) -> Problem:
    if isinstance(error, Misfit):
        return Problem(key, error.problem, error.fix)
    if isinstance(error, KeyError):
        return Problem(key, "is missing")
    return Problem(key, f"is invalid: {error}")
