"""The report's aggregates: the summary, what the budget buys, churn by risk bin and
by segment, the listed customers' top drivers, and the notes that qualify them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from churnkit.core.schema import (
    ACTION,
    CHURN_TYPE,
    CUSTOMER_ID,
    DRIVER_FEATURES,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    RISK_TIER,
    SEGMENT,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.report.result import (
    CHURNED,
    KINDS,
    RETAINED,
    VOLUNTARY,
    BudgetResult,
    Summary,
)
from churnkit.retention.budget import BudgetPlan
from churnkit.retention.columns import (
    ACTION_COST,
    EXPECTED_SAVED_VALUE,
    SELECTED,
    SELECTION_REASON,
)
from churnkit.retention.playbook import Playbook
from churnkit.segment.value_matrix import QUADRANT, QUADRANT_STRATEGY, QUADRANTS

# Without predict's churn_type, "at risk" means more likely to leave than to stay.
LIKELY = 0.5
RISK_BINS = 10
NO_SEGMENT = "(none)"
TOP_DRIVERS = 10


def summarise(frame: pl.DataFrame, *, binary: bool) -> Summary:
    if binary:
        churners = {CHURNED: float(frame[P_CHURN].sum())}
        at_risk = {CHURNED: float(frame[VALUE_AT_RISK].sum())}
    else:
        churners = {k: float(frame[p_kind(k)].fill_null(0.0).sum()) for k in KINDS}
        at_risk = {
            k: float((frame[p_kind(k)].fill_null(0.0) * frame[VALUE].fill_null(0.0)).sum())
            for k in KINDS
        }
    flagged = pl.col(CHURN_TYPE) != RETAINED
    at_risk_rows = frame.filter(flagged.fill_null(pl.col(P_CHURN) >= LIKELY))
    # Tiers from the riskiest down (ordered by their customers' highest p_churn).
    tiers = (
        frame.group_by(RISK_TIER)
        .agg(pl.len().alias("customers"), pl.col(P_CHURN).max().alias("_top"))
        .sort(["_top", RISK_TIER], descending=[True, False], nulls_last=True)
        if frame.height
        else pl.DataFrame(schema={RISK_TIER: pl.String, "customers": pl.UInt32})
    )
    return Summary(
        active_customers=frame.height,
        expected_churners=churners,
        value_at_risk=float(frame[VALUE_AT_RISK].sum()),
        value_at_risk_by_kind=at_risk,
        revenue_at_risk=float(at_risk_rows[VALUE].sum()),
        customers_at_risk=at_risk_rows.height,
        total_value=float(frame[VALUE].sum()),
        risk_tiers={
            str(tier) if tier is not None else "(none)": int(n)
            for tier, n in zip(tiers[RISK_TIER], tiers["customers"], strict=True)
        },
    )


def p_kind(kind: str) -> str:
    """The probability column of a churn kind."""
    return P_VOLUNTARY if kind == VOLUNTARY else P_INVOLUNTARY


def budget_result(frame: pl.DataFrame, plan: BudgetPlan) -> BudgetResult:
    chosen = (
        frame.filter(pl.col(SELECTED))
        .sort([EXPECTED_SAVED_VALUE, CUSTOMER_ID], descending=[True, False])
        .select(
            CUSTOMER_ID,
            ACTION,
            ACTION_COST,
            EXPECTED_SAVED_VALUE,
            VALUE_AT_RISK,
            SELECTION_REASON,
        )
    )
    return BudgetResult(
        amount=float(plan.amount or 0.0),
        spent=float(plan.spent),
        expected_saved_value=float(plan.expected_saved_value),
        customers=plan.customers_selected,
        method=str(plan.method),
        max_shortfall=float(plan.max_shortfall),
        chosen=chosen,
    )


def risk_distribution(frame: pl.DataFrame) -> pl.DataFrame:
    """Customers and value at risk per tenth of p_churn (every bin present)."""
    bins = pl.DataFrame({"bin": list(range(RISK_BINS))}, schema={"bin": pl.Int64})
    counted = (
        frame.select(
            (pl.col(P_CHURN) * RISK_BINS)
            .floor()
            .clip(0, RISK_BINS - 1)
            .cast(pl.Int64)
            .alias("bin"),
            pl.col(VALUE_AT_RISK),
        )
        .group_by("bin")
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col(VALUE_AT_RISK).sum().alias(VALUE_AT_RISK),
        )
    )
    return (
        bins.join(counted, on="bin", how="left")
        .with_columns(
            (pl.col("bin") / RISK_BINS).alias("low"),
            ((pl.col("bin") + 1) / RISK_BINS).alias("high"),
            pl.col("customers").fill_null(0),
            pl.col(VALUE_AT_RISK).fill_null(0.0),
        )
        .sort("bin")
        .select("low", "high", "customers", VALUE_AT_RISK)
    )


def churn_by_segment(frame: pl.DataFrame, *, binary: bool) -> pl.DataFrame:
    """Per segment: customers, expected churners by kind, value at risk (largest first)."""
    kinds = (
        [pl.col(P_CHURN).sum().alias(CHURNED)]
        if binary
        else [pl.col(p_kind(k)).fill_null(0.0).sum().alias(k) for k in KINDS]
    )
    schema: dict[str, Any] = {SEGMENT: pl.String, "customers": pl.Int64}
    schema.update(dict.fromkeys((CHURNED,) if binary else KINDS, pl.Float64))
    schema[VALUE_AT_RISK] = pl.Float64
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    return (
        frame.with_columns(pl.col(SEGMENT).fill_null(NO_SEGMENT))
        .group_by(SEGMENT)
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            *kinds,
            pl.col(VALUE_AT_RISK).sum().alias(VALUE_AT_RISK),
        )
        .sort([VALUE_AT_RISK, SEGMENT], descending=[True, False])
        .select(list(schema))
    )


def top_drivers(listed: pl.DataFrame, descriptions: Mapping[str, str]) -> pl.DataFrame:
    """How often each feature drives the listed customers' risk (most frequent first)."""
    schema = {"feature": pl.String, "customers": pl.Int64, "description": pl.String}
    if listed.height == 0:
        return pl.DataFrame(schema=schema)
    counted = (
        listed.select(pl.col(DRIVER_FEATURES).list.unique().alias("feature"))
        .explode("feature")
        .drop_nulls("feature")
        .group_by("feature")
        .agg(pl.len().cast(pl.Int64).alias("customers"))
        .sort(["customers", "feature"], descending=[True, False])
        .head(TOP_DRIVERS)
    )
    return counted.with_columns(
        pl.col("feature")
        .replace_strict(descriptions, default=None, return_dtype=pl.String)
        .alias("description")
    ).select(list(schema))


def report_notes(
    frame: pl.DataFrame, listed: pl.DataFrame, *, playbook: Playbook | None
) -> tuple[str, ...]:
    notes = []
    if frame.height == 0:
        notes.append("no active customers match the filters")
    if playbook is None:
        notes.append(
            "no retention playbook: no actions are suggested (create configs/actions.yaml "
            "or pass --playbook FILE)"
        )
    if listed.height and listed[DRIVER_FEATURES].drop_nulls().len() == 0:
        notes.append(
            "the listed customers have no drivers: predict explains the top "
            "predict.drivers_top_n by value at risk and the customers named with "
            "`predict --explain ID` (`--drivers all`: everyone)"
        )
    return tuple(notes)


def by_quadrant(frame: pl.DataFrame, quadrants: pl.DataFrame) -> pl.DataFrame:
    """Per quadrant of value × cost-to-serve (from the segment table): customers,
    expected churners, value at risk and the quadrant's strategy, in a fixed order."""
    grid = pl.DataFrame({QUADRANT: list(QUADRANTS), "_order": list(range(len(QUADRANTS)))})
    table = quadrants.select(
        pl.col(CUSTOMER_ID).cast(pl.String),
        pl.col(QUADRANT).cast(pl.String),
        pl.col(QUADRANT_STRATEGY).cast(pl.String),
    ).unique(CUSTOMER_ID, keep="first")
    joined = frame.select(CUSTOMER_ID, P_CHURN, VALUE_AT_RISK).join(
        table, on=CUSTOMER_ID, how="inner"
    )
    totals = joined.group_by(QUADRANT).agg(
        pl.len().cast(pl.Int64).alias("customers"),
        pl.col(P_CHURN).sum().alias("expected_churners"),
        pl.col(VALUE_AT_RISK).sum().alias(VALUE_AT_RISK),
        pl.col(QUADRANT_STRATEGY).first(),
    )
    return (
        grid.join(totals, on=QUADRANT, how="left")
        .sort("_order")
        .drop("_order")
        .with_columns(pl.col("customers").fill_null(0))
    )
