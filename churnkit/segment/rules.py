"""The segment rules: transparent Polars expressions over one row per active customer,
with their thresholds in the ``segments`` settings.

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
value; the reason gives the chance of buying again in the horizon, ``1 - risk``: in a
shop, where every past buyer is scored, these are the lapsed customers worth winning
back), ``protect`` (not low value, risk >= ``risk_high``), ``end`` (low value, high
risk, revenue trend <= 0), ``build`` (new or converting, risk below ``risk_high``),
``enhance`` (below the top tier with revenue rising: trend >= ``trend_up``),
``reshape`` (low value but F >= 3: frequent, cheap orders belong in low-cost
channels), ``enhance`` (a middle tier at low risk), else ``harvest``. The revenue
trend is ``revenue_trend_<trend_window>d`` of the feature module: (recent - previous)
/ (recent + previous), in [-1, 1].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from churnkit.core.config import SegmentSettings
from churnkit.core.schema import (
    CUSTOMER_TYPE,
    LIFECYCLE_STAGE,
    P_CHURN,
    RFM_SEGMENT,
    STRATEGY,
    VALUE_TIER,
)

__all__ = [
    "CUSTOMER_TYPES",
    "LIFECYCLE_STAGES",
    "LOW_TIER",
    "RISK_FROM_MODEL",
    "RISK_FROM_RULES",
    "STRATEGIES",
    "UNMATCHED",
    "classify",
    "customer_type",
    "first_match",
    "lifecycle_stage",
    "num",
    "percentile",
    "rfm_score",
    "rfm_segment_expr",
    "rule_risk",
    "strategy",
    "value_tier",
]

LIFECYCLE_STAGES = ("new", "converting", "retained", "loyal", "at_risk", "lapsed")
CUSTOMER_TYPES = ("loyal", "discount_driven", "need_based", "impulse", "wanderer")
STRATEGIES = ("build", "protect", "reshape", "enhance", "harvest", "end", "win_back")
LOW_TIER = "low"
UNMATCHED = "other"
RISK_FROM_MODEL = "model"
RISK_FROM_RULES = "rules"
# F score from which a low-value customer counts as "buys often" (reshape).
RESHAPE_MIN_F = 3


def classify(base: pl.LazyFrame, seg: SegmentSettings, *, with_discount: bool) -> pl.LazyFrame:
    """Every rule applied to ``base`` (one row per customer: ``recency_days``,
    ``frequency``, ``monetary``, ``purchases_total``, ``tenure_days``, ``gap_cv``,
    ``overdue_ratio``, ``revenue_trend``, ``_unrecovered``, ``p_churn`` (null without a
    model) and, ``with_discount``, ``discount_share``); the labels are enums in the
    order of their rules."""
    tiers = sorted(seg.value_tiers.items(), key=lambda kv: kv[1], reverse=True)
    tier_names = [name for name, _ in tiers] + [LOW_TIER]
    rfm_names = list(dict.fromkeys([*seg.rfm_segments, UNMATCHED]))
    scored = (
        base.with_columns(
            rfm_score(-pl.col("recency_days").floor()).alias("r_score"),
            rfm_score(pl.col("frequency")).alias("f_score"),
            rfm_score(pl.col("monetary")).alias("m_score"),
            value_tier(tiers).alias(VALUE_TIER),
            rule_risk(seg).alias("_rule_risk"),
        )
        .with_columns(
            rfm_segment_expr(seg.rfm_segments).alias(RFM_SEGMENT),
            lifecycle_stage(seg).alias(LIFECYCLE_STAGE),
            pl.coalesce(P_CHURN, "_rule_risk").alias("risk"),
            pl.when(pl.col(P_CHURN).is_not_null())
            .then(pl.lit(RISK_FROM_MODEL))
            .otherwise(pl.lit(RISK_FROM_RULES))
            .alias("risk_source"),
        )
        .with_columns(customer_type(seg, with_discount=with_discount))
        .with_columns(strategy(seg, tier_names))
    )
    return scored.with_columns(
        pl.col(RFM_SEGMENT).cast(pl.Enum(rfm_names)),
        pl.col(LIFECYCLE_STAGE).cast(pl.Enum(LIFECYCLE_STAGES)),
        pl.col(CUSTOMER_TYPE).cast(pl.Enum(CUSTOMER_TYPES)),
        pl.col(VALUE_TIER).cast(pl.Enum(tier_names)),
        pl.col(STRATEGY).cast(pl.Enum(STRATEGIES)),
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


def value_tier(tiers: list[tuple[str, float]]) -> pl.Expr:
    """The first tier (highest threshold first) the monetary percentile reaches."""
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


def lifecycle_stage(seg: SegmentSettings) -> pl.Expr:
    """Overdue customers first (whatever their history), then by purchases and tenure."""
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


def rule_risk(seg: SegmentSettings) -> pl.Expr:
    """Risk without a model: how overdue, or an unrecovered failed payment."""
    overdue = (pl.col("overdue_ratio") / seg.lapsed_overdue).clip(0.0, 1.0)
    failed = pl.when(pl.col("_unrecovered") > 0).then(seg.failed_payment_risk).otherwise(0.0)
    return pl.max_horizontal(overdue, failed)


def first_match(rules: list[tuple[pl.Expr, str, pl.Expr]], name: str, reason: str) -> list[pl.Expr]:
    """First-match-wins rules as two columns: the label and the reason it got it."""
    label = pl.coalesce(*[pl.when(c).then(pl.lit(v)) for c, v, _ in rules])
    why = pl.coalesce(*[pl.when(c).then(r) for c, _, r in rules])
    return [label.alias(name), why.alias(reason)]


def num(expr: pl.Expr, digits: int) -> pl.Expr:
    """A number as text with a fixed number of decimals (``pl.format`` prints floats
    at full precision)."""
    if digits == 0:
        return expr.round(0).cast(pl.Int64).cast(pl.String)
    scaled = (expr * 10**digits).round(0).cast(pl.Int64)
    sign = pl.when(scaled < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    whole = (scaled.abs() // 10**digits).cast(pl.String)
    frac = (scaled.abs() % 10**digits).cast(pl.String).str.zfill(digits)
    return pl.concat_str(sign, whole, pl.lit("."), frac)


def customer_type(seg: SegmentSettings, *, with_discount: bool) -> list[pl.Expr]:
    """``customer_type`` and ``type_reason``; ``discount_driven`` only ``with_discount``."""
    purchases = pl.col("purchases_total")
    n_purchases = num(purchases, 0)
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
                    num(share * 100, 0),
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
                num(pl.col("tenure_days"), 0),
            ),
        ),
        (
            rhythm & (cv <= seg.regular_gap_cv_max),
            "need_based",
            pl.format(
                "buys at regular gaps (variation {} <= {}) over {} purchases",
                num(cv, 2),
                cv_max,
                n_purchases,
            ),
        ),
        (
            rhythm,
            "impulse",
            pl.format(
                "buys at irregular gaps (variation {} > {}) over {} purchases",
                num(cv, 2),
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
    return first_match(rules, CUSTOMER_TYPE, "type_reason")


def strategy(seg: SegmentSettings, tiers: list[str]) -> list[pl.Expr]:
    """``strategy`` and ``strategy_reason``; ``tiers``: value tiers, the top one first."""
    tier = pl.col(VALUE_TIER)
    valuable = tier != LOW_TIER
    top = tier == tiers[0]
    stage = pl.col(LIFECYCLE_STAGE)
    risk = pl.col("risk")
    risky = risk >= seg.risk_high
    trend = pl.col("revenue_trend")
    trend_text = pl.when(trend > 0).then(pl.lit("+")).otherwise(pl.lit("")) + num(trend, 2)
    risk_text = pl.format("risk {} ({})", num(risk, 2), pl.col("risk_source"))
    high = pl.lit(f"{seg.risk_high:g}")
    rules: list[tuple[pl.Expr, str, pl.Expr]] = [
        (
            (stage == "lapsed") & valuable,
            "win_back",
            pl.format(
                "lapsed ({}x the usual gap since the last purchase), {} value, {} chance of "
                "buying again in the horizon ({}): win back and learn why",
                num(pl.col("overdue_ratio"), 1),
                tier,
                num(1.0 - risk, 2),
                pl.col("risk_source"),
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
    return first_match(rules, STRATEGY, "strategy_reason")
