"""``/metrics`` across the workers of ``serve --workers N``: every worker, whichever is scraped.

Each worker writes its own exposition text to ``worker-<i>.prom`` in a folder the parent made,
every ``SHARE_INTERVAL`` seconds and whenever it is scraped. The scraped worker merges all
the files, each sample labelled ``worker="<i>"``, so Prometheus sees every worker's series
(sum them with ``sum without (worker)``). Another worker's figures are at most
``SHARE_INTERVAL`` old. prometheus_client's multiprocess mode is no help here: it covers only
metrics kept in its shared files, and most of ours (sessions, sockets, queues) are read from
live state at each scrape.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import attrs
import trio

SHARE_INTERVAL = 1.0
_FILE = re.compile(r"^worker-(\d+)\.prom$")


@attrs.define
class _Family:
    meta: list[str] = attrs.field(factory=list)
    samples: list[str] = attrs.field(factory=list)


def _labelled(sample: str, worker: str) -> str:
    """``name{a="b"} 1`` → ``name{worker="0",a="b"} 1``; ``name 1`` → ``name{worker="0"} 1``."""
    label = f'worker="{worker}"'
    name_end = min((i for i in (sample.find("{"), sample.find(" ")) if i >= 0), default=-1)
    if name_end < 0:
        return sample
    if sample[name_end] == "{":
        closing = "" if sample[name_end + 1] == "}" else ","
        return f"{sample[: name_end + 1]}{label}{closing}{sample[name_end + 1 :]}"
    return f"{sample[:name_end]}{{{label}}}{sample[name_end:]}"


def merge(texts: Iterable[tuple[str, str]]) -> str:
    """Prometheus text expositions ``(worker, text)`` as one, each family's samples together
    under its first ``# HELP`` and ``# TYPE``, as the format requires."""
    families: dict[str, _Family] = {}
    for worker, text in texts:
        family: _Family | None = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("# "):
                parts = line.split(" ", 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    family = families.setdefault(parts[2], _Family())
                    if not any(meta.split(" ", 2)[1] == parts[1] for meta in family.meta):
                        family.meta.append(line)
                continue
            if family is None:
                family = families.setdefault("", _Family())
            family.samples.append(_labelled(line, worker))
    lines = [line for family in families.values() for line in (*family.meta, *family.samples)]
    return "\n".join(lines) + "\n"


@attrs.frozen
class WorkerShare:
    """Where this worker's metrics go, and where its peers' come from."""

    folder: Path
    index: int

    def _write(self, text: bytes) -> None:
        path = self.folder / f"worker-{self.index}.prom"
        # One partial file per writing thread: a scrape and the periodic write may overlap.
        partial = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        partial.write_bytes(text)
        os.replace(partial, path)  # a reader never sees half a file

    def _gather(self, own: bytes) -> bytes:
        self._write(own)
        texts = []
        for path in sorted(self.folder.iterdir()):
            match = _FILE.match(path.name)
            if match is None:
                continue
            try:
                texts.append((match.group(1), path.read_text(encoding="utf-8")))
            except OSError:
                continue  # a worker being replaced; its successor writes soon
        return merge(texts).encode()

    async def render(self, own: bytes) -> bytes:
        """Every worker's metrics, this one's fresh; called at each scrape."""
        return await trio.to_thread.run_sync(self._gather, own)

    async def keep_shared(self, render_own: Callable[[], bytes]) -> None:
        """Write this worker's metrics every ``SHARE_INTERVAL`` seconds, until cancelled."""
        while True:
            await trio.to_thread.run_sync(self._write, render_own())
            await trio.sleep(SHARE_INTERVAL)
