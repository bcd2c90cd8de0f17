"""The action plan: what acting on the chosen customers costs and saves, per action."""

from __future__ import annotations

import polars as pl

from churnkit.core.schema import ACTION, require_columns
from churnkit.retention.columns import (
    ACTION_CHANNEL,
    ACTION_COST,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    RETURN_PER_UNIT,
    SELECTED,
)


def action_plan(frame: pl.DataFrame) -> pl.DataFrame:
    """Totals per action: ``action, action_channel, customers, cost,
    expected_saved_value, return_per_unit`` (saved value per unit spent; null for free
    actions), best first.

    Counts the customers with ``selected`` true when that column exists (after
    ``select_within_budget``), otherwise every customer outside the control group.
    """
    lf = frame.lazy()
    require_columns(
        lf, [ACTION, ACTION_CHANNEL, ACTION_COST, EXPECTED_SAVED_VALUE], what="the action frame"
    )
    if SELECTED in frame.columns:
        lf = lf.filter(pl.col(SELECTED).fill_null(False))
    elif CONTROL in frame.columns:
        lf = lf.filter(~pl.col(CONTROL).fill_null(False))
    return (
        lf.group_by(ACTION)
        .agg(
            pl.col(ACTION_CHANNEL).first(),
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col(ACTION_COST).sum().alias("cost"),
            pl.col(EXPECTED_SAVED_VALUE).fill_nan(None).sum().alias("expected_saved_value"),
        )
        .with_columns(
            pl.when(pl.col("cost") > 0)
            .then(pl.col("expected_saved_value") / pl.col("cost"))
            .otherwise(None)
            .alias(RETURN_PER_UNIT)
        )
        .sort(["expected_saved_value", ACTION], descending=[True, False])
        .collect()
    )
