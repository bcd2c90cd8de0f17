"""Ingest throughput against the floor: a plain Polars scan_csv → sink_parquet.

    python bench/bench_ingest.py --rows 10000000

Generates a realistic messy export of about ROWS rows (cached in bench/.cache), then
reports rows/s, peak memory and the ratio of churnkit's ingest (detect encoding and
delimiter, parse, validate, reject, dedup, write) to the floor on the same file: in
process (best of --repeat) and as whole processes (start-up and imports included).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, best_of, in_child, peak_rss_mib

from churnkit.core.config import load_settings
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.sample import make_sample

ROWS_PER_CUSTOMER_PROBE = 2000


def export_of(rows: int) -> Path:
    """A transactions.csv of about ``rows`` rows, generated once and cached."""
    target = CACHE / f"ingest-{rows}" / "transactions.csv"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory() as probe:
        sample = make_sample(Path(probe), ROWS_PER_CUSTOMER_PROBE, seed=11)
        per_customer = sample.rows["transactions"] / ROWS_PER_CUSTOMER_PROBE
    customers = max(100, int(rows / per_customer))
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"generating ~{rows:,} rows ({customers:,} customers)...", file=sys.stderr)
    make_sample(target.parent, customers, seed=11)
    return target


def floor(path: Path, out: Path) -> None:
    """The plain copy: read every column as text (type inference fails on a messy
    export's first "(29.54)") and write Parquet."""
    pl.scan_csv(path, infer_schema=False).sink_parquet(out)


def churnkit_ingest(path: Path, root: Path) -> int:
    shutil.rmtree(root, ignore_errors=True)
    result = ingest([path], settings=load_settings(None, env={}), workspace=Workspace(root))
    return result.rows_read


def child(kind: str, path: Path) -> None:
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        if kind == "floor":
            floor(path, Path(tmp) / "floor.parquet")
        else:
            churnkit_ingest(path, Path(tmp) / "ws")
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    path = export_of(args.rows)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        rows = churnkit_ingest(path, Path(tmp) / "warm")
        t_floor = best_of(args.repeat, lambda: floor(path, Path(tmp) / "floor.parquet"))
        t_ingest = best_of(args.repeat, lambda: churnkit_ingest(path, Path(tmp) / "ws"))
    start = time.perf_counter()
    mem_floor = in_child(Path(__file__), "floor", str(path))["peak_rss_mib"]
    p_floor = time.perf_counter() - start
    start = time.perf_counter()
    mem_ingest = in_child(Path(__file__), "ingest", str(path))["peak_rss_mib"]
    p_ingest = time.perf_counter() - start
    size_mib = path.stat().st_size / 2**20
    print(f"ingest benchmark: {rows:,} rows, {size_mib:,.0f} MiB CSV ({path})")
    print(
        f"  floor  scan_csv→sink_parquet  {t_floor:7.2f} s  {rows / t_floor:12,.0f} rows/s"
        f"  peak {mem_floor:7,.0f} MiB"
    )
    print(
        f"  churnkit ingest               {t_ingest:7.2f} s  {rows / t_ingest:12,.0f} rows/s"
        f"  peak {mem_ingest:7,.0f} MiB"
    )
    print(
        f"  ratio ingest / floor: {t_ingest / t_floor:.2f}x time in process, "
        f"{p_ingest / p_floor:.2f}x as whole processes ({p_ingest:.2f} s / {p_floor:.2f} s), "
        f"{mem_ingest / mem_floor:.2f}x peak memory ({mem_ingest / 1024:.2f} GiB)"
    )


if __name__ == "__main__":
    main()
