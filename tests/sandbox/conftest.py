"""Backends for the sandbox tests: each test runs on every backend this machine has, and a
missing one skips with the probe's reason."""

from __future__ import annotations

import functools

import pytest

from openheim.sandbox.select import probe_bwrap, probe_landlock


@functools.cache
def backend_problem(name: str) -> str | None:
    return probe_bwrap() if name == "bwrap" else probe_landlock()


def backend_params() -> list[object]:
    return [
        pytest.param(
            name,
            marks=pytest.mark.skipif(
                backend_problem(name) is not None,
                reason=f"{name} does not work here: {backend_problem(name)}",
            ),
        )
        for name in ("bwrap", "landlock")
    ]


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
