"""The landlock backend, with real processes: what a confined command can reach, and that
nothing it starts outlives it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from openheim.config.sandbox_settings import Limits
from openheim.sandbox.landlock import (
    HELPER,
    LandlockBackend,
    granted_paths,
    landlock_abi,
    landlock_spec,
    probe_landlock,
)
from openheim.sandbox.policy import SYSTEM_ROOTS, SandboxPolicy
from tests.processes import live_with_marker

ABI = landlock_abi()

pytestmark = pytest.mark.skipif(
    ABI == 0, reason="Landlock is not available (kernel without it, or not enabled)"
)

BACKEND = LandlockBackend()
PYTHON = os.path.realpath(sys.executable)
#: The interpreter's own folder, so confined commands may run it.
PYTHON_ROOT = Path(os.path.realpath(sys.base_prefix))
ENV = {"PATH": "/usr/bin:/bin"}


def policy(workspace: Path, **changes: object) -> SandboxPolicy:
    settings: dict[str, object] = {
        "writable": (workspace,),
        "readable": (*(root for root in SYSTEM_ROOTS if root.exists()), PYTHON_ROOT),
        "env": ENV,
    }
    settings.update(changes)
    return SandboxPolicy(**settings)  # type: ignore[arg-type]


def run(
    rules: SandboxPolicy,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] = ENV,
    timeout: float = 20,
) -> subprocess.CompletedProcess[str]:
    launch = BACKEND.prepare(rules, argv, rules.workspace, env)
    try:
        return subprocess.run(
            launch.argv,
            env=launch.env,
            cwd=rules.workspace,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        launch.discard()


def sh(rules: SandboxPolicy, script: str, **options: object) -> subprocess.CompletedProcess[str]:
    return run(rules, ["sh", "-c", script], **options)  # type: ignore[arg-type]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


def test_the_backend_works_here() -> None:
    assert probe_landlock() is None


def test_hidden_paths_are_cut_out_of_a_root(tmp_path: Path) -> None:
    root = tmp_path / "etc"
    for folder in ("ssh", "conf.d", "deep/er"):
        (root / folder).mkdir(parents=True)
    for file in ("passwd", "shadow", "ssh/key", "conf.d/a", "deep/er/secret", "deep/er/ok"):
        (root / file).write_text("x")
    (root / "link").symlink_to("/root")
    hidden = (root / "shadow", root / "ssh", root / "deep/er/secret", tmp_path / "elsewhere")

    assert granted_paths([root], hidden) == [
        root / "conf.d",
        root / "deep/er/ok",
        root / "passwd",
    ]
    assert granted_paths([root / "conf.d", root / "ssh"], hidden) == [root / "conf.d"]
    assert granted_paths([root / "ssh/key"], hidden) == []
    assert granted_paths([root], [root]) == []
    assert granted_paths([root, root], []) == [root]


def test_a_tenant_is_granted_no_kernel_views(workspace: Path) -> None:
    spec = landlock_spec(policy(workspace, readable=(Path("/"),)))
    granted = [Path(path) for path in (*spec["read"], *spec["write"])]  # type: ignore[misc]
    assert Path("/usr") in granted
    assert not [path for path in granted if path.is_relative_to("/proc")]
    assert not [path for path in granted if path.is_relative_to("/sys")]
    assert Path("/") not in granted


def test_writes_land_only_in_the_workspace(workspace: Path, tmp_path: Path) -> None:
    done = sh(policy(workspace), f"echo in > inside && echo out > {tmp_path}/outside")
    assert (workspace / "inside").read_text() == "in\n"
    assert not (tmp_path / "outside").exists()
    assert "Permission denied" in done.stderr
    assert done.returncode != 0


def test_another_folder_is_not_readable(workspace: Path, tmp_path: Path) -> None:
    bob = tmp_path / "bob"
    bob.mkdir()
    (bob / "notes").write_text("bob's")
    done = sh(policy(workspace), f"cat {bob}/notes; ls {bob}")
    assert "bob's" not in done.stdout
    assert done.stderr.count("Permission denied") == 2


def test_a_hidden_file_under_a_readable_root_is_not_readable(
    workspace: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "public").write_text("public\n")
    (shared / "secret").write_text("secret\n")
    rules = policy(
        workspace,
        readable=(*policy(workspace).readable, shared),
        hidden=(shared / "secret",),
    )
    done = sh(rules, f"cat {shared}/public {shared}/secret")
    assert done.stdout == "public\n"
    assert "Permission denied" in done.stderr


@pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6")
def test_the_server_cannot_be_signalled(workspace: Path) -> None:
    done = sh(policy(workspace), f"kill -0 {os.getpid()}")
    assert done.returncode != 0
    assert "not permitted" in done.stderr


@pytest.mark.parametrize(
    "start",
    [
        "setsid -f sh -c 'sleep 1000; : {marker}'",
        "(sh -c 'sleep 1000; : {marker}' &)",
        "sh -c 'sleep 1000; : {marker}' & disown",
    ],
)
def test_nothing_outlives_the_command(workspace: Path, start: str) -> None:
    marker = f"openheim-test-{uuid.uuid4().hex}"
    began = time.monotonic()
    done = sh(policy(workspace), f"{start.format(marker=marker)}; echo started", timeout=10)
    assert done.stdout == "started\n"
    assert time.monotonic() - began < 5
    assert live_with_marker(marker) == []


def test_the_exit_code_passes_through(workspace: Path) -> None:
    assert sh(policy(workspace), "exit 3").returncode == 3
    assert sh(policy(workspace), "kill -KILL $$").returncode == 128 + signal.SIGKILL
    missing = run(policy(workspace), ["no-such-command-here"])
    assert missing.returncode == 127
    assert "openheim sandbox: no-such-command-here" in missing.stderr


def test_memory_is_limited(workspace: Path) -> None:
    rules = policy(workspace, limits=Limits(max_memory_mb=100))
    done = run(rules, [PYTHON, "-c", "x = bytearray(500 * 1024 * 1024)"])
    assert done.returncode != 0
    assert "MemoryError" in done.stderr
    assert run(rules, [PYTHON, "-c", "x = bytearray(10 * 1024 * 1024)"]).returncode == 0


@pytest.mark.skipif(ABI < 4, reason="TCP rules need Landlock ABI 4")
def test_no_tcp_without_the_network(workspace: Path) -> None:
    connect = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)"
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        refused = run(policy(workspace, network=False), [PYTHON, "-c", connect, port])
        allowed = run(policy(workspace, network=True), [PYTHON, "-c", connect, port])
    assert "PermissionError" in refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_the_environment_is_exactly_the_one_prepared(workspace: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "FOO": "bar baz"}
    rules = policy(workspace, private_tmp=False)
    assert BACKEND.prepare(rules, ["env"], workspace, env).env == env
    done = run(rules, ["env", "-0"], env=env)
    assert dict(line.split("=", 1) for line in done.stdout.split("\0") if line) == env
    # Python coerces a C locale to C.UTF-8 in its own environment; the command gets it back.
    c_locale = {**env, "LC_CTYPE": "C"}
    done = run(rules, ["env", "-0"], env=c_locale)
    assert dict(line.split("=", 1) for line in done.stdout.split("\0") if line) == c_locale


def test_each_command_has_a_private_temp_folder(workspace: Path) -> None:
    rules = policy(workspace)
    launch = BACKEND.prepare(rules, ["sh", "-c", 'echo hi > "$TMPDIR/file"'], workspace, ENV)
    assert launch.temp is not None
    assert launch.env["TMPDIR"] == launch.env["TMP"] == launch.env["TEMP"] == str(launch.temp)
    try:
        done = subprocess.run(launch.argv, env=launch.env, cwd=workspace, timeout=20)
        assert done.returncode == 0
        assert (launch.temp / "file").read_text() == "hi\n"
    finally:
        launch.discard()
    assert not launch.temp.exists()
    other = BACKEND.prepare(rules, ["true"], workspace, ENV)
    other.discard()
    assert other.temp != launch.temp


def test_sigterm_to_the_supervisor_ends_everything(workspace: Path) -> None:
    half = uuid.uuid4().hex
    marker = f"openheim-test-{half}"  # put together in the shell: only the sleepers carry it
    script = f'm={half}; setsid -f sh -c "sleep 1000; : openheim-test-$m"; '
    script += 'sh -c "sleep 1000; : openheim-test-$m"'
    launch = BACKEND.prepare(policy(workspace), ["sh", "-c", script], workspace, ENV)
    try:
        process = subprocess.Popen(launch.argv, env=launch.env, cwd=workspace)
        try:
            deadline = time.monotonic() + 10
            while len(live_with_marker(marker)) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            assert len(live_with_marker(marker)) == 2
            began = time.monotonic()
            process.send_signal(signal.SIGTERM)
            code = process.wait(timeout=5)
        finally:
            process.kill()
            process.wait()
    finally:
        launch.discard()
    assert time.monotonic() - began < 2
    assert code == 128 + signal.SIGKILL
    assert live_with_marker(marker) == []


def test_a_large_spec_travels_in_a_file(workspace: Path, tmp_path: Path) -> None:
    crowded = tmp_path / "crowded"
    crowded.mkdir()
    for index in range(3000):
        (crowded / f"entry-with-a-rather-long-name-{index:05}").write_text(str(index))
    rules = policy(
        workspace,
        private_tmp=False,
        readable=(*policy(workspace).readable, crowded),
        hidden=(crowded / "entry-with-a-rather-long-name-00000",),
    )
    launch = BACKEND.prepare(rules, ["true"], workspace, ENV)
    launch.discard()
    assert launch.argv[4].startswith("@")
    done = sh(rules, f"cat {crowded}/entry-with-a-rather-long-name-02999")
    assert done.stdout == "2999"
    denied = sh(rules, f"cat {crowded}/entry-with-a-rather-long-name-00000")
    assert "Permission denied" in denied.stderr


@pytest.mark.parametrize("spec", ["[1, 2]", "{not json", "@/no/such/spec"])
def test_a_bad_spec_runs_nothing(workspace: Path, spec: str) -> None:
    done = subprocess.run(
        [PYTHON, "-I", "-S", str(HELPER), spec, "--", "touch", str(workspace / "ran")],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 126
    assert done.stderr.startswith("openheim sandbox: bad spec: ")
    assert not (workspace / "ran").exists()
