"""Console entry point. asyncclick defaults to asyncio; openheim runs on trio."""

from openheim.foundation.startup import skip_unused_optional_modules

skip_unused_optional_modules()

from openheim.cli import cli  # noqa: E402  (after the line above, which speeds up its imports)


def main() -> None:
    cli(_anyio_backend="trio")


if __name__ == "__main__":
    main()
