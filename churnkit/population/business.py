"""Contractual or not: what the event log says about the business, and who is scored.

A *contractual* business (subscriptions) tells you when a customer leaves: a cancel,
a failed payment that is never recovered, or the regular charge that stops coming.
In a *non-contractual* one (a shop) nobody leaves explicitly: every past buyer may
buy again or not, so the customers to score are all who have bought and not ended,
and a lapse (no purchase in the horizon) is the churn.

Evidence of a contract is any cancel, any failed payment, or regular billing: at
least ``labels.billing_share_min`` of the customers with three or more purchase days
have gaps whose coefficient of variation is at most ``labels.billing_cv_max`` and
whose median lies within ``PERIOD_TOLERANCE`` of a billing period (weekly, monthly,
quarterly, yearly). Shop customers buying at random have a coefficient near 1.

This is the first phase of a two-phase computation: ``detect_business`` and
``population_params`` read every customer once (a handful of aggregates) and return
small frozen objects that the per-customer, bucket-local steps take as arguments.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import polars as pl

from churnkit.core.config import LabelSettings
from churnkit.core.schema import CUSTOMER_ID, KIND, TS, EventKind
from churnkit.core.timeline import events_until

logger = logging.getLogger(__name__)

BusinessModel = Literal["contractual", "non_contractual"]
Population = Literal["active", "all"]

CONTRACTUAL: BusinessModel = "contractual"
NON_CONTRACTUAL: BusinessModel = "non_contractual"
# Billing periods in days, and how far a median gap may be from one.
BILLING_PERIODS = {"weekly": 7.0, "monthly": 30.44, "quarterly": 91.31, "yearly": 365.25}
PERIOD_TOLERANCE = 0.15
MIN_GAPS = 2

_US_PER_DAY = 86_400_000_000
PURCHASE = (EventKind.PURCHASE.value,)
# What counts as activity when the log holds no purchase at all (a usage export alone).
USAGE_ACTIVITY = (EventKind.USAGE.value,)


@dataclass(frozen=True)
class BusinessEvidence:
    """What the whole log up to an as-of says: the business model and why, in numbers
    and in one sentence (``evidence``), and the event kinds that count as activity."""

    business_model: BusinessModel
    evidence: str
    cancels: int
    failed_payments: int
    repeat_buyers: int
    regular_share: float
    period: str | None
    activity: tuple[str, ...] = PURCHASE

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["activity"] = list(self.activity)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BusinessEvidence:
        model = data["business_model"]
        if model not in (CONTRACTUAL, NON_CONTRACTUAL):
            raise ValueError(f"business_model {model!r} is neither contractual nor non_contractual")
        return cls(
            business_model=model,
            evidence=str(data["evidence"]),
            cancels=int(data["cancels"]),
            failed_payments=int(data["failed_payments"]),
            repeat_buyers=int(data["repeat_buyers"]),
            regular_share=float(data["regular_share"]),
            period=None if data.get("period") is None else str(data["period"]),
            activity=tuple(str(k) for k in data.get("activity") or PURCHASE),
        )


@dataclass(frozen=True)
class PopulationParams:
    """Who is in the population at one cutoff: the frozen result of the first phase.

    ``population`` is ``active`` (activity within ``active_window`` days, not ended)
    or ``all`` (any activity up to the cutoff, not ended); ``activity`` the event
    kinds that count as activity (purchases, or usage in a log without purchases)."""

    business: BusinessEvidence
    population: Population
    active_window: int

    @property
    def business_model(self) -> BusinessModel:
        return self.business.business_model

    @property
    def activity(self) -> tuple[str, ...]:
        return self.business.activity


def detect_business(
    events: pl.LazyFrame, as_of: datetime, settings: LabelSettings
) -> BusinessEvidence:
    """The business model the events up to ``as_of`` show (see the module docstring)."""
    known = events_until(events, as_of)
    kinds = pl.col(KIND)
    counts = known.select(
        (kinds == EventKind.CANCEL.value).sum().alias("cancels"),
        (kinds == EventKind.PAYMENT_FAILED.value).sum().alias("failed"),
        (kinds == EventKind.PURCHASE.value).sum().alias("purchases"),
    ).collect(engine="streaming")
    cancels, failed, purchases = (int(v or 0) for v in counts.row(0))
    activity = PURCHASE if purchases > 0 else USAGE_ACTIVITY
    if activity == PURCHASE:
        repeat, share, period = _regular_billing(known, activity, settings.billing_cv_max)
    else:
        # Usage rows are aggregates dated by period: their regularity is no billing.
        repeat, share, period = 0, 0.0, None
    regular = repeat > 0 and share >= settings.billing_share_min
    contractual = cancels > 0 or failed > 0 or regular
    facts = [
        _count(cancels, "cancel"),
        _count(failed, "failed payment"),
        f"{share:.0%} of {repeat:,} repeat buyers billed at a regular "
        f"{period or 'billing'} interval",
    ]
    if contractual:
        evidence = "contractual: " + ", ".join(facts[:2]) + " and " + facts[2]
    else:
        evidence = (
            "non-contractual: no cancels, no failed payments and no regular billing ("
            + facts[2]
            + ")"
        )
    if activity != PURCHASE:
        evidence = (
            f"non-contractual: {facts[0]}, {facts[1]} and no purchases; the log holds usage "
            "only, so a customer is active while they use the product and churns when they stop"
        )
        contractual = False
    logger.debug("business model %s", evidence)
    return BusinessEvidence(
        business_model=CONTRACTUAL if contractual else NON_CONTRACTUAL,
        evidence=evidence,
        cancels=cancels,
        failed_payments=failed,
        repeat_buyers=repeat,
        regular_share=round(share, 6),
        period=period,
        activity=activity,
    )


def resolve_population(business: BusinessEvidence, settings: LabelSettings) -> Population:
    """``labels.population``, with ``auto`` decided by the business model: the active
    customers of a contractual business, every past buyer of a non-contractual one;
    the active users of a usage log (there, nobody has bought: "all" would keep every
    user who ever came, long gone or not)."""
    if settings.population != "auto":
        return settings.population
    if business.business_model == CONTRACTUAL or business.activity != PURCHASE:
        return "active"
    return "all"


def _count(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _regular_billing(
    known: pl.LazyFrame, activity: tuple[str, ...], cv_max: float
) -> tuple[int, float, str | None]:
    """Repeat buyers (at least ``MIN_GAPS`` gaps between distinct purchase days), the
    share of them billed regularly, and the most common billing period among those."""
    times = pl.col("_days")
    gaps = times.list.slice(1) - times.list.head(times.list.len() - 1)
    per_customer = (
        known.filter(pl.col(KIND).is_in(list(activity)))
        .group_by(CUSTOMER_ID)
        .agg((pl.col(TS).cast(pl.Int64) // _US_PER_DAY).unique().sort().alias("_days"))
        .filter(times.list.len() > MIN_GAPS)
        .select(
            gaps.list.median().alias("median"),
            gaps.list.mean().alias("mean"),
            gaps.list.std().alias("std"),
        )
        .collect(engine="streaming")
    )
    repeat = per_customer.height
    if repeat == 0:
        return 0, 0.0, None
    period = pl.lit(None, dtype=pl.String)
    for name, days in reversed(BILLING_PERIODS.items()):
        near = (pl.col("median") - days).abs() <= PERIOD_TOLERANCE * days
        period = pl.when(near).then(pl.lit(name)).otherwise(period)
    judged = per_customer.with_columns(period.alias("period")).with_columns(
        ((pl.col("std") / pl.col("mean") <= cv_max) & pl.col("period").is_not_null()).alias(
            "regular"
        )
    )
    regular = judged.filter(pl.col("regular"))
    share = regular.height / repeat
    common = regular["period"].mode().sort().to_list()
    return repeat, share if math.isfinite(share) else 0.0, common[0] if common else None
