"""The bucketed event log: whole customers per bucket, the log's own order, derived once
per manifest state and committed whole or not at all."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.io import scan_events
from churnkit.engine import buckets as bucketing
from churnkit.engine.buckets import EVENTS_PER_BUCKET, default_count, derive_buckets
from churnkit.engine.hashing import bucket_expr, bucket_of


def test_each_bucket_is_the_log_of_its_customers_in_the_log_order(ws):
    split = derive_buckets(ws, count=4)
    log = scan_events(ws)
    assert split.count == 4 and split.events == 6000
    seen: set[str] = set()
    for b in split.indices:
        got = split.scan(b).collect()
        want = log.filter(bucket_expr(4) == b).collect()
        assert_frame_equal(got, want)  # same rows, same order, same columns
        customers = set(got["customer_id"])
        assert not customers & seen  # a customer lives in one bucket only
        assert set(bucket_of(list(customers), 4).to_list()) <= {b}
        seen |= customers
    assert seen == set(log.select("customer_id").collect()["customer_id"])


def test_small_data_gets_one_bucket_and_size_decides_otherwise(ws):
    assert derive_buckets(ws).count == 1
    assert default_count(0) == 1
    assert default_count(EVENTS_PER_BUCKET) == 1
    assert default_count(EVENTS_PER_BUCKET + 1) == 2
    assert default_count(100_000_000) == 34


def test_buckets_without_customers_are_empty_with_the_same_columns(ws):
    split = derive_buckets(ws, count=500)  # more buckets than the 200 customers
    frames = [split.scan(b).collect() for b in split.indices]
    assert any(f.height == 0 for f in frames)
    assert {tuple(f.schema.items()) for f in frames} == {
        tuple(scan_events(ws).collect_schema().items())
    }
    assert sum(f.height for f in frames) == 6000


def test_an_unchanged_workspace_reuses_its_split(ws):
    first = derive_buckets(ws, count=3)
    stamps = [Path(first.path(b)).stat().st_mtime_ns for b in first.indices]
    again = derive_buckets(ws, count=3)
    assert again == first
    assert [Path(again.path(b)).stat().st_mtime_ns for b in again.indices] == stamps


def test_a_new_batch_gives_a_new_split_and_the_old_one_goes(ws, batch_adder, make_events):
    first = derive_buckets(ws, count=3)
    batch_adder(ws, "cccc", make_events(3, rows=500))
    second = derive_buckets(ws, count=3)
    assert second.key != first.key and second.events == 6500
    assert not Path(first.root).exists()
    assert [p.name for p in (ws.root / "buckets").iterdir()] == [second.key]


def test_another_bucket_count_is_another_split(ws):
    assert derive_buckets(ws, count=2).key != derive_buckets(ws, count=3).key


def test_a_failed_split_leaves_nothing_and_a_rerun_completes(ws, monkeypatch):
    def broken(ids: pl.Series) -> pl.Series:
        raise OSError("disk full")

    monkeypatch.setattr(bucketing, "customer_hash", broken)
    with pytest.raises(Exception, match="disk full"):
        derive_buckets(ws, count=3)
    root = ws.root / "buckets"
    assert not root.exists() or list(root.iterdir()) == []
    monkeypatch.undo()
    split = derive_buckets(ws, count=3)
    assert split.events == 6000


def test_a_damaged_split_is_derived_again(ws):
    split = derive_buckets(ws, count=3)
    Path(split.path(1)).unlink()
    again = derive_buckets(ws, count=3)
    assert again.key == split.key
    assert sum(again.scan(b).select(pl.len()).collect().item() for b in again.indices) == 6000


def test_the_split_records_what_it_holds(ws):
    split = derive_buckets(ws, count=2)
    meta = json.loads((Path(split.root) / "buckets.json").read_text())
    assert meta["count"] == 2 and meta["hash"] == "fmix64-fnv1a64-utf8"
    assert sum(meta["rows"]) == 6000
    assert Path(split.root).is_absolute()


def test_progress_reports_events_split(ws):
    calls: list[tuple[int, int]] = []
    derive_buckets(ws, count=2, progress=lambda what, done, total: calls.append((done, total)))
    assert calls[0] == (0, 6000) and calls[-1] == (6000, 6000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_bucket_outside_the_split_is_an_index_error(ws):
    split = derive_buckets(ws, count=2)
    with pytest.raises(IndexError, match="bucket 2"):
        split.path(2)
