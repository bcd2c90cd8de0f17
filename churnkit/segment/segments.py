"""Who the active customers are, and what to do with each: ``churnkit segment``.

Per customer active at ``as_of`` (DESIGN.md, "Time"): RFM scores and a named RFM
segment, the lifecycle stage, the behavioural type, the value tier and the
relationship strategy (DOMAIN.md, "Customer types", "Lifecycle stages", "Seven
relationship strategies"). Everything is read off the feature frame of
``churnkit.features`` (through ``snapshots.active_features``, so the population is
the one training and scoring use); every rule is a Polars expression with its
thresholds in the ``segments`` settings.

The rules, in the order they are tried (the first that matches wins):

**RFM scores** (1 to 5). Recency is whole days since the last purchase (fewer is
better); frequency and monetary are purchases and revenue over the last
``rfm_window`` days (the whole history when null). A customer's score is the
quintile of their average rank, ``floor(5 * (rank - 0.5) / n) + 1``: equal values
share a rank and so a score, and a tiny population spreads symmetrically around 3
(one customer scores 3; two score 2 and 4; three 1, 3 and 5).

**RFM segment**: ``segments.rfm_segments`` maps each name to score ranges on any of
``r``, ``f``, ``m``; the first matching name wins and ``other`` catches the rest. The
default covers all 125 combinations: champions (R 5, F 4-5), loyal (R 3-4, F 4-5),
can't lose them (R 1-2, F 4-5, M 4-5), at risk (R 1-2, F 3-5), need attention (R 3,
F 3), potential loyalists (R 4-5, F 2-3), new (R 5, F 1), promising (R 4, F 1),
about to sleep (R 3, F 1-2), lost (R 1, F 1-2, M 1-2), hibernating (R 1-2, F 1-2).

**Overdue ratio**: days since the last purchase over the customer's own median gap
between purchases; for a customer with a single purchase, over the population's
median gap (or the active window when nobody bought twice).

**Lifecycle stage**: ``lapsed`` (overdue >= ``lapsed_overdue``), ``at_risk`` (overdue
>= ``at_risk_overdue``), ``new`` (at most ``new_max_purchases`` purchases), ``loyal``
(tenure >= ``loyal_min_tenure_days`` and purchases >= ``loyal_min_purchases``),
``retained`` (tenure >= ``retained_min_tenure_days`` and purchases >=
``retained_min_purchases``), else ``converting`` (a repeat buyer not yet retained).

**Behavioural type**: ``discount_driven`` (share of purchases with a non-zero
``discount_column`` >= ``discount_share_min``, at least two purchases; only when the
column is configured and present), ``loyal`` (F and M >= ``loyal_type_min_score``,
tenure >= ``loyal_type_min_tenure_days``), ``need_based`` (at least
``pattern_min_purchases`` purchases at regular gaps: gap std / mean <=
``regular_gap_cv_max``), ``impulse`` (as many purchases at irregular gaps, or too
few purchases to show a rhythm but above the low value tier), else ``wanderer``
(rarely buys, low value). ``type_reason`` names the rule with the customer's numbers.

**Value tier**: the customer's percentile of monetary value, ``(rank - 0.5) / n``,
against ``value_tiers`` (default high >= 0.8, medium >= 0.5), else ``low``.

**Risk**: the model's ``p_churn`` when given (``risk``), else a rule: overdue /
``lapsed_overdue`` capped at 1, raised to ``failed_payment_risk`` when a failed
payment is not yet recovered. ``risk_source`` says which.

**Strategy** (``strategy_reason`` names the rule): ``win_back`` (lapsed, not low
value), ``protect`` (not low value, risk >= ``risk_high``), ``end`` (low value, high
risk, revenue trend <= 0), ``build`` (new or converting, risk below ``risk_high``),
``enhance`` (below the top tier with revenue rising: trend >= ``trend_up``),
``reshape`` (low value but F >= 3: frequent, cheap orders belong in low-cost
channels), ``enhance`` (a middle tier at low risk), else ``harvest``. The revenue
trend is ``revenue_trend_<trend_window>d`` of the feature module: (recent - previous)
/ (recent + previous), in [-1, 1].
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from churnkit.core.config import SegmentSettings, Settings
from churnkit.core.errors import DataError, ModelError
from churnkit.core.jsonable import finite, jsonable
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, ChurnType
from churnkit.core.timeline import resolve_as_of
from churnkit.features import FeatureLayout, compute_features, slug
from churnkit.population import labels

logger = logging.getLogger(__name__)

RFM_SEGMENT = "rfm_segment"
LIFECYCLE = "lifecycle_stage"
CUSTOMER_TYPE = "customer_type"
VALUE_TIER = "value_tier"
STRATEGY = "strategy"
P_CHURN = "p_churn"
OBSERVED = "observed_churn"
# The analysis date on every row, so a reader of the file can tell its date.
AS_OF = "as_of"
DIMENSIONS = (RFM_SEGMENT, LIFECYCLE, CUSTOMER_TYPE, VALUE_TIER, STRATEGY)

LIFECYCLE_STAGES = ("new", "converting", "retained", "loyal", "at_risk", "lapsed")
CUSTOMER_TYPES = ("loyal", "discount_driven", "need_based", "impulse", "wanderer")
STRATEGIES = ("build", "protect", "reshape", "enhance", "harvest", "end", "win_back")
LOW_TIER = "low"
UNMATCHED = "other"
RISK_FROM_MODEL = "model"
RISK_FROM_RULES = "rules"
# F score from which a low-value customer counts as "buys often" (reshape).
RESHAPE_MIN_F = 3


@dataclass(frozen=True)
class SegmentResult:
    """The per-customer table and its summaries.

    ``customers``: one row per active customer (columns in ``segments`` module doc and
    DESIGN.md). ``summary``: per ``dimension`` (rfm_segment, lifecycle_stage,
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
    names = set(events.collect_schema().names())
    discount = _discount_column(seg, names, notes)
    frame = active_frame(
        events, as_of, settings=_with_needed_features(settings, discount), relations=relations
    )
    if frame.height == 0:
        raise DataError(
            f"no customer is active at as-of {as_of:%Y-%m-%d}",
            hint="choose a later --as-of, or widen labels.active_window",
        )
    share_col = f"{slug(discount)}_share" if discount else None
    if discount and share_col not in frame.columns:
        notes.append(
            f"discount_driven is not assigned: column {discount!r} holds no numeric values "
            "up to the as-of"
        )
        discount, share_col = None, None

    typical_gap = _typical_gap(events, as_of, settings, frame)
    base = _base(frame, seg, typical_gap, share_col)
    if risk is not None:
        _require_risk(risk)
        base = base.join(
            risk.lazy().select(
                pl.col(CUSTOMER_ID).cast(pl.String), pl.col(P_CHURN).cast(pl.Float64)
            ),
            on=CUSTOMER_ID,
            how="left",
        )
    else:
        base = base.with_columns(pl.lit(None, dtype=pl.Float64).alias(P_CHURN))

    tiers = sorted(seg.value_tiers.items(), key=lambda kv: kv[1], reverse=True)
    tier_names = [name for name, _ in tiers] + [LOW_TIER]
    rfm_names = list(dict.fromkeys([*seg.rfm_segments, UNMATCHED]))
    scored = (
        base.with_columns(
            rfm_score(-pl.col("recency_days").floor()).alias("r_score"),
            rfm_score(pl.col("frequency")).alias("f_score"),
            rfm_score(pl.col("monetary")).alias("m_score"),
            _value_tier(tiers).alias(VALUE_TIER),
            _rule_risk(seg).alias("_rule_risk"),
        )
        .with_columns(
            rfm_segment_expr(seg.rfm_segments).alias(RFM_SEGMENT),
            _lifecycle(seg).alias(LIFECYCLE),
            pl.coalesce(P_CHURN, "_rule_risk").alias("risk"),
            pl.when(pl.col(P_CHURN).is_not_null())
            .then(pl.lit(RISK_FROM_MODEL))
            .otherwise(pl.lit(RISK_FROM_RULES))
            .alias("risk_source"),
        )
        .with_columns(_customer_type(seg, with_discount=share_col is not None))
        .with_columns(_strategy(seg, tier_names))
    )
    frame_out = scored.with_columns(
        pl.col(RFM_SEGMENT).cast(pl.Enum(rfm_names)),
        pl.col(LIFECYCLE).cast(pl.Enum(LIFECYCLE_STAGES)),
        pl.col(CUSTOMER_TYPE).cast(pl.Enum(CUSTOMER_TYPES)),
        pl.col(VALUE_TIER).cast(pl.Enum(tier_names)),
        pl.col(STRATEGY).cast(pl.Enum(STRATEGIES)),
    )
    last_event = resolve_as_of(events, None)
    lab = settings.labels
    known = as_of + timedelta(days=lab.horizon + lab.grace_period) <= last_event
    customers = frame_out.collect(engine="in-memory")
    if known:
        outcome = labels.label_window(
            events,
            as_of,
            horizon=lab.horizon,
            grace=lab.grace_period,
            active=customers.lazy().select(CUSTOMER_ID),
        ).collect(engine="in-memory")
        customers = customers.join(
            outcome.select(CUSTOMER_ID, pl.col(CHURN_TYPE).cast(pl.String).alias(OBSERVED)),
            on=CUSTOMER_ID,
            how="left",
        )
    else:
        notes.append(
            f"churn rates are not observed: the {lab.horizon}-day horizon plus "
            f"{lab.grace_period} days' grace after {as_of:%Y-%m-%d} goes beyond the data "
            f"(it ends {last_event:%Y-%m-%d})"
        )
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
        horizon=lab.horizon,
        grace=lab.grace_period,
        customers=customers,
        summary=summarise(customers),
        outcomes_known=known,
        rfm_window=seg.rfm_window,
        discount_column=discount,
        model=model if risk is not None else None,
        notes=tuple(notes),
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
    """Features of the customers active at ``as_of``: the population and columns of
    ``snapshots.active_features``, collected with the in-memory engine because Polars'
    streaming engine panics on the network-feature joins at some cutoffs."""
    window = labels.active_window_days(events, as_of, settings.labels)
    active = labels.active_customers(
        events, as_of, active_window=window, grace=settings.labels.grace_period
    ).collect(engine="in-memory")
    features = compute_features(
        events,
        as_of,
        settings=settings.features,
        relations=relations,
        active=active.lazy(),
        layout=layout,
        label_settings=settings.labels,
    )
    return (
        active.lazy()
        .join(features.frame, on=CUSTOMER_ID, how="left")
        .sort(CUSTOMER_ID)
        .collect(engine="in-memory")
    )


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


def rfm_score(value: pl.Expr) -> pl.Expr:
    """Quintile score 1..5 of the average rank, in integers so ties never straddle a
    boundary by rounding: ``floor(5 (2 rank - 1) / 2n) + 1``."""
    twice_rank = (value.rank("average") * 2).cast(pl.Int64)
    n = value.count().cast(pl.Int64)
    return (((twice_rank - 1) * 5) // (2 * n) + 1).clip(1, 5).cast(pl.Int8)


def percentile(value: pl.Expr) -> pl.Expr:
    """``(rank - 0.5) / n`` with average ranks: ties share a percentile."""
    return (value.rank("average") - 0.5) / value.count()


def _value_tier(tiers: list[tuple[str, float]]) -> pl.Expr:
    p = percentile(pl.col("monetary"))
    return pl.coalesce(
        *[pl.when(p >= threshold).then(pl.lit(name)) for name, threshold in tiers],
        pl.lit(LOW_TIER),
    )


def rfm_segment_expr(rules: Mapping[str, Mapping[Any, tuple[int, int]]]) -> pl.Expr:
    """The first named segment whose score ranges hold ``r_score``, ``f_score`` and
    ``m_score``; ``other`` when none does."""
    matches = []
    for name, ranges in rules.items():
        cond = pl.lit(True)
        for axis, (low, high) in ranges.items():
            cond = cond & pl.col(f"{axis}_score").is_between(low, high)
        matches.append(pl.when(cond).then(pl.lit(name)))
    return pl.coalesce(*matches, pl.lit(UNMATCHED))


def _lifecycle(seg: SegmentSettings) -> pl.Expr:
    overdue = pl.col("overdue_ratio")
    purchases = pl.col("purchases_total")
    tenure = pl.col("tenure_days")
    return pl.coalesce(
        pl.when(overdue >= seg.lapsed_overdue).then(pl.lit("lapsed")),
        pl.when(overdue >= seg.at_risk_overdue).then(pl.lit("at_risk")),
        pl.when(purchases <= seg.new_max_purchases).then(pl.lit("new")),
        pl.when(
            (tenure >= seg.loyal_min_tenure_days) & (purchases >= seg.loyal_min_purchases)
        ).then(pl.lit("loyal")),
        pl.when(
            (tenure >= seg.retained_min_tenure_days) & (purchases >= seg.retained_min_purchases)
        ).then(pl.lit("retained")),
        pl.lit("converting"),
    )


def _rule_risk(seg: SegmentSettings) -> pl.Expr:
    overdue = (pl.col("overdue_ratio") / seg.lapsed_overdue).clip(0.0, 1.0)
    failed = pl.when(pl.col("_unrecovered") > 0).then(seg.failed_payment_risk).otherwise(0.0)
    return pl.max_horizontal(overdue, failed)


def _rules(rules: list[tuple[pl.Expr, str, pl.Expr]], name: str, reason: str) -> list[pl.Expr]:
    """First-match-wins rules as two columns: the label and the reason it got it."""
    label = pl.coalesce(*[pl.when(c).then(pl.lit(v)) for c, v, _ in rules])
    why = pl.coalesce(*[pl.when(c).then(r) for c, _, r in rules])
    return [label.alias(name), why.alias(reason)]


def _num(expr: pl.Expr, digits: int) -> pl.Expr:
    """A number as text with a fixed number of decimals (``pl.format`` prints floats
    at full precision)."""
    if digits == 0:
        return expr.round(0).cast(pl.Int64).cast(pl.String)
    scaled = (expr * 10**digits).round(0).cast(pl.Int64)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = (scaled.abs() // 10**digits).cast(pl.String)
    frac = (scaled.abs() % 10**digits).cast(pl.String).str.zfill(digits)
    return pl.concat_str(sign, whole, pl.lit("."), frac)


def _customer_type(seg: SegmentSettings, *, with_discount: bool) -> list[pl.Expr]:
    purchases = pl.col("purchases_total")
    n_purchases = _num(purchases, 0)
    f, m = pl.col("f_score"), pl.col("m_score")
    cv = pl.col("gap_cv")
    rhythm = (purchases >= seg.pattern_min_purchases) & cv.is_not_null()
    min_score = seg.loyal_type_min_score
    rules: list[tuple[pl.Expr, str, pl.Expr]] = []
    if with_discount:
        share = pl.col("discount_share")
        rules.append(
            (
                (share >= seg.discount_share_min) & (purchases >= 2),
                "discount_driven",
                pl.format(
                    "{}% of {} purchases on discount (>= {}%)",
                    _num(share * 100, 0),
                    n_purchases,
                    pl.lit(f"{seg.discount_share_min * 100:g}"),
                ),
            )
        )
    cv_max = pl.lit(f"{seg.regular_gap_cv_max:g}")
    rules += [
        (
            (f >= min_score)
            & (m >= min_score)
            & (pl.col("tenure_days") >= seg.loyal_type_min_tenure_days),
            "loyal",
            pl.format(
                "buys often and much (F {}, M {} >= {}) for {} days",
                f,
                m,
                pl.lit(str(min_score)),
                _num(pl.col("tenure_days"), 0),
            ),
        ),
        (
            rhythm & (cv <= seg.regular_gap_cv_max),
            "need_based",
            pl.format(
                "buys at regular gaps (variation {} <= {}) over {} purchases",
                _num(cv, 2),
                cv_max,
                n_purchases,
            ),
        ),
        (
            rhythm,
            "impulse",
            pl.format(
                "buys at irregular gaps (variation {} > {}) over {} purchases",
                _num(cv, 2),
                cv_max,
                n_purchases,
            ),
        ),
        (
            pl.col(VALUE_TIER) != LOW_TIER,
            "impulse",
            pl.format(
                "too few purchases ({}) for a rhythm, but {} value", n_purchases, pl.col(VALUE_TIER)
            ),
        ),
        (
            pl.lit(True),
            "wanderer",
            pl.format("rarely buys ({} purchases), low value", n_purchases),
        ),
    ]
    return _rules(rules, CUSTOMER_TYPE, "type_reason")


def _strategy(seg: SegmentSettings, tiers: list[str]) -> list[pl.Expr]:
    tier = pl.col(VALUE_TIER)
    valuable = tier != LOW_TIER
    top = tier == tiers[0]
    stage = pl.col(LIFECYCLE)
    risk = pl.col("risk")
    risky = risk >= seg.risk_high
    trend = pl.col("revenue_trend")
    trend_text = pl.when(trend > 0).then(pl.lit("+")).otherwise(pl.lit("")) + _num(trend, 2)
    risk_text = pl.format("risk {} ({})", _num(risk, 2), pl.col("risk_source"))
    high = pl.lit(f"{seg.risk_high:g}")
    rules: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            (stage == "lapsed") & valuable,
            "win_back",
            pl.format(
                "lapsed ({}x the usual gap since the last purchase), {} value: win back "
                "and learn why",
                _num(pl.col("overdue_ratio"), 1),
                tier,
            ),
        ),
        (
            valuable & risky,
            "protect",
            pl.format("{} value, {} >= {}: protect", tier, risk_text, high),
        ),
        (
            ~valuable & risky & (trend <= 0),
            "end",
            pl.format(
                "low value, {} >= {}, revenue not growing (trend {})", risk_text, high, trend_text
            ),
        ),
        (
            stage.is_in(["new", "converting"]) & ~risky,
            "build",
            pl.format("{} customer, {} value, {}: build the relationship", stage, tier, risk_text),
        ),
        (
            ~top & (trend >= seg.trend_up),
            "enhance",
            pl.format(
                "revenue rising (trend {}), {} value: up-sell and cross-sell", trend_text, tier
            ),
        ),
        (
            ~valuable & (pl.col("f_score") >= RESHAPE_MIN_F),
            "reshape",
            pl.format(
                "buys often (F {}) but low value: serve through low-cost channels",
                pl.col("f_score"),
            ),
        ),
        (
            valuable & ~top,
            "enhance",
            pl.format("{} value, {}: up-sell and cross-sell", tier, risk_text),
        ),
        (
            pl.lit(True),
            "harvest",
            pl.when(top)
            .then(pl.format("steady {} value, {}: keep service, spend little", tier, risk_text))
            .otherwise(
                pl.format(
                    "low value, buys rarely (F {}), {}: spend little",
                    pl.col("f_score"),
                    risk_text,
                )
            ),
        ),
    ]
    return _rules(rules, STRATEGY, "strategy_reason")


_LEADING = (
    CUSTOMER_ID,
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    RFM_SEGMENT,
    LIFECYCLE,
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
    OBSERVED,
    AS_OF,
)


def _output_columns(columns: list[str]) -> list[str]:
    return [c for c in _LEADING if c in columns]


def summarise(customers: pl.DataFrame) -> pl.DataFrame:
    """Per dimension and segment: customers, revenue, average value and risk, and the
    observed churn rates when ``observed_churn`` is present (null otherwise)."""
    total_customers = customers.height
    total_revenue = float(customers["monetary"].sum())
    observed = OBSERVED in customers.columns
    parts = []
    for dim in DIMENSIONS:
        aggs = [
            pl.len().alias("customers"),
            pl.col("monetary").sum().alias("revenue"),
            pl.col("monetary").mean().alias("average_value"),
            pl.col("risk").mean().alias("average_risk"),
        ]
        if observed:
            churned = pl.col(OBSERVED) != ChurnType.RETAINED.value
            aggs += [
                churned.mean().alias("churn_rate"),
                (pl.col(OBSERVED) == ChurnType.VOLUNTARY.value).mean().alias("voluntary_rate"),
                (pl.col(OBSERVED) == ChurnType.INVOLUNTARY.value).mean().alias("involuntary_rate"),
            ]
        else:
            aggs += [
                pl.lit(None, dtype=pl.Float64).alias(name)
                for name in ("churn_rate", "voluntary_rate", "involuntary_rate")
            ]
        part = (
            customers.group_by(dim)
            .agg(aggs)
            .sort(dim)
            .select(
                pl.lit(dim).alias("dimension"),
                pl.col(dim).cast(pl.String).alias("segment"),
                pl.col("customers").cast(pl.Int64),
                (pl.col("customers") / total_customers).alias("customer_share"),
                pl.col("revenue"),
                (
                    pl.col("revenue") / total_revenue
                    if total_revenue > 0
                    else pl.lit(None, dtype=pl.Float64)
                ).alias("revenue_share"),
                pl.col("average_value"),
                pl.col("average_risk"),
                pl.col("churn_rate").cast(pl.Float64),
                pl.col("voluntary_rate").cast(pl.Float64),
                pl.col("involuntary_rate").cast(pl.Float64),
            )
        )
        parts.append(part)
    return pl.concat(parts, how="vertical")


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

    Raises ``ModelError`` when the model is missing or incompatible, or when it was
    trained on outcomes after ``as_of`` (its risk would know the future).
    """
    from churnkit.model.lightgbm import ChurnModel

    as_of = resolve_as_of(events, as_of)
    model = ChurnModel.load(model_dir)
    card = model.card_
    trained = card.get("as_of")
    if trained is not None and datetime.fromisoformat(str(trained)) > as_of:
        raise ModelError(
            f"model {model_dir.name!r} was trained on data up to {trained[:10]}, after "
            f"as-of {as_of:%Y-%m-%d}: its risk would know what happened next",
            hint="use `--risk rules`, or train a model with an earlier --as-of",
        )
    try:
        layout = FeatureLayout.from_dict(card["layout"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"model card in {model_dir} has no usable feature layout ({exc!r})",
            hint="retrain with `churnkit train`",
        ) from None
    features = active_frame(events, as_of, settings=settings, relations=relations, layout=layout)
    model.check_compatible(features.columns)
    proba = model.predict_proba(features.select(model.feature_names_))
    retained = model.classes_.index(ChurnType.RETAINED.value)
    frame = features.select(CUSTOMER_ID).with_columns(
        pl.Series(P_CHURN, 1.0 - proba[:, retained], dtype=pl.Float64)
    )
    return ModelRisk(frame=frame, model=model_dir.name, horizon=int(card.get("horizon", 0)))
