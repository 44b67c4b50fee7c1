"""Small hand-built catalogs for tests: every row is written explicitly."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from arbsim.core.model import Instrument
from arbsim.data.catalog import FLAG_SNAPSHOT_BEGIN, FLAG_SNAPSHOT_END, Catalog, CatalogInfo

T0 = 1_767_571_200_000_000_000  # 2026-01-05T00:00:00Z
MS = 1_000_000

Level = tuple[float, float]


def instrument(venue: str, **kw: object) -> Instrument:
    fields: dict[str, Any] = {
        "venue": venue,
        "symbol": "BTC/USDT",
        "base": "BTC",
        "quote": "USDT",
        "tick": Decimal("0.1"),
        "lot": Decimal("0.001"),
        "min_qty": Decimal("0.001"),
        "min_notional": Decimal("1"),
        "maker_fee": Decimal("0"),
        "taker_fee": Decimal("0.001"),
    }
    fields.update(kw)
    return Instrument(**fields)


class VenueData:
    """Accumulates book messages and trades of one venue, then writes them."""

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.book: dict[str, list[float | int]] = {
            k: [] for k in ("ts_exchange", "ts_local", "seq", "side", "price", "size", "flags")
        }
        self.trades: dict[str, list[float | int]] = {
            k: [] for k in ("ts_exchange", "ts_local", "trade_id", "side", "price", "size")
        }
        self.seq = 0

    def message(
        self,
        ts_exchange: int,
        ts_local: int,
        bids: Sequence[Level] = (),
        asks: Sequence[Level] = (),
        snapshot: bool = False,
    ) -> None:
        self.seq += 1
        flags = FLAG_SNAPSHOT_BEGIN | FLAG_SNAPSHOT_END if snapshot else 0
        for side, levels in ((1, bids), (-1, asks)):
            for price, size in levels:
                for key, val in (
                    ("ts_exchange", ts_exchange),
                    ("ts_local", ts_local),
                    ("seq", self.seq),
                    ("side", side),
                    ("price", price),
                    ("size", size),
                    ("flags", flags),
                ):
                    self.book[key].append(val)

    def trade(self, ts_exchange: int, ts_local: int, side: int, price: float, size: float) -> None:
        n = len(self.trades["trade_id"]) + 1
        for key, val in (
            ("ts_exchange", ts_exchange),
            ("ts_local", ts_local),
            ("trade_id", n),
            ("side", side),
            ("price", price),
            ("size", size),
        ):
            self.trades[key].append(val)


def write_catalog(root: Path, venues: Sequence[VenueData], synthetic: bool = True) -> Catalog:
    cat = Catalog(root)
    cat.create(CatalogInfo(synthetic=synthetic, description="test catalog"))
    for v in venues:
        cat.write_instrument(v.inst)
        order = sorted(range(len(v.book["ts_local"])), key=lambda i: v.book["ts_local"][i])
        with cat.writer(v.inst.venue, v.inst.symbol, "book") as w:
            w.write({k: [col[i] for i in order] for k, col in v.book.items()})
        if v.trades["trade_id"]:
            order = sorted(range(len(v.trades["ts_local"])), key=lambda i: v.trades["ts_local"][i])
            with cat.writer(v.inst.venue, v.inst.symbol, "trades") as w:
                w.write({k: [col[i] for i in order] for k, col in v.trades.items()})
    return cat
