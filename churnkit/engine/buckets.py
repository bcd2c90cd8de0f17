"""The event log split by customer hash into buckets that each hold whole customers.

``derive_buckets`` writes ``WORKSPACE/buckets/<key>/bucket-NNNNN.parquet``: bucket
``b`` holds every event of the customers whose ``hashing.customer_hash`` falls in ``b``
(modulo the bucket count), in the log's own order (batch by batch, row by row), with
the columns of ``io.scan_events``. Per-customer work then reads one bucket at a time
in bounded memory, on any engine, and needs no shuffle. Relations stay whole: they
are small.

The split is one streaming pass (Polars' partitioned Parquet sink), derived once per
manifest state: ``<key>`` hashes the manifest's batch list, the bucket count and the
hash, so new batches or another count give a new split and an unchanged workspace
reuses the last. It is written under a temporary name and renamed into place, so a
killed run leaves either the complete split or none; older splits are then removed.
Call it with the workspace lock held, like every writer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.errors import DataError
from churnkit.core.io import scan_events
from churnkit.core.progress import Progress, silent
from churnkit.core.schema import CUSTOMER_ID
from churnkit.core.workspace import Workspace
from churnkit.engine.hashing import HASH_NAME, customer_hash

logger = logging.getLogger(__name__)

# Events per bucket when engine.buckets is not set: small enough that any
# per-customer computation on one bucket fits comfortably in memory.
EVENTS_PER_BUCKET = 3_000_000
META = "buckets.json"
_TMP = ".tmp-"
_BUCKET = "__churnkit_bucket"  # the partition key; not written to the files


@dataclass(frozen=True)
class BucketSet:
    """A committed split: ``count`` buckets under ``root`` (absolute, so a task on
    another machine reads the same files), with ``rows[b]`` events in bucket ``b``."""

    root: str
    count: int
    key: str
    rows: tuple[int, ...]

    @property
    def indices(self) -> range:
        return range(self.count)

    @property
    def events(self) -> int:
        return sum(self.rows)

    def path(self, bucket: int) -> str:
        if not 0 <= bucket < self.count:
            raise IndexError(f"bucket {bucket} is not in 0..{self.count - 1}")
        return str(Path(self.root) / bucket_file(bucket))

    def scan(self, bucket: int) -> pl.LazyFrame:
        """Every event of the customers in ``bucket``, like ``scan_events`` restricted."""
        return pl.scan_parquet(self.path(bucket))


def bucket_file(bucket: int) -> str:
    return f"bucket-{bucket:05d}.parquet"


def scan_bucket(buckets: BucketSet, bucket: int) -> pl.LazyFrame:
    return buckets.scan(bucket)


def default_count(events: int) -> int:
    """About ``EVENTS_PER_BUCKET`` events per bucket; one for small data."""
    return max(1, math.ceil(events / EVENTS_PER_BUCKET))


def buckets_dir(workspace: Workspace) -> Path:
    return workspace.root / "buckets"


def split_key(batches: list[dict[str, Any]], count: int) -> str:
    """Identifies a split: the manifest's batches (content hash and file), in order,
    the bucket count and the hash function."""
    state = {
        "hash": HASH_NAME,
        "count": count,
        "batches": [[b.get("sha256"), b.get("data")] for b in batches if b.get("data")],
    }
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]


def derive_buckets(
    workspace: Workspace, *, count: int | None = None, progress: Progress = silent
) -> BucketSet:
    """The workspace's event log split into buckets, derived now or reused.

    ``count`` is ``engine.buckets``; ``None`` chooses it from the number of events.
    """
    files = workspace.require_events()
    batches = workspace.read_manifest()["batches"]
    total = _count_rows(files)
    if count is None:
        count = default_count(total)
    key = split_key(batches, count)
    root = buckets_dir(workspace)
    target = root / key
    existing = _load(target)
    if existing is not None:
        logger.debug("reusing the %d-bucket split %s", count, key)
        return existing
    shutil.rmtree(target, ignore_errors=True)  # a damaged split, if any
    _split(workspace, target, key, count, total, progress)
    _remove_others(root, keep=key)
    committed = _load(target)
    if committed is None:  # pragma: no cover - only if the files vanish under us
        raise DataError(f"the bucket split {target} disappeared while it was written")
    return committed


def _count_rows(files: list[Path]) -> int:
    """Events across the batches, from the Parquet footers alone."""
    return sum(int(pl.scan_parquet(f).select(pl.len()).collect().item()) for f in files)


def _split(
    workspace: Workspace, target: Path, key: str, count: int, total: int, progress: Progress
) -> None:
    events = scan_events(workspace)
    schema = events.collect_schema()
    what = f"splitting {total:,} events into {count} bucket{'s' * (count != 1)}"
    tmp = target.parent / f"{_TMP}{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        progress(what, 0, total)
        counter = _RowCounter(what, total, progress)

        def hashed(ids: pl.Series) -> pl.Series:
            counter.add(ids.len())
            return customer_hash(ids)

        hashes = pl.col(CUSTOMER_ID).map_batches(
            hashed, return_dtype=pl.UInt64, is_elementwise=True
        )
        bucket = (hashes % count).cast(pl.UInt32)
        events.with_columns(bucket.alias(_BUCKET)).sink_parquet(
            pl.PartitionBy(
                tmp,
                key=_BUCKET,
                include_key=False,
                file_path_provider=lambda args: bucket_file(int(args.partition_keys.item())),
                approximate_bytes_per_file=None,
            ),
            mkdir=True,
        )
        rows = []
        for b in range(count):
            path = tmp / bucket_file(b)
            if not path.exists():  # no customer hashed here: an empty bucket, same columns
                pl.DataFrame(schema=schema).write_parquet(path)
            rows.append(int(pl.scan_parquet(path).select(pl.len()).collect().item()))
        if sum(rows) != total:
            raise DataError(
                f"the bucket split holds {sum(rows):,} events, the log {total:,}",
                hint="re-run; if it persists, report it as a bug",
            )
        meta = {"key": key, "count": count, "hash": HASH_NAME, "rows": rows}
        (tmp / META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        tmp.rename(target)  # the commit: the split is there whole, or not at all
        progress(what, total, total)
        logger.info("split %s events into %d buckets", f"{total:,}", count)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _RowCounter:
    """Counts hashed rows from Polars' threads and reports them as progress."""

    def __init__(self, what: str, total: int, progress: Progress) -> None:
        self.what, self.total, self.progress = what, total, progress
        self.done = 0
        self.lock = threading.Lock()

    def add(self, rows: int) -> None:
        with self.lock:
            self.done = min(self.total, self.done + rows)
            done = self.done
        self.progress(self.what, done, self.total)


def _load(target: Path) -> BucketSet | None:
    """The committed split at ``target``, or None when there is none (or it is damaged)."""
    try:
        meta = json.loads((target / META).read_text(encoding="utf-8"))
        rows = tuple(int(r) for r in meta["rows"])
        count = int(meta["count"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("hash") != HASH_NAME or len(rows) != count:
        return None
    if not all((target / bucket_file(b)).is_file() for b in range(count)):
        return None
    return BucketSet(root=str(target.resolve()), count=count, key=target.name, rows=rows)


def _remove_others(root: Path, *, keep: str) -> None:
    """Older splits and leftovers of killed runs: the lock says nobody else writes."""
    for child in root.iterdir():
        if child.is_dir() and child.name != keep:
            shutil.rmtree(child, ignore_errors=True)
