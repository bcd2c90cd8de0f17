"""Who the active customers are, and what to do with each: ``churnkit segment``.

Per customer active at ``as_of``: RFM scores and a named RFM segment, the lifecycle
stage, the behavioural type, the value tier and the relationship strategy, each by a
transparent rule (``rules``, thresholds in the ``segments`` settings), and per segment
the customers, revenue and observed churn (``summary``). Everything is read off the
feature frame of ``churnkit.features`` for the population that training and scoring
use (``active_frame``). Risk, for the strategy, is a saved model's ``p_churn`` when it
can score at ``as_of``, else a rule.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.config import SegmentSettings, Settings
from churnkit.core.errors import DataError, ModelError
from churnkit.core.jsonable import finite, jsonable
from churnkit.core.schema import (
    AS_OF,
    CHURN_TYPE,
    CUSTOMER_ID,
    CUSTOMER_TYPE,
    LIFECYCLE_STAGE,
    OBSERVED_CHURN,
    P_CHURN,
    RFM_SEGMENT,
    STRATEGY,
    VALUE_TIER,
)
from churnkit.core.timeline import resolve_as_of
from churnkit.features import FeatureLayout, slug
from churnkit.features.snapshot import active_features
from churnkit.population import labels
from churnkit.segment.rules import (
    RISK_FROM_RULES,
    STRATEGIES,
    classify,
    rfm_score,
    rfm_segment_expr,
)
from churnkit.segment.summary import DIMENSIONS, summarise
from churnkit.segment.value_matrix import (
    COST_TO_SERVE,
    QUADRANT,
    QUADRANT_STRATEGY,
    quadrant_summary,
    with_value_matrix,
)

__all__ = [
    "DIMENSIONS",
    "STRATEGIES",
    "ModelRisk",
    "SegmentResult",
    "active_frame",
    "model_risk",
    "rfm_score",
    "rfm_segment_expr",
    "segment",
    "summarise",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentResult:
    """The per-customer table and its summaries.

    ``customers``: one row per active customer (columns in ``segments`` module doc and
    docs/contract.md). ``summary``: per ``dimension`` (rfm_segment, lifecycle_stage,
    customer_type, value_tier, strategy) and ``segment``: customers, their share,
    revenue (monetary) and its share, average value, average risk and, when the
    outcome window after ``as_of`` is in the data, the observed churn rates.
    """

    as_of: datetime
    horizon: int
    grace: int
    customers: pl.DataFrame
    summary: pl.DataFrame
    outcomes_known: bool
    rfm_window: int | None
    discount_column: str | None
    model: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Per quadrant of value × cost-to-serve (``segment.value_matrix``).
    value_matrix: pl.DataFrame | None = None

    @property
    def risk_sources(self) -> dict[str, int]:
        counts = self.customers["risk_source"].value_counts(sort=True)
        return dict(zip(counts["risk_source"].to_list(), counts["count"].to_list(), strict=True))

    def to_json(self) -> dict[str, Any]:
        by_dimension: dict[str, list[dict[str, Any]]] = {}
        for dim in DIMENSIONS:
            rows = self.summary.filter(pl.col("dimension") == dim).drop("dimension")
            by_dimension[dim] = jsonable(rows.to_dicts())
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers.height,
            "revenue": finite(self.customers["monetary"].sum()),
            "rfm_window_days": self.rfm_window,
            "horizon": self.horizon,
            "outcomes_known": self.outcomes_known,
            "risk_sources": self.risk_sources,
            "model": self.model,
            "discount_column": self.discount_column,
            "summary": by_dimension,
            "value_matrix": (
                None if self.value_matrix is None else jsonable(self.value_matrix.to_dicts())
            ),
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelRisk:
    """``frame``: ``customer_id, p_churn`` from a saved model, scored at ``as_of``."""

    frame: pl.DataFrame
    model: str
    horizon: int


def segment(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
    risk: pl.DataFrame | None = None,
    model: str | None = None,
    model_dir: Path | None = None,
) -> SegmentResult:
    """Segment the customers active at ``as_of`` (default: the last event's day).

    Risk, for the strategy: ``risk`` (``customer_id, p_churn``, named ``model``) when
    given; else, with ``model_dir``, the saved model's ``p_churn`` under
    ``segments.risk_source`` ("auto": the model when it can score at ``as_of``,
    otherwise rules, saying why; "model": the model or ``ModelError``; "rules": never
    the model); customers without a model score get the rule-based risk.
    Raises ``DataError`` when no customer is active at ``as_of``.
    """
    as_of = resolve_as_of(events, as_of)
    seg = settings.segments
    notes: list[str] = []
    why_rules = "train a model for predicted risk"
    if risk is None:
        risk, model, why_rules = _risk_from_model(
            events, settings, model_dir, relations, as_of, notes
        )
    discount = _discount_column(seg, set(events.collect_schema().names()), notes)
    frame = active_frame(
        events, as_of, settings=_with_needed_features(settings, discount), relations=relations
    )
    if frame.height == 0:
        raise DataError(
            f"no customer is active at as-of {as_of:%Y-%m-%d}",
            hint="choose a later --as-of, or widen labels.active_window",
        )
    discount, share_col = _discount_share(frame, discount, notes)
    base = _base(frame, seg, _typical_gap(events, as_of, settings, frame), share_col)
    scored = classify(_with_risk(base, risk), seg, with_discount=share_col is not None)
    customers, known = _with_outcome(
        events, as_of, scored.collect(engine="in-memory"), settings, notes
    )
    customers = with_value_matrix(customers, events, as_of=as_of, seg=seg, discount_column=discount)
    customers = (
        customers.with_columns(pl.lit(as_of, dtype=pl.Datetime("us")).alias(AS_OF))
        .select(_output_columns([*customers.columns, AS_OF]))
        .sort(CUSTOMER_ID)
    )
    if risk is None:
        notes.append(
            f"risk is rule-based (overdue ratio, unrecovered failed payments): {why_rules}"
        )
    elif (customers["risk_source"] == RISK_FROM_RULES).any():
        n = int((customers["risk_source"] == RISK_FROM_RULES).sum())
        notes.append(f"{n} customers have no model score; their risk is rule-based")
    logger.info("segmented %d active customers at %s", customers.height, as_of)
    return SegmentResult(
        as_of=as_of,
        horizon=settings.labels.horizon,
        grace=settings.labels.grace_period,
        customers=customers,
        summary=summarise(customers),
        outcomes_known=known,
        rfm_window=seg.rfm_window,
        discount_column=discount,
        model=model if risk is not None else None,
        notes=tuple(notes),
        value_matrix=quadrant_summary(customers),
    )


# --- the pieces ------------------------------------------------------------------------


def _risk_from_model(
    events: pl.LazyFrame,
    settings: Settings,
    model_dir: Path | None,
    relations: pl.LazyFrame | None,
    as_of: datetime,
    notes: list[str],
) -> tuple[pl.DataFrame | None, str | None, str]:
    """``(p_churn frame, model name, why rules)`` under ``segments.risk_source``."""
    source = settings.segments.risk_source
    if source == "rules":
        return None, None, "`segments.risk_source` is 'rules'"
    if model_dir is None:
        if source == "model":
            raise ModelError(
                "`segments.risk_source` is 'model' but no model was given",
                hint="train one with `churnkit train`, or use --risk rules",
            )
        return None, None, "train a model for predicted risk"
    try:
        scored = model_risk(
            events, settings=settings, model_dir=model_dir, relations=relations, as_of=as_of
        )
    except ModelError as exc:
        if source == "model":
            raise
        return None, None, exc.message
    notes.append(
        f"risk is the probability of churn within {scored.horizon} days from model {scored.model!r}"
    )
    return scored.frame, scored.model, ""


def active_frame(
    events: pl.LazyFrame,
    as_of: datetime,
    *,
    settings: Settings,
    relations: pl.LazyFrame | None,
    layout: FeatureLayout | None = None,
) -> pl.DataFrame:
    """Features of the customers active at ``as_of``: ``snapshot.active_features``, the
    population training and scoring use."""
    return active_features(
        events, as_of, settings=settings, relations=relations, layout=layout
    ).frame


def _discount_column(seg: SegmentSettings, names: set[str], notes: list[str]) -> str | None:
    col = seg.discount_column
    if col is None:
        notes.append(
            "discount_driven is not assigned: no `segments.discount_column` is configured "
            "(name the source column that holds a purchase's discount, e.g. Discount)"
        )
        return None
    if col not in names:
        notes.append(
            f"discount_driven is not assigned: `segments.discount_column` {col!r} is not a "
            "column of the event log"
        )
        return None
    return col


def _with_needed_features(settings: Settings, discount: str | None) -> Settings:
    """The configured features plus the windows and the discount share segments read."""
    feats = settings.features
    seg = settings.segments
    windows = {*feats.windows, seg.trend_window}
    if seg.rfm_window is not None:
        windows.add(seg.rfm_window)
    extra = list(feats.extra_numeric)
    if discount is not None and discount not in extra:
        extra.append(discount)
    if discount is not None and discount in feats.extra_categorical:
        categorical = [c for c in feats.extra_categorical if c != discount]
    else:
        categorical = list(feats.extra_categorical)
    updated = feats.model_copy(
        update={
            "windows": sorted(windows),
            "extra_numeric": extra,
            "extra_categorical": categorical,
        }
    )
    return settings.model_copy(update={"features": updated})


def _typical_gap(
    events: pl.LazyFrame, as_of: datetime, settings: Settings, frame: pl.DataFrame
) -> float:
    """The rhythm of customers with one purchase: the population's median gap, or the
    active window when nobody has bought twice."""
    median = frame["gap_median_days"].median()
    if isinstance(median, int | float) and not math.isnan(median) and median > 0:
        return float(median)
    return float(labels.active_window_days(events, as_of, settings.labels))


def _base(
    frame: pl.DataFrame, seg: SegmentSettings, typical_gap: float, share_col: str | None
) -> pl.LazyFrame:
    if seg.rfm_window is None:
        freq, mon = "purchases_total", "revenue_total"
    else:
        freq, mon = f"purchases_{seg.rfm_window}d", f"revenue_{seg.rfm_window}d"
    cols = frame.columns
    unrecovered = (
        pl.col("failed_payments_unrecovered").fill_null(0.0)
        if "failed_payments_unrecovered" in cols
        else pl.lit(0.0)
    )
    exprs = [
        pl.col(CUSTOMER_ID),
        pl.col("recency_days"),
        pl.col(freq).fill_null(0.0).alias("frequency"),
        pl.col(mon).fill_null(0.0).alias("monetary"),
        pl.col("purchases_total").fill_null(0.0),
        pl.col("tenure_days"),
        pl.col("gap_cv"),
        pl.coalesce(pl.col("overdue_ratio"), pl.col("recency_days") / max(typical_gap, 1.0)).alias(
            "overdue_ratio"
        ),
        pl.col(f"revenue_trend_{seg.trend_window}d").fill_null(0.0).alias("revenue_trend"),
        unrecovered.alias("_unrecovered"),
    ]
    if share_col is not None:
        exprs.append(pl.col(share_col).fill_null(0.0).alias("discount_share"))
    if "network_stickiness" in cols:
        exprs.append(pl.col("network_stickiness"))
    return frame.lazy().select(exprs)


def _require_risk(risk: pl.DataFrame) -> None:
    missing = [c for c in (CUSTOMER_ID, P_CHURN) if c not in risk.columns]
    if missing:
        raise DataError(
            f"the risk table has no column {', '.join(repr(c) for c in missing)}",
            hint="pass customer_id and p_churn (the output of `churnkit predict`)",
        )


def _discount_share(
    frame: pl.DataFrame, discount: str | None, notes: list[str]
) -> tuple[str | None, str | None]:
    """``(discount column, its share column)``, both None when the column never held a
    number up to the as-of (the feature module then has no share for it)."""
    share_col = f"{slug(discount)}_share" if discount else None
    if discount and share_col not in frame.columns:
        notes.append(
            f"discount_driven is not assigned: column {discount!r} holds no numeric values "
            "up to the as-of"
        )
        return None, None
    return discount, share_col


def _with_risk(base: pl.LazyFrame, risk: pl.DataFrame | None) -> pl.LazyFrame:
    """``base`` with the given ``p_churn`` per customer (null without a risk table)."""
    if risk is None:
        return base.with_columns(pl.lit(None, dtype=pl.Float64).alias(P_CHURN))
    _require_risk(risk)
    return base.join(
        risk.lazy().select(pl.col(CUSTOMER_ID).cast(pl.String), pl.col(P_CHURN).cast(pl.Float64)),
        on=CUSTOMER_ID,
        how="left",
    )


def _with_outcome(
    events: pl.LazyFrame,
    as_of: datetime,
    customers: pl.DataFrame,
    settings: Settings,
    notes: list[str],
) -> tuple[pl.DataFrame, bool]:
    """``customers`` with the churn kind observed after ``as_of`` when the data covers
    the horizon and grace period, and whether it does."""
    last_event = resolve_as_of(events, None)
    lab = settings.labels
    if as_of + timedelta(days=lab.horizon + lab.grace_period) > last_event:
        notes.append(
            f"churn rates are not observed: the {lab.horizon}-day horizon plus "
            f"{lab.grace_period} days' grace after {as_of:%Y-%m-%d} goes beyond the data "
            f"(it ends {last_event:%Y-%m-%d})"
        )
        return customers, False
    outcome = labels.label_window(
        events,
        as_of,
        horizon=lab.horizon,
        grace=lab.grace_period,
        active=customers.lazy().select(CUSTOMER_ID),
    ).collect(engine="in-memory")
    observed = customers.join(
        outcome.select(CUSTOMER_ID, pl.col(CHURN_TYPE).cast(pl.String).alias(OBSERVED_CHURN)),
        on=CUSTOMER_ID,
        how="left",
    )
    return observed, True


_LEADING = (
    CUSTOMER_ID,
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    RFM_SEGMENT,
    LIFECYCLE_STAGE,
    CUSTOMER_TYPE,
    VALUE_TIER,
    STRATEGY,
    "strategy_reason",
    "type_reason",
    "risk",
    "risk_source",
    "overdue_ratio",
    "revenue_trend",
    "purchases_total",
    "tenure_days",
    "gap_cv",
    "discount_share",
    "network_stickiness",
    COST_TO_SERVE,
    QUADRANT,
    QUADRANT_STRATEGY,
    OBSERVED_CHURN,
    AS_OF,
)


def _output_columns(columns: list[str]) -> list[str]:
    return [c for c in _LEADING if c in columns]


# --- risk from a saved model -----------------------------------------------------------


def model_risk(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    model_dir: Path,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
) -> ModelRisk:
    """Score the customers active at ``as_of`` with the model saved in ``model_dir``.

    Scores as ``predict`` does (``predict.score``): raises ``ModelError`` when the model
    is missing or incompatible, or when it learned from events after ``as_of`` (its
    risk would know the future).
    """
    # Imported here: LightGBM loads only when a model is used.
    from churnkit.model.store import load_model
    from churnkit.predict.score import score_population

    as_of = resolve_as_of(events, as_of)
    model = load_model(model_dir.parent, model_dir.name)
    scored = score_population(events, model, as_of=as_of, settings=settings, relations=relations)
    frame = scored.frame.select(CUSTOMER_ID).with_columns(
        pl.Series(P_CHURN, scored.p_churn, dtype=pl.Float64)
    )
    return ModelRisk(frame=frame, model=scored.name, horizon=scored.horizon)
