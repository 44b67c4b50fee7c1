"""Tardis CSV import throughput and peak memory, and memory against file length.

    python bench/import_tardis.py [--recording FILE.gz ...] [--copies 1,4] [--json]

The Binance recordings of ``../shared/realdata/binance`` are imported by the hftbacktest
importer and written as Tardis ``incremental_book_L2`` + ``trades`` CSV (gzip) files by
the tests' converter (``tests/tardis_csv.py``); for each ``--copies`` N the files hold N
copies of the data one after the other (each shifted past the previous one, each starting
with its snapshot, as consecutive Tardis days do). Each import runs in a fresh process
(``--import-only``), which reports rows/s (book + trade rows read, over both passes) and
its own peak RSS: with streaming reads the peak should not grow with N.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# the converter lives with the tests: the import path pytest uses (root, then tests/)
sys.path.insert(0, str(ROOT / "tests"))

import tardis_csv  # noqa: E402

from arbsim.data.catalog import Catalog  # noqa: E402
from arbsim.data.importers.binance_hftbacktest import import_binance_hftbacktest  # noqa: E402
from arbsim.data.importers.tardis import import_tardis  # noqa: E402

REALDATA = ROOT.parent / "shared" / "realdata" / "binance"
SYM = "BTC/USDT"


def peak_rss_mb() -> float:
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def import_only(book: Path, trades: Path, catalog: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    rep = import_tardis(book, trades_file=trades, catalog=Catalog(catalog), venue="t", symbol=SYM)
    elapsed = time.perf_counter() - t0
    rows = rep.book_rows_read + rep.trade_rows_read
    return {
        "rows": rows,
        "book_rows": rep.book_rows_read,
        "trade_rows": rep.trade_rows_read,
        "messages": rep.messages,
        "crossed_states": rep.crossed_states,
        "resyncs": rep.resyncs,
        "seconds": round(elapsed, 3),
        "rows_per_s": round(rows / elapsed),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "input_mb": round((book.stat().st_size + trades.stat().st_size) / 1e6, 2),
    }


def write_copies(ref: Catalog, offset: int, copies: int, out: Path) -> tuple[Path, Path]:
    rng = ref.time_range("src", SYM)
    assert rng is not None
    span_us = (rng[1] - rng[0]) // 1000 + 1_000_000
    book, trades = out / f"book_x{copies}.csv.gz", out / f"trades_x{copies}.csv.gz"
    for k in range(copies):
        shift = k * span_us
        tardis_csv.write_book(book, ref, "src", SYM, offset, shift_us=shift, header=k == 0)
        tardis_csv.write_trades(trades, ref, "src", SYM, offset, shift_us=shift, header=k == 0)
    return book, trades


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--recording",
        nargs="+",
        type=Path,
        default=[REALDATA / "spot_btcusdt_20240808.gz", REALDATA / "spot_btcusdt_20240809.gz"],
        help="hftbacktest-format recording file(s) of one stream, in order",
    )
    ap.add_argument("--copies", default="1,4", help="file lengths to compare, in copies")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--import-only", nargs=3, metavar=("BOOK", "TRADES", "CATALOG"))
    args = ap.parse_args()
    if args.import_only:
        book, trades, cat = (Path(x) for x in args.import_only)
        print(json.dumps(import_only(book, trades, cat)))
        return 0
    missing = [p for p in args.recording if not p.exists()]
    if missing:
        print(f"recording not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ref = Catalog(work / "ref")
        import_binance_hftbacktest(args.recording, catalog=ref, venue="src", symbol=SYM)
        offset = ref.info().clock_offsets_ns[f"src:{SYM}"]
        for copies in (int(x) for x in args.copies.split(",")):
            book, trades = write_copies(ref, offset, copies, work)
            done = subprocess.run(
                [sys.executable, __file__, "--import-only", str(book), str(trades),
                 str(work / f"cat_x{copies}")],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results.append({"copies": copies, **json.loads(done.stdout)})
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("copies       rows   input MB   seconds     rows/s   peak RSS MB   crossed")
    for r in results:
        print(
            f"{r['copies']:>6} {r['rows']:>10,} {r['input_mb']:>10.2f} {r['seconds']:>9.2f} "
            f"{r['rows_per_s']:>10,} {r['peak_rss_mb']:>13.1f} {r['crossed_states']:>9}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
