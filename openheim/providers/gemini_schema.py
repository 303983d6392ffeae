"""JSON Schema reduced to the OpenAPI subset Gemini's function ``parameters`` take (pure).

Gemini rejects a whole request for one keyword it does not know, so every tool's schema goes
through ``to_gemini_schema`` before it is sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

_SCHEMA_SCALARS = (
    "title",
    "description",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "minProperties",
    "maxProperties",
    "minimum",
    "maximum",
    "pattern",
)
_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object"})
_FORMATS = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}
_REF_PREFIXES = ("#/$defs/", "#/definitions/")


def to_gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` (JSON Schema) reduced to the OpenAPI subset Gemini's ``parameters`` take.

    Gemini rejects the whole request for one unknown keyword (``$schema``,
    ``additionalProperties``, ``$ref``, ...), a ``type`` list, a non-string ``enum`` value, an
    array without ``items`` or (Gemini 3) a schema without a type. So unknown keywords are
    dropped, local ``$ref``s inlined (a cycle becomes a plain object), ``oneOf`` becomes
    ``anyOf``, ``allOf`` is merged, ``null`` becomes ``nullable``, ``const`` a one-value enum,
    non-string enums move into the description, and a missing type is inferred (``string``
    when nothing says otherwise).
    """
    if not isinstance(schema, Mapping):
        return {"type": "object"}
    return _SchemaReducer(schema).reduce(schema)


@attrs.define
class _SchemaReducer:
    root: Mapping[str, Any]
    resolving: list[str] = attrs.Factory(list)

    def reduce(self, node: Any) -> dict[str, Any]:
        if not isinstance(node, Mapping):
            return {"type": "string"}  # ``true`` / garbage: anything goes, say a string
        node = dict(node)
        ref = node.pop("$ref", None)
        if isinstance(ref, str):
            return self._reduce_ref(ref, node)
        if isinstance(node.get("allOf"), list):
            node = _merge_all_of(node)
        branches = node.pop("anyOf", None)
        one_of = node.pop("oneOf", None)
        if not isinstance(branches, list):
            branches = one_of if isinstance(one_of, list) else None
        if branches is not None and not all(map(_constrains_only, branches)):
            return self._reduce_any_of(branches, node)
        # Branches that only add constraints (``anyOf: [{required: [a]}, {required: [b]}]``)
        # cannot be said in Gemini's subset; the schema without them is the closest.
        return self._reduce_plain(node)

    def _reduce_ref(self, ref: str, siblings: dict[str, Any]) -> dict[str, Any]:
        target = self._resolve(ref)
        if target is None or ref in self.resolving:
            # A cycle or a remote ref cannot be inlined; what it names is most likely an object.
            return self.reduce({"type": "object", **siblings})
        self.resolving.append(ref)
        try:
            return self.reduce({**target, **siblings})  # siblings (description) win
        finally:
            self.resolving.pop()

    def _resolve(self, ref: str) -> Mapping[str, Any] | None:
        if ref == "#":
            return self.root
        for prefix in _REF_PREFIXES:
            if ref.startswith(prefix):
                defs = self.root.get(prefix[2:-1])
                target = defs.get(ref[len(prefix) :]) if isinstance(defs, Mapping) else None
                return target if isinstance(target, Mapping) else None
        return None

    def _reduce_any_of(self, branches: list[Any], node: dict[str, Any]) -> dict[str, Any]:
        nullable = node.get("nullable") is True
        kept = []
        for branch in branches:
            if isinstance(branch, Mapping) and branch.get("type") == "null":
                nullable = True
            else:
                kept.append(self.reduce(branch))
        node.pop("type", None)  # the branches say what the types are
        outer = self._reduce_plain(node, typed=False)
        if len(kept) == 1:
            result = {**kept[0], **outer}
        elif kept:
            result = {"anyOf": kept, **outer}
        else:
            result = {"type": "string", **outer}
        if nullable:
            result["nullable"] = True
        return result

    def _reduce_plain(self, node: dict[str, Any], *, typed: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind, nullable, extra_types = _split_type(node.get("type"))
        if extra_types:  # ``type: [string, integer]``: Gemini takes one type, or anyOf
            others = {key: value for key, value in node.items() if key != "type"}
            if nullable:
                others["nullable"] = True
            return self._reduce_any_of([{"type": t} for t in extra_types], others)
        if node.get("nullable") is True:
            nullable = True
        for key in _SCHEMA_SCALARS:
            value = node.get(key)
            if key in ("title", "description", "pattern"):
                if isinstance(value, str):
                    out[key] = value
            elif _is_number(value):
                out[key] = value
        enum = node.get("enum")
        if "const" in node and not isinstance(enum, list):
            enum = [node["const"]]
        if isinstance(enum, list):
            if None in enum:
                nullable = True
            values = [value for value in enum if value is not None]
            strings = all(isinstance(value, str) for value in values)
            if values and strings and kind in (None, "string"):
                out["enum"] = values
                kind = "string"
            elif values:  # Gemini's enum holds strings only; say it in words instead
                listed = ", ".join(json.dumps(value) for value in values)
                note = f"One of: {listed}."
                described = out.get("description")
                out["description"] = f"{described} {note}" if described else note
        properties = node.get("properties")
        if isinstance(properties, Mapping):
            out["properties"] = {
                str(name): self.reduce(value) for name, value in properties.items()
            }
            kind = kind or "object"
            required = node.get("required")
            if isinstance(required, list):
                names = [name for name in required if name in out["properties"]]
                if names:
                    out["required"] = list(dict.fromkeys(names))
        items = node.get("items")
        if kind == "array" or isinstance(items, Mapping):
            kind = "array"
            out["items"] = self.reduce(items) if isinstance(items, Mapping) else {"type": "string"}
        if kind is None and typed:  # Gemini 3 rejects a schema without a type
            kind = "number" if "minimum" in out or "maximum" in out else "string"
        fmt = node.get("format")
        if kind in _FORMATS and isinstance(fmt, str) and fmt in _FORMATS[kind]:
            out["format"] = fmt
        if kind is not None:
            out = {"type": kind, **out}
        if nullable:
            out["nullable"] = True
        return out


def _split_type(raw: Any) -> tuple[str | None, bool, list[str]]:
    """``(type, nullable, types)``: ``types`` is set only when several non-null types remain."""
    if isinstance(raw, str):
        if raw == "null":
            return None, True, []
        return (raw if raw in _TYPES else None), False, []
    if isinstance(raw, list):
        nullable = "null" in raw
        kinds = list(dict.fromkeys(t for t in raw if isinstance(t, str) and t in _TYPES))
        if len(kinds) == 1:
            return kinds[0], nullable, []
        if len(kinds) > 1:
            return None, nullable, kinds
        return None, nullable, []
    return None, False, []


_SHAPE_KEYWORDS = frozenset(
    {"type", "properties", "items", "enum", "const", "$ref", "anyOf", "oneOf", "allOf"}
)


def _constrains_only(branch: Any) -> bool:
    return isinstance(branch, Mapping) and not _SHAPE_KEYWORDS.intersection(branch)


def _merge_all_of(node: dict[str, Any]) -> dict[str, Any]:
    """``allOf`` folded into its parent: properties and required united, the rest layered."""
    merged = {key: value for key, value in node.items() if key != "allOf"}
    for part in node["allOf"]:
        if not isinstance(part, Mapping):
            continue
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
