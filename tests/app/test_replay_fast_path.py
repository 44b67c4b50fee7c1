"""The fast replay path writes the same run, byte for byte, as the reference path.

``run_backtest(reference_replay=True)`` keeps every stream in the merge and applies each
message with the Python book; the default path applies books with the compiled kernel,
holds exchange-side streams back while nothing rests and skips trades a strategy does not
want. Every Parquet output must be identical, and ``summary.json`` too but for the wall
time. On the bundled sample, and on the real Binance set when ``../shared/realdata`` is
there.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Literal

import msgspec
import pytest
from click.testing import CliRunner

from arbsim.app.backtest import auto_config, bundled_sample, default_config_path, run_backtest
from arbsim.app.cli import main
from arbsim.app.config import Config, load_config
from arbsim.core.book import OrderBook
from arbsim.core.errors import VenueError
from arbsim.core.model import OrderRequest, Side, TimeInForce, Trade
from arbsim.data.catalog import Catalog
from arbsim.runtime.context import Context
from arbsim.runtime.risk import RiskDenied
from arbsim.runtime.strategy import Strategy
from exchanges.simulated.config import QueueConfig

WALL = ("wall_seconds", "events_per_s")


class Quoter(Strategy):
    """Rests a GTC bid and ask at the touch of every venue, replaced every half second:
    orders rest, fill, get cancelled, so exchange-side streams leave and rejoin the merge."""

    name = "quoter"

    def __init__(self, symbol: str, tif: TimeInForce = TimeInForce.GTC) -> None:
        self.symbol = symbol
        self.tif = tif
        self.live: list[tuple[str, str]] = []
        self.busy = False

    async def on_start(self, ctx: Context) -> None:
        ctx.every(0.5, lambda: self._tick(ctx))

    def _tick(self, ctx: Context) -> None:
        if not self.busy:
            self.busy = True
            ctx.spawn(self._replace(ctx))

    async def _replace(self, ctx: Context) -> None:
        try:
            for venue, cid in self.live:
                with contextlib.suppress(VenueError, RiskDenied):
                    await ctx.cancel_order(venue, self.symbol, cid)
            self.live = []
            for venue in sorted(ctx.venues):
                inst = ctx.instrument(venue, self.symbol)
                book = ctx.book(venue, self.symbol)
                if book.best_bid is None or book.best_ask is None:
                    continue
                qty = inst.round_qty(max(float(inst.min_qty), 30.0 / book.best_bid))
                for side, price in ((Side.BUY, book.best_bid), (Side.SELL, book.best_ask)):
                    req = OrderRequest(
                        venue=venue,
                        symbol=self.symbol,
                        side=side,
                        qty=qty,
                        price=inst.round_price(price),
                        tif=self.tif,
                    )
                    try:
                        order = await ctx.place_order(req)
                    except (VenueError, RiskDenied):
                        continue
                    if order.is_open:
                        self.live.append((venue, order.client_order_id))
        finally:
            self.busy = False


class TradeCounter(Quoter):
    """A quoter that also wants public trades (they stay in the merge) and reads books."""

    name = "trade_counter"

    def __init__(self, symbol: str) -> None:
        super().__init__(symbol, TimeInForce.POST_ONLY)
        self.trades = 0
        self.tops: set[tuple[int | None, int | None]] = set()

    def on_book(self, ctx: Context, venue: str, book: OrderBook) -> None:
        self.tops.add((book.best_bid_tick, book.best_ask_tick))

    def on_trade(self, ctx: Context, venue: str, trade: Trade) -> None:
        self.trades += 1

    def summary(self) -> dict[str, int]:
        return {"trades_seen": self.trades, "tops": len(self.tops)}


def assert_same_run(ref: Path, fast: Path) -> None:
    names = sorted(p.name for p in ref.iterdir())
    assert names == sorted(p.name for p in fast.iterdir())
    for name in names:
        if name.endswith(".parquet"):
            assert (ref / name).read_bytes() == (fast / name).read_bytes(), name
    a, b = (json.loads((d / "summary.json").read_text()) for d in (ref, fast))
    for d in (a, b):
        for k in WALL:
            d.pop(k)
    assert a == b


def both_paths(
    cfg: Config,
    catalog: Path,
    tmp: Path,
    make: type[Strategy] | None = None,
    end: str | None = None,
    start: str | None = None,
) -> tuple[Path, Path, dict[str, object]]:
    dirs = []
    summary: dict[str, object] = {}
    for ref in (True, False):
        out = tmp / ("ref" if ref else "fast")
        symbol = cfg.strategy.params.get("symbol", "BTC/USDT")
        strategy = make(symbol) if make is not None else None
        result = run_backtest(
            cfg,
            catalog_path=catalog,
            out_dir=out,
            start=start,
            end=end,
            strategy=strategy,
            reference_replay=ref,
        )
        summary = result.summary
        dirs.append(out)
    return dirs[0], dirs[1], summary


def test_sample_cross_exchange_is_byte_identical(tmp_path: Path) -> None:
    cfg = load_config(default_config_path())
    ref, fast, s = both_paths(cfg, bundled_sample(), tmp_path)
    assert_same_run(ref, fast)
    assert s["fills"] > 0 and s["arbs"]["attempted"] > 0  # type: ignore[index,operator]


@pytest.mark.parametrize("queue", ["risk_averse", "prob_power"])
def test_sample_resting_orders_are_byte_identical(
    tmp_path: Path, queue: Literal["risk_averse", "prob_power"]
) -> None:
    cfg = load_config(default_config_path())
    cfg = msgspec.structs.replace(
        cfg,
        venues=[msgspec.structs.replace(v, queue=QueueConfig(model=queue)) for v in cfg.venues],
    )
    ref, fast, s = both_paths(cfg, bundled_sample(), tmp_path, Quoter, "2026-01-05T00:03:00Z")
    assert_same_run(ref, fast)
    assert s["fills"] > 20 and s["orders"] > 100  # type: ignore[operator]


def test_sample_window_after_a_warm_up_is_byte_identical(tmp_path: Path) -> None:
    """Messages before --start only build books (held-back streams pass them too)."""
    cfg = load_config(default_config_path())
    ref, fast, s = both_paths(
        cfg, bundled_sample(), tmp_path, Quoter, "2026-01-05T00:04:00Z", "2026-01-05T00:02:30Z"
    )
    assert_same_run(ref, fast)
    assert s["fills"] > 5  # type: ignore[operator]


def test_sample_with_trades_wanted_is_byte_identical(tmp_path: Path) -> None:
    cfg = load_config(default_config_path())
    ref, fast, s = both_paths(cfg, bundled_sample(), tmp_path, TradeCounter, "2026-01-05T00:02:00Z")
    assert_same_run(ref, fast)
    assert s["strategy"]["trades_seen"] > 100  # type: ignore[index]


@pytest.fixture(scope="module")
def binance(realdata: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cat = tmp_path_factory.mktemp("binance") / "cat"
    b = realdata / "binance"
    for venue, files in (
        ("binance_spot", ["spot_btcusdt_20240808.gz", "spot_btcusdt_20240809.gz"]),
        ("binance_usdm", ["usdm_btcusdt_20240808.gz"]),
    ):
        args = ["data", "import", "binance-hftbacktest", *[str(b / f) for f in files]]
        args += ["--venue", venue, "--symbol", "BTC/USDT", "--catalog", str(cat)]
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 0, r.output
    return cat


@pytest.mark.realdata
@pytest.mark.parametrize("make", [None, Quoter, TradeCounter])
def test_real_two_venue_set_is_byte_identical(
    binance: Path, tmp_path: Path, make: type[Strategy] | None
) -> None:
    cfg = auto_config(Catalog(binance))
    ref, fast, s = both_paths(cfg, binance, tmp_path, make)
    assert_same_run(ref, fast)
    assert s["events"] == 798_783
    if make is not None:
        assert s["fills"] > 50  # type: ignore[operator]
