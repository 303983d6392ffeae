"""``python -m openheim.testing --script FILE.json``: the fake LLM server as a process.

For benchmarks and manual runs. The first stdout line is ``listening <base_url>`` so a parent
process can wait for it; SIGINT or SIGTERM stops the server cleanly (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import trio

from openheim.testing.script import Script
from openheim.testing.script_json import load_script
from openheim.testing.server import open_fake_llm


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m openheim.testing", description="Serve a scripted fake LLM provider."
    )
    parser.add_argument("--script", required=True, help="JSON file: a list of responses")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (0 picks a free one)")
    parser.add_argument("--repeat", action="store_true", help="start the script over when done")
    return parser.parse_args(argv)


async def serve(script: Script, host: str, port: int) -> None:
    # Catch the signals before announcing the port, so a prompt SIGTERM is still clean.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_fake_llm(script, host=host, port=port) as server:
            print(f"listening {server.base_url}", flush=True)
            async for _ in signals:
                break


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        script = load_script(args.script, repeat=args.repeat)
    except (OSError, ValueError) as exc:
        print(f"fake LLM: cannot load {args.script}: {exc}", file=sys.stderr)
        return 2
    trio.run(serve, script, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
