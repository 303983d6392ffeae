"""Carrying out ACP slash commands (``acp.commands`` says which prompts are commands).

A command runs in the session's turn slot, so it keeps its place among the prompts around it.
Its answer is an agent message, never sent to the model nor stored. A change of model, mode or
thinking level is announced with ``config_option_update`` (and ``current_mode_update`` for
older clients), so the client's pickers follow what was typed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs

from openheim.acp import session_state
from openheim.acp.blocks import agent_chunk
from openheim.acp.codec import RpcError
from openheim.acp.commands import CommandLine
from openheim.acp.session_params import set_model
from openheim.config.model import Config
from openheim.foundation.errors import ConfigError, SkillError
from openheim.foundation.models import Prompt
from openheim.session import Session

Update = dict[str, Any]


def options(config: Config, session: Session) -> list[Update]:
    """The session's config options as they stand now."""
    return session_state.config_options(
        config, session.choice, session.permissions.mode, session.reasoning
    )


@attrs.frozen
class SlashCommands:
    """The commands of one connection's sessions; ``send`` posts a ``session/update``."""

    config: Config
    installed: Sequence[str]
    send: Callable[[str, Update], Awaitable[None]]

    async def run(self, session: Session, command: CommandLine) -> Prompt | None:
        """Carry out ``command``; returns what to send the model next (a skill command's
        text), or None when the command is the whole turn."""
        match command.name:
            case "model":
                await self._model(session, command.argument)
            case "mode":
                await self._mode(session, command.argument)
            case "thinking":
                await self._thinking(session, command.argument)
            case "skills":
                await self._skills(session)
            case "compact":
                compacted = await session.compact()
                text = "Nothing to compact yet." if compacted is None else compacted.describe()
                await self._say(session, text)
            case name:
                return await self._skill(session, name, command.argument)
        return None

    async def _model(self, session: Session, argument: str) -> None:
        if argument:
            try:
                set_model(self.config, session, argument)
            except RpcError as exc:
                await self._say(session, exc.message)
                return
            await self._options_changed(session)
        labels = session_state.model_labels(self.config, session.choice)
        others = ", ".join(label for label in labels if label != session.choice.label)
        await self._say(
            session,
            f"Model: {session.choice.label}" + (f"\nAlso available: {others}" if others else ""),
        )

    async def _mode(self, session: Session, argument: str) -> None:
        if argument:
            mode = session_state.parse_mode(argument)
            if mode is None:
                names = ", ".join(m.value for m in session_state.MODES)
                await self._say(session, f"unknown mode {argument!r}; choose one of: {names}")
                return
            session.permissions.mode = mode
            await self.send(session.id, session_state.current_mode_update(mode))
            await self._options_changed(session)
        name, text = session_state.MODES[session.permissions.mode]
        choices = ", ".join(m.value for m in session_state.MODES)
        await self._say(session, f"Mode: {name} ({text}). Modes: {choices}")

    async def _thinking(self, session: Session, argument: str) -> None:
        if argument:
            try:
                session.set_reasoning(argument.lower())
            except ConfigError as exc:
                await self._say(session, exc.public)
                return
            await self._options_changed(session)
        name, text = session_state.THOUGHT_LEVELS[session.reasoning]
        await self._say(session, f"Thinking: {name} ({text})")

    async def _skills(self, session: Session) -> None:
        used = [skill.name for skill in session.skills]
        if not self.installed:
            await self._say(session, "No skills are installed.")
            return
        text = f"Installed skills: {', '.join(self.installed)}."
        text += f"\nIn this session: {', '.join(used)}." if used else "\nNone in this session yet."
        await self._say(session, text + " Type /NAME to use one.")

    async def _skill(self, session: Session, name: str, argument: str) -> Prompt | None:
        try:
            added = session.use_skill(name)
        except SkillError as exc:
            await self._say(session, exc.public)
            return None
        if added:
            await session.save()
        if argument:
            return Prompt(argument)
        state = "Using" if added else "Already using"
        await self._say(session, f"{state} the {name} skill in this session.")
        return None

    async def _options_changed(self, session: Session) -> None:
        await self.send(
            session.id, session_state.config_option_update(options(self.config, session))
        )

    async def _say(self, session: Session, text: str) -> None:
        await self.send(session.id, agent_chunk(text))
