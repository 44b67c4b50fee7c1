"""Money safety in the runtime, through real backtests on tiny hand-written catalogs:
unknown outcomes are resolved, never guessed; the risk gate checks every order; the
per-arbitrage PnL adds up to the ledger exactly.

Scenario (latency 10 ms each way on both venues): mexc asks 100.0; at T0+100 ms gateio
bids 101.0, so the strategy buys 0.5 on mexc and sells 0.5 on gateio. Both legs reach the
exchanges at T0+130 and would be answered at T0+140.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import builders
from builders import MS, T0

from arbsim.app.backtest import bundled_sample, default_config_path, run_backtest
from arbsim.app.config import load_config, parse_config
from arbsim.core.errors import OrderNotPlaced
from arbsim.core.model import OrderRequest, OrderStatus, Side, TimeInForce
from arbsim.core.records import ArbRecord
from arbsim.runtime.arbitrage import ArbParams
from arbsim.runtime.context import Context
from arbsim.runtime.loop import VirtualTimeLoop
from arbsim.runtime.risk import RiskDenied
from arbsim.runtime.strategy import Strategy
from exchanges.simulated.config import ReplayConfig
from strategies.cross_exchange import CrossExchangeArb

SYM = "BTC/USDT"

CONFIG = """
venues:
  - name: mexc
    rules: generic
    balances: {{USDT: "10000", BTC: "0.2"}}
    latency: {{entry_ms: 10.0, response_ms: 10.0}}
    faults: {mexc_faults}
  - name: gateio
    rules: generic
    balances: {{USDT: "10000", BTC: "1"}}
    latency: {{entry_ms: 10.0, response_ms: 10.0}}
    faults: {gate_faults}
risk: {{max_one_sided: "0.5", max_position: {{BTC: "{max_position}"}},
       resolve_timeout_s: {resolve_s}}}
run: {{drain_s: 1.0, equity_interval_s: 1.0}}
"""


def scenario() -> tuple[builders.VenueData, builders.VenueData]:
    m = builders.VenueData(builders.instrument("mexc"))
    g = builders.VenueData(builders.instrument("gateio"))
    m.message(T0, T0, bids=[(99.0, 1.0)], asks=[(100.0, 1.0)], snapshot=True)
    g.message(T0, T0, bids=[(99.5, 1.0)], asks=[(100.5, 1.0)], snapshot=True)
    g.message(T0 + 95 * MS, T0 + 100 * MS, bids=[(101.0, 1.0)])
    return m, g


class ArbProbe(CrossExchangeArb):
    ctx: Context | None = None

    async def on_start(self, ctx: Context) -> None:
        self.ctx = ctx
        await super().on_start(ctx)


def run(
    tmp_path: Path,
    strategy: Strategy,
    *,
    mexc_faults: str = "{}",
    gate_faults: str = "{}",
    max_position: str = "10",
    resolve_s: float = 30.0,
    venues: tuple[builders.VenueData, ...] | None = None,
) -> dict[str, Any]:
    cat = tmp_path / "cat"
    builders.write_catalog(cat, venues or scenario())
    text = CONFIG.format(
        mexc_faults=mexc_faults, gate_faults=gate_faults, max_position=max_position,
        resolve_s=resolve_s,
    )  # fmt: skip
    cfg = parse_config(text.encode())
    res = run_backtest(cfg, catalog_path=cat, out_dir=tmp_path / "run", strategy=strategy)
    return res.summary


def arb_probe() -> ArbProbe:
    return ArbProbe(ArbParams(venues=["mexc", "gateio"], max_qty=D("0.5")))


def orders_of(ctx: Context, rec: ArbRecord) -> list[tuple[str, Side, str, D]]:
    out = []
    for cid in rec.orders:
        o = ctx.recorder.order(cid)
        assert o is not None
        out.append((o.venue, o.side, o.status.value, o.filled_qty))
    return out


# ----------------------------------------------------------------------------- unknown outcomes
def test_a_leg_whose_answer_was_lost_is_read_back_and_not_hedged_twice(tmp_path: Path) -> None:
    """The sell leg fills at gateio but its answer never comes: it is resolved as filled
    (private stream and query), so nothing is sold a second time and the books are flat."""
    probe = arb_probe()
    summary = run(tmp_path, probe, gate_faults="{lost_answer: {place: 1.0}}")
    ctx = probe.ctx
    assert ctx is not None
    (rec,) = ctx.recorder.arbs
    assert (rec.outcome, rec.reason) == ("completed", "")
    assert orders_of(ctx, rec) == [
        ("mexc", Side.BUY, "filled", D("0.5")),
        ("gateio", Side.SELL, "filled", D("0.5")),
    ]
    assert ctx.ledger.position("BTC") == D("0")
    assert summary["reconciled_exactly"] is True
    assert summary["unresolved_orders"] == []
    # the order left the open-order count when it was known final
    assert ctx.risk.open_orders == 0
    assert summary["risk"]["denials"] == {}


def test_a_leg_lost_on_the_way_is_known_never_placed_and_the_buy_is_hedged(
    tmp_path: Path,
) -> None:
    """Every order request to gateio is lost on the way: the sell leg, then the hedge,
    are known never placed (not found by the queries that follow them), so the bought
    0.5 is unwound where it was bought."""
    m, g = scenario()
    g.message(T0 + 300 * MS, T0 + 300 * MS, bids=[(101.0, 0.0)])  # the chance is gone
    m.message(T0 + 5000 * MS, T0 + 5000 * MS, bids=[(99.0, 1.0)])
    probe = arb_probe()
    summary = run(
        tmp_path, probe, gate_faults="{timeout: {place: 1.0}, timeout_s: 0.5}", venues=(m, g)
    )
    ctx = probe.ctx
    assert ctx is not None
    (rec,) = ctx.recorder.arbs
    assert (rec.outcome, D(rec.unwind_qty), D(rec.residual_qty)) == ("unwound", D("0.5"), D(0))
    assert orders_of(ctx, rec) == [
        ("mexc", Side.BUY, "filled", D("0.5")),
        ("gateio", Side.SELL, "rejected", D("0")),  # never reached gateio
        ("gateio", Side.SELL, "rejected", D("0")),  # the hedge, likewise
        ("mexc", Side.SELL, "filled", D("0.5")),  # the unwind
    ]
    assert {ctx.recorder.order(c).reject_code for c in rec.orders[1:3]} == {"not_placed"}  # type: ignore[union-attr]  # both exist
    assert summary["rejections"] == {"gateio:not_placed": 2}
    assert ctx.ledger.position("BTC") == D("0")
    assert ctx.risk.open_orders == 0
    assert summary["reconciled_exactly"] is True


def test_an_order_that_cannot_be_resolved_blocks_its_venue(tmp_path: Path) -> None:
    """Answers of orders and of queries on gateio are all lost: the leg stays unknown
    past the deadline, the attempt is ``unresolved`` (no hedge on a guess) and gateio
    takes no new entries."""
    m, g = scenario()
    g.message(T0 + 300 * MS, T0 + 300 * MS, bids=[(101.0, 0.0)])
    m.message(T0 + 5000 * MS, T0 + 5000 * MS, bids=[(99.0, 1.0)])
    probe = arb_probe()
    summary = run(
        tmp_path,
        probe,
        gate_faults="{lost_answer: {place: 1.0, fetch_order: 1.0}, witness: false}",
        resolve_s=1.0,
        venues=(m, g),
    )
    ctx = probe.ctx
    assert ctx is not None
    (rec,) = ctx.recorder.arbs
    assert rec.outcome == "unresolved"
    assert len(rec.orders) == 2  # no hedge on a guess
    assert summary["unresolved_orders"] == [rec.orders[1]]
    assert "gateio" in ctx.risk.blocked
    req = OrderRequest(venue="gateio", symbol=SYM, side=Side.BUY, qty=D("0.01"), price=D("100"))
    denial = ctx.check_entry(req)
    assert denial is not None and denial.reason == "venue_blocked"


class Scripted(Strategy):
    """Runs ``script`` once the engine is ready; records what it saw."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.seen: dict[str, Any] = {}

    def subscriptions(self, venues: Sequence[str]) -> dict[str, list[str]]:
        return {v: [SYM] for v in venues}

    async def on_start(self, ctx: Context) -> None:
        ctx.spawn(self.script(ctx, self.seen), name="script")


async def sleep_until(ts: int) -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    await loop.sleep_until(ts)


def test_place_order_resolves_unknown_outcomes_for_any_strategy(tmp_path: Path) -> None:
    async def script(ctx: Context, seen: dict[str, Any]) -> None:
        await sleep_until(T0 + 50 * MS)
        buy = OrderRequest(
            venue="mexc", symbol=SYM, side=Side.BUY, qty=D("0.1"), price=D("100.0"),
            tif=TimeInForce.IOC,
        )  # fmt: skip
        seen["lost"] = await ctx.place_order(buy)
        try:
            await ctx.place_order(msgspec_replace(buy, "gateio"))
        except OrderNotPlaced as e:
            seen["dropped"] = e

    s = Scripted(script)
    summary = run(
        tmp_path,
        s,
        mexc_faults="{lost_answer: {place: 1.0}}",
        gate_faults="{timeout: {place: 1.0}, timeout_s: 0.2}",
    )
    assert s.seen["lost"].status is OrderStatus.FILLED
    assert s.seen["lost"].filled_qty == D("0.1")
    assert s.seen["dropped"].code == "not_placed"
    assert summary["rejections"] == {"gateio:not_placed": 1}
    assert summary["reconciled_exactly"] is True


def msgspec_replace(req: OrderRequest, venue: str) -> OrderRequest:
    import msgspec

    return msgspec.structs.replace(req, venue=venue, price=D("100.5"), client_order_id="")


# ----------------------------------------------------------------------------- the risk gate
def test_every_order_passes_the_gate_and_reducing_ones_are_exempt(tmp_path: Path) -> None:
    async def script(ctx: Context, seen: dict[str, Any]) -> None:
        await sleep_until(T0 + 50 * MS)
        buy = OrderRequest(
            venue="mexc", symbol=SYM, side=Side.BUY, qty=D("0.3"), price=D("100.0"),
        )  # fmt: skip
        try:
            await ctx.place_order(buy)
        except RiskDenied as e:
            seen["position"] = e.reason
        small = msgspec_like(buy, qty=D("0.2"))
        seen["bought"] = (await ctx.place_order(small)).filled_qty
        ctx.risk.trip(ctx.now_ns(), "test")
        try:
            await ctx.place_order(msgspec_like(small, qty=D("0.1")))
        except RiskDenied as e:
            seen["breaker"] = e.reason
        sell = msgspec_like(small, side=Side.SELL, price=D("99.0"), qty=D("0.2"))
        seen["reduced"] = (await ctx.place_order(sell, reducing=True)).filled_qty
        await sleep_until(T0 + 7000 * MS)  # 6.9 s after the last book: stale
        ctx.risk.breaker_reason = None
        try:
            await ctx.place_order(msgspec_like(small, qty=D("0.01")))
        except RiskDenied as e:
            seen["stale"] = e.reason

    m, g = scenario()
    m.message(T0 + 1000 * MS, T0 + 1000 * MS, bids=[(99.0, 1.0)])
    g.message(T0 + 8000 * MS, T0 + 8000 * MS, bids=[(99.0, 1.0)])
    s = Scripted(script)
    summary = run(tmp_path, s, max_position="0.25", venues=(m, g))
    assert s.seen == {
        "position": "position",
        "bought": D("0.2"),
        "breaker": "circuit_breaker",
        "reduced": D("0.2"),
        "stale": "stale_data",
    }
    assert summary["risk"]["denials"] == {"circuit_breaker": 1, "position": 1, "stale_data": 1}


def msgspec_like(req: OrderRequest, **changes: Any) -> OrderRequest:
    import msgspec

    return msgspec.structs.replace(req, client_order_id="", **changes)


def test_repeated_api_failures_make_a_venue_unhealthy_for_a_while(tmp_path: Path) -> None:
    async def script(ctx: Context, seen: dict[str, Any]) -> None:
        await sleep_until(T0 + 50 * MS)
        try:
            await ctx.open_orders("gateio")  # every answer lost: retried, then given up
        except Exception as e:
            seen["error"] = type(e).__name__
        req = OrderRequest(venue="gateio", symbol=SYM, side=Side.BUY, qty=D("0.1"),
                           price=D("100.5"))  # fmt: skip
        denial = ctx.check_entry(req)
        seen["gateio"] = denial.reason if denial else None
        seen["mexc"] = ctx.check_entry(msgspec_like(req, venue="mexc", price=D("100.0")))
        await asyncio.sleep(61)  # the failures leave the 60 s window
        health = ctx.venues["gateio"].health()
        seen["later"] = ctx.risk.check_venue(ctx.now_ns(), "gateio", health)

    m, g = scenario()
    g.message(T0 + 70_000 * MS, T0 + 70_000 * MS, bids=[(99.0, 1.0)])
    s = Scripted(script)
    run(tmp_path, s, gate_faults="{lost_answer: {open_orders: 1.0}}", venues=(m, g))
    assert s.seen == {"error": "NetworkError", "gateio": "venue_failing", "mexc": None,
                      "later": None}  # fmt: skip


# ----------------------------------------------------------------------------- exact PnL
def test_arbitrage_pnl_adds_up_to_the_ledger_with_fees_in_base(tmp_path: Path) -> None:
    """The bundled sample with MEXC and Gate rules (fees in the received asset: BTC on
    buys): each arbitrage values its fees in their own asset, and the arbitrages' exact
    flows at the ledger's marks equal the ledger's net to the last unit."""
    cfg = load_config(default_config_path())
    assert all(isinstance(v, ReplayConfig) and v.rules is None for v in cfg.venues)
    res = run_backtest(cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "run")
    pnl = res.summary["pnl"]
    assert D(pnl["net_exact"]) == D(pnl["arbs_net_exact"])
    assert abs(float(pnl["net_exact"]) - pnl["net"]) < 1e-5
    import pyarrow.parquet as pq

    arbs = pq.read_table(tmp_path / "run" / "arbs.parquet").to_pandas()
    fills = pq.read_table(tmp_path / "run" / "fills.parquet").to_pandas()
    assert (fills.fee_asset == "BTC").sum() > 0  # fees in base do occur
    # the realised PnL no longer counts a BTC fee as USDT (it was 10,012 against 8,174)
    assert abs(arbs.realized_pnl.sum() - pnl["net"]) < 0.001 * abs(pnl["net"])


def test_a_backtest_with_lost_answers_and_timeouts_resolves_every_arbitrage(
    tmp_path: Path,
) -> None:
    """2% lost answers and 2% timeouts on both venues, for orders and queries."""
    text = default_config_path().read_text()
    faults = (
        "    faults: {lost_answer: {place: 0.02, cancel: 0.02, fetch_order: 0.02,"
        " fetch_balances: 0.02}, timeout: {place: 0.02}, seed: SEED}\n"
    )
    lines = []
    seed = 1
    for line in text.splitlines(keepends=True):
        lines.append(line)
        if line.strip().startswith("latency:"):
            lines.append(faults.replace("SEED", str(seed)))
            seed += 1
    cfg = parse_config("".join(lines).encode())
    res = run_backtest(cfg, catalog_path=bundled_sample(), out_dir=tmp_path / "run")
    s = res.summary
    assert s["status"] == "ok"
    assert "pending" not in s["arbs"] and "unresolved" not in s["arbs"]
    assert s["unresolved_orders"] == []
    assert s["reconciled_exactly"] is True
    assert D(s["pnl"]["net_exact"]) == D(s["pnl"]["arbs_net_exact"])
    assert sum(v for k, v in s["rejections"].items() if k.endswith(":not_placed")) > 0
    import pyarrow.parquet as pq

    orders = pq.read_table(tmp_path / "run" / "orders.parquet").to_pandas()
    assert not orders.status.isin(["new", "accepted", "partially_filled"]).any()
