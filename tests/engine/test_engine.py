"""The local engine: tasks per bucket in order, failures named by bucket, and outputs
committed only when every bucket succeeded."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.config import EngineSettings
from churnkit.core.errors import ChurnkitError, DataError, ExitCode
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.engine import LocalEngine, TaskError, open_engine
from churnkit.engine.buckets import BucketSet, derive_buckets
from churnkit.engine.parts import collect_frames, map_to_parquet
from churnkit.engine.tasks import count_events_per_customer


@pytest.fixture
def split(ws: Workspace) -> BucketSet:
    return derive_buckets(ws, count=4)


def whole_log_counts(split: BucketSet) -> pl.DataFrame:
    frames = [pl.scan_parquet(split.path(b)) for b in split.indices]
    return (
        pl.concat(frames)
        .group_by("customer_id")
        .agg(
            pl.len().cast(pl.Int64).alias("events"),
            pl.col("ts").min().alias("first_ts"),
            pl.col("ts").max().alias("last_ts"),
        )
        .sort("customer_id")
        .collect()
    )


def test_results_come_back_in_bucket_order():
    def tag(bucket: int, prefix: str) -> str:
        return f"{prefix}{bucket}"

    assert LocalEngine().map_buckets(tag, [3, 0, 2], "b") == ["b3", "b0", "b2"]


def test_per_bucket_counts_equal_the_whole_log(split):
    got = collect_frames(LocalEngine(), count_events_per_customer, split).sort("customer_id")
    assert_frame_equal(got, whole_log_counts(split))
    assert got["events"].sum() == 6000


def test_map_to_parquet_commits_every_bucket_in_bucket_order(split, tmp_path):
    target = tmp_path / "out" / "counts.parquet"
    calls: list[tuple[int, int]] = []
    map_to_parquet(
        LocalEngine(),
        count_events_per_customer,
        split,
        target,
        progress=lambda what, done, total: calls.append((done, total)),
    )
    got = pl.read_parquet(target)
    assert_frame_equal(got.sort("customer_id"), whole_log_counts(split))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    assert [p.name for p in target.parent.iterdir()] == ["counts.parquet"]  # no staging left


def fails_in_bucket_2(bucket: int, split: BucketSet) -> pl.LazyFrame:
    if bucket == 2:
        raise DataError("column 'x' is missing", hint="map it")
    return count_events_per_customer(bucket, split)


def crashes_in_bucket_1(bucket: int, split: BucketSet) -> pl.LazyFrame:
    if bucket == 1:
        raise KeyError("boom")
    return count_events_per_customer(bucket, split)


def test_a_task_error_keeps_its_class_and_names_the_bucket(split):
    with pytest.raises(DataError) as caught:
        collect_frames(LocalEngine(), fails_in_bucket_2, split)
    assert caught.value.message == "bucket 2: column 'x' is missing"
    assert caught.value.hint == "map it"
    assert caught.value.exit_code == ExitCode.DATA


def test_an_unexpected_exception_is_a_task_error_naming_the_bucket(split):
    with pytest.raises(TaskError, match=r"bucket 1: task failed with KeyError: 'boom'") as caught:
        collect_frames(LocalEngine(), crashes_in_bucket_1, split)
    assert caught.value.exit_code == ExitCode.INTERNAL
    assert isinstance(caught.value, ChurnkitError)


def test_a_failed_bucket_leaves_no_output_and_a_rerun_completes(split, tmp_path):
    target = tmp_path / "out" / "counts.parquet"
    target.parent.mkdir()
    target.write_bytes(b"the previous output")
    with pytest.raises(DataError, match="bucket 2"):
        map_to_parquet(LocalEngine(), fails_in_bucket_2, split, target)
    assert target.read_bytes() == b"the previous output"  # untouched
    assert [p.name for p in target.parent.iterdir()] == ["counts.parquet"]  # no parts left
    map_to_parquet(LocalEngine(), count_events_per_customer, split, target)
    assert pl.read_parquet(target).height == whole_log_counts(split).height


def test_open_engine_gives_the_local_engine_by_default():
    with open_engine(EngineSettings()) as engine:
        assert engine.kind == "local"
        engine.check_shared("/nowhere")  # tasks run here: nothing to check


def test_the_split_reads_like_the_log(split, ws):
    order = ["customer_id", "ts", "amount", "channel"]
    log = scan_events(ws).collect().sort(order, nulls_last=True)
    frames = pl.concat([split.scan(b).collect() for b in split.indices])
    assert_frame_equal(frames.sort(order, nulls_last=True), log)
