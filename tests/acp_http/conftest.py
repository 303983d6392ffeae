"""The remote ACP tests reuse the e2e harness: an OPENHEIM_HOME whose config points at the
fake LLM."""

from tests.e2e.conftest import home

__all__ = ["home"]
