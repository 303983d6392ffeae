"""``openheim serve --workers 2`` as a real process tree: both workers answer on one port,
``/metrics`` covers both, a killed worker comes back, SIGHUP replaces them, SIGTERM ends all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio

from tests.waiting import wait_until


def worker_pids(parent: int) -> set[int]:
    """Live children of ``parent``, from each process's ``/proc/PID/stat``."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[trio.Process, str, Path]]:
    (tmp_path / "config.toml").write_text(
        'default_provider = "p"\n[providers.p]\napi_base = "http://127.0.0.1:9"\n'
        'default_model = "m"\n'
    )
    errors = tmp_path / "stderr.txt"
    env = {**os.environ, "OPENHEIM_HOME": str(tmp_path), "P_API_KEY": "k"}
    command = [sys.executable, "-m", "openheim", "serve", "--port", "0", "--workers", "2"]
    with errors.open("wb") as sink:
        process = await trio.lowlevel.open_process(
            [*command, "--sandbox", "none"],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        found: list[str] = []

        def announced() -> bool:
            assert process.poll() is None, errors.read_text()
            found[:] = re.findall(r"serving on (http://\S+) with 2 workers", errors.read_text())
            return bool(found)

        await wait_until(announced, seconds=60, what="the server's announcement")
        yield process, found[0], errors
    finally:
        if process.poll() is None:
            process.kill()
        await process.wait()


async def answering_workers(url: str, tries: int = 200) -> set[int]:
    """The workers that answer new connections (each request on a fresh connection)."""
    seen: set[int] = set()
    for _ in range(tries):
        async with httpx.AsyncClient() as client:
            seen.add((await client.get(f"{url}/healthz")).json()["worker"])
        if seen == {0, 1}:
            break
    return seen


async def test_two_workers_share_the_port_and_come_back(
    served: tuple[trio.Process, str, Path],
) -> None:
    process, url, errors = served
    assert await answering_workers(url) == {0, 1}

    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{url}/metrics")).text
    assert 'openheim_info{worker="0"' in metrics and 'openheim_info{worker="1"' in metrics
    assert metrics.count("# TYPE openheim_info ") == 1  # one family, both workers' samples

    first = worker_pids(process.pid)
    assert len(first) == 2
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    await wait_until(
        lambda: len(worker_pids(process.pid) - {victim}) == 2, seconds=30, what="a restart"
    )
    assert "exited with status -9" in errors.read_text()
    assert await answering_workers(url) == {0, 1}

    before = worker_pids(process.pid)
    process.send_signal(signal.SIGHUP)
    await wait_until(
        lambda: len(worker_pids(process.pid)) == 2 and not worker_pids(process.pid) & before,
        seconds=60,
        what="new workers after SIGHUP",
    )
    assert await answering_workers(url) == {0, 1}

    last = worker_pids(process.pid)
    process.send_signal(signal.SIGTERM)
    with trio.fail_after(30):
        assert await process.wait() == 0
    assert not [pid for pid in last if Path(f"/proc/{pid}").exists()]


async def test_workers_outlive_the_thread_that_started_them(
    served: tuple[trio.Process, str, Path],
) -> None:
    # trio starts processes from its thread cache, whose idle threads end after 10 s; a
    # worker tied to that thread (PR_SET_PDEATHSIG) was told its parent had died then.
    process, url, errors = served
    first = worker_pids(process.pid)
    await trio.sleep(12)  # the subject is a timer of trio's: there is no event to wait for
    assert worker_pids(process.pid) == first
    assert "the parent is gone" not in errors.read_text()
    assert await answering_workers(url) == {0, 1}


async def test_workers_stop_when_the_parent_is_killed(
    served: tuple[trio.Process, str, Path],
) -> None:
    process, _, errors = served
    workers = worker_pids(process.pid)
    assert len(workers) == 2
    process.kill()  # SIGKILL: no chance to stop them itself
    await process.wait()
    await wait_until(
        lambda: not [pid for pid in workers if Path(f"/proc/{pid}").exists()],
        seconds=30,
        what="the workers to stop after their parent",
    )
    assert errors.read_text().count("the parent is gone") == 2
