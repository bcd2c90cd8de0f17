"""Splitting the event log into customer-hash buckets against its floor.

    python bench/bench_buckets.py --customers 150000 [--buckets N]

Times ``derive_buckets`` (one streaming pass: hash every customer id, write one
Parquet file per bucket) against a plain Polars scan of the same batches written
to one Parquet file. Data: the generated export of bench_health.py and
bench_features.py (cached in bench/.cache), ingested once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_health import events_file
from common import in_child, peak_rss_mib

from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.engine.buckets import buckets_dir, derive_buckets


def floor(workspace: Workspace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scan_events(workspace).sink_parquet(Path(tmp) / "events.parquet")


def split(workspace: Workspace, count: int | None) -> int:
    shutil.rmtree(buckets_dir(workspace), ignore_errors=True)
    return derive_buckets(workspace, count=count).count


def child(kind: str, root: str, count: int | None) -> None:
    workspace = Workspace(Path(root))
    start = time.perf_counter()
    buckets = split(workspace, count) if kind == "split" else floor(workspace)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "buckets": buckets}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=150_000)
    parser.add_argument("--buckets", type=int, default=None)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.buckets)
        return

    root = events_file(args.customers).parent / "ws"
    workspace = Workspace(root)
    n_events = scan_events(workspace).select("ts").collect().height
    extra = [] if args.buckets is None else ["--buckets", str(args.buckets)]
    floor(workspace)  # warm the page cache
    runs = {k: in_child(Path(__file__), k, str(root), *extra) for k in ("floor", "split")}
    print(f"bucket benchmark: {args.customers:,} customers, {n_events:,} events")
    label = f"split into {runs['split']['buckets']:.0f} buckets"
    for key, text in (("floor", "floor  scan + sink_parquet"), ("split", label)):
        run = runs[key]
        print(f"  {text:<38}{run['seconds']:7.2f} s  peak {run['peak_rss_mib']:7,.0f} MiB")
    print(f"  ratio split / floor: {runs['split']['seconds'] / runs['floor']['seconds']:.2f}x time")


if __name__ == "__main__":
    main()
