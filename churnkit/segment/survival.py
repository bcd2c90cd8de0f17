"""Retention curves: how long customers stay, by signup cohort, plan, segment and channel.

Each customer's lifetime runs from their start (the first signup event, else the first
purchase) to their end as the label rules see it at ``as_of``: a cancel not followed by
a purchase (voluntary), a failed payment not recovered within the grace period
(involuntary), or a lapse, no purchase within the active window (voluntary, ending at
the last purchase). Customers still active are censored at ``as_of``.

The survival curve is the Kaplan-Meier product-limit estimate with Greenwood's
variance and log-log ("exponential Greenwood") 95% bands, which stay within 0..1; the
median lifetime's interval is where the bands cross one half. Voluntary and
involuntary ends are competing risks: each kind's cumulative incidence is the
Aalen-Johansen estimate (the overall survival just before each time, times the share
of those at risk who end that way), so the two add up to one minus survival, which
one-minus-Kaplan-Meier per kind would not.

Implemented in numpy rather than with lifelines: the estimators are a few lines each,
and lifelines (with pandas and autograd) takes 3 to 5 seconds to import on this class
of machine, more than a whole ``segment`` run on a small export.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy import stats

from churnkit.core.jsonable import jsonable
from churnkit.core.schema import CUSTOMER_ID, KIND, PLAN, TS, EventKind
from churnkit.core.timeline import events_until
from churnkit.population import labels

CONFIDENCE = 0.95
# Groups shown per dimension (the largest); the rest are left out and counted.
MAX_GROUPS = 8
# Groups smaller than this say too little to draw.
MIN_GROUP = 10
# Days at which the tables and JSON read the curves off.
MILESTONES = (90, 180, 365)
# JSON curves are read off every this many days.
CURVE_STEP_DAYS = 30

_SIGNUP = pl.col(KIND) == EventKind.SIGNUP.value
_PURCHASE = pl.col(KIND) == EventKind.PURCHASE.value
_PLAN_CHANGE = pl.col(KIND) == EventKind.PLAN_CHANGE.value
_US_PER_DAY = 86_400_000_000

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Curve:
    """A Kaplan-Meier curve with its bands and the competing-risk incidences, at the
    distinct lifetimes (days) where something happened."""

    days: npt.NDArray[np.int64]
    survival: Array
    lower: Array
    upper: Array
    voluntary: Array  # cumulative incidence of a voluntary end
    involuntary: Array  # cumulative incidence of an involuntary end

    def at(self, day: float, values: Array | None = None) -> float:
        """The step function's value at ``day`` (1 before the first step, for survival)."""
        series = self.survival if values is None else values
        i = int(np.searchsorted(self.days, day, side="right")) - 1
        if i < 0:
            incidence = values is self.voluntary or values is self.involuntary
            return 0.0 if incidence else 1.0
        return float(series[i])


@dataclass(frozen=True)
class GroupSurvival:
    """One group's customers, ends by kind, median lifetime with its interval (days;
    None when survival never falls to one half within the data) and curve."""

    group: str
    customers: int
    voluntary: int
    involuntary: int
    median: float | None
    median_low: float | None
    median_high: float | None
    curve: Curve

    def to_json(self) -> dict[str, Any]:
        last = int(self.curve.days[-1]) if len(self.curve.days) else 0
        grid = list(range(0, last + 1, CURVE_STEP_DAYS))
        payload: dict[str, Any] = jsonable(
            {
                "group": self.group,
                "customers": self.customers,
                "ended_voluntary": self.voluntary,
                "ended_involuntary": self.involuntary,
                "median_lifetime_days": self.median,
                "median_ci_low": self.median_low,
                "median_ci_high": self.median_high,
                "survival_at": {str(d): self.curve.at(d) for d in MILESTONES if d <= last},
                "curve": [
                    {
                        "day": d,
                        "survival": self.curve.at(d),
                        "lower": self.curve.at(d, self.curve.lower),
                        "upper": self.curve.at(d, self.curve.upper),
                        "voluntary": self.curve.at(d, self.curve.voluntary),
                        "involuntary": self.curve.at(d, self.curve.involuntary),
                    }
                    for d in grid
                ],
            },
            digits=6,
        )
        return payload


Dimension = Literal["overall", "cohort", "plan", "segment", "channel"]


@dataclass(frozen=True)
class SurvivalReport:
    """Retention curves per dimension (``overall`` first), each a list of groups."""

    as_of: datetime
    dimensions: dict[str, tuple[GroupSurvival, ...]]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "confidence": CONFIDENCE,
            "dimensions": {
                name: [g.to_json() for g in groups] for name, groups in self.dimensions.items()
            },
            "notes": list(self.notes),
        }


# --- the estimators ----------------------------------------------------------------------


def kaplan_meier(durations: npt.ArrayLike, kinds: npt.ArrayLike) -> Curve:
    """Kaplan-Meier with Greenwood bands and Aalen-Johansen incidences.

    ``durations`` in days; ``kinds`` per customer: 0 censored, 1 voluntary end,
    2 involuntary end. At tied times, ends come before censoring (the usual convention).
    """
    t = np.asarray(durations, dtype=np.int64)
    k = np.asarray(kinds, dtype=np.int64)
    days, inverse = np.unique(t, return_inverse=True)
    removed = np.bincount(inverse, minlength=len(days))
    vol = np.bincount(inverse, weights=(k == 1), minlength=len(days))
    inv = np.bincount(inverse, weights=(k == 2), minlength=len(days))
    ended = vol + inv
    at_risk = len(t) - np.concatenate([[0], np.cumsum(removed)[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        step = np.where(at_risk > 0, 1.0 - ended / at_risk, 1.0)
        survival: Array = np.cumprod(step).astype(np.float64)
        before = np.concatenate([[1.0], survival[:-1]])
        hazard_vol = np.where(at_risk > 0, vol / at_risk, 0.0)
        hazard_inv = np.where(at_risk > 0, inv / at_risk, 0.0)
        greenwood = np.cumsum(np.where(at_risk > ended, ended / (at_risk * (at_risk - ended)), 0.0))
        z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
        log_s = np.log(survival)
        spread = z * np.sqrt(greenwood) / np.abs(log_s)
        log_log = np.log(-log_s)
        lower = np.exp(-np.exp(log_log + spread))
        upper = np.exp(-np.exp(log_log - spread))
    # Where survival is 1 (nothing ended yet) or 0, the band is the point itself.
    flat = ~np.isfinite(spread)
    lower = np.where(flat, survival, lower)
    upper = np.where(flat, survival, upper)
    keep = ended > 0
    keep[-1] = True  # the curve runs to the last observed lifetime
    return Curve(
        days=days[keep],
        survival=survival[keep],
        lower=lower[keep],
        upper=upper[keep],
        voluntary=np.cumsum(before * hazard_vol)[keep],
        involuntary=np.cumsum(before * hazard_inv)[keep],
    )


def median_lifetime(curve: Curve) -> tuple[float | None, float | None, float | None]:
    """The first day survival falls to one half or below, and the same for the lower
    and upper bands (the interval); None where a curve never gets there."""

    def first(values: Array) -> float | None:
        hit = np.flatnonzero(values <= 0.5)
        return float(curve.days[hit[0]]) if len(hit) else None

    return first(curve.survival), first(curve.lower), first(curve.upper)


# --- lifetimes from the event log ---------------------------------------------------------


def lifetimes(
    events: pl.LazyFrame,
    as_of: datetime,
    *,
    active_window: int,
    grace: int,
    channel_column: str | None,
) -> pl.DataFrame:
    """Per customer who started by ``as_of``: ``start``, ``days`` (lifetime) and
    ``kind`` (0 still active, 1 voluntary end, 2 involuntary end), the plan (latest on
    a purchase or plan change) and the channel (on the first event) when known."""
    known = events_until(events, as_of)
    names = set(known.collect_schema().names())
    aggs = [
        *labels.status_aggs(),
        pl.coalesce(
            pl.when(_SIGNUP).then(pl.col(TS)).min(), pl.when(_PURCHASE).then(pl.col(TS)).min()
        ).alias("start"),
    ]
    if PLAN in names:
        has_plan = (_PURCHASE | _PLAN_CHANGE) & pl.col(PLAN).is_not_null()
        aggs.append(pl.col(PLAN).cast(pl.String).max_by(pl.when(has_plan).then(pl.col(TS))))
    if channel_column and channel_column in names:
        aggs.append(pl.col(channel_column).cast(pl.String).drop_nulls().first().alias("channel"))
    last_purchase, last_cancel = pl.col("_last_purchase"), pl.col("_last_cancel")
    failed = pl.col("_first_unrecovered")
    cancelled = last_cancel.is_not_null() & (
        last_purchase.is_null() | (last_purchase <= last_cancel)
    )
    failed_out = (failed < as_of - timedelta(days=grace)).fill_null(False)
    cancel_first = cancelled & (failed.is_null() | (last_cancel < failed))
    lapsed = (last_purchase <= as_of - timedelta(days=active_window)).fill_null(False)
    kind = (
        pl.when(cancel_first)
        .then(1)
        .when(failed_out)
        .then(2)
        .when(cancelled | lapsed)
        .then(1)
        .otherwise(0)
    )
    end = (
        pl.when(cancel_first)
        .then(last_cancel)
        .when(failed_out)
        .then(failed)
        .when(cancelled)
        .then(last_cancel)
        .when(lapsed)
        .then(last_purchase)
        .otherwise(pl.lit(as_of))
    )
    frame = (
        known.sort(TS)
        .group_by(CUSTOMER_ID)
        .agg(aggs)
        .filter(pl.col("start").is_not_null())
        .with_columns(kind.cast(pl.Int64).alias("kind"), end.alias("_end"))
        .with_columns(
            ((pl.col("_end") - pl.col("start")).dt.total_microseconds() // _US_PER_DAY)
            .clip(0, None)
            .cast(pl.Int64)
            .alias("days")
        )
        .drop("_last_purchase", "_last_cancel", "_first_unrecovered", "_end")
    )
    return frame.collect(engine="in-memory")


def retention_curves(
    events: pl.LazyFrame,
    as_of: datetime,
    *,
    active_window: int,
    grace: int,
    cohort: Literal["month", "quarter"] = "quarter",
    channel_column: str | None = None,
    segments: pl.DataFrame | None = None,
) -> SurvivalReport:
    """Retention curves overall and by signup cohort, plan, segment (``segments``:
    ``customer_id, rfm_segment`` from an earlier segment run) and channel."""
    life = lifetimes(
        events, as_of, active_window=active_window, grace=grace, channel_column=channel_column
    )
    notes: list[str] = []
    start = pl.col("start")
    if cohort == "quarter":
        label = pl.format("{}-Q{}", start.dt.year(), start.dt.quarter())
    else:
        label = start.dt.strftime("%Y-%m")
    life = life.with_columns(label.alias("cohort"))
    dims: dict[str, tuple[GroupSurvival, ...]] = {
        "overall": _groups(life.with_columns(pl.lit("all customers").alias("overall")), "overall")
    }
    dims["cohort"] = _groups(life, "cohort", by_name=True)
    if PLAN in life.columns:
        dims["plan"] = _groups(life, PLAN)
    if segments is not None and {CUSTOMER_ID, "rfm_segment"} <= set(segments.columns):
        tagged = life.join(
            segments.select(CUSTOMER_ID, pl.col("rfm_segment").cast(pl.String).alias("segment")),
            on=CUSTOMER_ID,
            how="inner",
        )
        dims["segment"] = _groups(tagged, "segment")
    if "channel" in life.columns:
        dims["channel"] = _groups(life, "channel")
    elif channel_column:
        notes.append(f"no retention curves by channel: {channel_column!r} is not a column")
    return SurvivalReport(as_of=as_of, dimensions=dims, notes=tuple(notes))


def _groups(life: pl.DataFrame, column: str, *, by_name: bool = False) -> tuple[GroupSurvival, ...]:
    """Per group of ``column`` (the largest ``MAX_GROUPS`` with ``MIN_GROUP``
    customers; cohorts in time order): its survival."""
    sized = (
        life.filter(pl.col(column).is_not_null())
        .group_by(column)
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= MIN_GROUP)
        .sort(["n", column], descending=[True, False])
        .head(MAX_GROUPS)
    )
    names = sized[column].to_list()
    if by_name:
        names = sorted(names)
    out = []
    for name in names:  # a handful of groups; the estimator itself is vectorised
        part = life.filter(pl.col(column) == name)
        curve = kaplan_meier(part["days"].to_numpy(), part["kind"].to_numpy())
        median, low, high = median_lifetime(curve)
        out.append(
            GroupSurvival(
                group=str(name),
                customers=part.height,
                voluntary=int((part["kind"] == 1).sum()),
                involuntary=int((part["kind"] == 2).sum()),
                median=median,
                median_low=low,
                median_high=high,
                curve=curve,
            )
        )
    return tuple(out)
