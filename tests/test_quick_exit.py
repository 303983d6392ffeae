"""The command ends without teardown, yet output, exit handlers and threads are as before."""

from __future__ import annotations

import subprocess
import sys


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_buffered_output_and_exit_handlers_come_out_with_the_status() -> None:
    done = run_python(
        "import atexit, sys\n"
        "from openheim.foundation.quick_exit import leave\n"
        "atexit.register(lambda: print('handler'))\n"
        "sys.stdout.write('answer ')\n"
        "sys.stderr.write('note')\n"
        "leave(3)\n"
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "answer handler\n", "note")


def test_a_running_thread_is_waited_for_as_python_would() -> None:
    done = run_python(
        "import threading, time\n"
        "from openheim.foundation.quick_exit import leave\n"
        "def late():\n"
        "    time.sleep(0.2)\n"
        "    print('thread done')\n"
        "threading.Thread(target=late).start()\n"
        "leave(0)\n"
    )
    assert (done.returncode, done.stdout) == (0, "thread done\n")


def test_the_command_keeps_its_exit_status() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "openheim", "run"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "Missing argument 'PROMPT'" in done.stderr
