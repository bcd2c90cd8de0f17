"""The ingest summary: exact row accounting first, then what the dataset now holds."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table

from churnkit.ingest.pipeline import IngestResult
from churnkit.render.common import count, day, kv_table


def ingest_summary(result: IngestResult) -> RenderableType:
    parts: list[RenderableType] = []
    files = Table(title="Sources", title_justify="left")
    for name in ("file", "read", "accepted", "rejected", "duplicate", "note"):
        files.add_column(name, justify="left" if name in ("file", "note") else "right")
    for f in result.files:
        note = "already ingested (same content)" if f.already_ingested else ""
        files.add_row(
            f.path,
            count(f.rows_read),
            count(f.accepted),
            count(f.rejected),
            count(f.duplicates),
            note,
        )
    if result.files:
        parts.append(files)
        mapped = {(k, v) for f in result.files for k, v in f.mapping.items()}
        if mapped:
            parts.append(kv_table("Columns used", [(k, repr(v)) for k, v in sorted(mapped)]))
    rows = [
        ("rows read", count(result.rows_read)),
        ("accepted", count(result.accepted)),
        ("rejected", count(result.rejected)),
        ("duplicates dropped", count(result.duplicates)),
    ]
    rows += [(f"  rejected: {reason}", count(n)) for reason, n in result.rejected_by_reason.items()]
    rows += [
        (f"  unknown status {s!r} (kept as other)", count(n))
        for s, n in result.unknown_statuses.items()
    ]
    balanced = result.rows_read == result.accepted + result.rejected + result.duplicates
    parts.append(
        kv_table(
            "This run (read = accepted + rejected + duplicates"
            + (")" if balanced else " DOES NOT HOLD: please report this)"),
            rows,
        )
    )
    rejects = [f.rejects_path for f in result.files if f.rejects_path]
    if rejects:
        parts.append(kv_table("Rejected rows written to", [("", p) for p in rejects]))
    if result.relations is not None:
        r = result.relations
        parts.append(
            kv_table(
                "Relations",
                [
                    ("file", r.path),
                    ("read", count(r.rows_read)),
                    ("accepted", count(r.accepted)),
                    ("rejected", count(r.rejected)),
                    ("duplicates dropped", count(r.duplicates)),
                ]
                if not r.already_ingested
                else [("file", r.path), ("note", "already ingested (same content)")],
            )
        )
    d = result.dataset
    dataset_rows = [
        ("events", count(d.events)),
        ("customers", count(d.customers)),
        ("from", day(d.first_ts)),
        ("to", day(d.last_ts)),
    ]
    dataset_rows += [(f"  {kind}", count(n)) for kind, n in d.kinds.items()]
    parts.append(kv_table(f"Workspace {result.workspace}", dataset_rows))
    return Group(*parts)
