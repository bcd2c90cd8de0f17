"""What an ingest run did, file by file, as data the renderers and ``--json`` share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from churnkit.core.errors import ExitCode


class FileStatus(StrEnum):
    INGESTED = "ingested"
    EMPTY = "empty"  # a header-only or empty file: a zero-row batch
    FAILED = "failed"  # nothing stored; retried by the next run
    SKIPPED = "skipped"  # already ingested (same content)


@dataclass(frozen=True)
class FileResult:
    """What happened to one source file."""

    path: str
    sha256: str
    status: FileStatus
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    events: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    unknown_statuses: dict[str, int] = field(default_factory=dict)
    unmapped_statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    rejects_path: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    decimal: str | None = None
    source: str | None = None  # the recognised export, or "generic"
    source_label: str | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None
    hint: str | None = None

    @property
    def already_ingested(self) -> bool:
        return self.status is FileStatus.SKIPPED

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "status": self.status.value,
            "rows": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "events": self.events,
            "already_ingested": self.already_ingested,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "decimal": self.decimal,
            "source": self.source,
            "mapping": self.mapping,
            "rejected_by_reason": self.rejected_by_reason,
            "unknown_statuses": self.unknown_statuses,
            "unmapped_statuses": self.unmapped_statuses,
            "rejects": self.rejects_path,
            "notes": list(self.notes),
            "error": self.error,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class RelationsResult:
    path: str
    already_ingested: bool
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejects_path: str | None = None


@dataclass(frozen=True)
class DatasetSummary:
    """The whole workspace after the run (not just this run's rows)."""

    events: int
    customers: int
    first_ts: datetime | None
    last_ts: datetime | None
    kinds: dict[str, int]


@dataclass(frozen=True)
class IngestResult:
    files: tuple[FileResult, ...]
    relations: RelationsResult | None
    dataset: DatasetSummary
    workspace: str
    warnings: tuple[str, ...] = ()

    def _total(self, name: str) -> int:
        return sum(int(getattr(f, name)) for f in self.files)

    @property
    def rows_read(self) -> int:
        return self._total("rows_read")

    @property
    def accepted(self) -> int:
        return self._total("accepted")

    @property
    def rejected(self) -> int:
        return self._total("rejected")

    @property
    def duplicates(self) -> int:
        return self._total("duplicates")

    @property
    def rejected_by_reason(self) -> dict[str, int]:
        return sum_counts(f.rejected_by_reason for f in self.files)

    @property
    def unknown_statuses(self) -> dict[str, int]:
        return sum_counts(f.unknown_statuses for f in self.files)

    @property
    def failed(self) -> tuple[FileResult, ...]:
        return tuple(f for f in self.files if f.status is FileStatus.FAILED)

    @property
    def exit_code(self) -> ExitCode:
        """3 when any file failed, so a cron job sees it although the others went in."""
        return ExitCode.DATA if self.failed else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejected_by_reason": self.rejected_by_reason,
            "unknown_statuses": self.unknown_statuses,
            "customers": self.dataset.customers,
            "events": self.dataset.events,
            "first_ts": _iso(self.dataset.first_ts),
            "last_ts": _iso(self.dataset.last_ts),
            "kinds": self.dataset.kinds,
            "files": [f.to_json() for f in self.files],
            "relations": None if self.relations is None else vars(self.relations),
            "warnings": list(self.warnings),
            "workspace": self.workspace,
        }
        if self.failed:
            names = ", ".join(f.path for f in self.failed)
            payload["error"] = f"{len(self.failed)} file(s) failed: {names}"
            payload["exit_code"] = int(self.exit_code)
        return payload


def sum_counts(counts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in counts:
        for key, value in mapping.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items(), key=lambda kv: (-kv[1], kv[0])))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
