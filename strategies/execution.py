"""Execution algorithms as a strategy: work the parent orders of the config (TWAP, VWAP,
iceberg; :mod:`arbsim.runtime.execution`) on their venues, each from its ``start_s``.

A backtest of this strategy on recorded data shows what an execution schedule would
have cost (``algos.parquet``: slippage against the arrival mid and the interval VWAP);
the same config works the orders in paper and live modes.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from typing import Any

import msgspec

from arbsim.core.model import Trade
from arbsim.runtime.context import Context
from arbsim.runtime.execution import AlgoParams, ExecAlgo
from arbsim.runtime.strategy import Strategy


class ExecutionParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Config ``strategy.params`` of the execution strategy."""

    algos: list[AlgoParams]

    def __post_init__(self) -> None:
        if not self.algos:
            raise ValueError("algos: name at least one parent order")


class ExecutionStrategy(Strategy):
    name = "execution"
    Params = ExecutionParams

    def __init__(self, params: ExecutionParams):
        self.p = params
        self.running: list[ExecAlgo] = []
        self.finished: list[str] = []

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for a in self.p.algos:
            syms = out.setdefault(a.venue, [])
            if a.symbol not in syms:
                syms.append(a.symbol)
        return out

    async def on_start(self, ctx: Context) -> None:
        ids = itertools.count(1)
        for params in self.p.algos:
            algo = ExecAlgo(ctx, params, next(ids))
            ctx.spawn(self._work(algo), name=f"algo-{algo.rec.algo_id}")

    async def _work(self, algo: ExecAlgo) -> None:
        if algo.p.start_s > 0:
            await asyncio.sleep(algo.p.start_s)
        self.running.append(algo)
        try:
            rec = await algo.run()
            self.finished.append(rec.outcome)
        finally:
            self.running.remove(algo)

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        for algo in self.running:
            algo.on_trade(venue, trade)

    def summary(self) -> dict[str, Any]:
        return {
            "algos": len(self.p.algos),
            **{k: self.finished.count(k) for k in sorted(set(self.finished))},
        }
