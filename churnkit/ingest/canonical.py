"""One source's rows, parsed and checked: canonical events for the valid rows, a reason
for every other row.

A row is valid when every event it yields is valid; a row that fails any check is
rejected whole (with the first reason it fails), so a subscription whose cancel date is
garbage is not half-stored. Grouped rows (order line items) stand or fall with the row
that carries their order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import polars as pl

from churnkit.core import schema as s
from churnkit.core.config import IngestSettings
from churnkit.core.io import LINE
from churnkit.ingest.dialect import REPLACEMENT
from churnkit.ingest.parsing import DATETIME, DatePlan, parse_datetime, plan_dates
from churnkit.ingest.recipe import Event, Recipe, Row
from churnkit.ingest.sources import Source

REASON = "_reason"
OVERFLOW_FLAG = "_overflow"
OVERFLOW_TEXT = "_overflow_text"
ROWS = "_rows"
STATUS_RAW = "_status"
FUTURE_MARGIN_DAYS = 1
_FIELDS = (s.AMOUNT, s.QUANTITY, s.PLAN, s.REASON, s.EVENT, s.TRANSACTION_ID)


def latest_allowed(cfg: IngestSettings, today: date) -> tuple[datetime, str]:
    """The first moment rows may not reach, and the reason they get when they do:
    ``ingest.latest_date`` when set, else the end of tomorrow (a time zone ahead of
    UTC is still today somewhere)."""
    if cfg.latest_date is not None:
        return datetime.combine(cfg.latest_date, time()), "date out of range"
    return datetime.combine(today + timedelta(days=FUTURE_MARGIN_DAYS + 1), time()), (
        "date in the future"
    )


@dataclass(frozen=True)
class Parsed:
    wide: pl.LazyFrame  # one row per source row: checks, event fields, raw values
    recipe: Recipe
    plans: dict[str, DatePlan | None]
    attributes: tuple[str, ...]


def parse(
    source: Source,
    recipe: Recipe,
    row: Row,
    cfg: IngestSettings,
    sample: pl.DataFrame,
    *,
    today: date,
    attributes: Sequence[str] = (),
) -> Parsed:
    """The wide parsed frame (lazy): every source column, then per event ``e{i}.*``."""
    schema = source.scan().collect_schema()
    plans = {
        col: plan_dates(
            col,
            sample[col].cast(pl.String).to_list(),
            order=cfg.date_order,
            extra_formats=cfg.date_formats,
            source=str(source.id.path),
        )
        if schema[col] == pl.String or schema[col].is_numeric()
        else None
        for col in recipe.date_columns
    }
    dates = {
        col: parse_datetime(pl.col(col), schema[col], plans[col], timezone=cfg.timezone)
        for col in recipe.date_columns
    }
    flag, text = source.overflow()
    exprs: list[pl.Expr] = [
        flag.alias(OVERFLOW_FLAG),
        text.alias(OVERFLOW_TEXT),
        recipe.customer_id.alias(s.CUSTOMER_ID),
        recipe.card_expiry[0].alias(s.CARD_EXPIRY),
        recipe.card_expiry[1].alias("_card_raw"),
    ]
    if recipe.group is not None:
        g = recipe.group
        exprs += [
            pl.col(g.key).cast(pl.String).str.strip_chars().alias("_gkey"),
            g.head.fill_null(False).alias("_head"),
            (g.quantity if g.quantity is not None else pl.lit(None, pl.Float64)).alias("_gqty"),
            (g.plan if g.plan is not None else pl.lit(None, pl.String)).alias("_gplan"),
        ]
    for i, event in enumerate(recipe.events):
        exprs += _event_exprs(i, event, dates, source)
    kept = tuple(dict.fromkeys([*recipe.attributes, *attributes]))
    exprs += [row.stripped(a).alias(f"attr:{a}") for a in kept]
    wide = source.scan().with_columns(exprs)
    latest, future = latest_allowed(cfg, today)
    wide = wide.with_columns(
        _reason(recipe, source, cfg, latest=latest, future=future).alias(REASON)
    )
    return Parsed(wide, recipe, plans, kept)


def _event_exprs(
    i: int, event: Event, dates: Mapping[str, pl.Expr], source: Source
) -> list[pl.Expr]:
    p = f"e{i}."
    columns = event.ts_columns
    ts = pl.coalesce([dates[c] for c in columns]) if len(columns) > 1 else dates[columns[0]]
    present = pl.any_horizontal(
        pl.col(c).is_not_null() & (pl.col(c).cast(pl.String) != "") for c in columns
    ).fill_null(False)

    def field(expr: pl.Expr | None, dtype: pl.DataType) -> pl.Expr:
        return expr if expr is not None else pl.lit(None, dtype=dtype)

    return [
        (event.when if event.when is not None else pl.lit(True)).fill_null(False).alias(p + "when"),
        event.kind.cast(pl.String).alias(p + s.KIND),
        ts.alias(p + s.TS),
        present.alias(p + "ts_present"),
        (event.amount if event.amount is not None else pl.lit(0.0)).alias(p + s.AMOUNT),
        field(event.quantity, pl.Float64()).alias(p + s.QUANTITY),
        field(event.plan, pl.String()).alias(p + s.PLAN),
        field(event.reason, pl.String()).alias(p + s.REASON),
        field(event.event, pl.String()).alias(p + s.EVENT),
        field(event.transaction_id, pl.String()).cast(pl.String).alias(p + s.TRANSACTION_ID),
    ]


def _reason(
    recipe: Recipe,
    source: Source,
    cfg: IngestSettings,
    *,
    latest: datetime,
    future: str,
) -> pl.Expr:
    """The first check a row fails, as a reason a person can act on; null if none."""
    earliest = datetime.combine(cfg.earliest_date, time())
    head = pl.col("_head") if recipe.group is not None else pl.lit(True)
    checks: list[tuple[pl.Expr, str]] = [
        (pl.col(OVERFLOW_FLAG), "more fields than the header (unquoted separator?)")
    ]
    if source.undecodable:
        checks.append(
            (
                pl.any_horizontal(
                    pl.col(c).cast(pl.String).str.contains(REPLACEMENT, literal=True)
                    for c in source.columns
                ).fill_null(False),
                "invalid encoding",
            )
        )
    checks += [(cond.fill_null(False), reason) for cond, reason in recipe.excluded]
    checks.append((head & pl.col(s.CUSTOMER_ID).is_null(), "missing customer_id"))
    for i in range(len(recipe.events)):
        p = f"e{i}."
        on = head & pl.col(p + "when")
        ts, amount = pl.col(p + s.TS), pl.col(p + s.AMOUNT)
        checks += [
            (on & ~pl.col(p + "ts_present"), "missing date"),
            (on & ts.is_null(), "unparseable date"),
            (on & (ts < pl.lit(earliest, DATETIME)), "date out of range"),
            (on & (ts >= pl.lit(latest, DATETIME)), future),
            (on & amount.is_null(), "unparseable amount"),
            (
                on & (~amount.is_finite() | (amount.abs() > cfg.max_abs_amount)),
                "impossible amount",
            ),
            (on & pl.col(p + s.QUANTITY).is_nan(), "unparseable quantity"),
        ]
    if recipe.group is not None:
        checks.append((pl.col("_gqty").is_nan(), "unparseable quantity"))
    checks.append(
        (
            pl.col("_card_raw").is_not_null()
            & ~pl.col(s.CARD_EXPIRY).dt.year().is_between(1970, 2200).fill_null(False),
            "unparseable card expiry",
        )
    )
    expr: Any = pl
    for condition, reason in checks:
        expr = expr.when(condition.fill_null(False)).then(pl.lit(reason))
    return expr.otherwise(pl.lit(None, dtype=pl.String))  # type: ignore[no-any-return]


def event_frames(parsed: Parsed, valid: pl.LazyFrame) -> pl.LazyFrame:
    """The canonical events of the valid rows: one frame per event template, stacked."""
    frames = []
    for i in range(len(parsed.recipe.events)):
        p = f"e{i}."
        frames.append(
            valid.filter(pl.col(p + "when")).select(
                pl.col(s.CUSTOMER_ID),
                pl.col(p + s.TS).alias(s.TS),
                pl.col(p + s.AMOUNT).alias(s.AMOUNT),
                pl.col(p + s.KIND).cast(s.KIND_DTYPE).alias(s.KIND),
                *[pl.col(p + f).alias(f) for f in _FIELDS if f != s.AMOUNT],
                pl.col(s.CARD_EXPIRY),
                *[pl.col(f"attr:{a}").alias(a) for a in parsed.attributes],
                pl.col(LINE).cast(pl.Int64),
                _status(parsed.recipe.events[i], p).alias(STATUS_RAW),
            )
        )
    return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")


def _status(event: Event, p: str) -> pl.Expr:
    """The source's own status of an event kept as `other`: counted, then kept."""
    if event.status is None:
        return pl.lit(None, dtype=pl.String)
    raw = pl.col(event.status).cast(pl.String)  # stripped when counted
    return pl.when(pl.col(p + s.KIND) == s.EventKind.OTHER.value).then(raw)


def grouped(parsed: Parsed) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(every row with its final reason and weight, the order events of the valid rows)
    for a recipe whose line items make one event; evaluated in memory."""
    wide = parsed.wide.collect()
    heads = wide.filter(pl.col("_head")).select(
        "_gkey", pl.col(LINE).alias("_head_line"), pl.col(REASON).alias("_head_reason")
    )
    first_head = heads.group_by("_gkey").agg(
        pl.col("_head_line").min(), pl.col("_head_reason").sort_by("_head_line").first()
    )
    items = wide.group_by("_gkey").agg(
        pl.col("_gqty").sum().alias("_sum_qty"),
        pl.col("_gplan").drop_nulls().first().alias("_first_plan"),
    )
    wide = wide.join(first_head, on="_gkey", how="left").join(items, on="_gkey", how="left")
    orphan = ~pl.col("_head") & pl.col(REASON).is_null()
    wide = wide.with_columns(
        pl.when(orphan & pl.col("_head_line").is_null())
        .then(pl.lit("line item without its order row"))
        .when(orphan & pl.col("_head_reason").is_not_null())
        .then(pl.lit("line item of a rejected order"))
        .otherwise(pl.col(REASON))
        .alias(REASON),
    )
    # The first head row of an order stands for its valid line items in the accounting.
    items_ok = (
        wide.filter(~pl.col("_head") & pl.col(REASON).is_null()).group_by("_gkey").len("_items")
    )
    wide = wide.join(items_ok, on="_gkey", how="left").with_columns(
        pl.when(pl.col("_head") & (pl.col(LINE) == pl.col("_head_line")))
        .then(1 + pl.col("_items").fill_null(0))
        .when(pl.col("_head"))
        .then(1)
        .otherwise(0)
        .alias(ROWS)
    )
    valid = wide.filter(pl.col(REASON).is_null() & pl.col("_head")).with_columns(
        pl.col("_sum_qty").alias("e0." + s.QUANTITY),
        pl.coalesce(pl.col("e0." + s.PLAN), pl.col("_first_plan")).alias("e0." + s.PLAN),
    )
    events = event_frames(parsed, valid.lazy()).collect()
    return wide, events
