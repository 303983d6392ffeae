""".gitignore rules as git applies them, for the tools that walk trees.

Each ``.gitignore`` speaks for its own folder and below; a deeper file overrides a shallower
one, and within a file the last matching pattern wins (a ``!pattern`` re-includes). A folder
that is ignored is not entered, so nothing under it can be re-included, as in git. The pattern
matching itself is ``pathspec``'s ``GitIgnoreSpec`` (git's own semantics, pure Python).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

#: A .gitignore larger than this is not read (a real one is a few KiB).
IGNORE_FILE_LIMIT = 256 * 1024


def parse(text: str) -> GitIgnoreSpec | None:
    """The patterns of one .gitignore; None when it has none."""
    from pathspec import GitIgnoreSpec  # lazily: only the tree tools need it

    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return GitIgnoreSpec.from_lines(lines) if lines else None


@attrs.frozen
class Layer:
    """One .gitignore. A path relative to the walk's root is seen by it as ``prefix`` + the
    path with ``base`` (the folder it lies in, relative to the root) taken off the front."""

    spec: GitIgnoreSpec
    base: str = ""
    prefix: str = ""

    def decide(self, rel: str, is_dir: bool) -> bool | None:
        """True: ignored; False: re-included (``!``); None: no pattern here speaks of it."""
        if self.base:
            if not rel.startswith(self.base + "/"):
                return None
            rel = rel[len(self.base) + 1 :]
        candidate = self.prefix + rel + ("/" if is_dir else "")
        return self.spec.check_file(candidate).include


@attrs.frozen
class IgnoreRules:
    """The layers that apply in one folder, shallowest first."""

    layers: tuple[Layer, ...] = ()

    def ignored(self, rel: str, is_dir: bool) -> bool:
        for layer in reversed(self.layers):
            decision = layer.decide(rel, is_dir)
            if decision is not None:
                return decision
        return False

    def below(self, base: str, text: str | None) -> IgnoreRules:
        """The rules inside the folder ``base``, given its own .gitignore's text."""
        spec = parse(text) if text else None
        return self if spec is None else IgnoreRules((*self.layers, Layer(spec, base)))

    @classmethod
    def from_ancestors(cls, texts: Iterable[tuple[str, str]]) -> IgnoreRules:
        """Rules of the folders above the walk's root, outermost first: each as (the root's
        path relative to that folder, its .gitignore's text)."""
        layers = []
        for prefix, text in texts:
            spec = parse(text)
            if spec is not None:
                layers.append(Layer(spec, prefix=prefix + "/"))
        return cls(tuple(layers))
