"""The Dask engine on a real cluster on this machine (a scheduler and two worker
processes): the same frames as the local engine, failures named by bucket, nothing
half-written, a dead worker's task retried, and clear errors for a missing cluster."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import dask
import polars as pl
import pytest
from distributed import LocalCluster
from polars.testing import assert_frame_equal

from churnkit.core.errors import ConfigError, DataError, ExitCode
from churnkit.core.workspace import Workspace
from churnkit.engine import EngineError, LocalEngine, TaskError
from churnkit.engine.buckets import BucketSet, derive_buckets
from churnkit.engine.cluster import DaskEngine
from churnkit.engine.parts import collect_frames, map_to_parquet
from churnkit.engine.tasks import count_events_per_customer

pytestmark = pytest.mark.slow

# The tasks below live in this test module, which workers cannot import: ship them by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def engine() -> Iterator[DaskEngine]:
    # One retry after a worker dies, so both "retried" and "gave up" show quickly.
    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    engine = DaskEngine(cluster.scheduler_address)
    yield engine
    engine.close()
    cluster.close()


@pytest.fixture
def split(ws: Workspace) -> BucketSet:
    return derive_buckets(ws, count=4)


def fails_in_bucket_2(bucket: int, split: BucketSet) -> pl.LazyFrame:
    if bucket == 2:
        raise DataError("column 'x' is missing", hint="map it")
    return count_events_per_customer(bucket, split)


def dies_once_in_bucket_1(bucket: int, split: BucketSet, marker: str) -> pl.LazyFrame:
    if bucket == 1 and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)  # the worker process dies mid-task
    return count_events_per_customer(bucket, split)


def always_dies(bucket: int, split: BucketSet) -> pl.LazyFrame:
    os._exit(1)


def test_dask_gives_the_local_engine_s_frames(engine, split, tmp_path):
    local = collect_frames(LocalEngine(), count_events_per_customer, split)
    calls: list[tuple[int, int]] = []
    remote = collect_frames(
        engine,
        count_events_per_customer,
        split,
        progress=lambda what, done, total: calls.append((done, total)),
    )
    assert_frame_equal(remote, local)  # same rows in the same (bucket) order
    assert calls[0] == (0, 4) and calls[-1] == (4, 4)
    out = map_to_parquet(engine, count_events_per_customer, split, tmp_path / "counts.parquet")
    assert_frame_equal(pl.read_parquet(out), local)


def test_a_task_error_names_its_bucket_and_nothing_is_half_written(engine, split, tmp_path):
    target = tmp_path / "out" / "counts.parquet"
    with pytest.raises(DataError) as caught:
        map_to_parquet(engine, fails_in_bucket_2, split, target)
    assert caught.value.message == "bucket 2: column 'x' is missing"
    assert caught.value.exit_code == ExitCode.DATA
    assert list(target.parent.iterdir()) == []  # no output, no parts
    map_to_parquet(engine, count_events_per_customer, split, target)  # the re-run completes
    assert pl.read_parquet(target)["events"].sum() == 6000


def test_a_damaged_bucket_is_a_task_error_naming_it(engine, split):
    path = Path(split.path(3))
    good = path.read_bytes()
    path.write_bytes(b"not parquet")
    try:
        with pytest.raises(TaskError, match="bucket 3: task failed"):
            collect_frames(engine, count_events_per_customer, split)
    finally:
        path.write_bytes(good)


def test_storage_the_workers_cannot_see_is_refused_before_any_task(engine, tmp_path):
    with pytest.raises(EngineError, match="cannot see /no/such/shared/dir") as caught:
        engine.check_shared("/no/such/shared/dir")
    assert "2 of 2 workers" in caught.value.message
    assert "same path" in (caught.value.hint or "")


def test_a_dead_worker_s_task_is_rerun_elsewhere(engine, split, tmp_path):
    marker = str(tmp_path / "died-once")
    got = collect_frames(engine, dies_once_in_bucket_1, split, marker)
    assert os.path.exists(marker)  # a worker did die
    assert_frame_equal(got, collect_frames(LocalEngine(), count_events_per_customer, split))


def test_workers_dying_again_and_again_stop_the_run_cleanly(engine, split, tmp_path):
    target = tmp_path / "counts.parquet"
    died = r"bucket \d: the 2 workers that ran it died \(the last: tcp://"
    with pytest.raises(EngineError, match=died) as caught:
        map_to_parquet(engine, always_dies, split, target, what="dying")
    assert caught.value.exit_code == ExitCode.DATA
    assert "re-run" in (caught.value.hint or "")
    assert list(tmp_path.iterdir()) == [tmp_path / "ws"]  # nothing written beside the target


def test_an_unreachable_scheduler_is_a_config_error_naming_the_setting():
    with pytest.raises(
        ConfigError, match=r"at tcp://127\.0\.0\.1:9 \(setting `engine.scheduler`\)"
    ):
        DaskEngine("tcp://127.0.0.1:9", connect_timeout=1)


def test_segment_health_on_the_cluster_equals_the_local_engine(
    engine, run_cli, sample_workspace, tmp_path
):
    shutil.copytree(sample_workspace.root, tmp_path / "sample")
    argv = ["--workspace", str(tmp_path / "sample")]
    command = ["segment", "--as-of", "2026-06-30", "--health", "--json"]
    local = json.loads(run_cli(*argv, *command).stdout)
    remote = run_cli(*argv, "--scheduler", engine.scheduler, *command)
    assert json.loads(remote.stdout)["health"] == local["health"]
    assert local["health"]["months"][0]["active_start"] > 0


def test_a_scheduler_without_workers_stops_the_run_with_a_hint(split):
    cluster = LocalCluster(n_workers=0, processes=False, dashboard_address=":0")
    lonely = DaskEngine(cluster.scheduler_address, no_workers_timeout=1)
    try:
        with pytest.raises(EngineError, match="no Dask worker joined the scheduler") as caught:
            collect_frames(lonely, count_events_per_customer, split)
        assert "dask worker" in (caught.value.hint or "")
    finally:
        lonely.close()
        cluster.close()
