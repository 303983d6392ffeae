"""Console entry point. asyncclick defaults to asyncio; openheim runs on trio."""

from openheim.foundation.startup import skip_unused_optional_modules

skip_unused_optional_modules()

import trio  # noqa: E402

from openheim.cli import cli  # noqa: E402  (after the line above, which speeds up its imports)
from openheim.foundation.quick_exit import leave  # noqa: E402


def main() -> None:
    """Run the command, then leave without the interpreter's teardown (``quick_exit``).

    An exit status that is not a number (``sys.exit("message")``) takes Python's usual way.
    """
    try:
        trio.run(cli.main)  # what cli() does without anyio.run, which would import anyio
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise
        leave(exc.code or 0)
    leave(0)


if __name__ == "__main__":
    main()
