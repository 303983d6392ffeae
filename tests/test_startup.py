"""The command skips the optional parts of its HTTP client; the library leaves them alone."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("rich", "click", "pygments", "h2")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return set(done.stdout.split())


def test_the_command_loads_no_cli_or_http2_modules_of_httpx() -> None:
    modules = loaded_after(
        "import openheim.__main__, openheim.headless, openheim.providers.client, httpx\n"
        "httpx.AsyncClient()"
    )
    assert "httpx" in modules and "httpcore" in modules
    assert not [name for name in HEAVY if name in modules]


def test_a_program_using_the_library_keeps_httpx_whole() -> None:
    modules = loaded_after("import openheim.client, httpx\nhttpx.AsyncClient()")
    assert "httpx._main" in modules and "h2" in modules


def test_httpcore_imported_without_anyio_works_on_trio_and_anyio_imports_after() -> None:
    modules = loaded_after(
        "import trio\n"
        "from openheim.foundation.startup import without_anyio\n"
        "with without_anyio():\n"
        "    import httpx, httpcore\n"
        "assert 'anyio' not in __import__('sys').modules\n"
        "async def main():\n"
        "    async with httpx.AsyncClient() as client:\n"
        "        try:\n"
        "            await client.get('http://127.0.0.1:9/')\n"
        "        except httpx.ConnectError:\n"
        "            pass\n"
        "trio.run(main)\n"
        "import anyio"
    )
    assert "anyio" in modules
