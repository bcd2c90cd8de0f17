"""The retention report: who is most worth saving, why, and what to do (DESIGN `report`).

``build_report`` turns a predictions table into a ``Report``: filters, the playbook's
actions, an optional control group (customers deliberately left untreated, so the
effect of the actions can be measured), an optional budget (the exact selection of
customers and actions that saves the most expected value within it), the summary,
the top-N customers ranked by value at risk, the action plan and the small tables the
charts draw. Renderers in ``churnkit.render.report`` and charts in ``churnkit.charts``
only read the result; this module never prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

import polars as pl

from churnkit.core.config import Settings
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
    ChurnType,
)
from churnkit.features.snapshot import feature_vocabulary
from churnkit.retention.playbook import (
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_DESCRIPTION,
    ACTION_LEVER,
    ACTION_SUCCESS_RATE,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    SELECTED,
    SELECTION_REASON,
    BudgetPlan,
    Playbook,
    action_plan,
    assign_actions,
    assign_control_group,
    select_within_budget,
)

REQUIRED = (CUSTOMER_ID, P_CHURN, VALUE, VALUE_AT_RISK)

# What the report adds per customer (from the playbook, the control group and the budget).
RANK = "rank"
ADDED_COLUMNS = (
    ACTION_DESCRIPTION,
    ACTION_CHANNEL,
    ACTION_LEVER,
    ACTION_COST,
    ACTION_SUCCESS_RATE,
    EXPECTED_SAVED_VALUE,
    CONTROL,
    SELECTED,
    SELECTION_REASON,
)
# Per action in the plan (churnkit.actions.action_plan): action, action_channel,
# customers, cost, expected_saved_value and this.
RETURN_PER_UNIT = "return_per_unit"

VOLUNTARY = ChurnType.VOLUNTARY.value
INVOLUNTARY = ChurnType.INVOLUNTARY.value
CHURNED = ChurnType.CHURNED.value
KINDS = (VOLUNTARY, INVOLUNTARY)
RETAINED = ChurnType.RETAINED.value
# Without predict's churn_type, "at risk" means more likely to leave than to stay.
LIKELY = 0.5
RISK_BINS = 10
NO_SEGMENT = "(none)"
TOP_DRIVERS = 10
DECILE_FEATURES = 4

Kind = Literal["voluntary", "involuntary"]


@dataclass(frozen=True)
class Summary:
    """The population the report covers (after filters) in a few numbers.

    ``expected_churners`` and ``value_at_risk_by_kind`` are keyed by churn kind:
    voluntary and involuntary, or only ``churned`` for a binary model.
    ``value_at_risk`` is the expected loss, Σ p_churn × value; ``revenue_at_risk`` the
    whole value held by the ``customers_at_risk``: those predict places in a risk
    tier (their churn_type is a churn kind, not ``retained``).
    """

    active_customers: int
    expected_churners: dict[str, float]
    value_at_risk: float
    value_at_risk_by_kind: dict[str, float]
    revenue_at_risk: float
    customers_at_risk: int
    total_value: float
    risk_tiers: dict[str, int]

    @property
    def expected_churners_total(self) -> float:
        return sum(self.expected_churners.values())


@dataclass(frozen=True)
class ControlGroup:
    """Customers left untreated on purpose; their churn measures what the actions save."""

    share: float
    customers: int
    seed: int


@dataclass(frozen=True)
class BudgetResult:
    """What the budget buys. ``chosen`` lists every selected customer, best first, with
    the reason each is in."""

    amount: float
    spent: float
    expected_saved_value: float
    customers: int
    method: str
    max_shortfall: float
    chosen: pl.DataFrame


@dataclass(frozen=True)
class FeatureDeciles:
    """Churn rate by decile of one important feature, on the validation snapshot."""

    feature: str
    description: str | None
    importance: float | None
    deciles: pl.DataFrame


@dataclass(frozen=True)
class ModelInfo:
    name: str | None
    mode: str | None
    horizon: int | None
    trained_as_of: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class Report:
    """Everything every output format shows; see the module docstring."""

    as_of: date | None
    binary: bool
    top: int
    filters: dict[str, str]
    summary: Summary
    control: ControlGroup
    customers: pl.DataFrame
    actions: pl.DataFrame
    budget: BudgetResult | None
    risk_distribution: pl.DataFrame
    by_segment: pl.DataFrame
    drivers: pl.DataFrame
    calibration: pl.DataFrame | None = None
    feature_deciles: tuple[FeatureDeciles, ...] = ()
    model: ModelInfo | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kinds(self) -> tuple[str, ...]:
        """The churn kinds the model tells apart."""
        return (CHURNED,) if self.binary else KINDS


def is_binary(predictions: pl.DataFrame) -> bool:
    """A binary model has no voluntary/involuntary split: its p_voluntary is all null."""
    if P_VOLUNTARY not in predictions.columns or P_INVOLUNTARY not in predictions.columns:
        return True
    return predictions.height == 0 or predictions[P_VOLUNTARY].null_count() == predictions.height


def build_report(
    predictions: pl.DataFrame,
    *,
    playbook: Playbook | None,
    top: int,
    budget: float | None = None,
    control_share: float = 0.0,
    seed: int = 0,
    kind: Kind | None = None,
    segment: str | None = None,
    min_value: float | None = None,
    card: Mapping[str, Any] | None = None,
    model_name: str | None = None,
) -> Report:
    """Build the retention report from ``churnkit predict``'s table.

    Filters (``kind``: customers whose likelier churn kind it is; ``segment``;
    ``min_value``) narrow the population first; everything after describes what is
    left. The playbook assigns each customer an action; control customers (a seeded
    ``control_share`` of them) get none; the customers chosen to act on (``selected``)
    are those whose action pays, or with ``budget`` the exact best choice within it.
    ``card`` (the model card) adds the calibration and per-feature views and the
    feature descriptions; without it those parts are left out. Without a playbook
    the report has no actions and says so.
    """
    _check(predictions, top=top, budget=budget, control_share=control_share)
    if playbook is None and budget is not None:
        raise UsageError(
            "--budget needs a retention playbook to know what actions cost",
            hint="create configs/actions.yaml or pass --playbook FILE",
        )
    binary = is_binary(predictions)
    frame, filters = _filter(
        predictions, binary=binary, kind=kind, segment=segment, min_value=min_value
    )
    frame = _with_numbers(frame.drop([c for c in _ACTION_COLUMNS if c in frame.columns]))

    frame = assign_actions(frame, playbook) if playbook is not None else _no_actions(frame)
    frame = assign_control_group(frame, control_share, seed)
    plan = select_within_budget(frame, budget)
    frame = plan.frame

    listed = _top(frame, top)
    descriptions = _descriptions(card)
    notes = _notes(frame, listed, playbook=playbook)
    return Report(
        as_of=_as_of(predictions),
        binary=binary,
        top=top,
        filters=filters,
        summary=_summary(frame, binary=binary),
        control=ControlGroup(
            share=control_share,
            customers=int(frame[CONTROL].sum()),
            seed=seed,
        ),
        customers=listed,
        actions=action_plan(frame),
        budget=_budget(frame, plan) if budget is not None else None,
        risk_distribution=_risk_distribution(frame),
        by_segment=_by_segment(frame, binary=binary),
        drivers=_drivers(listed, descriptions),
        calibration=_calibration(card),
        feature_deciles=_deciles(card, descriptions),
        model=_model_info(card, model_name),
        notes=notes,
    )


_ACTION_COLUMNS = (ACTION, ACTION_REASON, *ADDED_COLUMNS)


def _no_actions(frame: pl.DataFrame) -> pl.DataFrame:
    """Without a playbook every action column is null and nobody is chosen."""
    text = (ACTION, ACTION_DESCRIPTION, ACTION_CHANNEL, ACTION_LEVER, ACTION_REASON)
    money = (ACTION_COST, ACTION_SUCCESS_RATE, EXPECTED_SAVED_VALUE)
    return frame.with_columns(
        *[pl.lit(None, dtype=pl.String).alias(c) for c in text],
        *[pl.lit(None, dtype=pl.Float64).alias(c) for c in money],
    )


def _check(
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


def _filter(
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


def _with_numbers(frame: pl.DataFrame) -> pl.DataFrame:
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


def _top(frame: pl.DataFrame, top: int) -> pl.DataFrame:
    ordered = [c for c in PREDICTION_COLUMNS if c in frame.columns]
    extra = [c for c in ADDED_COLUMNS if c in frame.columns]
    return (
        frame.sort([VALUE_AT_RISK, CUSTOMER_ID], descending=[True, False], nulls_last=True)
        .head(top)
        .with_row_index(RANK, offset=1)
        .select(RANK, *ordered, *extra)
    )


def _summary(frame: pl.DataFrame, *, binary: bool) -> Summary:
    if binary:
        churners = {CHURNED: float(frame[P_CHURN].sum())}
        at_risk = {CHURNED: float(frame[VALUE_AT_RISK].sum())}
    else:
        churners = {k: float(frame[_p(k)].fill_null(0.0).sum()) for k in KINDS}
        at_risk = {
            k: float((frame[_p(k)].fill_null(0.0) * frame[VALUE].fill_null(0.0)).sum())
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


def _p(kind: str) -> str:
    return P_VOLUNTARY if kind == VOLUNTARY else P_INVOLUNTARY


def _budget(frame: pl.DataFrame, plan: BudgetPlan) -> BudgetResult:
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


def _risk_distribution(frame: pl.DataFrame) -> pl.DataFrame:
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


def _by_segment(frame: pl.DataFrame, *, binary: bool) -> pl.DataFrame:
    """Per segment: customers, expected churners by kind, value at risk (largest first)."""
    kinds = (
        [pl.col(P_CHURN).sum().alias(CHURNED)]
        if binary
        else [pl.col(_p(k)).fill_null(0.0).sum().alias(k) for k in KINDS]
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


def _descriptions(card: Mapping[str, Any] | None) -> dict[str, str]:
    """Feature → what it measures, from the card's feature specs (else its feature list)."""
    out: dict[str, str] = {}
    for item in (card or {}).get("features") or []:
        if isinstance(item, Mapping) and item.get("name") and item.get("description"):
            out[str(item["name"])] = str(item["description"])
    for name, spec in ((card or {}).get("feature_specs") or {}).items():
        if isinstance(spec, Mapping) and spec.get("description"):
            out[str(name)] = str(spec["description"])
    return out


def playbook_features(card: Mapping[str, Any] | None, settings: Settings) -> list[str]:
    """The feature names a playbook's rules may refer to: every feature churnkit can
    produce, plus the model's own (see ``snapshots.feature_vocabulary``)."""
    return feature_vocabulary(settings, list(_descriptions(card)))


def _drivers(listed: pl.DataFrame, descriptions: Mapping[str, str]) -> pl.DataFrame:
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


def _calibration(card: Mapping[str, Any] | None) -> pl.DataFrame | None:
    curve = (card or {}).get("calibration_curve")
    if not curve:
        return None
    return pl.DataFrame(
        [
            {
                "predicted": float(r["predicted"]),
                "observed": float(r["observed"]),
                "customers": int(r["customers"]),
            }
            for r in curve
        ],
        schema={"predicted": pl.Float64, "observed": pl.Float64, "customers": pl.Int64},
    )


def _deciles(
    card: Mapping[str, Any] | None, descriptions: Mapping[str, str]
) -> tuple[FeatureDeciles, ...]:
    """The most important features' churn-rate-by-decile tables, most important first."""
    table = (card or {}).get("feature_deciles") or {}
    importance = (card or {}).get("feature_importance") or {}
    names = sorted(table, key=lambda n: (-float(importance.get(n, 0.0)), n))
    out = []
    for name in names[:DECILE_FEATURES]:
        rows = table[name]
        if not rows:
            continue
        out.append(
            FeatureDeciles(
                feature=name,
                description=descriptions.get(name),
                importance=float(importance[name]) if name in importance else None,
                deciles=pl.DataFrame(
                    [
                        {
                            "low": _float(r.get("low")),
                            "high": _float(r.get("high")),
                            "churn_rate": _float(r.get("churn_rate")),
                            "customers": int(r.get("customers") or 0),
                        }
                        for r in rows
                    ],
                    schema={
                        "low": pl.Float64,
                        "high": pl.Float64,
                        "churn_rate": pl.Float64,
                        "customers": pl.Int64,
                    },
                ),
            )
        )
    return tuple(out)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _model_info(card: Mapping[str, Any] | None, name: str | None) -> ModelInfo | None:
    if card is None:
        return None
    metrics = card.get("metrics") or {}
    horizon = card.get("horizon")
    return ModelInfo(
        name=name,
        mode=str(card["mode"]) if card.get("mode") else None,
        horizon=int(horizon) if horizon is not None else None,
        trained_as_of=str(card["as_of"])[:10] if card.get("as_of") else None,
        metrics={str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float)},
    )


def _as_of(predictions: pl.DataFrame) -> date | None:
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


def _notes(
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
            "the listed customers have no drivers: predict explains only the customers a "
            "report can show (predict.drivers_top_n)"
        )
    return tuple(notes)
