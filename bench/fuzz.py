"""Fuzz the live adapters' decoders and book-sync pipelines at volume.

Run: ``python bench/fuzz.py [cases-per-target] [target ...]`` (default 10,000 cases, every
target). The properties are those of ``tests/fuzzing.py``, which CI runs with a couple of
hundred cases each (``tests/exchanges/test_fuzz.py``): mutated real frames from
``../shared/realdata`` and generated structure through every decoder and book-sync
pipeline; a failure is an exception outside the project's error types or a broken invariant
(a book that does not sync again after garbage, a fill an order could not take).

Prints, per target, the cases run, the failures found and how long it took; then the kinds of
the failures (with one input each) when there are any. Exits 1 when a target failed.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings

# the properties live with the tests: the import path pytest uses (root, then tests/)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from fuzzing import REALDATA, TARGETS, Target, corpus  # noqa: E402 (after the path)


def fuzz(target: Target, cases: int) -> tuple[int, Counter[str], dict[str, Any]] | None:
    """Run ``cases`` inputs through ``target``: (cases run, failures by kind, an input of
    each kind), or None when the target has nothing to fuzz with."""
    strategy = target.strategy(corpus())
    if strategy is None:
        return None
    ran = 0
    failures: Counter[str] = Counter()
    examples: dict[str, Any] = {}
    with asyncio.Runner() as runner:

        @settings(
            max_examples=cases,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],  # failures are counted, not raised: nothing to shrink
        )
        @given(strategy)
        def run(case: Any) -> None:
            nonlocal ran
            ran += 1
            try:
                target.check(case, runner.run)
            except Exception as exc:
                kind = f"{type(exc).__name__}: {str(exc)[:100]}"
                failures[kind] += 1
                examples.setdefault(kind, case)

        run()
    return ran, failures, examples


def main(argv: list[str]) -> int:
    cases = int(argv[0]) if argv and argv[0].isdigit() else 10_000
    names = [a for a in argv if not a.isdigit()]
    # the streams log each malformed message kind once: thousands of lines here
    logging.disable(logging.CRITICAL)
    if not REALDATA.is_dir():
        print(f"note: {REALDATA} not found: targets that need real frames are skipped")
    print(f"{'target':<22} {'cases':>8} {'failures':>9} {'seconds':>8}  what")
    failed: list[tuple[str, Counter[str], dict[str, Any]]] = []
    total_cases = total_failures = 0
    for target in TARGETS:
        if names and not any(target.name.startswith(n) for n in names):
            continue
        started = time.perf_counter()
        result = fuzz(target, cases)
        seconds = time.perf_counter() - started
        if result is None:
            print(f"{target.name:<22} {'-':>8} {'-':>9} {'-':>8}  skipped: needs real data")
            continue
        ran, failures, examples = result
        n_failed = sum(failures.values())
        total_cases += ran
        total_failures += n_failed
        print(f"{target.name:<22} {ran:>8,} {n_failed:>9,} {seconds:>8.1f}  {target.what}")
        if failures:
            failed.append((target.name, failures, examples))
    print(f"{'total':<22} {total_cases:>8,} {total_failures:>9,}")
    for name, failures, examples in failed:
        print(f"\n{name}:")
        for kind, count in failures.most_common():
            print(f"  {count:>6,} x {kind}")
            print(f"         e.g. {examples[kind]!r:.300}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
