"""``ingest``: real exports in, one canonical event log out, nothing lost or invented.

Each source file is its own batch. It is opened as a ``Source`` (encoding and delimiter
decided from evidence), read with a ``Recipe`` (a recognised vendor export, or columns
found by header names), parsed and checked in one streaming query that writes the new
events and the rejects at once, then committed by renaming its files into place and
recording it in the manifest. A file that fails is reported and recorded as failed, and
the run goes on with the next one; the next run retries it. Every row is accounted
for: ``read = accepted + rejected + duplicates``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from warnings import warn

import polars as pl

from churnkit.core import schema as s
from churnkit.core.config import IngestSettings, Settings
from churnkit.core.errors import ChurnkitWarning, DataError
from churnkit.core.io import LINE, escape_formula, expand_sources, first_line
from churnkit.core.workspace import Workspace
from churnkit.ingest import checks, commit, vendors
from churnkit.ingest.canonical import (
    OVERFLOW_TEXT,
    REASON,
    ROWS,
    STATUS_RAW,
    Parsed,
    event_frames,
    grouped,
    parse,
)
from churnkit.ingest.columns import map_columns
from churnkit.ingest.dedup import new_events
from churnkit.ingest.dialect import decimal_mark
from churnkit.ingest.parsing import normalised_status
from churnkit.ingest.recipe import Recipe, Row, generic_recipe
from churnkit.ingest.relations import ingest_relations
from churnkit.ingest.results import FileResult, FileStatus, IngestResult
from churnkit.ingest.sources import Source, SourceId, open_source, source_id
from churnkit.ingest.summary import summarise_dataset

log = logging.getLogger(__name__)

__all__ = ["IngestResult", "ingest", "summarise_dataset"]
LOW_CARD_MIN_SAMPLE = 1_000
LOW_CARD_SHARE = 0.02


def ingest(
    sources: Sequence[str | Path],
    *,
    settings: Settings,
    workspace: Workspace,
    mapping: Mapping[str, str] | None = None,
    kind: s.EventKind = s.EventKind.PURCHASE,
    relations: Path | None = None,
    on_file: Callable[[Path], None] | None = None,
    today: date | None = None,
) -> IngestResult:
    """Ingest exports (and optionally a relations table) into ``workspace``.

    ``mapping`` (canonical → source column) adds to ``settings.ingest.mapping``;
    ``kind`` is the kind of rows whose source has no status column (``usage`` for a
    product-usage export); ``today`` (default: the UTC date) bounds future dates.
    A failed file does not raise: it is in the result (``result.failed``).
    """
    files = expand_sources(sources) if sources else []
    if not files and relations is None:
        raise DataError("nothing to ingest", hint="pass at least one SOURCE or --relations FILE")
    today = today or datetime.now(UTC).date()
    explicit = {**settings.ingest.mapping, **(mapping or {})}
    results: list[FileResult] = []
    warnings: list[str] = []
    with workspace.lock():
        for path in files:
            if on_file:
                on_file(path)
            results.append(_ingest_file(path, settings.ingest, workspace, explicit, kind, today))
        relations_result = (
            ingest_relations(str(relations), settings, workspace, today=today)
            if relations
            else None
        )
        dataset = summarise_dataset(workspace)
        if any(r.accepted for r in results):
            thin = checks.thin_last_day(_events(workspace))
            if thin:
                warnings.append(thin)
    for result in results:
        warnings += _file_warnings(result)
    for message in warnings:
        warn(message, ChurnkitWarning, stacklevel=2)
    return IngestResult(
        tuple(results), relations_result, dataset, str(workspace.root), tuple(warnings)
    )


def _events(workspace: Workspace) -> pl.LazyFrame:
    from churnkit.core.io import scan_events

    return scan_events(workspace)


def _file_warnings(result: FileResult) -> list[str]:
    out = []
    for column, counts in result.unmapped_statuses.items():
        values = ", ".join(f"{v} {n:,}" for v, n in list(counts.items())[:8])
        out.append(
            f"{result.path}: column {column!r} looks like a status ({values}) but is not "
            f"used; map it with --map status={column!r} if it says what happened"
        )
    return out


def _ingest_file(
    path: Path,
    cfg: IngestSettings,
    workspace: Workspace,
    explicit: Mapping[str, str],
    kind: s.EventKind,
    today: date,
) -> FileResult:
    source = None
    identity = None
    try:
        identity = source_id(path)
        if commit.may_be_ingested(workspace.read_manifest(), identity.size) and (
            commit.already_ingested(workspace.read_manifest(), identity.sha256)
        ):
            log.info("%s: already ingested (same content), skipped", path)
            return FileResult(str(path), identity.sha256, FileStatus.SKIPPED)
        source = open_source(
            path,
            staging=workspace.root / ".staging",
            encoding=cfg.encoding,
            delimiter=cfg.delimiter,
            identity=identity,
        )
        result = _ingest_source(source, cfg, workspace, explicit, kind, today)
    except DataError as exc:
        result = FileResult(
            str(path),
            _sha_or_blank(identity),
            FileStatus.FAILED,
            encoding=source.encoding if source else None,
            delimiter=source.delimiter if source else None,
            error=exc.message if exc.message.startswith(str(path)) else f"{path}: {exc.message}",
            hint=exc.hint,
        )
    except OSError as exc:
        result = FileResult(
            str(path),
            "",
            FileStatus.FAILED,
            error=f"{path}: cannot read file ({exc.strerror or first_line(exc)})",
        )
    finally:
        if source is not None:
            source.close()
    if result.status is FileStatus.FAILED:
        commit.record_failure(workspace, result)
    else:
        commit.record(workspace, result, kind, identity.size if identity else None)
    return result


def _sha_or_blank(identity: SourceId | None) -> str:
    if identity is None:
        return ""
    try:
        return identity.sha256
    except DataError:
        return ""


def _low_card(sample: pl.DataFrame) -> dict[str, list[str]]:
    """Text columns whose sample repeats a few values (statuses, plans, reasons, card
    expiries) → those values: looking them up is cheaper than parsing every row."""
    if sample.height < LOW_CARD_MIN_SAMPLE:
        return {}
    text = [c for c, t in sample.schema.items() if t == pl.String]
    distinct = sample.select(pl.col(text).n_unique()).row(0) if text else ()
    return {
        c: sample[c].drop_nulls().unique(maintain_order=True).to_list()
        for c, n in zip(text, distinct, strict=True)
        if n <= LOW_CARD_SHARE * sample.height
    }


@dataclass(frozen=True)
class _Plan:
    recipe: Recipe
    decimal: str
    decimal_note: str | None
    status_columns: list[str]
    row: Row


def _plan(
    source: Source,
    cfg: IngestSettings,
    explicit: Mapping[str, str],
    kind: s.EventKind,
    sample: pl.DataFrame,
) -> _Plan:
    path = str(source.id.path)
    try:
        schema = source.scan().collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"{path}: cannot read file ({first_line(exc)})") from None
    vendor = vendors.choose(cfg.source, source.columns)
    columns: dict[str, str] = {}
    if vendor is None:
        checks.repeated_headers(source.headers, used=explicit.values(), source=path)
        columns = map_columns(source.columns, explicit=explicit, source=path)
        amount_column = columns.get(s.AMOUNT)
    else:
        amount_column = explicit.get(s.AMOUNT) or vendor.columns.get("amount")
    decimal: str = cfg.decimal
    note = None
    if decimal == "auto":
        proven = None
        if amount_column in sample.columns and sample[amount_column].dtype == pl.String:
            proven = decimal_mark(sample[amount_column])
        decimal = proven or "."
        if proven == ",":
            note = f"decimal comma in {amount_column!r} (proven by values like '12,50')"
    row = Row(schema, decimal=decimal, status_map=cfg.status_map, low_card=_low_card(sample))
    if vendor is None:
        recipe = generic_recipe(columns, row, headers=source.columns, default_kind=kind)
    else:
        try:
            recipe = vendor.recipe(row, explicit)
        except DataError as exc:
            raise DataError(f"{path}: {exc.message}", hint=exc.hint) from None
        checks.repeated_headers(source.headers, used=recipe.mapping.values(), source=path)
    used = set(recipe.mapping.values()) | set(recipe.known)
    candidates = [c for c in source.columns if c not in used]
    return _Plan(recipe, decimal, note, checks.status_like(sample, candidates), row)


def _ingest_source(
    source: Source,
    cfg: IngestSettings,
    workspace: Workspace,
    explicit: Mapping[str, str],
    kind: s.EventKind,
    today: date,
) -> FileResult:
    path = source.id.path
    if not source.headers:  # a zero-byte (or blank) file: a day with nothing to export
        return FileResult(str(path), source.id.sha256, FileStatus.EMPTY, encoding=source.encoding)
    sample = source.sample(cfg.sample_rows)
    plan = _plan(source, cfg, explicit, kind, sample)
    recipe = plan.recipe
    parsed = parse(
        source, recipe, plan.row, cfg, sample, today=today, attributes=plan.status_columns
    )
    tmp_data = _tmp(workspace.events_dir / "batch.parquet")
    tmp_rejects = _tmp(workspace.rejects_dir / "batch.csv")
    try:
        try:
            counts = _write(parsed, source, workspace, plan, tmp_data, tmp_rejects)
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{path}: cannot read file ({first_line(exc)})") from None
        rows_read = counts.valid + counts.rejected
        status = FileStatus.INGESTED
        if rows_read == 0:
            status = FileStatus.EMPTY
        elif counts.valid == 0:
            status = FileStatus.FAILED
        batch = source.id.batch  # the content hash, ready by now
        data_path = workspace.events_dir / f"batch-{batch}.parquet"
        rejects_path = workspace.rejects_dir / f"batch-{batch}.csv"
        if counts.rejected:
            _publish(tmp_rejects, rejects_path)
        if status is FileStatus.INGESTED:
            _publish(tmp_data, data_path)
    finally:
        tmp_data.unlink(missing_ok=True)
        tmp_rejects.unlink(missing_ok=True)
    notes = tuple(n for n in (recipe.note, plan.decimal_note) if n)
    result = FileResult(
        path=str(path),
        sha256=source.id.sha256,
        status=status,
        rows_read=rows_read,
        accepted=counts.accepted,
        rejected=counts.rejected,
        duplicates=counts.valid - counts.accepted,
        events=counts.events,
        rejected_by_reason=counts.by_reason,
        unknown_statuses=counts.unknown,
        unmapped_statuses=counts.unmapped,
        mapping=dict(recipe.mapping),
        rejects_path=str(rejects_path) if counts.rejected else None,
        encoding=source.encoding,
        delimiter=source.delimiter,
        decimal=plan.decimal,
        source=recipe.source,
        source_label=recipe.label,
        notes=notes,
    )
    if status is FileStatus.FAILED:
        top = next(iter(counts.by_reason), "no rows")
        return _failed(
            result,
            f"{path}: no usable rows ({counts.rejected:,} rejected, mostly {top!r}); "
            f"details in {rejects_path}",
            "check the column mapping, --source, and the date/amount settings",
        )
    return result


def _failed(result: FileResult, error: str, hint: str) -> FileResult:
    from dataclasses import replace

    return replace(result, error=error, hint=hint)


@dataclass(frozen=True)
class _Counts:
    valid: int
    rejected: int
    accepted: int
    events: int
    by_reason: dict[str, int]
    unknown: dict[str, int]
    unmapped: dict[str, dict[str, int]]


def _write(
    parsed: Parsed,
    source: Source,
    workspace: Workspace,
    plan: _Plan,
    tmp_data: Path,
    tmp_rejects: Path,
) -> _Counts:
    """The one pass: new events to ``tmp_data``, rejects to ``tmp_rejects``, and every
    count the summary needs, from a single read of the source."""
    recipe = parsed.recipe
    weights: pl.DataFrame | None = None
    if recipe.group is not None:
        wide_df, events_df = grouped(parsed)
        wide: pl.LazyFrame = wide_df.lazy()
        events: pl.LazyFrame = events_df.lazy()
        weights = wide_df.select(LINE, ROWS)
    else:
        wide = parsed.wide
        events = event_frames(parsed, wide.filter(pl.col(REASON).is_null()))
    rejected = wide.filter(pl.col(REASON).is_not_null())
    file = str(source.id.path)
    # Only row sinks share one read of the source; every count comes from their files.
    pl.collect_all(
        [
            new_events(events, workspace).sink_parquet(
                tmp_data, compression="zstd", compression_level=1, lazy=True
            ),
            rejected.select(
                pl.lit(file).alias("file"),
                pl.col(LINE).alias("line"),
                pl.col(REASON).alias("reason"),
                *[escape_formula(pl.col(c).cast(pl.String)).alias(c) for c in source.columns],
                escape_formula(pl.col(OVERFLOW_TEXT)).alias("fields_beyond_header"),
            ).sink_csv(tmp_rejects, lazy=True),
        ],
        engine="streaming",
    )
    total = int(wide.select(pl.len()).collect().item()) if weights is not None else source.count()
    by_reason = _counts(
        pl.scan_csv(tmp_rejects, infer_schema=False).group_by("reason").len().collect(), "reason"
    )
    written = pl.scan_parquet(tmp_data)
    n_events = int(written.select(pl.len()).collect().item())
    if recipe.simple:
        accepted = n_events
    elif weights is not None:
        lines = written.select(pl.col(LINE).unique()).collect()
        accepted = int(weights.join(lines, on=LINE, how="semi")[ROWS].sum())
    else:
        accepted = int(written.select(pl.col(LINE).n_unique()).collect().item())
    known = frozenset().union(*(e.known for e in recipe.events))
    unknown = _counts(
        _unknown(written.group_by(pl.col(STATUS_RAW).alias("status")).len().collect(), known),
        "status",
    )
    unmapped = {
        column: _counts(written.group_by(pl.col(column).alias("value")).len().collect(), "value")
        for column in plan.status_columns
    }
    n_rejected = sum(by_reason.values())
    return _Counts(
        valid=total - n_rejected,
        rejected=n_rejected,
        accepted=accepted,
        events=n_events,
        by_reason=by_reason,
        unknown=unknown,
        unmapped=unmapped,
    )


def _unknown(frame: pl.DataFrame, known: frozenset[str]) -> pl.DataFrame:
    """Statuses with no deliberate kind (kept as `other`), per spelling as written."""
    status = pl.col("status").cast(pl.String).str.strip_chars()
    return (
        frame.filter(
            status.is_not_null() & (status != "") & ~normalised_status(status).is_in(list(known))
        )
        .with_columns(status.alias("status"))
        .group_by("status")
        .agg(pl.col("len").sum())
    )


def _counts(frame: pl.DataFrame, key: str) -> dict[str, int]:
    frame = frame.filter(pl.col(key).is_not_null()).sort(["len", key], descending=[True, False])
    return {str(k): int(v) for k, v in zip(frame[key], frame["len"], strict=True)}


def _tmp(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


def _publish(tmp: Path, target: Path) -> None:
    """Make ``tmp`` durable, then rename it over ``target`` (atomic on one filesystem)."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, target)
