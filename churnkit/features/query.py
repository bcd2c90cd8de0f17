"""The feature query: aggregations per branch of event kinds, then feature
expressions over the joined frame, built for Polars' streaming engine.

The log is split by kind into branches (purchases and plan changes; failed
payments and complaints; usage; the rest), each grouped by customer once, so every
event is hashed to its customer once (plus the recent usage rows that feed the
usage windows). The branches are independent until the final joins, so they run
side by side.

Within a branch, features come either from conditional aggregations
(``when(cond).then(x).sum()``) or, for purchases and failures, from one list of
packed integers per customer (see ``keys``). No per-customer Python code runs.
Families add to a ``FeatureQuery``; ``assemble`` turns it into one lazy frame.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import polars as pl
import polars.selectors as cs

from churnkit.core.config import FeatureSettings
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, PLAN, QUANTITY, REASON, TS, EventKind
from churnkit.core.timeline import events_until
from churnkit.features import keys
from churnkit.features.keys import (
    AMOUNTS,
    JUDGED_KEYS,
    LAST_PURCHASE,
    PURCHASE_ENTRY,
    PURCHASE_KEYS,
    PURCHASES,
    REVENUE,
    SORTED_KEYS,
)
from churnkit.features.layout import FeatureLayout
from churnkit.features.spec import FeatureKind, FeatureSpec, RiskDirection, Sentence, Unit
from churnkit.population.customer_base import CustomerBaseParams

US_PER_DAY = 86_400_000_000
# The longest usage window (``usage_<event>_90d``).
USAGE_RECENT_DAYS = 90
# Activity months: whether the customer had any event in each of the last three
# 30-day months (read by the network family).
ACTIVITY_MONTHS = 3

# Columns of the joined frame, from every branch.
FIRST_EVENT = "_first_event"
LAST_EVENT = "_last_event"
COHORT = "_cohort"
LAST_USAGE = "_last_u"
ACTIVE_MONTHS = "_active_months"

Stage = Literal["feature", "derived", "late"]

_ts = pl.col(TS)
_kind = pl.col(KIND)


def is_kind(kind: EventKind) -> pl.Expr:
    """Rows of one event kind."""
    return _kind == kind.value


@dataclass
class FeatureQuery:
    """Aggregations per branch, then feature expressions over the joined frame.

    Families add to the lists below through ``add``, ``prepare`` and ``local``;
    the purchase lists every family may read (``keys``) are set up on creation.
    """

    cutoff: datetime
    layout: FeatureLayout
    settings: FeatureSettings
    schema: Mapping[str, pl.DataType]
    relations: pl.LazyFrame | None = None
    active: pl.LazyFrame | None = None
    # BG/NBD parameters fitted on every customer at the cutoff (customer_base family).
    customer_base: CustomerBaseParams | None = None
    # Plan changes ride in the purchase branch (for downgrades) when plans are known.
    with_plan: bool = field(init=False)
    # The log has a usage quantity column.
    quantity: bool = field(init=False)
    windows: list[int] = field(init=False)
    # Whether the branches also record activity months (``ACTIVE_MONTHS``).
    activity: bool = False
    # Per branch: aggregations (and for purchases, row-level columns computed once
    # before them). Branches: purchases (and plan changes), failed payments and
    # complaints (judged against the last purchase), other kinds, usage.
    purchase_rows: list[pl.Expr] = field(default_factory=list)
    purchase_aggs: list[pl.Expr] = field(default_factory=list)
    failure_aggs: list[pl.Expr] = field(default_factory=list)
    other_aggs: list[pl.Expr] = field(default_factory=list)
    usage_aggs: list[pl.Expr] = field(default_factory=list)
    # Windowed usage sums read only the last USAGE_RECENT_DAYS: usage is usually most
    # of the log, and most of it is older than any usage window.
    recent_usage_aggs: list[pl.Expr] = field(default_factory=list)
    # Columns derived from the purchase-branch lists in stages (each reads the ones
    # before), computed before the joins so the lists need not travel through them.
    prepared: list[list[pl.Expr]] = field(default_factory=lambda: [[], [], [], []])
    # Columns derived after the joins, from more than one branch.
    joined: list[pl.Expr] = field(default_factory=list)
    features: list[pl.Expr] = field(default_factory=list)
    derived: list[pl.Expr] = field(default_factory=list)
    # Frames joined in after the features (network ties), then the features on them.
    extensions: list[Callable[[pl.LazyFrame], pl.LazyFrame]] = field(default_factory=list)
    late: list[pl.Expr] = field(default_factory=list)
    specs: dict[str, FeatureSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.with_plan = PLAN in self.layout.columns and bool(self.layout.plan_ranks)
        self.quantity = QUANTITY in self.schema
        self.windows = sorted(set(self.settings.windows))
        self._purchase_lists()

    def _purchase_lists(self) -> None:
        """Each customer's purchase keys and amounts, and the values read from them
        by more than one family."""
        ranks = self.layout.plan_ranks if self.with_plan else ()
        self.purchase_aggs += [
            pl.when(is_kind(EventKind.PURCHASE)).then(_ts).max().alias(LAST_PURCHASE),
            keys.purchase_key(ranks).alias(PURCHASE_KEYS),
            pl.col(AMOUNT).alias(AMOUNTS),
        ]
        self.prepare(
            0,
            pl.col(PURCHASE_KEYS).list.sort().alias(SORTED_KEYS),
            keys.count(PURCHASE_KEYS, PURCHASE_ENTRY).alias(PURCHASES),
            keys.amount_where(PURCHASE_ENTRY).alias(REVENUE),
        )

    def judged_keys(self) -> None:
        """The list of a customer's failed payments and complaints (added once)."""
        if any(e.meta.output_name() == JUDGED_KEYS for e in self.failure_aggs):
            return
        key = keys.judged_key(self.has_column(REASON))
        self.failure_aggs.append(key.alias(JUDGED_KEYS))

    def has_kind(self, kind: EventKind) -> bool:
        return kind.value in self.layout.kinds

    def has_column(self, column: str) -> bool:
        return column in self.layout.columns

    def after(self, days: int) -> pl.Expr:
        """Rows in the last ``days`` days: ``(cutoff - days, cutoff]``."""
        return _ts > self.cutoff - timedelta(days=days)

    def band(self, start: int, end: int) -> pl.Expr:
        """Rows between ``end`` and ``start`` days ago: ``(cutoff - end, cutoff - start]``."""
        return (_ts > self.cutoff - timedelta(days=end)) & (
            _ts <= self.cutoff - timedelta(days=start)
        )

    def days_since(self, column: str) -> pl.Expr:
        return (
            pl.lit(self.cutoff, dtype=pl.Datetime("us")) - pl.col(column)
        ).dt.total_microseconds() / US_PER_DAY

    def prepare(self, stage: int, *exprs: pl.Expr) -> None:
        self.prepared[stage].extend(exprs)

    def local(self, stage: int, expr: pl.Expr, name: str) -> pl.Expr:
        """A purchase-branch value computed before the joins, as a column reference."""
        self.prepared[stage].append(expr.alias(name))
        return pl.col(name)

    def free_name(self, base: str) -> str:
        """``base``, or ``base_2``, ``base_3``... when a feature already has that name."""
        name, n = base, 1
        while name in self.specs:
            n += 1
            name = f"{base}_{n}"
        return name

    def add(
        self,
        expr: pl.Expr,
        name: str,
        description: str,
        sentence: Sentence,
        risk_when: RiskDirection | None = None,
        *,
        kind: FeatureKind = "numeric",
        stage: Stage = "feature",
        unit: Unit | None = None,
    ) -> None:
        """A feature: computed with the others (``feature``), from other features
        (``derived``), or on the frames joined in by ``extend`` (``late``)."""
        target = {"feature": self.features, "derived": self.derived, "late": self.late}
        target[stage].append(expr.alias(name))
        self.specs[name] = FeatureSpec(name, kind, description, sentence, risk_when, unit)

    def extend(self, step: Callable[[pl.LazyFrame], pl.LazyFrame]) -> None:
        """Join more columns to the frame once every feature is computed."""
        self.extensions.append(step)


def trend(recent: pl.Expr, previous: pl.Expr) -> pl.Expr:
    """Symmetric relative change in [-1, 1]: +1 new, -1 stopped, 0 flat or both empty."""
    total = recent + previous
    return pl.when(total > 0).then((recent - previous) / total).otherwise(0.0)


def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """``num / den``, null when ``den`` is not positive."""
    return pl.when(den > 0).then(num / den)


def last_value(value: pl.Expr, present: pl.Expr) -> pl.Expr:
    """The value on the latest row where it is present."""
    return value.max_by(pl.when(present).then(_ts))


def as_float(column: str, dtype: pl.DataType) -> pl.Expr:
    """A source column as numbers: ``" 10% "`` → 10.0; anything unparseable → null."""
    if dtype == pl.String:
        return pl.col(column).str.strip_chars(" %").cast(pl.Float64, strict=False)
    return pl.col(column).cast(pl.Float64, strict=False)


def assemble(q: FeatureQuery, events: pl.LazyFrame) -> pl.LazyFrame:
    """``customer_id`` and the features of ``q``, in the order they were added."""
    frame = _aggregate(q, events)
    frame = frame.with_columns(q.joined).with_columns(q.features).with_columns(q.derived)
    for step in q.extensions:
        frame = step(frame)
    if q.late:
        frame = frame.with_columns(q.late)
    return frame.select(CUSTOMER_ID, *q.specs)


def _aggregate(q: FeatureQuery, events: pl.LazyFrame) -> pl.LazyFrame:
    """One group-by per branch of kinds, joined into one row per customer.

    Branch "p": purchases (and plan changes when plans are known), "f": failed
    payments and complaints, "u": usage (all of it, and the recent part for the
    usage windows), "o": everything else. The branches share nothing until the
    final joins, so they run side by side.
    """
    ev = events_until(events, q.cutoff)
    usage_apart = q.has_kind(EventKind.USAGE)
    judged = bool(q.failure_aggs)
    in_p = is_kind(EventKind.PURCHASE)
    if q.with_plan:
        in_p = in_p | is_kind(EventKind.PLAN_CHANGE)
    judged_kinds = is_kind(EventKind.PAYMENT_FAILED) | is_kind(EventKind.COMPLAINT)
    in_f = judged_kinds if judged else pl.lit(False)
    in_o = ~in_p & ~in_f & ~is_kind(EventKind.USAGE) if usage_apart else ~in_p & ~in_f

    frame = _purchase_branch(q, ev.filter(in_p)).join(
        _other_branch(q, ev.filter(in_o)), on=CUSTOMER_ID, how="full", coalesce=True
    )
    branches = ["p", "o"]
    if judged:
        aggs = [*q.failure_aggs, *_activity(q, "f"), *_span("f")]
        f = ev.filter(in_f).group_by(CUSTOMER_ID).agg(aggs)
        frame = frame.join(f, on=CUSTOMER_ID, how="full", coalesce=True)
        branches.append("f")
    if usage_apart:
        u = _usage_branch(q, events, ev)
        frame = frame.join(u, on=CUSTOMER_ID, how="full", coalesce=True)
        branches.append("u")
    return _across_branches(q, frame, branches)


def _span(branch: str) -> list[pl.Expr]:
    """A branch's first and last event per customer."""
    return [_ts.min().alias(f"_first_{branch}"), _ts.max().alias(f"_last_{branch}")]


def _activity(q: FeatureQuery, branch: str) -> list[pl.Expr]:
    """Per activity month, whether the customer had an event of this branch in it."""
    if not q.activity:
        return []
    months = range(ACTIVITY_MONTHS)
    return [q.band(30 * m, 30 * (m + 1)).any().alias(f"_act{m}_{branch}") for m in months]


def _purchase_branch(q: FeatureQuery, rows: pl.LazyFrame) -> pl.LazyFrame:
    aggs = [*q.purchase_aggs, *_activity(q, "p"), *_span("p")]
    p = rows.with_columns(q.purchase_rows).group_by(CUSTOMER_ID).agg(aggs)
    for stage in q.prepared:
        p = p.with_columns(stage)
    # The lists stay behind: the joins move only the values derived from them.
    return p.select(~cs.by_dtype(pl.List))


def _other_branch(q: FeatureQuery, rows: pl.LazyFrame) -> pl.LazyFrame:
    signup = pl.when(is_kind(EventKind.SIGNUP)).then(_ts).min().alias("_signup")
    aggs = [*q.other_aggs, *_activity(q, "o"), *_span("o"), signup]
    return rows.group_by(CUSTOMER_ID).agg(aggs)


def _usage_branch(q: FeatureQuery, events: pl.LazyFrame, ev: pl.LazyFrame) -> pl.LazyFrame:
    is_usage = is_kind(EventKind.USAGE)
    aggs = [*q.usage_aggs, *_activity(q, "u"), *_span("u")]
    u = ev.filter(is_usage).group_by(CUSTOMER_ID).agg(aggs)
    if not q.recent_usage_aggs:
        return u
    # Filtered by time before the gate, so the scan skips old row groups instead of
    # sharing (and buffering) the full usage scan.
    recent = events_until(events.filter(q.after(USAGE_RECENT_DAYS)), q.cutoff).filter(is_usage)
    return u.join(recent.group_by(CUSTOMER_ID).agg(q.recent_usage_aggs), on=CUSTOMER_ID, how="left")


def _across_branches(q: FeatureQuery, frame: pl.LazyFrame, branches: list[str]) -> pl.LazyFrame:
    """First and last event of any kind, the signup cohort and the activity months."""
    frame = frame.with_columns(
        pl.min_horizontal([f"_first_{b}" for b in branches]).alias(FIRST_EVENT),
        pl.max_horizontal([f"_last_{b}" for b in branches]).alias(LAST_EVENT),
    ).with_columns(pl.coalesce("_signup", FIRST_EVENT).alias(COHORT))
    if not q.activity:
        return frame
    months = [
        pl.any_horizontal([pl.col(f"_act{m}_{b}").fill_null(False) for b in branches]).cast(
            pl.Float64
        )
        for m in range(ACTIVITY_MONTHS)
    ]
    return frame.with_columns(pl.sum_horizontal(months).alias(ACTIVE_MONTHS))
