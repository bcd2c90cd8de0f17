"""The ingest summary: each file and how it was read, exact row accounting, then what
the dataset now holds. Every value that comes from the data is made terminal-safe."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from churnkit.ingest.results import FileResult, FileStatus, IngestResult
from churnkit.render.common import count, day, kv_table
from churnkit.render.terminal import markup_safe, printable

_DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


def _note(f: FileResult) -> str:
    if f.status is FileStatus.SKIPPED:
        return "already ingested"
    if f.status is FileStatus.EMPTY:
        return "empty: zero rows"
    if f.status is FileStatus.FAILED:
        return "FAILED"
    return ""


def _how_read(f: FileResult) -> str:
    parts = [f.source or ""]
    if f.encoding:
        parts.append(f.encoding)
    if f.delimiter:
        parts.append(_DELIMITERS.get(f.delimiter, repr(f.delimiter)))
    if f.decimal == ",":
        parts.append("decimal comma")
    return ", ".join(p for p in parts if p)


def _files_table(result: IngestResult) -> Table:
    files = Table(title="Sources", title_justify="left")
    for name in ("file", "read as", "read", "accepted", "rejected", "duplicate", "note"):
        files.add_column(name, justify="left" if name in ("file", "read as", "note") else "right")
    for f in result.files:
        files.add_row(
            Text(printable(f.path)),
            Text(printable(_how_read(f))),
            count(f.rows_read),
            count(f.accepted),
            count(f.rejected),
            count(f.duplicates),
            _note(f),
        )
    return files


def ingest_summary(result: IngestResult) -> RenderableType:
    parts: list[RenderableType] = []
    if result.files:
        parts.append(_files_table(result))
        if result.failed:
            failed = Table(
                title="Failed files (nothing stored; the next run tries them again)",
                title_justify="left",
                show_header=False,
                box=None,
                title_style="bold",
            )
            failed.add_column()
            for f in result.failed:
                failed.add_row(Text(printable(f.error or f.path)))
            parts.append(failed)
        notes = [(markup_safe(f.path), markup_safe(n)) for f in result.files for n in f.notes]
        if notes:
            parts.append(kv_table("Notes", notes))
        mapped = {(k, v) for f in result.files for k, v in f.mapping.items()}
        if mapped:
            parts.append(
                kv_table(
                    "Columns used",
                    [(markup_safe(k), markup_safe(repr(v))) for k, v in sorted(mapped)],
                )
            )
    parts.append(_accounting(result))
    unmapped = [
        (markup_safe(f"  {column!r} in {f.path}"), markup_safe(_values(counts)))
        for f in result.files
        for column, counts in f.unmapped_statuses.items()
    ]
    if unmapped:
        parts.append(
            kv_table("Status-like columns not used (map with --map status=COLUMN)", unmapped)
        )
    rejects = [f.rejects_path for f in result.files if f.rejects_path]
    if rejects:
        parts.append(kv_table("Rejected rows written to", [("", markup_safe(p)) for p in rejects]))
    if result.relations is not None:
        r = result.relations
        parts.append(
            kv_table(
                "Relations",
                [
                    ("file", markup_safe(r.path)),
                    ("read", count(r.rows_read)),
                    ("accepted", count(r.accepted)),
                    ("rejected", count(r.rejected)),
                    ("duplicates dropped", count(r.duplicates)),
                ]
                if not r.already_ingested
                else [("file", markup_safe(r.path)), ("note", "already ingested (same content)")],
            )
        )
    d = result.dataset
    dataset_rows = [
        ("events", count(d.events)),
        ("customers", count(d.customers)),
        ("from", day(d.first_ts)),
        ("to", day(d.last_ts)),
    ]
    dataset_rows += [(f"  {markup_safe(kind)}", count(n)) for kind, n in d.kinds.items()]
    parts.append(kv_table(f"Workspace {markup_safe(result.workspace)}", dataset_rows))
    return Group(*parts)


def _accounting(result: IngestResult) -> Table:
    rows = [
        ("rows read", count(result.rows_read)),
        ("accepted", count(result.accepted)),
        ("rejected", count(result.rejected)),
        ("duplicates dropped", count(result.duplicates)),
    ]
    rows += [
        (f"  rejected: {markup_safe(reason)}", count(n))
        for reason, n in result.rejected_by_reason.items()
    ]
    rows += [
        (f"  unknown status {markup_safe(repr(s))} (kept as other)", count(n))
        for s, n in result.unknown_statuses.items()
    ]
    balanced = result.rows_read == result.accepted + result.rejected + result.duplicates
    return kv_table(
        "This run (read = accepted + rejected + duplicates"
        + (")" if balanced else " DOES NOT HOLD: please report this)"),
        rows,
    )


def _values(counts: dict[str, int]) -> str:
    shown = ", ".join(f"{v} {n:,}" for v, n in list(counts.items())[:8])
    return shown + (", ..." if len(counts) > 8 else "")
