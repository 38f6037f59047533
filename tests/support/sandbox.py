"""Sandbox fixtures: an emulated Dialfire campaign on 127.0.0.1, stopped after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from dialfire_sandbox import Sandbox


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A small default campaign: seed 7, 60 contacts."""
    with Sandbox(seed=7, contacts=60) as sb:
        yield sb


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    """Call with `Sandbox` keyword arguments to get a started sandbox; all stop at teardown."""
    started: list[Sandbox] = []

    def make(**kwargs: Any) -> Sandbox:
        sb = Sandbox(**kwargs).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()
