"""Fixtures shared across test folders (registered once, so session-scoped ones stay one)."""

pytest_plugins = ["tests.postgres_server"]
