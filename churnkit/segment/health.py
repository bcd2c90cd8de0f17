"""Churn health: the standard retention measures (docs/domain.md), month by month.

Shown by ``churnkit segment --health``. Every measure reads the event log up to
``as_of`` only, with the definitions of ``churnkit.labels``:

- **Active at a moment** ``e``: bought within the active window before ``e`` and not
  already ended (a cancel not undone by a later purchase, or a failed payment not
  recovered within the grace period) — ``labels.active_customers``.
- **Monthly customer churn** of calendar month M: customers active at the start of
  M (the end of the month before) who are no longer active at the end of M and do
  not buy within ``labels.grace_period`` days after it (a retry that succeeds just
  after the month end is not churn), over the customers active at the start. The
  period is one calendar month; ``annualised`` is ``1 - (1 - monthly)^12``. A churner
  is **involuntary** when, at the end of M, a failed payment after their last
  purchase is still unrecovered and no cancel of theirs came before it; otherwise
  **voluntary** (a cancel or a lapse). A month whose grace period runs past
  ``as_of`` is marked ``provisional`` and left out of the totals.
- **Revenue** is purchases minus refunds in a calendar month. For the customers
  active at the start of M: ``revenue_start`` is their revenue in M-1,
  ``revenue_churned`` the part of it from those who churned in M (gross revenue
  churn rate = churned / start), and ``net revenue retention`` their revenue in M
  over their revenue in M-1 (expansion included).
- **Failed payments** are grouped into episodes: the failures of a customer between
  two purchases (a dunning run). An episode is ``recovered`` when a purchase follows
  its first failure within ``segments.recovery_days``, ``cancelled`` when the
  customer cancels first within that time, ``lapsed`` when neither happens, and
  ``open`` when that time has not yet passed at ``as_of``. Recovery rate = recovered
  / (recovered + cancelled + lapsed). A purchase at the same moment as a failure
  recovers it (the labels' tie rule).
- **Cohorts**: customers by the month of their first signup event (else their first
  event); the share of each cohort active at the end of its signup month (N = 0)
  and of each later month.
- **By plan** (when the log has a ``plan`` column): the monthly churn of the
  customers on each plan at the start of the month (their latest plan on a
  purchase or plan change).

Queries are Polars expressions, each one pass over the log; the statuses at every
month end come from ``churnkit.segment.month_ends`` in one pass too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

from churnkit.core.config import Settings
from churnkit.core.io import scan_events
from churnkit.core.jsonable import jsonable, jsonable_rows
from churnkit.core.progress import Progress, silent
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, PLAN, REASON, TS, EventKind
from churnkit.core.timeline import end_of_day, events_until, resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.engine import open_engine
from churnkit.engine.base import Engine, LocalEngine
from churnkit.engine.buckets import BucketSet, derive_buckets
from churnkit.engine.parts import collect_frames
from churnkit.population import labels
from churnkit.segment.month_ends import bucket_statuses, month_end_statuses
from churnkit.segment.survival import SurvivalReport, retention_curves

logger = logging.getLogger(__name__)

MONTH = "month"
_PURCHASE = pl.col(KIND) == EventKind.PURCHASE.value
_FAILED = pl.col(KIND) == EventKind.PAYMENT_FAILED.value
_CANCEL = pl.col(KIND) == EventKind.CANCEL.value
_REFUND = pl.col(KIND) == EventKind.REFUND.value
_SIGNUP = pl.col(KIND) == EventKind.SIGNUP.value
_PLAN_CHANGE = pl.col(KIND) == EventKind.PLAN_CHANGE.value
OUTCOMES = ("recovered", "cancelled", "lapsed", "open")


@dataclass(frozen=True)
class HealthReport:
    """Monthly churn, failed-payment outcomes and cohort retention up to ``as_of``.

    ``months``: one row per calendar month (see the module doc for every column).
    ``failed_payments``: per month of an episode's first failure, its outcomes.
    ``failed_by_reason``: the same per reason of the first failure (None without a
    reason column). ``cohorts``: long form, one row per (cohort, months_since).
    ``by_plan``: churn per plan over the complete months (None without plans).
    """

    as_of: datetime
    months: pl.DataFrame
    failed_payments: pl.DataFrame
    failed_by_reason: pl.DataFrame | None
    cohorts: pl.DataFrame
    by_plan: pl.DataFrame | None
    active_window: int
    grace: int
    recovery_days: int
    has_failed_payments: bool
    notes: tuple[str, ...] = field(default_factory=tuple)
    survival: SurvivalReport | None = None

    @property
    def summary(self) -> dict[str, float | int | None]:
        """Pooled over the complete (not provisional) months."""
        done = self.months.filter(~pl.col("provisional"))
        start = int(done["active_start"].sum())
        churned = int(done["churned"].sum())
        rev_start = float(done["revenue_start"].sum())
        monthly = churned / start if start else None
        fp = self.failed_payments
        settled = sum(int(fp[c].sum()) for c in ("recovered", "cancelled", "lapsed"))
        return {
            "complete_months": done.height,
            "monthly_churn_rate": monthly,
            "annualised_churn_rate": None if monthly is None else 1 - (1 - monthly) ** 12,
            "voluntary_rate": int(done["voluntary"].sum()) / start if start else None,
            "involuntary_rate": int(done["involuntary"].sum()) / start if start else None,
            "involuntary_share": int(done["involuntary"].sum()) / churned if churned else None,
            "revenue_churn_rate": (
                float(done["revenue_churned"].sum()) / rev_start if rev_start else None
            ),
            "net_revenue_retention": (
                float(done["revenue_retained"].sum()) / rev_start if rev_start else None
            ),
            "failed_payment_episodes": int(fp["episodes"].sum()),
            "recovery_rate": int(fp["recovered"].sum()) / settled if settled else None,
        }

    def cohort_matrix(self) -> pl.DataFrame:
        """Wide form: ``cohort, customers, m0, m1, ...`` (retention shares)."""
        if self.cohorts.height == 0:
            return pl.DataFrame(schema={"cohort": pl.Date, "customers": pl.Int64, "m0": pl.Float64})
        wide = self.cohorts.pivot(
            on="months_since", index=["cohort", "customers"], values="retention", sort_columns=True
        )
        renamed = {c: f"m{c}" for c in wide.columns if c not in ("cohort", "customers")}
        return wide.rename(renamed).sort("cohort")

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "period": "calendar month",
            "active_window_days": self.active_window,
            "grace_days": self.grace,
            "recovery_days": self.recovery_days,
            "has_failed_payments": self.has_failed_payments,
            "summary": jsonable(self.summary),
            "months": jsonable_rows(self.months),
            "failed_payments": jsonable_rows(self.failed_payments),
            "failed_by_reason": (
                None if self.failed_by_reason is None else jsonable_rows(self.failed_by_reason)
            ),
            "cohorts": [
                {
                    "cohort": row["cohort"].isoformat(),
                    "customers": row["customers"],
                    "retention": jsonable([row[c] for c in row if c.startswith("m")]),
                }
                for row in self.cohort_matrix().to_dicts()
            ],
            "by_plan": None if self.by_plan is None else jsonable_rows(self.by_plan),
            "survival": None if self.survival is None else self.survival.to_json(),
            "notes": list(self.notes),
        }


def churn_health(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    as_of: datetime | None = None,
    segments: pl.DataFrame | None = None,
    buckets: BucketSet | None = None,
    engine: Engine | None = None,
    progress: Progress = silent,
) -> HealthReport:
    """Churn health over the last ``segments.health_months`` complete months to ``as_of``,
    with retention curves (``segment.survival``; by segment with ``segments``).

    With ``buckets`` (the same log split by customer), the per-customer month-end
    statuses run bucket by bucket on ``engine`` (default: this process); the report
    is the same.
    """
    as_of = resolve_as_of(events, as_of)
    lab = settings.labels
    grace = lab.grace_period
    names = set(events.collect_schema().names())
    keep = [CUSTOMER_ID, TS, KIND, AMOUNT, *(c for c in (PLAN, REASON) if c in names)]
    known = events_until(events, as_of).select(keep)
    window = labels.active_window_days(events, as_of, lab)
    first_event = known.select(pl.col(TS).min()).collect(engine="in-memory").item()
    starts = _month_starts(first_event.date(), as_of, settings.segments.health_months)
    notes: list[str] = []
    if not starts:
        notes.append(f"no complete calendar month between the first event and {as_of:%Y-%m-%d}")
    has_failed = labels.has_failed_payments(known)
    if not has_failed:
        notes.append(
            "the data shows no failed payments: all churn here is voluntary (cancels and "
            "lapses), and there are no failed-payment outcomes"
        )
    with_plan = PLAN in names
    # Month ends: the one before the first month, then the end of every month.
    ends = [end_of_day(s - timedelta(days=1)) for s in starts]
    if starts:
        ends.append(end_of_day(_next_month(starts[-1]) - timedelta(days=1)))
    if buckets is None:
        status = month_end_statuses(known, ends, window=window, grace=grace, with_plan=with_plan)
    else:
        status = collect_frames(
            engine or LocalEngine(),
            bucket_statuses,
            buckets,
            as_of,
            ends,
            window,
            grace,
            with_plan,
            progress=progress,
            what="month-end statuses",
        ).sort("i", CUSTOMER_ID)
    monthly, joined = _monthly(known, status, starts, ends, as_of=as_of, grace=grace)
    provisional = monthly.filter(pl.col("provisional")).height
    if provisional:
        notes.append(
            f"{provisional} latest month(s) are provisional: the {grace}-day grace period "
            "after the month end runs past the as-of, so some churners may still return"
        )
    recovery = settings.segments.recovery_days
    first_start = starts[0] if starts else as_of.date()
    episodes = _episodes(known, as_of=as_of, recovery_days=recovery, since=first_start)
    by_reason = _outcome_table(episodes, "reason") if REASON in names else None
    return HealthReport(
        as_of=as_of,
        months=monthly,
        failed_payments=_outcome_table(episodes, MONTH),
        failed_by_reason=by_reason,
        cohorts=_cohorts(known, status, starts, ends),
        by_plan=_by_plan(joined) if with_plan else None,
        active_window=window,
        grace=grace,
        recovery_days=recovery,
        has_failed_payments=has_failed,
        notes=tuple(notes),
        survival=retention_curves(
            events,
            as_of,
            active_window=window,
            grace=grace,
            cohort=settings.segments.survival_cohort,
            channel_column=settings.segments.channel_column,
            segments=segments,
        ),
    )


def workspace_health(
    workspace: Workspace,
    *,
    settings: Settings,
    as_of: datetime,
    segments: pl.DataFrame | None = None,
    progress: Progress = silent,
) -> HealthReport:
    """``churn_health`` of the workspace's log. With ``engine.kind: dask`` (or
    ``engine.buckets`` set) the log is split into buckets and the per-customer part
    runs bucket by bucket on the engine; otherwise in one pass here."""
    events = scan_events(workspace)
    if settings.engine.kind == "local" and settings.engine.buckets is None:
        return churn_health(events, settings=settings, as_of=as_of, segments=segments)
    with open_engine(settings.engine) as engine, workspace.lock():
        split = derive_buckets(workspace, count=settings.engine.buckets, progress=progress)
        return churn_health(
            events,
            settings=settings,
            as_of=as_of,
            segments=segments,
            buckets=split,
            engine=engine,
            progress=progress,
        )


# --- months ----------------------------------------------------------------------------


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _month_starts(first: date, as_of: datetime, count: int) -> list[date]:
    """First days of the last ``count`` calendar months that end at or before ``as_of``
    and start after the month of the first event (which has nobody active at its start)."""
    current = date(as_of.year, as_of.month, 1)
    last = current if end_of_day(_next_month(current) - timedelta(days=1)) <= as_of else None
    if last is None:
        last = date(current.year - (current.month == 1), (current.month - 2) % 12 + 1, 1)
    earliest = _next_month(date(first.year, first.month, 1))
    starts: list[date] = []
    month = last
    while month >= earliest and len(starts) < count:
        starts.append(month)
        month = date(month.year - (month.month == 1), (month.month - 2) % 12 + 1, 1)
    return starts[::-1]


def _monthly_revenue(known: pl.LazyFrame) -> pl.LazyFrame:
    signed = pl.when(_REFUND).then(-pl.col(AMOUNT).abs()).otherwise(pl.col(AMOUNT))
    return (
        known.filter(_PURCHASE | _REFUND)
        .group_by(CUSTOMER_ID, pl.col(TS).dt.truncate("1mo").dt.date().alias(MONTH))
        .agg(signed.sum().alias("_revenue"))
    )


def _monthly(
    known: pl.LazyFrame,
    status: pl.DataFrame,
    starts: list[date],
    ends: list[datetime],
    *,
    as_of: datetime,
    grace: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The monthly table, and the per customer-month rows it was counted from."""
    month_of = pl.DataFrame(
        {
            "i": range(1, len(starts) + 1),
            MONTH: starts,
            "provisional": [e + timedelta(days=grace) > as_of for e in ends[1:]],
        },
        schema={"i": pl.Int32, MONTH: pl.Date, "provisional": pl.Boolean},
    )
    start = status.filter(pl.col("active")).select(
        CUSTOMER_ID,
        (pl.col("i") + 1).cast(pl.Int32).alias("i"),
        *([pl.col(PLAN)] if PLAN in status.columns else []),
    )
    end = status.select(
        CUSTOMER_ID,
        "i",
        pl.col("active").alias("_active_end"),
        pl.col("involuntary").alias("_involuntary"),
        pl.col("back").alias("_back"),
    )
    revenue = _monthly_revenue(known).collect(engine="in-memory")
    prev = revenue.with_columns(pl.col(MONTH).dt.offset_by("1mo")).rename({"_revenue": "_prev"})
    churned = ~pl.col("_active_end").fill_null(False) & ~pl.col("_back").fill_null(False)
    joined = (
        start.join(month_of, on="i", how="inner")
        .join(end, on=[CUSTOMER_ID, "i"], how="left")
        .join(revenue.rename({"_revenue": "_cur"}), on=[CUSTOMER_ID, MONTH], how="left")
        .join(prev, on=[CUSTOMER_ID, MONTH], how="left")
        .with_columns(
            churned.alias("churned"),
            (churned & pl.col("_involuntary").fill_null(False)).alias("involuntary"),
            pl.col("_cur").fill_null(0.0),
            pl.col("_prev").fill_null(0.0),
        )
        .with_columns((pl.col("churned") & ~pl.col("involuntary")).alias("voluntary"))
        # Joins do not keep row order; money is summed in one fixed order, so the
        # same data gives the same cents, bit for bit, however the rows arrived.
        .sort(MONTH, CUSTOMER_ID)
    )
    counted = joined.group_by(MONTH, maintain_order=True).agg(
        pl.len().alias("active_start"),
        pl.col("churned").sum(),
        pl.col("voluntary").sum(),
        pl.col("involuntary").sum(),
        pl.col("_prev").sum().alias("revenue_start"),
        pl.when(pl.col("churned"))
        .then(pl.col("_prev"))
        .otherwise(0.0)
        .sum()
        .alias("revenue_churned"),
        pl.col("_cur").sum().alias("revenue_retained"),
    )
    n = pl.col("active_start")
    rev = pl.col("revenue_start")
    monthly = (
        month_of.join(counted, on=MONTH, how="left")
        .with_columns(
            pl.col("active_start").fill_null(0).cast(pl.Int64),
            *[
                pl.col(c).fill_null(0).cast(pl.Int64)
                for c in ("churned", "voluntary", "involuntary")
            ],
            *[
                pl.col(c).fill_null(0.0)
                for c in ("revenue_start", "revenue_churned", "revenue_retained")
            ],
        )
        .select(
            MONTH,
            "active_start",
            "churned",
            "voluntary",
            "involuntary",
            _share(pl.col("churned"), n).alias("churn_rate"),
            _share(pl.col("voluntary"), n).alias("voluntary_rate"),
            _share(pl.col("involuntary"), n).alias("involuntary_rate"),
            _share(pl.col("involuntary"), pl.col("churned")).alias("involuntary_share"),
            "revenue_start",
            "revenue_churned",
            _share(pl.col("revenue_churned"), rev).alias("revenue_churn_rate"),
            "revenue_retained",
            _share(pl.col("revenue_retained"), rev).alias("net_revenue_retention"),
            "provisional",
        )
        .sort(MONTH)
    )
    return monthly, joined


def _share(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64))


def _by_plan(joined: pl.DataFrame) -> pl.DataFrame:
    done = joined.filter(~pl.col("provisional"))
    return (
        done.with_columns(pl.col(PLAN).fill_null("(none)"))
        .group_by(PLAN)
        .agg(
            pl.len().cast(pl.Int64).alias("customer_months"),
            pl.col("churned").sum().cast(pl.Int64),
            pl.col("voluntary").sum().cast(pl.Int64),
            pl.col("involuntary").sum().cast(pl.Int64),
        )
        .with_columns(
            _share(pl.col("churned"), pl.col("customer_months")).alias("churn_rate"),
            _share(pl.col("involuntary"), pl.col("churned")).alias("involuntary_share"),
        )
        .sort(["customer_months", PLAN], descending=[True, False])
    )


# --- failed payments -------------------------------------------------------------------


def _episodes(
    known: pl.LazyFrame, *, as_of: datetime, recovery_days: int, since: date
) -> pl.DataFrame:
    """One row per dunning episode (a customer's failures between two purchases) whose
    first failure is on or after ``since``: ``month``, ``failures``, ``reason`` (of the
    first failure) and ``outcome``."""
    has_reason = REASON in known.collect_schema().names()
    # At one moment a failure comes first (a same-moment purchase recovers it) and a
    # cancel before a purchase (a same-moment cancel stands, as in the labels).
    order = pl.when(_FAILED).then(0).when(_CANCEL).then(1).otherwise(2)
    billing = (
        known.filter(_PURCHASE | _FAILED | _CANCEL)
        .select(
            CUSTOMER_ID,
            TS,
            KIND,
            order.alias("_order"),
            (pl.col(REASON) if has_reason else pl.lit(None, dtype=pl.String)).alias("reason"),
        )
        .sort([CUSTOMER_ID, TS, "_order"])
        .with_columns(_PURCHASE.cast(pl.Int32).cum_sum().over(CUSTOMER_ID).alias("_ep"))
    )
    first_fail = pl.when(_FAILED).then(pl.col(TS)).min()
    episodes = (
        billing.group_by(CUSTOMER_ID, "_ep")
        .agg(
            first_fail.alias("_first_fail"),
            _FAILED.sum().cast(pl.Int64).alias("failures"),
            pl.col("reason").filter(_FAILED).first().alias("reason"),
            pl.when(_CANCEL & (pl.col(TS) >= first_fail)).then(pl.col(TS)).min().alias("_cancel"),
        )
        .filter(pl.col("_first_fail").is_not_null())
    )
    # The purchase that closes episode k is the one that makes the running count k + 1.
    closing = billing.filter(_PURCHASE).select(
        CUSTOMER_ID, (pl.col("_ep") - 1).alias("_ep"), pl.col(TS).alias("_recovered")
    )
    deadline = pl.col("_first_fail") + timedelta(days=recovery_days)
    outcome = (
        pl.when(pl.col("_cancel") <= deadline)
        .then(pl.lit("cancelled"))
        .when(pl.col("_recovered") <= deadline)
        .then(pl.lit("recovered"))
        .when(deadline > as_of)
        .then(pl.lit("open"))
        .otherwise(pl.lit("lapsed"))
    )
    return (
        episodes.join(closing, on=[CUSTOMER_ID, "_ep"], how="left")
        .filter(pl.col("_first_fail") >= datetime.combine(since, datetime.min.time()))
        .select(
            pl.col("_first_fail").dt.truncate("1mo").dt.date().alias(MONTH),
            "failures",
            pl.col("reason").fill_null("(none)"),
            outcome.alias("outcome"),
            pl.when(pl.col("_recovered") <= deadline)
            .then((pl.col("_recovered") - pl.col("_first_fail")).dt.total_seconds() / 86_400)
            .alias("days_to_recover"),
        )
        .collect(engine="in-memory")
    )


def _outcome_table(episodes: pl.DataFrame, by: str) -> pl.DataFrame:
    counts = [(pl.col("outcome") == o).sum().cast(pl.Int64).alias(o) for o in OUTCOMES]
    settled = pl.col("recovered") + pl.col("cancelled") + pl.col("lapsed")
    return (
        episodes.group_by(by)
        .agg(
            pl.len().cast(pl.Int64).alias("episodes"),
            pl.col("failures").sum().cast(pl.Int64),
            *counts,
            pl.col("days_to_recover").median().alias("median_days_to_recover"),
        )
        .with_columns(_share(pl.col("recovered"), settled).alias("recovery_rate"))
        .sort(by)
    )


# --- cohorts ---------------------------------------------------------------------------


def _cohorts(
    known: pl.LazyFrame, status: pl.DataFrame, starts: list[date], ends: list[datetime]
) -> pl.DataFrame:
    """Long form: ``cohort, customers, months_since, active, retention``."""
    schema = {
        "cohort": pl.Date,
        "customers": pl.Int64,
        "months_since": pl.Int64,
        "active": pl.Int64,
        "retention": pl.Float64,
    }
    if not starts:
        return pl.DataFrame(schema=schema)
    index = pl.DataFrame({"cohort": starts, "_ci": pl.Series(range(1, len(starts) + 1))})
    member = (
        known.group_by(CUSTOMER_ID)
        .agg(
            pl.coalesce(pl.when(_SIGNUP).then(pl.col(TS)).min(), pl.col(TS).min())
            .dt.truncate("1mo")
            .dt.date()
            .alias("cohort")
        )
        .collect(engine="in-memory")
        .join(index, on="cohort", how="inner")
    )
    sizes = member.group_by("cohort", "_ci").agg(pl.len().cast(pl.Int64).alias("customers"))
    last = len(ends) - 1
    grid = sizes.with_columns(
        pl.int_ranges(0, last - pl.col("_ci") + 1).alias("months_since")
    ).explode("months_since")
    active = (
        member.join(status.filter(pl.col("active")), on=CUSTOMER_ID, how="inner")
        .with_columns((pl.col("i").cast(pl.Int64) - pl.col("_ci")).alias("months_since"))
        .filter(pl.col("months_since") >= 0)
        .group_by("cohort", "months_since")
        .agg(pl.len().cast(pl.Int64).alias("active"))
    )
    return (
        grid.join(active, on=["cohort", "months_since"], how="left")
        .with_columns(
            pl.col("months_since").cast(pl.Int64),
            pl.col("active").fill_null(0),
        )
        .with_columns((pl.col("active") / pl.col("customers")).alias("retention"))
        .select(list(schema))
        .sort("cohort", "months_since")
    )
