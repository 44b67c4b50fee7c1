"""Fuzzing the adapters' decoders and book-sync pipelines (hypothesis; the properties are in
``tests/fuzzing.py``). A couple of hundred cases per property here; ``bench/fuzz.py`` runs
the same properties with 10,000 cases and more each."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fuzzing import REALDATA, TARGETS, Corpus, Target, corpus
from hypothesis import HealthCheck, given, settings

CASES = 200
_EMPTY = Corpus([], [], [], [], [], {}, {})


def _param(target: Target) -> Any:
    marks = [pytest.mark.realdata] if target.strategy(_EMPTY) is None else []
    return pytest.param(target, id=target.name, marks=marks)


@pytest.mark.parametrize("target", [_param(t) for t in TARGETS])
def test_only_project_errors_and_the_stream_recovers(target: Target) -> None:
    strategy = target.strategy(corpus())
    if strategy is None:
        pytest.skip(f"{target.name} fuzzes real frames: {REALDATA} not found")
    with asyncio.Runner() as runner:

        @settings(
            max_examples=CASES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(strategy)
        def holds(case: Any) -> None:
            target.check(case, runner.run)

        holds()
