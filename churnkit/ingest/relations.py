"""The optional relations table (referrals, shared accounts, team seats)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl

from churnkit.core import schema as s
from churnkit.core.config import Settings
from churnkit.core.errors import DataError
from churnkit.core.io import LINE, escape_formula, first_line
from churnkit.core.workspace import Workspace, atomic_path
from churnkit.ingest.columns import RELATION_SYNONYMS, map_columns
from churnkit.ingest.parsing import DATETIME, parse_datetime, plan_dates
from churnkit.ingest.recipe import Row
from churnkit.ingest.results import RelationsResult
from churnkit.ingest.sources import open_source

REASON = "_reason"


def ingest_relations(
    path: str, settings: Settings, workspace: Workspace, *, today: date
) -> RelationsResult:
    cfg = settings.ingest
    source = open_source(
        _path(path),
        staging=workspace.root / ".staging",
        encoding=cfg.encoding,
        delimiter=cfg.delimiter,
    )
    try:
        manifest = workspace.read_manifest()
        if source.id.sha256 in manifest.get("relations", []):
            return RelationsResult(path, already_ingested=True)
        columns = map_columns(
            source.columns,
            explicit={},
            source=path,
            synonyms=RELATION_SYNONYMS,
            required=(s.CUSTOMER_ID, s.RELATED_CUSTOMER_ID),
        )
        schema = source.scan().collect_schema()
        row = Row(schema, decimal=".")
        since: pl.Expr = pl.lit(None, dtype=DATETIME)
        if s.SINCE in columns:
            col = columns[s.SINCE]
            plan = None
            if not schema[col].is_temporal():
                sample = source.sample(cfg.sample_rows)[col].cast(pl.String).to_list()
                plan = plan_dates(col, sample, order=cfg.date_order, source=path)
            since = parse_datetime(pl.col(col), schema[col], plan, timezone=cfg.timezone)
        try:
            frame = (
                source.scan()
                .select(
                    pl.col(LINE),
                    row.text(columns[s.CUSTOMER_ID]).alias(s.CUSTOMER_ID),
                    row.text(columns[s.RELATED_CUSTOMER_ID]).alias(s.RELATED_CUSTOMER_ID),
                    row.text(columns.get(s.RELATION_KIND))
                    .fill_null("related")
                    .alias(s.RELATION_KIND),
                    since.alias(s.SINCE),
                    *[pl.col(h).cast(pl.String).alias(f"raw:{h}") for h in source.columns],
                )
                .collect()
            )
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{path}: cannot read file ({first_line(exc)})") from None
    finally:
        source.close()
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
    sha = source.id.sha256
    rejects_path = workspace.rejects_dir / f"relations-{sha[:16]}.csv"
    with atomic_path(workspace.relations_path) as tmp:
        merged.write_parquet(tmp)
    if rejected.height:
        with atomic_path(rejects_path) as tmp:
            rejected.select(
                pl.lit(path).alias("file"),
                pl.col(LINE).alias("line"),
                pl.col(REASON).alias("reason"),
                *[escape_formula(pl.col(f"raw:{h}")).alias(h) for h in source.columns],
            ).write_csv(tmp)
    manifest = workspace.read_manifest()
    manifest["relations"] = [*manifest.get("relations", []), sha]
    workspace.write_manifest(manifest)
    return RelationsResult(
        path=path,
        already_ingested=False,
        rows_read=frame.height,
        accepted=added,
        rejected=rejected.height,
        duplicates=good.height - added,
        rejects_path=str(rejects_path) if rejected.height else None,
    )


def _path(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise DataError(f"{text}: no such file", hint="check the --relations path")
    return path
