"""``ingest``: messy exports in, one canonical event log out, no row lost.

Each source file is one batch, streamed through a single Polars query that parses,
validates and splits rows into accepted and rejected, drops duplicates (within the
batch and against what the workspace already holds) and writes Parquet. A batch is
committed by renaming its files into place and then recording it in the manifest, so
a killed run leaves the previous state readable and the next run redoes the batch.
Every row is accounted for: ``read = accepted + rejected + duplicates``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core import schema as s
from churnkit.core.config import Settings
from churnkit.core.errors import DataError
from churnkit.core.io import (
    LINE,
    collect_sample,
    content_hash,
    escape_formula,
    expand_sources,
    overflow_text,
    overflowed,
    scan_events,
    scan_source,
    source_headers,
    source_schema,
)
from churnkit.core.workspace import Workspace, atomic_path
from churnkit.ingest.columns import RELATION_SYNONYMS, STATUS, map_columns
from churnkit.ingest.parsing import (
    DATETIME,
    card_expiry_from_parts,
    card_expiry_from_text,
    normalised_status,
    parse_amount,
    parse_datetime,
    parse_kind,
    parse_number,
    plan_dates,
    status_lookup,
)

log = logging.getLogger(__name__)

REASON = "_reason"
HASH_SEED = 20240601


@dataclass(frozen=True)
class FileResult:
    """What happened to one source file."""

    path: str
    sha256: str
    already_ingested: bool
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    unknown_statuses: dict[str, int] = field(default_factory=dict)
    mapping: dict[str, str] = field(default_factory=dict)
    rejects_path: str | None = None


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
        return _sum_counts(f.rejected_by_reason for f in self.files)

    @property
    def unknown_statuses(self) -> dict[str, int]:
        return _sum_counts(f.unknown_statuses for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
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
            "files": [
                {
                    "path": f.path,
                    "rows": f.rows_read,
                    "accepted": f.accepted,
                    "rejected": f.rejected,
                    "duplicates": f.duplicates,
                    "already_ingested": f.already_ingested,
                    "mapping": f.mapping,
                    "rejects": f.rejects_path,
                }
                for f in self.files
            ],
            "relations": None if self.relations is None else vars(self.relations),
            "workspace": self.workspace,
        }


def ingest(
    sources: Sequence[str | Path],
    *,
    settings: Settings,
    workspace: Workspace,
    mapping: Mapping[str, str] | None = None,
    kind: s.EventKind = s.EventKind.PURCHASE,
    relations: Path | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> IngestResult:
    """Ingest transaction exports (and optionally a relations table) into ``workspace``.

    ``mapping`` (canonical → source column) adds to ``settings.ingest.mapping``;
    ``kind`` is the kind of rows whose source has no status column (``usage`` for a
    product-usage export).
    """
    files = expand_sources(sources) if sources else []
    if not files and relations is None:
        raise DataError("nothing to ingest", hint="pass at least one SOURCE or --relations FILE")
    explicit = {**settings.ingest.mapping, **(mapping or {})}
    results: list[FileResult] = []
    with workspace.lock():
        for path in files:
            if on_file:
                on_file(path)
            results.append(_ingest_file(path, settings, workspace, explicit, kind))
        relations_result = _ingest_relations(relations, settings, workspace) if relations else None
        dataset = summarise_dataset(workspace)
    return IngestResult(tuple(results), relations_result, dataset, str(workspace.root))


def _ingest_file(
    path: Path,
    settings: Settings,
    workspace: Workspace,
    explicit: Mapping[str, str],
    default_kind: s.EventKind,
) -> FileResult:
    sha = content_hash(path)
    manifest = workspace.read_manifest()
    if any(b["sha256"] == sha for b in manifest["batches"]):
        log.info("%s: already ingested (same content), skipped", path)
        return FileResult(str(path), sha, already_ingested=True)

    batch = sha[:16]
    lf = scan_source(path)
    schema = source_schema(path, lf)
    headers = source_headers(schema)
    columns = map_columns(headers, explicit=explicit, source=str(path))
    sample = collect_sample(path, lf, settings.ingest.sample_rows)
    if sample.height == 0:
        raise DataError(f"{path}: the file has a header but no rows", hint="check the export")

    extras = [h for h in headers if h not in columns.values() and h not in s.EVENT_SCHEMA]
    is_rejected = pl.col(REASON).is_not_null()
    parsed = (
        lf.select(
            pl.col(LINE),
            overflowed(schema).alias("_overflow"),
            overflow_text(schema).alias("_overflow_text"),
            *_canonical_exprs(columns, schema, sample, settings, default_kind, str(path)),
            *[pl.col(h).cast(pl.String).alias(f"raw:{h}") for h in headers],
        )
        .with_columns(_reason_expr(columns, settings).alias(REASON))
        # Raw values are kept for rejects only (and extras, which become attributes).
        .with_columns(
            pl.when(is_rejected).then(pl.col(f"raw:{h}")).alias(f"raw:{h}")
            for h in headers
            if h not in extras
        )
    )
    staging = workspace.root / ".staging" / f"batch-{batch}.parquet"
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The one pass over the source: parse and validate every row into a staging file,
        # so splitting, de-duplicating and counting never parse the text again.
        try:
            parsed.sink_parquet(staging, engine="streaming")
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{path}: cannot read file ({str(exc).splitlines()[0]})") from None
        outcome, by_reason, accepted, n_valid = _split_batch(
            pl.scan_parquet(staging), path, batch, headers, extras, columns, workspace
        )
    finally:
        staging.unlink(missing_ok=True)
    n_rejected = sum(by_reason.values())
    rejects_path = workspace.rejects_dir / f"batch-{batch}.csv"
    unknown = outcome[-1] if STATUS in columns else None
    unknown_counts: dict[str, int] = {}
    if unknown is not None:
        frame = unknown.sort(["len", "_status_raw"], descending=[True, False])
        unknown_counts = dict(zip(frame["_status_raw"], frame["len"], strict=True))
    result = FileResult(
        path=str(path),
        sha256=sha,
        already_ingested=False,
        rows_read=n_valid + n_rejected,
        accepted=int(accepted),
        rejected=n_rejected,
        duplicates=n_valid - int(accepted),
        rejected_by_reason={str(k): int(v) for k, v in by_reason.items()},
        unknown_statuses={str(k): int(v) for k, v in unknown_counts.items()},
        mapping=dict(columns),
        rejects_path=str(rejects_path) if n_rejected else None,
    )
    if not n_rejected:
        rejects_path.unlink(missing_ok=True)
    _commit(workspace, result, batch, default_kind)
    return result


def _split_batch(
    parsed: pl.LazyFrame,
    path: Path,
    batch: str,
    headers: list[str],
    extras: list[str],
    columns: Mapping[str, str],
    workspace: Workspace,
) -> tuple[list[pl.DataFrame], dict[str, int], int, int]:
    """Accepted rows (de-duplicated within the batch and against the workspace) to the
    batch's Parquet file, rejects to its CSV file; returns the counts."""
    valid = parsed.filter(pl.col(REASON).is_null())
    events = valid.select(
        *[pl.col(c) for c in s.EVENT_SCHEMA],
        *[pl.col(f"raw:{h}").str.strip_chars().alias(h) for h in extras],
        pl.lit(batch).alias(s.BATCH),
        _dedup_key().alias(s.DEDUP_KEY),
    ).unique(subset=[s.DEDUP_KEY], keep="first", maintain_order=True)
    existing = workspace.event_files()
    if existing:
        seen = pl.concat([pl.scan_parquet(f).select(s.DEDUP_KEY) for f in existing])
        events = events.join(seen, on=s.DEDUP_KEY, how="anti", maintain_order="left")
    rejects = parsed.filter(pl.col(REASON).is_not_null()).select(
        pl.lit(str(path)).alias("file"),
        pl.col(LINE).alias("line"),
        pl.col(REASON).alias("reason"),
        *[escape_formula(pl.col(f"raw:{h}")).alias(h) for h in headers],
        escape_formula(pl.col("_overflow_text")).alias("fields_beyond_header"),
    )
    data_path = workspace.events_dir / f"batch-{batch}.parquet"
    rejects_path = workspace.rejects_dir / f"batch-{batch}.csv"
    with atomic_path(data_path) as tmp_data, atomic_path(rejects_path) as tmp_rejects:
        queries = [
            events.sink_parquet(tmp_data, lazy=True),
            rejects.sink_csv(tmp_rejects, lazy=True),
            valid.select(pl.len()),
        ]
        if STATUS in columns:
            # Statuses kept as `other` that are not spelled "other": counted per spelling.
            queries.append(
                valid.filter(
                    (pl.col(s.KIND) == s.EventKind.OTHER.value)
                    & pl.col("_status_raw").is_not_null()
                )
                .group_by("_status_raw")
                .len()
                .filter(normalised_status(pl.col("_status_raw")) != s.EventKind.OTHER.value)
            )
        outcome = pl.collect_all(queries, engine="streaming")
        n_valid = int(outcome[2].item())
        accepted = int(pl.scan_parquet(tmp_data).select(pl.len()).collect().item())
        by_reason = _count_reasons(tmp_rejects)
        if n_valid == 0:
            # Keep the rejects so the user can see why; the batch itself is not committed.
            tmp_rejects.replace(rejects_path)
            top = next(iter(by_reason), "no rows")
            raise DataError(
                f"{path}: no usable rows ({sum(by_reason.values())} rejected, mostly "
                f"{top!r}); details in {rejects_path}",
                hint="check the column mapping and the date/amount settings",
            )
    return outcome, by_reason, accepted, n_valid


def _commit(workspace: Workspace, result: FileResult, batch: str, kind: s.EventKind) -> None:
    """Record the batch: the manifest entry is the commit point."""
    manifest = workspace.read_manifest()
    manifest["batches"] = [b for b in manifest["batches"] if b["sha256"] != result.sha256]
    manifest["batches"].append(
        {
            "id": batch,
            "source": result.path,
            "sha256": result.sha256,
            "data": f"events/batch-{batch}.parquet",
            "rejects": f"rejects/batch-{batch}.csv" if result.rejects_path else None,
            "rows_read": result.rows_read,
            "accepted": result.accepted,
            "rejected": result.rejected,
            "duplicates": result.duplicates,
            "default_kind": kind.value,
            "mapping": result.mapping,
            "ingested_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "polars": pl.__version__,
        }
    )
    workspace.write_manifest(manifest)


def _canonical_exprs(
    columns: Mapping[str, str],
    schema: pl.Schema,
    sample: pl.DataFrame,
    settings: Settings,
    default_kind: s.EventKind,
    source: str,
) -> list[pl.Expr]:
    cfg = settings.ingest

    def text(canonical: str) -> pl.Expr:
        if canonical not in columns:
            return pl.lit(None, dtype=pl.String)
        value = pl.col(columns[canonical]).cast(pl.String).str.strip_chars()
        return pl.when(value == "").then(None).otherwise(value)

    ts_col = columns[s.TS]
    ts_dtype = schema[ts_col]
    plan = None
    if ts_dtype == pl.String or ts_dtype.is_numeric():
        values = sample[ts_col].cast(pl.String).to_list()
        plan = plan_dates(
            ts_col, values, order=cfg.date_order, extra_formats=cfg.date_formats, source=source
        )
    exprs = [
        text(s.CUSTOMER_ID).alias(s.CUSTOMER_ID),
        parse_datetime(pl.col(ts_col), ts_dtype, plan, timezone=cfg.timezone).alias(s.TS),
        text(s.TS).alias("_ts_raw"),
    ]
    if s.AMOUNT in columns:
        exprs.append(
            parse_amount(
                pl.col(columns[s.AMOUNT]), schema[columns[s.AMOUNT]], decimal=cfg.decimal
            ).alias(s.AMOUNT)
        )
    else:
        exprs.append(pl.lit(0.0).alias(s.AMOUNT))
    if STATUS in columns:
        lookup = status_lookup(cfg.status_map)
        raw = text(STATUS)
        kind = (
            pl.when(raw.is_null())
            .then(pl.lit(default_kind.value))
            .otherwise(parse_kind(raw, lookup))
        )
        exprs += [kind.cast(s.KIND_DTYPE).alias(s.KIND), raw.alias("_status_raw")]
    else:
        exprs.append(pl.lit(default_kind.value).cast(s.KIND_DTYPE).alias(s.KIND))
    exprs.append(
        parse_number(pl.col(columns[s.QUANTITY]), schema[columns[s.QUANTITY]]).alias(s.QUANTITY)
        if s.QUANTITY in columns
        else pl.lit(None, dtype=pl.Float64).alias(s.QUANTITY)
    )
    exprs += [text(c).alias(c) for c in (s.PLAN, s.REASON, s.EVENT, s.TRANSACTION_ID)]
    exprs += _card_expiry_exprs(columns, schema, text)
    return exprs


def _card_expiry_exprs(
    columns: Mapping[str, str], schema: pl.Schema, text: Callable[[str], pl.Expr]
) -> list[pl.Expr]:
    if s.CARD_EXPIRY in columns:
        col = columns[s.CARD_EXPIRY]
        if schema[col].is_temporal():
            value = card_expiry_from_parts(pl.col(col).dt.month(), pl.col(col).dt.year())
        else:
            value = card_expiry_from_text(text(s.CARD_EXPIRY))
        raw = text(s.CARD_EXPIRY)
    elif s.CARD_EXP_MONTH in columns and s.CARD_EXP_YEAR in columns:
        value = card_expiry_from_parts(text(s.CARD_EXP_MONTH), text(s.CARD_EXP_YEAR))
        raw = pl.concat_str(text(s.CARD_EXP_MONTH), text(s.CARD_EXP_YEAR), separator="/")
    else:
        value, raw = pl.lit(None, dtype=pl.Date), pl.lit(None, dtype=pl.String)
    return [value.cast(pl.Date).alias(s.CARD_EXPIRY), raw.alias("_card_raw")]


def _reason_expr(columns: Mapping[str, str], settings: Settings) -> pl.Expr:
    """The first check a row fails, as a reason a person can act on; null if none."""
    cfg = settings.ingest
    earliest = datetime.combine(cfg.earliest_date, datetime.min.time())
    latest = datetime.combine(cfg.latest_date, datetime.min.time())
    amount = pl.col(s.AMOUNT)
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col("_overflow"), "more fields than the header (unquoted separator?)"),
        (pl.col(s.CUSTOMER_ID).is_null(), "missing customer_id"),
        (pl.col("_ts_raw").is_null(), "missing date"),
        (pl.col(s.TS).is_null(), "unparseable date"),
        (
            ~pl.col(s.TS).is_between(pl.lit(earliest, DATETIME), pl.lit(latest, DATETIME)),
            "date out of range",
        ),
        (amount.is_null(), "unparseable amount"),
        (~amount.is_finite() | (amount.abs() > cfg.max_abs_amount), "impossible amount"),
        (pl.col(s.QUANTITY).is_nan(), "unparseable quantity"),
        (
            pl.col("_card_raw").is_not_null()
            & ~pl.col(s.CARD_EXPIRY).dt.year().is_between(1970, 2200).fill_null(False),
            "unparseable card expiry",
        ),
    ]
    expr: Any = pl
    for condition, reason in checks:
        expr = expr.when(condition).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, dtype=pl.String))  # type: ignore[no-any-return]


def _dedup_key() -> pl.Expr:
    """Same transaction_id (with the same kind and time: a retried invoice keeps its
    failed and paid attempts), else the same canonical row."""
    txid = pl.col(s.TRANSACTION_ID)
    by_txid = pl.struct(txid, pl.col(s.KIND).cast(pl.String), pl.col(s.TS)).hash(HASH_SEED)
    by_row = pl.struct(
        *[pl.col(c).cast(pl.String) if c == s.KIND else pl.col(c) for c in s.EVENT_SCHEMA]
    ).hash(HASH_SEED)
    return pl.when(txid.is_not_null()).then(by_txid).otherwise(by_row)


def _ingest_relations(path: Path, settings: Settings, workspace: Workspace) -> RelationsResult:
    sha = content_hash(path)
    manifest = workspace.read_manifest()
    if sha in manifest.get("relations", []):
        return RelationsResult(str(path), already_ingested=True)
    lf = scan_source(path)
    schema = source_schema(path, lf)
    headers = source_headers(schema)
    columns = map_columns(
        headers,
        explicit={},
        source=str(path),
        synonyms=RELATION_SYNONYMS,
        required=(s.CUSTOMER_ID, s.RELATED_CUSTOMER_ID),
    )

    def text(canonical: str) -> pl.Expr:
        if canonical not in columns:
            return pl.lit(None, dtype=pl.String)
        value = pl.col(columns[canonical]).cast(pl.String).str.strip_chars()
        return pl.when(value == "").then(None).otherwise(value)

    since: pl.Expr = pl.lit(None, dtype=DATETIME)
    if s.SINCE in columns:
        col = columns[s.SINCE]
        sample = collect_sample(path, lf, settings.ingest.sample_rows)[col].cast(pl.String)
        plan = None
        if not schema[col].is_temporal():
            plan = plan_dates(
                col, sample.to_list(), order=settings.ingest.date_order, source=str(path)
            )
        since = parse_datetime(pl.col(col), schema[col], plan, timezone=settings.ingest.timezone)
    frame = lf.select(
        pl.col(LINE),
        text(s.CUSTOMER_ID).alias(s.CUSTOMER_ID),
        text(s.RELATED_CUSTOMER_ID).alias(s.RELATED_CUSTOMER_ID),
        text(s.RELATION_KIND).fill_null("related").alias(s.RELATION_KIND),
        since.alias(s.SINCE),
        *[pl.col(h).cast(pl.String).alias(f"raw:{h}") for h in headers],
    ).collect()
    bad = (
        pl.when(pl.col(s.CUSTOMER_ID).is_null() | pl.col(s.RELATED_CUSTOMER_ID).is_null())
        .then(pl.lit("missing customer id"))
        .when(pl.col(s.CUSTOMER_ID) == pl.col(s.RELATED_CUSTOMER_ID))
        .then(pl.lit("customer related to itself"))
    )
    frame = frame.with_columns(bad.alias(REASON))
    rejected = frame.filter(pl.col(REASON).is_not_null())
    good = frame.filter(pl.col(REASON).is_null()).select(list(s.RELATIONS_SCHEMA))
    previous = (
        pl.read_parquet(workspace.relations_path)
        if workspace.relations_path.exists()
        else good.clear()
    )
    merged = pl.concat([previous, good]).unique(
        subset=[s.CUSTOMER_ID, s.RELATED_CUSTOMER_ID, s.RELATION_KIND],
        keep="first",
        maintain_order=True,
    )
    added = merged.height - previous.height
    rejects_path = workspace.rejects_dir / f"relations-{sha[:16]}.csv"
    with atomic_path(workspace.relations_path) as tmp:
        merged.write_parquet(tmp)
    if rejected.height:
        with atomic_path(rejects_path) as tmp:
            rejected.select(
                pl.lit(str(path)).alias("file"),
                pl.col(LINE).alias("line"),
                pl.col(REASON).alias("reason"),
                *[escape_formula(pl.col(f"raw:{h}")).alias(h) for h in headers],
            ).write_csv(tmp)
    manifest = workspace.read_manifest()
    manifest["relations"] = [*manifest.get("relations", []), sha]
    workspace.write_manifest(manifest)
    return RelationsResult(
        path=str(path),
        already_ingested=False,
        rows_read=frame.height,
        accepted=added,
        rejected=rejected.height,
        duplicates=good.height - added,
        rejects_path=str(rejects_path) if rejected.height else None,
    )


def _count_reasons(rejects_csv: Path) -> dict[str, int]:
    if not rejects_csv.exists() or rejects_csv.stat().st_size == 0:
        return {}
    counts = (
        pl.read_csv(rejects_csv, infer_schema=False, columns=["reason"])
        .group_by("reason")
        .len()
        .sort(["len", "reason"], descending=[True, False])
    )
    return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def summarise_dataset(workspace: Workspace) -> DatasetSummary:
    if not workspace.event_files():
        return DatasetSummary(0, 0, None, None, {})
    lf = scan_events(workspace)
    stats = lf.select(
        pl.len().alias("events"),
        pl.col(s.CUSTOMER_ID).n_unique().alias("customers"),
        pl.col(s.TS).min().alias("first"),
        pl.col(s.TS).max().alias("last"),
    ).collect(engine="streaming")
    kinds = (
        lf.group_by(pl.col(s.KIND).cast(pl.String))
        .len()
        .sort("len", descending=True)
        .collect(engine="streaming")
    )
    row = stats.row(0, named=True)
    return DatasetSummary(
        events=int(row["events"]),
        customers=int(row["customers"]),
        first_ts=row["first"],
        last_ts=row["last"],
        kinds=dict(zip(kinds[s.KIND].to_list(), kinds["len"].to_list(), strict=True)),
    )


def _sum_counts(counts: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for mapping in counts:
        for key, value in mapping.items():
            total[key] = total.get(key, 0) + value
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
