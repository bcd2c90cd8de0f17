"""The manifest is the commit point: a batch exists once it is recorded there.

Data and rejects are renamed into place first, then the manifest is rewritten
atomically, so a run killed at any moment leaves the previous state readable and the
next run redoes the batch. Empty files are recorded as zero-row batches; failed files
are recorded apart (with their reason) and retried by the next run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import polars as pl

from churnkit.core import schema as s
from churnkit.core.workspace import Workspace
from churnkit.ingest.results import FileResult, FileStatus


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def may_be_ingested(manifest: dict[str, Any], size: int) -> bool:
    """False only when no stored batch has this size (batches recorded before sizes
    were: unknown, so True): then the content hash need not be awaited."""
    return any(b.get("bytes", size) == size for b in manifest["batches"] if b.get("data"))


def already_ingested(manifest: dict[str, Any], sha256: str) -> bool:
    """A file whose content was stored before (a renamed copy included) is skipped."""
    return any(b["sha256"] == sha256 and b.get("data") for b in manifest["batches"])


def record(
    workspace: Workspace, result: FileResult, kind: s.EventKind, size: int | None = None
) -> None:
    """Record an ingested or empty file as a batch; forget an earlier failure of it."""
    batch = result.sha256[:16]
    manifest = workspace.read_manifest()
    manifest["batches"] = [
        b
        for b in manifest["batches"]
        if not (b["sha256"] == result.sha256 and (b.get("data") or b["source"] == result.path))
    ]
    stored = result.status is FileStatus.INGESTED
    manifest["batches"].append(
        {
            "id": batch,
            "source": result.path,
            "sha256": result.sha256,
            "bytes": size,
            "status": result.status.value,
            "data": f"events/batch-{batch}.parquet" if stored else None,
            "rejects": f"rejects/batch-{batch}.csv" if result.rejects_path else None,
            "rows_read": result.rows_read,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "duplicates": result.duplicates,
            "events": result.events,
            "encoding": result.encoding,
            "delimiter": result.delimiter,
            "decimal": result.decimal,
            "export": result.source,
            "default_kind": kind.value,
            "mapping": result.mapping,
            "ingested_at": _now(),
            "polars": pl.__version__,
        }
    )
    manifest["failed"] = [f for f in manifest.get("failed", []) if f["source"] != result.path]
    workspace.write_manifest(manifest)


def record_failure(workspace: Workspace, result: FileResult) -> None:
    """Remember why a file failed; it is not a batch, so the next run tries it again."""
    manifest = workspace.read_manifest()
    failed = [f for f in manifest.get("failed", []) if f["source"] != result.path]
    failed.append(
        {
            "source": result.path,
            "sha256": result.sha256,
            "error": result.error,
            "rejects": result.rejects_path,
            "failed_at": _now(),
        }
    )
    manifest["failed"] = failed
    workspace.write_manifest(manifest)
