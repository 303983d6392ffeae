"""Hypothesis strategies shared by the fuzz tests: JSON values, trees to mutate, odd text."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

#: Scalars as ``json.loads`` produces them; floats are finite so values compare equal.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)

json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

#: Text as a JSON ``"\\ud800"`` escape can make it: lone surrogates included.
any_text = st.text(st.characters(exclude_categories=[]), max_size=12)

#: Values that stress a parser or an echo: huge numbers, lone surrogates, odd containers.
hostile_values = st.one_of(
    json_scalars,
    st.lists(json_scalars, max_size=2),  # containers where code expects a scalar
    st.dictionaries(st.text(max_size=4), json_scalars, max_size=2),
    json_values,
    any_text,
    st.sampled_from(
        [
            10**400,  # an integer no float can hold
            -(10**30),
            1e308,
            -0.0,
            "\ud800",
            "\udcff",
            "\0",
            "",
            [],
            {},
            [[[[[[[[[[]]]]]]]]]],
            True,
            False,
            None,
        ]
    ),
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node of a JSON tree, as a path of keys and indices (the root is ``()``)."""
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(paths(item, (*prefix, index)))
    return out


def replace_at(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """A copy of ``value`` with the node at ``path`` replaced by ``new``."""
    if not path:
        return new
    value = copy.deepcopy(value)
    node = value
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = new
    return value


@st.composite
def mutated_json(
    draw: st.DrawFn, value: Any, keys: tuple[str, ...] = (), values: st.SearchStrategy = json_values
) -> Any:
    """``value`` with a few nodes replaced, dropped or added (``keys`` are names worth adding:
    the fields the code under test reads)."""
    for _ in range(draw(st.integers(1, 3))):
        targets = paths(value)
        path = draw(st.sampled_from(targets))
        node: Any = value
        for key in path:
            node = node[key]
        choice = draw(st.integers(0, 2))
        if choice == 0 or not isinstance(node, dict | list):
            value = replace_at(value, path, draw(values))
        elif choice == 1 and node:
            parent = copy.deepcopy(node)
            if isinstance(parent, dict):
                del parent[draw(st.sampled_from(sorted(parent)))]
            else:
                del parent[draw(st.integers(0, len(parent) - 1))]
            value = replace_at(value, path, parent)
        elif isinstance(node, dict):
            name = draw(st.sampled_from(keys) if keys else st.text(max_size=6))
            value = replace_at(value, path, {**node, name: draw(values)})
        else:
            value = replace_at(value, path, [*node, draw(values)])
    return value
