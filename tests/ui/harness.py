"""What the browser tests (and the screenshot script) stand on: the scripted fake LLM in a
thread of its own, the real ``openheim serve`` as a process, and headless Chromium.

Selenium is synchronous, so nothing here runs in the tests' trio loop: the fake LLM gets its
own loop in a thread, and the server is a separate process, as a user would run it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from openheim.testing import FakeLLMServer, Response, open_fake_llm
from tests.e2e.conftest import API_KEY, Home

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "ui-test-token-0123456789abcdef"
TENANT = "alice"
#: Far beyond any healthy wait here; a condition met earlier returns at once.
DEADLINE = 20.0


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not path.exists():
            return f"{path} is missing: apt-get install {package} (.ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[dev]'"
    return None


def poll_until(condition: Callable[[], object], what: str, seconds: float = DEADLINE) -> None:
    """Return once ``condition()`` holds: for state another process changes, which nothing
    announces (a log line, a file). The short pause only sets how soon we notice."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:g} s waiting for {what}")
        time.sleep(0.02)


class FakeLlm:
    """The fake LLM on its own trio loop in a daemon thread."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._stop: trio.Event | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self.server: FakeLLMServer | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        async with open_fake_llm() as server:
            self.server = server
            self._ready.set()
            await self._stop.wait()

    def start(self) -> FakeLlm:
        self._thread.start()
        if not self._ready.wait(DEADLINE):
            raise AssertionError("the fake LLM did not start")
        return self

    def stop(self) -> None:
        assert self._stop is not None
        trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        self._thread.join(DEADLINE)

    def _call(self, fn: Callable[[], object]) -> object:
        return trio.from_thread.run_sync(fn, trio_token=self._token)

    def add(self, *responses: Response) -> None:
        """Script the next answers (in the fake's own thread, so it never races a request)."""
        assert self.server is not None
        server = self.server
        self._call(lambda: server.script.extend(responses))

    def request_count(self) -> int:
        assert self.server is not None
        server = self.server
        return int(self._call(lambda: len(server.requests)))  # type: ignore[arg-type]

    def request_body(self, index: int) -> dict:
        assert self.server is not None
        server = self.server
        body = self._call(lambda: server.requests[index].body)
        assert isinstance(body, dict)
        return body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class UiServer:
    """``openheim serve`` with a tenant token, on a fixed port so a restart keeps the URL."""

    def __init__(self, home: Home, port: int) -> None:
        self.home = home
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def workspace(self) -> Path:
        return self.home.workdir / TENANT

    def write_config(self) -> None:
        self.home.write_config(
            extra_provider=f"""
[server]
tokens = {{ "{TOKEN}" = "{TENANT}" }}
disconnect_grace_secs = 60

[sandbox]
mode = "none"
allow_unsandboxed_tenants = true

[permissions]
execute_command = "ask"
"""
        )

    def log_path(self, start: int) -> Path:
        return self.home.path / f"serve-{start}.log"

    def start(self) -> None:
        self.starts += 1
        log = self.log_path(self.starts)
        env = {k: v for k, v in os.environ.items() if k != "OPENHEIM_HOME"}
        env.update(OPENHEIM_HOME=str(self.home.path), FAKE_LLM_KEY=API_KEY, OPENHEIM_LOG="info")
        with log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "openheim", "serve", "--port", str(self.port)],
                cwd=self.home.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        process = self.process

        def listening() -> bool:
            assert process.poll() is None, log.read_text(errors="replace")
            return "openheim serving on" in log.read_text(errors="replace")

        poll_until(listening, "the server to listen")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self) -> str:
        return "".join(
            self.log_path(n).read_text(errors="replace") for n in range(1, self.starts + 1)
        )


@contextmanager
def running_stack(root: Path) -> Iterator[tuple[FakeLlm, UiServer]]:
    """The fake LLM and the server, with their home under ``root``."""
    llm = FakeLlm().start()
    try:
        assert llm.server is not None
        home = Home(root / "home", root / "work", llm.server)
        home.path.mkdir(parents=True)
        home.workdir.mkdir(parents=True)
        server = UiServer(home, free_port())
        server.write_config()
        server.start()
        try:
            yield llm, server
        finally:
            server.stop()
    finally:
        llm.stop()


def open_browser(width: int = 1400, height: int = 900) -> WebDriver:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--force-prefers-reduced-motion",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_window_size(width, height)
    return driver
