"""A session's state as ACP shows it: its config options (the model, the permission mode and
the thinking level, plus the legacy ``modes`` / ``models`` shapes older clients still read),
its title and its context usage. Pure: values in, payloads out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from openheim.acp.schema import format_time
from openheim.config.model import Config
from openheim.config.resolve import ModelChoice
from openheim.foundation.models import ReasoningLevel
from openheim.permissions import Mode

#: What each mode means, in the words a client shows next to it.
MODES: dict[Mode, tuple[str, str]] = {
    Mode.ASK: ("Ask", "Read-only tools run; edits, commands and other tools are asked about"),
    Mode.CODE: ("Code", "Tools run as the configuration's [permissions] say"),
    Mode.AUTO: ("Auto", "Every tool runs without asking, inside the sandbox"),
}

#: The thinking levels, as a client lists them.
THOUGHT_LEVELS: dict[ReasoningLevel, tuple[str, str]] = {
    ReasoningLevel.OFF: ("Off", "Answer without a thinking phase"),
    ReasoningLevel.LOW: ("Low", "Think briefly: faster and cheaper"),
    ReasoningLevel.MEDIUM: ("Medium", "Think as much as most tasks need"),
    ReasoningLevel.HIGH: ("High", "Think hard: slower, for difficult problems"),
}


def _model_labels(config: Config) -> list[str]:
    return [
        f"{name}/{model}"
        for name in sorted(config.providers)
        for model in config.providers[name].models
    ]


def model_labels(config: Config, choice: ModelChoice) -> list[str]:
    """Every configured model as ``provider/model``, the session's own included."""
    labels = _model_labels(config)
    return labels if choice.label in labels else [choice.label, *labels]


def _select(
    option_id: str, name: str, category: str, current: str, values: list[tuple[str, str, str]]
) -> dict[str, Any]:
    options = []
    for value, label, description in values:
        entry = {"value": value, "name": label}
        if description:
            entry["description"] = description
        options.append(entry)
    return {
        "id": option_id,
        "name": name,
        "category": category,
        "type": "select",
        "currentValue": current,
        "options": options,
    }


def config_options(
    config: Config, choice: ModelChoice, mode: Mode, reasoning: ReasoningLevel
) -> list[dict[str, Any]]:
    """The complete list of a session's config options. The thinking level applies to models
    that reason and is ignored by the others."""
    models = [(label, label, "") for label in model_labels(config, choice)]
    modes = [(m.value, name, text) for m, (name, text) in MODES.items()]
    levels = [(level.value, name, text) for level, (name, text) in THOUGHT_LEVELS.items()]
    return [
        _select("model", "Model", "model", choice.label, models),
        _select("mode", "Mode", "mode", mode.value, modes),
        _select("thought_level", "Thinking", "thought_level", reasoning.value, levels),
    ]


def legacy_modes(mode: Mode) -> dict[str, Any]:
    """The pre-config-options ``modes`` state (``session/set_mode``), for older clients."""
    return {
        "currentModeId": mode.value,
        "availableModes": [
            {"id": m.value, "name": name, "description": text} for m, (name, text) in MODES.items()
        ],
    }


def legacy_models(config: Config, choice: ModelChoice) -> dict[str, Any]:
    """The pre-config-options ``models`` state (``session/set_model``), under ``_meta``."""
    return {
        "currentModelId": choice.label,
        "availableModels": [
            {"modelId": label, "name": label} for label in model_labels(config, choice)
        ],
    }


def session_state(
    config: Config, choice: ModelChoice, mode: Mode, reasoning: ReasoningLevel
) -> dict[str, Any]:
    """What ``session/new``, ``load`` and ``resume`` answer besides the id."""
    return {
        "configOptions": config_options(config, choice, mode, reasoning),
        "modes": legacy_modes(mode),
        "_meta": {"models": legacy_models(config, choice)},
    }


def parse_mode(value: Any) -> Mode | None:
    """The mode a client chose, or None when it names none of ours."""
    try:
        return Mode(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --- session/update payloads -----------------------------------------------------------------


def config_option_update(options: list[dict[str, Any]]) -> dict[str, Any]:
    return {"sessionUpdate": "config_option_update", "configOptions": options}


def current_mode_update(mode: Mode) -> dict[str, Any]:
    return {"sessionUpdate": "current_mode_update", "currentModeId": mode.value}


def session_info_update(title: str | None, updated_at: datetime) -> dict[str, Any]:
    update: dict[str, Any] = {"sessionUpdate": "session_info_update"}
    if title:
        update["title"] = title
    update["updatedAt"] = format_time(updated_at)
    return update


def usage_update(used: int, size: int, cost_usd: float | None) -> dict[str, Any]:
    """How full the context is after a turn (``used`` of ``size`` tokens), and what the
    conversation has cost when prices are configured."""
    update: dict[str, Any] = {"sessionUpdate": "usage_update", "used": used, "size": size}
    if cost_usd is not None:
        update["cost"] = {"amount": round(cost_usd, 6), "currency": "USD"}
    return update
