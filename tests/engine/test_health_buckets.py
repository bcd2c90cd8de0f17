"""`segment --health` bucket by bucket: the same report as in one pass, and events
after the as-of change nothing."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.engine import LocalEngine
from churnkit.engine.buckets import derive_buckets
from churnkit.segment.health import HealthReport, churn_health

AS_OF = datetime(2026, 6, 30, 23, 59, 59, 999_999)


@pytest.fixture
def sample_copy(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    """A private copy: the split is written into the workspace."""
    shutil.copytree(sample_workspace.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def assert_same_report(got: HealthReport, want: HealthReport) -> None:
    for name in ("months", "failed_payments", "cohorts", "by_plan"):
        assert_frame_equal(getattr(got, name), getattr(want, name))
    assert got.to_json() == want.to_json()


def test_per_bucket_statuses_give_the_one_pass_report(sample_copy):
    settings = load_settings(None, env={})
    events = scan_events(sample_copy)
    whole = churn_health(events, settings=settings, as_of=AS_OF)
    split = derive_buckets(sample_copy, count=3)
    calls: list[tuple[str, int, int]] = []
    per_bucket = churn_health(
        events,
        settings=settings,
        as_of=AS_OF,
        buckets=split,
        engine=LocalEngine(),
        progress=lambda *call: calls.append(call),
    )
    assert_same_report(per_bucket, whole)
    assert whole.months["active_start"].sum() > 0
    assert calls[-1] == ("month-end statuses", 3, 3)


def test_per_bucket_health_ignores_events_after_the_as_of(sample_copy, batch_adder):
    settings = load_settings(None, env={})
    before = churn_health(
        scan_events(sample_copy),
        settings=settings,
        as_of=AS_OF,
        buckets=derive_buckets(sample_copy, count=2),
    )
    later = scan_events(sample_copy).filter(pl.col("ts") > AS_OF).collect()
    batch_adder(sample_copy, "later", later.with_columns(pl.col("customer_id") + "-new"))
    after = churn_health(
        scan_events(sample_copy),
        settings=settings,
        as_of=AS_OF,
        buckets=derive_buckets(sample_copy, count=2),
    )
    assert_same_report(after, before)


def test_the_cli_with_buckets_prints_the_same_health(run_cli, sample_copy):
    argv = ["--workspace", str(sample_copy.root), "segment", "--as-of", "2026-06-30"]
    plain = json.loads(run_cli(*argv, "--health", "--json").stdout)
    bucketed = run_cli(*argv, "--health", "--json", env={"CHURNKIT_ENGINE__BUCKETS": "3"})
    assert json.loads(bucketed.stdout)["health"] == plain["health"]
    assert (sample_copy.root / "buckets").is_dir()
