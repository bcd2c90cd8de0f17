"""Churn health (`segment --health`) against its floor.

    python bench/bench_health.py --customers 100000

Times ``churn_health`` over the default 12 months, and apart its per-month-end
statuses (who is active, ended or back at each month end), against a plain Polars
scan + group_by(customer_id) with count/sum/max over the same events. Data: a
generated export (cached in bench/.cache, shared with bench_features.py), ingested once.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from churnkit.sample.generator import make_sample
from common import CACHE, best_of, in_child, peak_rss_mib

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, PLAN, TS, EventKind
from churnkit.core.timeline import end_of_day, events_until, resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.population import labels
from churnkit.segment import health
from churnkit.segment.month_ends import month_end_statuses

SETTINGS = load_settings(None, env={})


def events_file(customers: int) -> Path:
    """All events of a generated export, ingested, as one Parquet file (cached)."""
    root = CACHE / f"features-{customers}"
    target = root / "events.parquet"
    if target.exists():
        return target
    print(f"generating and ingesting {customers:,} customers...", file=sys.stderr)
    paths = make_sample(root / "export", customers, seed=13).paths
    workspace = Workspace(root / "ws")
    ingest([paths["transactions"]], settings=SETTINGS, workspace=workspace)
    ingest([paths["usage"]], settings=SETTINGS, workspace=workspace, kind=EventKind.USAGE)
    scan_events(workspace).sink_parquet(target)
    return target


def floor(path: Path) -> pl.DataFrame:
    return (
        pl.scan_parquet(path)
        .group_by(CUSTOMER_ID)
        .agg(pl.len(), pl.col(AMOUNT).sum(), pl.col(TS).max())
        .collect(engine="streaming")
    )


def full(path: Path) -> health.HealthReport:
    return health.churn_health(pl.scan_parquet(path), settings=SETTINGS)


def statuses(path: Path) -> pl.DataFrame:
    """The per-month-end statuses alone, with the inputs churn_health gives them."""
    events = pl.scan_parquet(path)
    as_of = resolve_as_of(events, None)
    known = events_until(events, as_of).select(CUSTOMER_ID, TS, "kind", AMOUNT, PLAN)
    window = labels.active_window_days(events, as_of, SETTINGS.labels)
    first = known.select(pl.col(TS).min()).collect().item()
    starts = health._month_starts(first.date(), as_of, SETTINGS.segments.health_months)
    ends = [end_of_day(s - timedelta(days=1)) for s in starts]
    return month_end_statuses(
        known, ends, window=window, grace=SETTINGS.labels.grace_period, with_plan=True
    )


STEPS = {"floor": floor, "health": full, "statuses": statuses}


def child(kind: str, path: Path) -> None:
    STEPS[kind](path)
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    path = events_file(args.customers)
    n_events = pl.scan_parquet(path).select(pl.len()).collect().item()
    floor(path)  # warm the page cache
    times = {k: best_of(args.repeat, lambda fn=fn: fn(path)) for k, fn in STEPS.items()}
    peaks = {k: in_child(Path(__file__), k, str(path))["peak_rss_mib"] for k in STEPS}
    print(f"health benchmark: {args.customers:,} customers, {n_events:,} events, 12 months")
    for key, label in (
        ("floor", "floor  scan + group_by count/sum/max"),
        ("statuses", "month-end statuses"),
        ("health", "churn_health (all of --health)"),
    ):
        print(f"  {label:<38}{times[key]:7.2f} s  peak {peaks[key]:7,.0f} MiB")
    print(f"  ratio health / floor: {times['health'] / times['floor']:.2f}x time")


if __name__ == "__main__":
    main()
