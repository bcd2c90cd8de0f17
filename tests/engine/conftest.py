"""Workspaces written by hand (batch files and a manifest, as ingest commits them), so
the engine's tests depend on the workspace layout only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from churnkit.core.schema import KIND_DTYPE
from churnkit.core.workspace import Workspace


def add_batch(workspace: Workspace, name: str, frame: pl.DataFrame) -> None:
    """Record a batch the way ingest commits one: its file, then the manifest entry."""
    path = workspace.events_dir / f"batch-{name}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    manifest = workspace.read_manifest()
    manifest["batches"].append({"id": name, "sha256": name * 4, "data": f"events/{path.name}"})
    workspace.write_manifest(manifest)


def events(seed: int, rows: int = 3000, customers: int = 200) -> pl.DataFrame:
    """Purchases of ``customers`` customers over a year, in no particular order."""
    rng = np.random.default_rng(seed)
    start = datetime(2025, 1, 1)
    return pl.DataFrame(
        {
            "customer_id": [f"C{c:04d}" for c in rng.integers(0, customers, rows)],
            "ts": [start + timedelta(hours=int(h)) for h in rng.integers(0, 8000, rows)],
            "amount": rng.integers(1, 100, rows).astype(float),
            "kind": pl.Series(["purchase"] * rows).cast(KIND_DTYPE),
        }
    )


@pytest.fixture
def batch_adder() -> Callable[[Workspace, str, pl.DataFrame], None]:
    return add_batch


@pytest.fixture
def make_events() -> Callable[..., pl.DataFrame]:
    return events


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Two batches of 3,000 events each; the second has an extra text column."""
    workspace = Workspace(tmp_path / "ws").create()
    add_batch(workspace, "aaaa", events(1))
    add_batch(workspace, "bbbb", events(2).with_columns(pl.lit("web").alias("channel")))
    return workspace
