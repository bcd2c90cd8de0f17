"""Model quality on each generated business profile, against the baselines.

    python bench/bench_quality.py --customers 4000

For each profile (subscription, retail, saas): generate a seeded export, ingest it
(billing or orders, usage, referrals), train with the default settings and print
the validation AUC of the model, the naive baseline (days since the last purchase)
and the BG/NBD baseline, the model's expected calibration error, the share of the
customers who have bought that the model scores, and whether it beats the
baselines. Then the usage export of the subscription profile alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import EventKind
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.model.training import TrainResult, train
from churnkit.sample import BUSINESSES, make_sample

SETTINGS = load_settings(None, env={})
COLUMNS = (
    "profile",
    "business",
    "model AUC",
    "naive AUC",
    "BG/NBD AUC",
    "calib. error",
    "scored",
    "beats",
)


def run(
    profile: str, customers: int, seed: int, root: Path, *, usage_only: bool = False
) -> TrainResult:
    sample = make_sample(root / "export", customers, seed=seed, business=profile)
    paths, rows = sample.paths, sample.rows
    workspace = Workspace(root / "ws")
    if not usage_only:
        ingest(
            [paths["transactions"]],
            settings=SETTINGS,
            workspace=workspace,
            relations=paths["relations"] if rows["relations"] else None,
        )
    if rows["usage"]:
        ingest([paths["usage"]], settings=SETTINGS, workspace=workspace, kind=EventKind.USAGE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(
            scan_events(workspace),
            settings=SETTINGS,
            workspace=workspace,
            relations=scan_relations(workspace),
            force=True,
        )


def row(name: str, result: TrainResult) -> list[str]:
    def auc(metrics: dict[str, Any]) -> str:
        value = metrics.get("auc")
        return "-" if value is None else f"{value:.3f}"

    return [
        name,
        result.business_model,
        auc(result.metrics),
        auc(result.baseline),
        auc(result.customer_base_baseline),
        f"{result.calibration_error:.3f}",
        "-" if not result.buyers else f"{result.scored_share:.0%}",
        "yes" if result.beats_baselines else "NO",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="churnkit-quality-") as tmp:
        for profile in BUSINESSES:
            print(f"{profile}: {args.customers:,} customers...", file=sys.stderr)
            rows.append(row(profile, run(profile, args.customers, args.seed, Path(tmp) / profile)))
        print("subscription usage export alone...", file=sys.stderr)
        only = run("subscription", args.customers, args.seed, Path(tmp) / "usage", usage_only=True)
        rows.append(row("usage only", only))
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
