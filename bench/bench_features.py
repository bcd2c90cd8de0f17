"""Feature pipeline and training against their floors.

    python bench/bench_features.py --customers 1000000

1. Features: churnkit's per-customer feature frame at a cutoff vs a plain Polars
   scan + group_by(customer_id) with count/sum/max over the same events.
2. Training: ChurnModel.fit vs a bare ``lightgbm.train`` on the same matrix with the
   same parameters and rounds.
Data: a generated export (cached in bench/.cache), ingested once.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from datetime import timedelta
from pathlib import Path

import lightgbm as lgb
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, best_of, in_child, peak_rss_mib

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, TS, EventKind
from churnkit.core.timeline import resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.features import compute_features
from churnkit.features.snapshot import as_binary
from churnkit.ingest.pipeline import ingest
from churnkit.model.encoding import encode_labels
from churnkit.model.lightgbm import ChurnModel
from churnkit.population.labels import label_window
from churnkit.sample import make_sample

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


def features(path: Path) -> pl.DataFrame:
    events = pl.scan_parquet(path)
    as_of = resolve_as_of(events, None)
    result = compute_features(events, as_of, settings=SETTINGS.features)
    return result.frame.collect(engine="streaming")


def child(kind: str, path: Path) -> None:
    (floor if kind == "floor" else features)(path)
    print(json.dumps({"peak_rss_mib": peak_rss_mib()}))


def training_matrix(path: Path) -> tuple[pl.DataFrame, pl.Series]:
    events = pl.scan_parquet(path)
    cutoff = resolve_as_of(events, None) - timedelta(days=104)
    feats = compute_features(events, cutoff, settings=SETTINGS.features).frame
    labels = label_window(events, cutoff, horizon=90, grace=14)
    frame = feats.join(labels, on=CUSTOMER_ID).collect(engine="in-memory")
    return frame.drop(CUSTOMER_ID, "churn_type"), frame["churn_type"].cast(pl.String)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return

    path = events_file(args.customers)
    n_events = pl.scan_parquet(path).select(pl.len()).collect().item()
    features(path)  # warm caches
    t_floor = best_of(args.repeat, lambda: floor(path))
    t_feat = best_of(args.repeat, lambda: features(path))
    m_floor = in_child(Path(__file__), "floor", str(path))["peak_rss_mib"]
    m_feat = in_child(Path(__file__), "features", str(path))["peak_rss_mib"]
    print(f"feature benchmark: {args.customers:,} customers, {n_events:,} events")
    print(f"  floor  scan + group_by count/sum/max  {t_floor:7.2f} s  peak {m_floor:7,.0f} MiB")
    print(f"  churnkit features                     {t_feat:7.2f} s  peak {m_feat:7,.0f} MiB")
    print(f"  ratio features / floor: {t_feat / t_floor:.2f}x time")

    X, y = training_matrix(path)
    params = SETTINGS.train.lightgbm
    model = ChurnModel(params=params, seed=SETTINGS.train.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_model = best_of(1, lambda: model.fit(X, y))
    rounds = model.best_iteration_
    matrix = model._matrix(X)  # the same encoded matrix LightGBM sees
    labels = as_binary(y) if model.mode == "binary" else y
    label = encode_labels(labels, model.classes_)
    raw = {**model._lightgbm_params(), "num_iterations": rounds}
    types = model.feature_types_
    cats = [i for i, n in enumerate(model.feature_names_) if types[n] == "categorical"]

    def bare() -> None:
        data = lgb.Dataset(matrix, label=label, categorical_feature=cats or "auto")
        lgb.train(raw, data)

    t_bare = best_of(1, bare)
    print(f"training benchmark: {X.height:,} rows x {X.width} features, {rounds} rounds")
    print(f"  bare lightgbm.train  {t_bare:7.2f} s")
    print(f"  ChurnModel.fit       {t_model:7.2f} s  (ratio {t_model / t_bare:.2f}x)")


if __name__ == "__main__":
    main()
