"""Running a per-bucket task over every bucket and committing what it produced.

A bucket task is ``task(bucket, buckets, *args) -> DataFrame | LazyFrame``: it reads
``buckets.scan(bucket)`` (and whatever small inputs ``args`` name) and returns that
bucket's rows. Two ways to run one:

- :func:`collect_frames`: the frames come back to this process and are concatenated
  in bucket order (small results: counts, summaries, samples).
- :func:`map_to_parquet`: each task writes its part under a staging directory beside
  the target (``sink_parquet``, so a LazyFrame streams); once every bucket succeeded
  the parts are concatenated, in bucket order, into the target and renamed into
  place. A failed or killed run leaves the target as it was and no staging behind.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.progress import Progress, silent
from churnkit.core.workspace import atomic_path
from churnkit.engine.base import Engine
from churnkit.engine.buckets import BucketSet

BucketTask = Callable[..., pl.DataFrame | pl.LazyFrame]


def part_name(bucket: int) -> str:
    return f"part-{bucket:05d}.parquet"


def run_frame(bucket: int, task: BucketTask, buckets: BucketSet, *args: Any) -> pl.DataFrame:
    """The task's rows for ``bucket``, collected where the task runs."""
    result = task(bucket, buckets, *args)
    return result.collect() if isinstance(result, pl.LazyFrame) else result


def write_part(bucket: int, task: BucketTask, buckets: BucketSet, staging: str, *args: Any) -> str:
    """Run ``task`` for ``bucket`` and write its rows to ``staging`` (tmp + rename, so
    a part is there whole or not at all). Returns the part's path."""
    result = task(bucket, buckets, *args)
    target = Path(staging) / part_name(bucket)
    tmp = Path(staging) / f".{part_name(bucket)}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        if isinstance(result, pl.LazyFrame):
            result.sink_parquet(tmp)
        else:
            result.write_parquet(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return str(target)


def collect_frames(
    engine: Engine,
    task: BucketTask,
    buckets: BucketSet,
    *args: Any,
    progress: Progress = silent,
    what: str = "buckets",
) -> pl.DataFrame:
    """Every bucket's rows, concatenated in bucket order."""
    engine.check_shared(buckets.root)
    frames = engine.map_buckets(
        run_frame, buckets.indices, task, buckets, *args, progress=progress, what=what
    )
    return pl.concat(frames, how="vertical")


def map_to_parquet(
    engine: Engine,
    task: BucketTask,
    buckets: BucketSet,
    target: Path,
    *args: Any,
    progress: Progress = silent,
    what: str = "buckets",
) -> Path:
    """Every bucket's rows in one Parquet file at ``target``, committed atomically."""
    engine.check_shared(buckets.root)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent.resolve() / f".{target.name}.parts-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        engine.check_shared(str(staging))
        parts = engine.map_buckets(
            write_part,
            buckets.indices,
            task,
            buckets,
            str(staging),
            *args,
            progress=progress,
            what=what,
        )
        with atomic_path(target) as tmp:
            pl.scan_parquet(parts).sink_parquet(tmp)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
