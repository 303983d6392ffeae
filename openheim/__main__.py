"""Console entry point. asyncclick defaults to asyncio; openheim runs on trio."""

from openheim.cli import cli


def main() -> None:
    cli(_anyio_backend="trio")


if __name__ == "__main__":
    main()
