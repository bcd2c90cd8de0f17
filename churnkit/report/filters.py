"""The population a report covers: its inputs checked, its filters applied, its
optional columns filled, and the top customers it lists."""

from __future__ import annotations

from datetime import date, datetime

import polars as pl

from churnkit.core.errors import DataError, UsageError
from churnkit.core.schema import (
    ACTION,
    ACTION_REASON,
    AS_OF,
    CHURN_TYPE,
    CUSTOMER_ID,
    DRIVER_FEATURES,
    DRIVERS,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    PREDICTION_COLUMNS,
    RISK_TIER,
    SEGMENT,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.report.result import ADDED_COLUMNS, RANK, VOLUNTARY, Kind
from churnkit.retention.columns import (
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_DESCRIPTION,
    ACTION_LEVER,
    ACTION_SUCCESS_RATE,
    EXPECTED_SAVED_VALUE,
)

REQUIRED = (CUSTOMER_ID, P_CHURN, VALUE, VALUE_AT_RISK)
# Every column the playbook, the control group and the budget (re)compute.
ACTION_COLUMNS = (ACTION, ACTION_REASON, *ADDED_COLUMNS)


def is_binary(predictions: pl.DataFrame) -> bool:
    """A binary model has no voluntary/involuntary split: its p_voluntary is all null."""
    if P_VOLUNTARY not in predictions.columns or P_INVOLUNTARY not in predictions.columns:
        return True
    return predictions.height == 0 or predictions[P_VOLUNTARY].null_count() == predictions.height


def check_inputs(
    predictions: pl.DataFrame, *, top: int, budget: float | None, control_share: float
) -> None:
    missing = [c for c in REQUIRED if c not in predictions.columns]
    if missing:
        raise DataError(
            f"the predictions table has no column {', '.join(repr(c) for c in missing)}",
            hint="re-run `churnkit predict` to write a complete predictions file",
        )
    if top < 1:
        raise UsageError(f"--top must be at least 1; got {top}")
    if budget is not None and not budget >= 0:
        raise UsageError(f"--budget must be a non-negative amount; got {budget}")
    if not 0 <= control_share < 1:
        raise UsageError(f"--control-share must be in [0, 1); got {control_share}")


def apply_filters(
    frame: pl.DataFrame,
    *,
    binary: bool,
    kind: Kind | None,
    segment: str | None,
    min_value: float | None,
) -> tuple[pl.DataFrame, dict[str, str]]:
    filters: dict[str, str] = {}
    if kind is not None:
        if binary:
            raise UsageError(
                f"--kind {kind}: the model is binary (churned vs retained) and does not "
                "tell voluntary from involuntary churn",
                hint="drop --kind, or train on data with failed payments",
            )
        mine, other = (
            (P_VOLUNTARY, P_INVOLUNTARY) if kind == VOLUNTARY else (P_INVOLUNTARY, P_VOLUNTARY)
        )
        frame = frame.filter(pl.col(mine) >= pl.col(other))
        filters["kind"] = kind
    if segment is not None:
        if SEGMENT not in frame.columns:
            raise DataError(
                "the predictions table has no 'segment' column to filter on",
                hint="re-run `churnkit predict`",
            )
        known = sorted(s for s in frame[SEGMENT].unique().to_list() if s is not None)
        if segment not in known:
            raise UsageError(
                f"--segment {segment!r} names no segment in the predictions",
                hint=f"known segments: {', '.join(known) or '(none)'}",
            )
        frame = frame.filter(pl.col(SEGMENT) == segment)
        filters["segment"] = segment
    if min_value is not None:
        frame = frame.filter(pl.col(VALUE) >= min_value)
        filters["min_value"] = f"{min_value:g}"
    return frame, filters


def with_optional_columns(frame: pl.DataFrame) -> pl.DataFrame:
    """Missing optional columns become typed nulls, so every renderer sees one shape."""
    missing: dict[str, pl.DataType] = {
        P_VOLUNTARY: pl.Float64(),
        P_INVOLUNTARY: pl.Float64(),
        CHURN_TYPE: pl.String(),
        RISK_TIER: pl.String(),
        SEGMENT: pl.String(),
        "customer_type": pl.String(),
        "strategy": pl.String(),
        "value_tier": pl.String(),
        "lifecycle_stage": pl.String(),
        DRIVERS[0]: pl.String(),
        DRIVERS[1]: pl.String(),
        DRIVERS[2]: pl.String(),
        DRIVER_FEATURES: pl.List(pl.String),
    }
    return frame.with_columns(
        pl.lit(None, dtype=dtype).alias(name)
        for name, dtype in missing.items()
        if name not in frame.columns
    ).with_columns(
        pl.col(P_CHURN, VALUE, VALUE_AT_RISK, P_VOLUNTARY, P_INVOLUNTARY).cast(pl.Float64)
    )


def without_actions(frame: pl.DataFrame) -> pl.DataFrame:
    """Without a playbook every action column is null and nobody is chosen."""
    text = (ACTION, ACTION_DESCRIPTION, ACTION_CHANNEL, ACTION_LEVER, ACTION_REASON)
    money = (ACTION_COST, ACTION_SUCCESS_RATE, EXPECTED_SAVED_VALUE)
    return frame.with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c) for c in text],
        *[pl.lit(None, dtype=pl.Float64).alias(c) for c in money],
    )


def top_customers(frame: pl.DataFrame, top: int) -> pl.DataFrame:
    """The ``top`` customers by value at risk, ranked (see :func:`ranked_customers`)."""
    return ranked_customers(frame, top)


def ranked_customers(frame: pl.DataFrame, top: int | None = None) -> pl.DataFrame:
    """Customers by value at risk (ties by id), numbered from 1, in the listed layout:
    ``rank``, predict's columns, then what the report added; all of them without
    ``top``."""
    ordered = [c for c in PREDICTION_COLUMNS if c in frame.columns]
    extra = [c for c in ADDED_COLUMNS if c in frame.columns]
    ranked = frame.sort([VALUE_AT_RISK, CUSTOMER_ID], descending=[True, False], nulls_last=True)
    if top is not None:
        ranked = ranked.head(top)
    return ranked.with_row_index(RANK, offset=1).select(RANK, *ordered, *extra)


def as_of_date(predictions: pl.DataFrame) -> date | None:
    if AS_OF not in predictions.columns or predictions.height == 0:
        return None
    value = predictions[AS_OF].drop_nulls().max()
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def drop_actions(frame: pl.DataFrame) -> pl.DataFrame:
    """Actions already in the predictions (from predict's playbook run) are recomputed."""
    return frame.drop([c for c in ACTION_COLUMNS if c in frame.columns])
