"""A campaign run end to end on generated data, with or without a planted effect.

The sample export is split at the plan's as-of: the events up to it are ingested, a
model is trained and scores the customers, and the report saves its plan as a
campaign (with a control group). The events after the as-of are then ingested as they
were generated (no effect: the actions did nothing) or with an effect planted: a share
of the treated customers who churned in the window are kept (their cancels and failed
payments removed, monthly purchases added), so treated customers churn less than
control ones by a known amount.
"""

from __future__ import annotations

import random
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import yaml

from churnkit.core.config import Settings, load_settings
from churnkit.core.io import scan_events
from churnkit.core.timeline import end_of_day
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.population.labels import label_window
from churnkit.retention.campaign import load_campaign
from churnkit.sample import make_sample

CUSTOMERS = 3000
SEED = 11
AS_OF = date(2026, 7, 15)
SAMPLE_END = date(2026, 10, 31)
KEEP_SHARE = 0.8
DATE_COLUMN = "Invoice Date"

PLAYBOOK = {
    "rules": [
        {
            "name": "card",
            "when": {"churn_type": ["involuntary"]},
            "action": {
                "name": "card-update",
                "description": "Ask for a new card and retry.",
                "channel": "email",
                "unit_cost": 0.5,
                "success_rate": 0.6,
            },
        }
    ],
    "fallback": {
        "name": "check-in-call",
        "description": "Call the customer to ask what would keep them.",
        "channel": "phone",
        "unit_cost": 2.0,
        "success_rate": 0.3,
    },
}


@dataclass(frozen=True)
class World:
    """A workspace holding the events up to the plan's as-of and a saved campaign."""

    root: Path
    workspace: Workspace
    after: pl.DataFrame  # the generated source rows after the as-of
    canonical_after: pl.DataFrame  # the same events as ingested (customer_id, kind, ...)
    playbook: Path


FAST = {
    "train": {"snapshots": 3, "lightgbm": {"num_boost_round": 120}},
    "predict": {"drivers_top_n": 50},
}


def settings() -> Settings:
    return load_settings(None, env={}, overrides=FAST)


def cli(root: Path, *args: str) -> str:
    """Run ``churnkit`` on the world's workspace with fast settings; stdout."""
    from typer.testing import CliRunner

    from churnkit.cli import app

    config = root / "fast.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump(FAST))
    result = CliRunner().invoke(
        app,
        ["--workspace", str(root / "ws"), "--config", str(config), "--quiet", *args],
        env={"COLUMNS": "120", "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stderr}"
    return result.stdout


def build_world(root: Path, *, budget: float | None = 1200.0) -> World:
    """Generate, split at the as-of, ingest the past, train, predict, and save the
    report's plan as campaign ``c1`` (control share 0.3)."""
    export = make_sample(root / "export", CUSTOMERS, seed=SEED, end=SAMPLE_END, messy_share=0)
    source = pl.read_csv(export.paths["transactions"], infer_schema=False)
    cut = f"{AS_OF.isoformat()} 23:59:59"
    before = source.filter(pl.col(DATE_COLUMN) <= cut)
    after = source.filter(pl.col(DATE_COLUMN) > cut)
    before.write_csv(root / "before.csv")
    full = Workspace(root / "full")
    ingest([export.paths["transactions"]], settings=settings(), workspace=full)
    canonical = scan_events(full).filter(pl.col("ts") > end_of_day(AS_OF)).collect()
    playbook = root / "playbook.yaml"
    playbook.write_text(yaml.safe_dump(PLAYBOOK))
    day = AS_OF.isoformat()
    cli(root, "ingest", str(root / "before.csv"))
    cli(root, "train", "--as-of", day)
    cli(root, "predict", "--as-of", day)
    budget_args = ["--budget", f"{budget:g}"] if budget is not None else []
    cli(
        root,
        "report",
        "--playbook",
        str(playbook),
        "--control-share",
        "0.3",
        *budget_args,
        "--save-campaign",
        "c1",
    )
    return World(root, Workspace(root / "ws"), after, canonical, playbook)


def ingest_after(world: World, rows: pl.DataFrame, name: str = "after.csv") -> None:
    path = world.workspace.root.parent / name
    rows.write_csv(path)
    cli(world.workspace.root.parent, "ingest", str(path))


def planted_rows(world: World, keep_share: float = KEEP_SHARE, seed: int = 3) -> pl.DataFrame:
    """The source rows after the as-of with the effect planted: ``keep_share`` of the
    treated customers who churned in the window stay (see the module docstring)."""
    campaign = load_campaign(world.workspace, "c1")
    treated = campaign.plan.filter(~pl.col("control"))["customer_id"].to_list()
    churners = sorted(_churned(world, campaign.horizon, campaign.grace, treated))
    rng = random.Random(seed)
    kept = sorted(rng.sample(churners, round(keep_share * len(churners))))
    leaving = world.canonical_after.filter(
        pl.col("customer_id").is_in(kept) & pl.col("kind").is_in(["cancel", "payment_failed"])
    )["transaction_id"]
    rows = world.after.filter(~pl.col("Transaction ID").is_in(leaving.implode()))
    first = datetime.combine(AS_OF, datetime.min.time()) + timedelta(days=5, hours=9)
    extra = []
    for i, customer in enumerate(kept):
        day = first
        n = 0
        while day.date() <= SAMPLE_END:
            extra.append(
                {
                    "Customer ID": customer,
                    DATE_COLUMN: day.strftime("%Y-%m-%d %H:%M:%S"),
                    "Amount": "30.00",
                    "Status": "paid",
                    "Transaction ID": f"KEPT{i:05d}-{n:03d}",
                }
            )
            day += timedelta(days=30)
            n += 1
    added = pl.DataFrame(extra, schema=dict.fromkeys(extra[0], pl.String)) if extra else None
    out = pl.concat([rows, added], how="diagonal") if added is not None else rows
    return out.select(world.after.columns)


def planted_effect(world: World, keep_share: float = KEEP_SHARE, seed: int = 3) -> float:
    """The uplift planted: treated churners kept over treated customers."""
    campaign = load_campaign(world.workspace, "c1")
    treated = campaign.plan.filter(~pl.col("control"))["customer_id"].to_list()
    churners = _churned(world, campaign.horizon, campaign.grace, treated)
    return round(keep_share * len(churners)) / len(treated)


def _churned(world: World, horizon: int, grace: int, customers: list[str]) -> set[str]:
    """Who, among ``customers``, churned in the window as the data was generated."""
    full = scan_events(Workspace(world.root / "full"))
    labels = label_window(
        full,
        end_of_day(AS_OF),
        horizon=horizon,
        grace=grace,
        active=pl.LazyFrame({"customer_id": customers}),
    ).collect()
    return set(labels.filter(pl.col("churn_type") != "retained")["customer_id"].to_list())


def copy_world(world: World, target: Path) -> World:
    """The same workspace in ``target`` (to ingest different futures into each)."""
    shutil.copytree(world.root / "ws", target / "ws")
    shutil.copy(world.root / "fast.yaml", target / "fast.yaml")
    return World(
        world.root, Workspace(target / "ws"), world.after, world.canonical_after, world.playbook
    )
