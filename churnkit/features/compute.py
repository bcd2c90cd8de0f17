"""The per-customer feature frame at a cutoff, computed only from events up to it.

One row per customer seen at or before the cutoff, built for Polars' streaming
engine and for speed. The log is split by kind into branches (purchases and plan
changes; failed payments and complaints; usage; the rest), each grouped by
customer once, so every event is hashed to its customer once (plus the recent
usage rows that feed the usage windows). The branches are independent until the
final joins, so they run side by side.

Within a branch, features come either from conditional aggregations
(``when(cond).then(x).sum()``) or, for purchases and failures, from one list of
packed integers per customer: counts, sums, windows, gaps and sequences (price
increases, downgrades) are then vectorised list operations, far cheaper than one
grouped aggregation each, and the log is never sorted as a whole. No
per-customer Python code runs.

Which features exist depends on what the data holds (a ``FeatureLayout``): a
feature that needs a column the data lacks is absent from both the frame and the
specs. Training derives the layout once and passes it to every snapshot, and the
model keeps it, so training and scoring frames have the same columns.
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl
import polars.selectors as cs

from churnkit.core.config import FeatureSettings, LabelSettings
from churnkit.core.errors import ConfigError
from churnkit.core.schema import (
    AMOUNT,
    CARD_EXPIRY,
    CUSTOMER_ID,
    EVENT,
    KIND,
    PLAN,
    QUANTITY,
    REASON,
    RELATED_CUSTOMER_ID,
    SINCE,
    TS,
    EventKind,
    require_columns,
)
from churnkit.core.timeline import events_until, naive_utc
from churnkit.population import labels

logger = logging.getLogger(__name__)

FeatureKind = Literal["numeric", "categorical"]
RiskDirection = Literal["high", "low"]

# Optional canonical columns whose presence switches feature families on (a
# missing usage quantity counts one use, so quantity switches nothing).
OPTIONAL_COLUMNS = (PLAN, REASON, EVENT, CARD_EXPIRY)

_US_PER_DAY = 86_400_000_000
_kind = pl.col(KIND)
_is_purchase = _kind == EventKind.PURCHASE.value
_is_failed = _kind == EventKind.PAYMENT_FAILED.value
_is_usage = _kind == EventKind.USAGE.value
_is_plan_change = _kind == EventKind.PLAN_CHANGE.value
_is_refund = _kind == EventKind.REFUND.value
_is_complaint = _kind == EventKind.COMPLAINT.value
_is_cancel = _kind == EventKind.CANCEL.value
_is_signup = _kind == EventKind.SIGNUP.value
_ts = pl.col(TS)

# Stands for "no purchase yet" when counting events after the last purchase (eight
# times it, subtracted from a failure key, still fits in 64 bits).
_NO_PURCHASE = -(2**59)

# The longest usage window (``usage_<event>_90d``).
USAGE_RECENT_DAYS = 90

# Own stickiness: half tenure (saturating at a year), half recent activity.
STICKINESS_TENURE_DAYS = 365
_ACTIVITY_MONTHS = 3


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature means and how to say it to a retention manager.

    ``sentence`` is a ``str.format`` template whose placeholders name columns of the
    same frame; clauses are separated by ``"; "`` so that a clause whose value is
    missing can be dropped (see ``render``). ``risk_when`` says which direction
    raises churn risk ("high": higher values are riskier), for sanity checks.
    """

    name: str
    kind: FeatureKind
    description: str
    sentence: str
    risk_when: RiskDirection | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns the sentence reads."""
        names = (f for _, f, _, _ in string.Formatter().parse(self.sentence) if f)
        return tuple(dict.fromkeys(names))

    def render(self, values: Mapping[str, Any]) -> str | None:
        """The sentence with a customer's values; clauses with a missing value are
        dropped, and ``None`` is returned when nothing is left to say."""
        said = []
        for clause in self.sentence.split("; "):
            needed = [f for _, f, _, _ in string.Formatter().parse(clause) if f]
            if any(_missing(values.get(f)) for f in needed):
                continue
            said.append(clause.format_map(values))
        return "; ".join(said) or None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class FeatureLayout:
    """What the data offers, decided from events up to a cutoff.

    Fixing it for every snapshot of a training run (and for scoring) keeps the
    feature columns identical across frames. ``plan_ranks`` orders plans by their
    average purchase amount (1 = cheapest) to tell downgrades from upgrades.
    """

    kinds: tuple[str, ...]
    columns: tuple[str, ...]
    usage_events: tuple[str, ...] = ()
    plan_ranks: tuple[tuple[str, int], ...] = ()
    extra_numeric: tuple[str, ...] = ()
    extra_categorical: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the model card."""
        return {
            "kinds": list(self.kinds),
            "columns": list(self.columns),
            "usage_events": list(self.usage_events),
            "plan_ranks": dict(self.plan_ranks),
            "extra_numeric": list(self.extra_numeric),
            "extra_categorical": list(self.extra_categorical),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLayout:
        return cls(
            kinds=tuple(data["kinds"]),
            columns=tuple(data["columns"]),
            usage_events=tuple(data.get("usage_events", ())),
            plan_ranks=tuple((str(p), int(r)) for p, r in dict(data.get("plan_ranks", {})).items()),
            extra_numeric=tuple(data.get("extra_numeric", ())),
            extra_categorical=tuple(data.get("extra_categorical", ())),
        )


@dataclass(frozen=True)
class FeatureSet:
    """``frame``: ``customer_id`` plus one column per feature (categorical ones as
    strings); ``specs``: one ``FeatureSpec`` per feature column, in column order."""

    frame: pl.LazyFrame
    specs: dict[str, FeatureSpec]
    layout: FeatureLayout

    @property
    def numeric(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [n for n, s in self.specs.items() if s.kind == "categorical"]


def slug(name: str) -> str:
    """A source name as a column-name fragment: ``"Report Run"`` → ``report_run``."""
    return re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "x"


def feature_layout(
    events: pl.LazyFrame, cutoff: datetime, settings: FeatureSettings
) -> FeatureLayout:
    """Inspect the events up to ``cutoff``: kinds present, optional columns that hold
    any value, the most frequent usage events and the plans' price ranks.

    ``plan`` counts as present when purchases carry one (plans are ranked by their
    average purchase amount), ``event`` when usage rows name one.
    """
    ev = events_until(events, cutoff)
    names = set(ev.collect_schema().names())
    extras = [*settings.extra_numeric, *settings.extra_categorical]
    for col in extras:
        if col not in names:
            logger.warning("configured extra column %r is not in the data; skipped", col)
    candidates = [c for c in (REASON, CARD_EXPIRY, *extras) if c in names]
    presence = [pl.col(c).is_not_null().any().alias(c) for c in candidates]
    queries = [ev.select(_kind.unique().cast(pl.String).implode().alias("kind"), *presence)]
    with_events = EVENT in names and settings.usage_top_events > 0
    if with_events:
        queries.append(
            ev.filter(_is_usage & pl.col(EVENT).is_not_null())
            .group_by(EVENT)
            .agg(pl.len().alias("n"))
            .sort(["n", EVENT], descending=[True, False])
            .head(settings.usage_top_events)
        )
    if PLAN in names:
        queries.append(
            ev.filter(_is_purchase & pl.col(PLAN).is_not_null())
            .group_by(PLAN)
            .agg(pl.col(AMOUNT).mean().alias("price"))
            .sort(["price", PLAN])
        )
    first, *rest = pl.collect_all(queries, engine="streaming")
    kind_seen = set(first["kind"].explode().drop_nulls().to_list())
    kinds = tuple(k.value for k in EventKind if k.value in kind_seen)
    filled = {c for c in candidates if first[c].item()}
    usage_events = tuple(rest.pop(0)[EVENT].to_list()) if with_events else ()
    if EventKind.USAGE.value not in kinds:
        usage_events = ()
    plans = rest.pop(0)[PLAN].to_list() if PLAN in names else []
    filled |= {PLAN} if plans else set()
    filled |= {EVENT} if usage_events else set()
    return FeatureLayout(
        kinds=kinds,
        columns=tuple(c for c in OPTIONAL_COLUMNS if c in filled),
        usage_events=usage_events,
        plan_ranks=tuple((p, i + 1) for i, p in enumerate(plans)),
        extra_numeric=tuple(c for c in dict.fromkeys(settings.extra_numeric) if c in filled),
        extra_categorical=tuple(
            c for c in dict.fromkeys(settings.extra_categorical) if c in filled
        ),
    )


# --- the query builder ------------------------------------------------------------


@dataclass
class _Query:
    """Aggregations per branch, then feature expressions over the joined frame."""

    cutoff: datetime
    layout: FeatureLayout
    # Plan changes ride in the purchase branch (for downgrades) when plans are known.
    with_plan: bool = False
    # The log has a usage quantity column.
    quantity: bool = False
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
    specs: dict[str, FeatureSpec] = field(default_factory=dict)

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
        ).dt.total_microseconds() / _US_PER_DAY

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
        sentence: str,
        risk_when: RiskDirection | None = None,
        *,
        kind: FeatureKind = "numeric",
        derived: bool = False,
    ) -> None:
        (self.derived if derived else self.features).append(expr.alias(name))
        self.specs[name] = FeatureSpec(name, kind, description, sentence, risk_when)


def _trend(recent: pl.Expr, previous: pl.Expr) -> pl.Expr:
    """Symmetric relative change in [-1, 1]: +1 new, -1 stopped, 0 flat or both empty."""
    total = recent + previous
    return pl.when(total > 0).then((recent - previous) / total).otherwise(0.0)


def _ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den)


def _last_value(value: pl.Expr, present: pl.Expr) -> pl.Expr:
    """The value on the latest row where it is present."""
    return value.max_by(pl.when(present).then(_ts))


def _as_float(column: str, dtype: pl.DataType) -> pl.Expr:
    """A source column as numbers: ``" 10% "`` → 10.0; anything unparseable → null."""
    if dtype == pl.String:
        return pl.col(column).str.strip_chars(" %").cast(pl.Float64, strict=False)
    return pl.col(column).cast(pl.Float64, strict=False)


# --- per-customer lists --------------------------------------------------------------
#
# Aggregating a list of packed integers once per customer, then deriving counts,
# sums, windows and sequences with list operations, costs a fraction of one grouped
# aggregation per feature. Two packings:
#
# purchase key (purchases and plan changes): seconds since 1900, is-purchase, plan
#   rank (0: unknown), from high to low bits. Sorting orders a customer's rows by
#   time, a plan change before a purchase on the new plan at the same second.
#   Windows are therefore resolved to the second (exact for end-of-day cutoffs).
# judged key (failed payments and complaints): microseconds since 1970, a reason
#   code (0 other, 1 expired card, 2 insufficient funds), is-complaint.
_RANK_BITS = 20
_PURCHASE_BIT = 1 << _RANK_BITS
_SECOND_UNIT = 1 << (_RANK_BITS + 1)
_EPOCH_1900 = datetime(1900, 1, 1)
_EPOCH_1970 = datetime(1970, 1, 1)
_JUDGED_UNIT = 8

_e = pl.element()
_purchase_entry = (_e // _PURCHASE_BIT) % 2 == 1
_rank_entry = _e % _PURCHASE_BIT
_failure_entry = _e % 2 == 0
_complaint_entry = _e % 2 == 1
_reason_entry = (_e // 2) % 4


def _purchase_key(plan_ranks: Sequence[tuple[str, int]]) -> pl.Expr:
    ranks = {plan: rank for plan, rank in plan_ranks if rank < _PURCHASE_BIT}
    rank: pl.Expr = pl.lit(0, dtype=pl.Int64)
    if ranks:
        rank = pl.col(PLAN).replace_strict(ranks, default=0, return_dtype=pl.Int64).fill_null(0)
    seconds = (_ts - pl.lit(_EPOCH_1900)).dt.total_seconds()
    return seconds * _SECOND_UNIT + _is_purchase.cast(pl.Int64) * _PURCHASE_BIT + rank


def _purchase_key_after(t: datetime) -> int:
    """The smallest purchase key of an event after ``t`` (to the second)."""
    return ((t - _EPOCH_1900) // timedelta(seconds=1) + 1) * _SECOND_UNIT


def _judged_key_after(t: datetime) -> int:
    """The smallest judged key of an event after ``t``."""
    return ((t - _EPOCH_1970) // timedelta(microseconds=1) + 1) * _JUDGED_UNIT


def _count(lst: str, cond: pl.Expr) -> pl.Expr:
    return pl.col(lst).list.eval(cond).list.sum().fill_null(0).cast(pl.Float64)


def _amount_where(cond: pl.Expr) -> pl.Expr:
    """Sum of ``_s_amount`` over the purchase-key entries meeting ``cond``."""
    mask = pl.col("_s_key").list.eval(cond.cast(pl.Float64))
    return (pl.col("_s_amount") * mask).list.sum().fill_null(0.0)


def _recency_family(q: _Query, windows: list[int]) -> None:
    q.purchase_aggs += [
        pl.when(_is_purchase).then(_ts).max().alias("_p_last"),
        _purchase_key(q.layout.plan_ranks if q.with_plan else ()).alias("_s_key"),
        pl.col(AMOUNT).alias("_s_amount"),
    ]
    q.prepare(
        0,
        *[
            pl.col("_s_key").list.sort().alias("_seq_key"),
            _count("_s_key", _purchase_entry).alias("_p_n"),
            _amount_where(_purchase_entry).alias("_p_rev"),
        ],
    )
    q.add(
        q.days_since("_p_last"),
        "recency_days",
        "days since the last purchase",
        "no purchase for {recency_days:.0f} days; usual gap {gap_median_days:.0f} days",
        "high",
    )
    q.add(
        q.days_since("_last_event"),
        "days_since_last_event",
        "days since the customer's last event of any kind",
        "no activity of any kind for {days_since_last_event:.0f} days",
        "high",
    )
    q.add(
        q.days_since("_first_event"),
        "tenure_days",
        "days since the customer's first event",
        "a customer for {tenure_days:.0f} days",
        "low",
    )
    q.add(
        (pl.col("_cohort").dt.year() * 100 + pl.col("_cohort").dt.month()).cast(pl.Float64),
        "signup_cohort",
        "month of signup as YYYYMM (first signup event, else first event)",
        "signed up in cohort {signup_cohort:.0f}",
    )
    q.add(
        pl.col("_p_n").fill_null(0.0),
        "purchases_total",
        "purchases up to the cutoff",
        "{purchases_total:.0f} purchases in total",
        "low",
    )
    q.add(
        pl.col("_p_rev").fill_null(0.0),
        "revenue_total",
        "revenue from purchases up to the cutoff",
        "{revenue_total:,.2f} spent in total",
        "low",
    )
    q.add(
        _ratio(pl.col("_p_rev"), pl.col("_p_n")),
        "avg_purchase_amount",
        "average purchase amount",
        "average purchase {avg_purchase_amount:,.2f}",
    )
    for w in windows:
        start, mid = (_purchase_key_after(q.cutoff - timedelta(days=d)) for d in (2 * w, w))
        recent = _purchase_entry & (_e >= mid)
        before = _purchase_entry & (_e >= start) & (_e < mid)
        values = {
            "purchases": (_count("_s_key", recent), _count("_s_key", before), ".0f"),
            "revenue": (_amount_where(recent), _amount_where(before), ",.2f"),
        }
        for what, (cur, prev, fmt) in values.items():
            said = f"{{{what}_{w}d:{fmt}}} {what} in the last {w} days"
            vs = f"{said} vs {{{what}_prev_{w}d:{fmt}}} in the {w} days before"
            q.prepare(0, *[cur.alias(f"_{what}_{w}"), prev.alias(f"_{what}_prev_{w}")])
            c, p = pl.col(f"_{what}_{w}").fill_null(0.0), pl.col(f"_{what}_prev_{w}").fill_null(0.0)
            q.add(c, f"{what}_{w}d", f"{what} in the last {w} days", said, "low")
            q.add(p, f"{what}_prev_{w}d", f"{what} in the {w} days before the last {w}", vs)
            q.add(
                _trend(c, p),
                f"{what}_trend_{w}d",
                f"change in {what}, last {w} days vs the {w} before (-1 stopped, +1 new)",
                vs,
                "low",
            )


def _gap_family(q: _Query) -> None:
    """Gaps between distinct purchase times (line items of one order share a time)."""
    q.prepare(
        1, pl.col("_seq_key").list.eval(_e.filter(_purchase_entry) // _SECOND_UNIT).alias("_times")
    )
    later, earlier = _pairs("_times")
    # Zero gaps are line items of one order.
    q.prepare(2, ((later - earlier).list.eval(_e.filter(_e > 0)) / 86_400).alias("_gaps"))
    gaps = pl.col("_gaps")
    q.add(
        q.local(3, gaps.list.median(), "_gap_median"),
        "gap_median_days",
        "median days between purchases (null with a single purchase)",
        "usual gap between purchases {gap_median_days:.0f} days",
    )
    q.add(
        q.local(3, gaps.list.mean(), "_gap_mean"),
        "gap_mean_days",
        "mean days between purchases (null with a single purchase)",
        "average gap between purchases {gap_mean_days:.0f} days",
    )
    q.add(
        q.local(3, gaps.list.std(), "_gap_std"),
        "gap_std_days",
        "standard deviation of days between purchases",
        "purchase gaps vary by {gap_std_days:.0f} days",
    )
    q.add(
        q.local(3, gaps.list.last(), "_gap_last"),
        "gap_last_days",
        "days between the last two purchases",
        "last gap between purchases {gap_last_days:.0f} days; usual {gap_median_days:.0f} days",
        "high",
    )
    q.add(
        _ratio(pl.col("gap_std_days"), pl.col("gap_mean_days")),
        "gap_cv",
        "irregularity of purchase timing (std / mean of gaps)",
        "irregular buying (gap variation {gap_cv:.1f}× the mean)",
        derived=True,
    )
    q.add(
        _ratio(pl.col("recency_days"), pl.col("gap_median_days")),
        "overdue_ratio",
        "days since the last purchase over the usual gap (null with a single purchase)",
        "{overdue_ratio:.1f}× the usual gap since the last purchase; "
        "no purchase for {recency_days:.0f} days; usual gap {gap_median_days:.0f} days",
        "high",
        derived=True,
    )


def _judged_key(q: _Query) -> None:
    """The list of a customer's failed payments and complaints (added once)."""
    if any(e.meta.output_name() == "_fc_key" for e in q.failure_aggs):
        return
    reason = pl.lit(0)
    if q.has_column(REASON):
        text = pl.col(REASON)
        reason = (
            pl.when(text.str.contains("(?i)expir"))
            .then(1)
            .when(text.str.contains("(?i)insufficient|fund"))
            .then(2)
            .otherwise(0)
        )
    code = pl.when(_is_failed).then(reason.fill_null(0)).otherwise(0).cast(pl.Int64)
    key = _ts.cast(pl.Int64) * _JUDGED_UNIT + code * 2 + _is_complaint.cast(pl.Int64)
    q.failure_aggs.append(key.alias("_fc_key"))


def _after_last_purchase(*, complaints: bool) -> pl.Expr:
    """Failed payments after the last purchase (a purchase at or after a failure
    recovers it), or complaints at or after it (unresolved); all of them when the
    customer never bought. Counted on the list, so this branch needs no join to the
    purchase branch and both run side by side."""
    last = pl.col("_p_last").cast(pl.Int64).fill_null(_NO_PURCHASE)
    # An entry minus 8·last is 8·(time - last) + low bits.
    counts = (_complaint_entry & (_e >= 0)) if complaints else (_failure_entry & (_e >= 8))
    shifted = pl.col("_fc_key") - last * _JUDGED_UNIT
    return shifted.list.eval(counts).list.sum().fill_null(0).cast(pl.Float64)


def _failure_family(q: _Query, windows: list[int]) -> None:
    _judged_key(q)
    last_us = pl.col("_fc_key").list.eval(_e.filter(_failure_entry) // _JUDGED_UNIT).list.max()
    cutoff_us = (q.cutoff - _EPOCH_1970) // timedelta(microseconds=1)
    q.joined.extend(
        [
            _count("_fc_key", _failure_entry).alias("_f_n"),
            _after_last_purchase(complaints=False).alias("_f_open"),
            ((cutoff_us - last_us) / _US_PER_DAY).alias("_f_days"),
        ],
    )
    for w in windows:
        after = _judged_key_after(q.cutoff - timedelta(days=w))
        q.add(
            _count("_fc_key", _failure_entry & (_e >= after)),
            f"failed_payments_{w}d",
            f"failed payments in the last {w} days",
            f"{{failed_payments_{w}d:.0f}} failed payments in the last {w} days",
            "high",
        )
    q.add(
        pl.col("_f_n").fill_null(0.0),
        "failed_payments_total",
        "failed payments up to the cutoff",
        "{failed_payments_total:.0f} failed payments in total",
        "high",
    )
    q.add(
        pl.col("_f_open").fill_null(0.0),
        "failed_payments_unrecovered",
        "failed payments since the last successful purchase",
        "{failed_payments_unrecovered:.0f} failed payments not recovered since the last purchase",
        "high",
    )
    q.add(
        pl.col("_f_days"),
        "days_since_last_failure",
        "days since the last failed payment (null if none)",
        "last failed payment {days_since_last_failure:.0f} days ago",
        "low",
    )
    q.add(
        _ratio(pl.col("_f_n") - pl.col("_f_open"), pl.col("_f_n")),
        "failed_recovered_share",
        "share of failed payments later recovered by a purchase",
        "{failed_recovered_share:.0%} of failed payments were recovered",
        "low",
    )
    if q.has_column(REASON):
        for name, code, text in (
            ("card_expired", 1, "an expired card"),
            ("insufficient_funds", 2, "insufficient funds"),
            ("other", 0, "other reasons"),
        ):
            q.add(
                _count("_fc_key", _failure_entry & (_reason_entry == code)),
                f"failed_{name}",
                f"failed payments due to {text}",
                f"{{failed_{name}:.0f}} failed payments due to {text}",
                "high",
            )


def _service_family(q: _Query) -> None:
    """Refunds, complaints (unresolved: no purchase after them) and past cancels."""
    if q.has_kind(EventKind.REFUND):
        q.other_aggs += [
            _is_refund.sum().alias("_r_n"),
            pl.when(_is_refund).then(pl.col(AMOUNT).abs()).otherwise(0.0).sum().alias("_r_amt"),
        ]
        q.add(
            pl.col("_r_n").fill_null(0).cast(pl.Float64),
            "refunds_total",
            "refunds up to the cutoff",
            "{refunds_total:.0f} refunds",
            "high",
        )
        q.add(
            pl.col("_r_amt").fill_null(0.0),
            "refund_amount_total",
            "amount refunded up to the cutoff",
            "{refund_amount_total:,.2f} refunded",
            "high",
        )
    if q.has_kind(EventKind.COMPLAINT):
        _judged_key(q)
        after = _judged_key_after(q.cutoff - timedelta(days=90))
        q.add(
            _count("_fc_key", _complaint_entry),
            "complaints_total",
            "complaints up to the cutoff",
            "{complaints_total:.0f} complaints",
            "high",
        )
        q.add(
            _count("_fc_key", _complaint_entry & (_e >= after)),
            "complaints_90d",
            "complaints in the last 90 days",
            "{complaints_90d:.0f} complaints in the last 90 days",
            "high",
        )
        q.add(
            _after_last_purchase(complaints=True),
            "complaints_unresolved",
            "complaints not followed by a purchase",
            "{complaints_unresolved:.0f} complaints not followed by a purchase",
            "high",
        )
    if q.has_kind(EventKind.CANCEL):
        q.other_aggs.append(_is_cancel.sum().alias("_x_n"))
        q.add(
            pl.col("_x_n").fill_null(0).cast(pl.Float64),
            "cancels_total",
            "cancellations up to the cutoff (later undone by a purchase or not)",
            "{cancels_total:.0f} past cancellations",
            "high",
        )


def _usage_family(q: _Query) -> None:
    """Usage quantities (a missing quantity counts one) for the top usage events."""
    qty = pl.col(QUANTITY).fill_null(1.0) if q.quantity else pl.lit(1.0)
    q.add(
        q.days_since("_last_u"),
        "days_since_last_usage",
        "days since the last product usage event",
        "no product use for {days_since_last_usage:.0f} days",
        "high",
    )
    taken: set[str] = set()
    for i, event in enumerate(q.layout.usage_events):
        base = f"usage_{slug(event)}"
        while base in taken:
            base = f"{base}_{i}"
        taken.add(base)
        is_event = pl.col(EVENT) == event
        q.recent_usage_aggs += [
            pl.when(is_event & q.after(30)).then(qty).otherwise(0.0).sum().alias(f"_u{i}_30"),
            pl.when(is_event & q.band(30, 60)).then(qty).otherwise(0.0).sum().alias(f"_u{i}_p30"),
            pl.when(is_event).then(qty).otherwise(0.0).sum().alias(f"_u{i}_90"),
        ]
        q.usage_aggs.append(pl.when(is_event).then(_ts).max().alias(f"_u{i}_last"))
        cur = pl.col(f"_u{i}_30").fill_null(0.0)
        prev = pl.col(f"_u{i}_p30").fill_null(0.0)
        vs = (
            f"{{{base}_30d:.0f}} × {event} in the last 30 days vs "
            f"{{{base}_prev_30d:.0f}} in the 30 days before"
        )
        q.add(cur, f"{base}_30d", f"{event} (usage) in the last 30 days", vs, "low")
        q.add(prev, f"{base}_prev_30d", f"{event} (usage) 30 to 60 days ago", vs)
        q.add(
            pl.col(f"_u{i}_90").fill_null(0.0),
            f"{base}_90d",
            f"{event} (usage) in the last 90 days",
            f"{{{base}_90d:.0f}} × {event} in the last 90 days",
            "low",
        )
        q.add(
            _trend(cur, prev),
            f"{base}_trend",
            f"change in {event} usage, last 30 days vs the 30 before (-1 stopped, +1 new)",
            vs,
            "low",
        )
        q.add(
            q.days_since(f"_u{i}_last"),
            f"{base}_days_since",
            f"days since the last {event} (usage)",
            f"no {event} for {{{base}_days_since:.0f}} days",
            "high",
        )


def _pairs(column: str) -> tuple[pl.Expr, pl.Expr]:
    """Each element of a time-ordered list and the one before it, as two aligned
    lists (slicing is vectorised; ``shift`` inside ``list.eval`` runs list by list)."""
    values = pl.col(column)
    return values.list.slice(1), values.list.head(values.list.len() - 1)


def _mask(values: pl.Expr, cond: pl.Expr) -> pl.Expr:
    """1.0 where ``cond`` holds on an element, else 0.0 (null stays null)."""
    return values.list.eval(cond.cast(pl.Float64))


def _plan_family(q: _Query) -> None:
    """Current plan, plan changes, downgrades and price increases on the same plan,
    from each customer's purchase-key and amount lists put in time order."""
    names = {rank: plan for plan, rank in q.layout.plan_ranks if rank < _PURCHASE_BIT}
    latest = pl.col("_s_key").list.eval(_e.filter(_rank_entry > 0)).list.max() % _PURCHASE_BIT
    q.add(
        q.local(0, latest.replace_strict(names, default=None, return_dtype=pl.String), "_plan"),
        "plan",
        "the customer's current plan (latest plan seen)",
        "on plan {plan}",
        kind="categorical",
    )
    order = pl.col("_s_key").list.eval(_e.arg_sort())
    q.prepare(0, pl.col("_s_amount").list.gather(order).alias("_seq_amount"))
    key, key_before = _pairs("_seq_key")
    amount, amount_before = _pairs("_seq_amount")
    q.prepare(
        1,
        _mask(key, _purchase_entry).alias("_is_p"),
        _mask(key_before, _purchase_entry).alias("_was_p"),
        (key.list.eval(_rank_entry) - key_before.list.eval(_rank_entry)).alias("_rank_step"),
        (_mask(key, _rank_entry > 0) * _mask(key_before, _rank_entry > 0)).alias("_known"),
        (amount - amount_before).alias("_amount_step"),
        _mask(amount_before, _e > 0).alias("_paid_before"),
        ((amount / amount_before - 1.0) * 100.0).alias("_amount_pct"),
    )
    step = pl.col("_rank_step")
    change = _mask(key, ~_purchase_entry) * pl.col("_known")
    # Consecutive purchases on one known plan where the amount went up.
    q.prepare(
        2,
        (
            pl.col("_is_p")
            * pl.col("_was_p")
            * pl.col("_known")
            * _mask(step, _e == 0)
            * pl.col("_paid_before")
            * _mask(pl.col("_amount_step"), _e > 0)
        ).alias("_inc"),
    )
    if q.has_kind(EventKind.PLAN_CHANGE):
        q.add(
            q.local(0, _count("_s_key", ~_purchase_entry), "_pc_n"),
            "plan_changes_total",
            "plan changes up to the cutoff",
            "{plan_changes_total:.0f} plan changes",
        )
        q.add(
            q.local(2, (change * _mask(step, _e < 0)).list.sum().fill_null(0.0), "_down"),
            "downgrades_total",
            "plan changes to a cheaper plan",
            "{downgrades_total:.0f} downgrades to a cheaper plan",
            "high",
        )
        q.add(
            q.local(2, (change * _mask(step, _e > 0)).list.sum().fill_null(0.0), "_up"),
            "upgrades_total",
            "plan changes to a dearer plan",
            "{upgrades_total:.0f} upgrades",
            "low",
        )
    q.add(
        q.local(3, pl.col("_inc").list.sum().fill_null(0.0), "_increases"),
        "price_increases",
        "times the customer paid more than last time on the same plan",
        "{price_increases:.0f} price increases on the same plan",
        "high",
    )
    pct = (pl.col("_amount_pct") * pl.col("_inc")).list.eval(_e.filter(_e > 0)).list.last()
    q.add(
        q.local(3, pct, "_last_pct"),
        "last_price_increase_pct",
        "size of the latest price increase on the same plan, in percent",
        "price went up {last_price_increase_pct:.0f}% last time",
        "high",
    )


def _attribute_family(q: _Query, schema: Mapping[str, pl.DataType]) -> None:
    """Card expiry and configured extra columns: their latest value on purchase-branch
    rows (purchases and plan changes, where billing exports carry them). Numeric
    extras also give the share of purchases with a non-zero value (e.g.
    ``discount_share``: how often the customer buys on discount)."""

    def latest(value: pl.Expr, tag: str) -> pl.Expr:
        q.purchase_aggs.append(_last_value(value, value.is_not_null()).alias(tag))
        return pl.col(tag)

    if q.has_column(CARD_EXPIRY):
        expiry = latest(pl.col(CARD_EXPIRY), "_card")
        q.add(
            (expiry - pl.lit(q.cutoff.date())).dt.total_days().cast(pl.Float64),
            "days_to_card_expiry",
            "days until the payment card expires (negative: already expired)",
            "card expires in {days_to_card_expiry:.0f} days",
            "low",
        )
    for i, col in enumerate(q.layout.extra_numeric):
        # Parsed once per row, read by two aggregations.
        q.purchase_rows.append(_as_float(col, schema[col]).alias(f"_xn{i}_value"))
        value = pl.col(f"_xn{i}_value")
        name = q.free_name(f"{slug(col)}_last")
        q.add(
            latest(value, f"_xn{i}"),
            name,
            f"latest value of {col}",
            f"{col} {{{name}:g}} on the latest purchase",
        )
        q.purchase_aggs.append(
            (_is_purchase & (value.fill_null(0.0) != 0)).sum().alias(f"_xn{i}_nz")
        )
        share = q.free_name(f"{slug(col)}_share")
        q.add(
            _ratio(pl.col(f"_xn{i}_nz").cast(pl.Float64), pl.col("_p_n").cast(pl.Float64)),
            share,
            f"share of purchases with a non-zero {col}",
            f"{{{share}:.0%}} of purchases with {col}",
        )
    for i, col in enumerate(q.layout.extra_categorical):
        value = pl.col(col).cast(pl.String)
        name = q.free_name(f"{slug(col)}_last")
        q.add(
            latest(value, f"_xc{i}"),
            name,
            f"latest value of {col}",
            f"{col}: {{{name}}}",
            kind="categorical",
        )


def _activity_aggs(q: _Query) -> None:
    """Whether the customer had any event in each of the last three 30-day months."""
    for m in range(_ACTIVITY_MONTHS):
        cond = q.band(30 * m, 30 * (m + 1)).any()
        q.purchase_aggs.append(cond.alias(f"_act{m}_p"))
        q.usage_aggs.append(cond.alias(f"_act{m}_u"))
        if q.failure_aggs:
            q.failure_aggs.append(cond.alias(f"_act{m}_f"))
        q.other_aggs.append(cond.alias(f"_act{m}_o"))


def compute_features(
    events: pl.LazyFrame,
    cutoff: datetime,
    *,
    settings: FeatureSettings,
    relations: pl.LazyFrame | None = None,
    active: pl.LazyFrame | None = None,
    layout: FeatureLayout | None = None,
    label_settings: LabelSettings | None = None,
) -> FeatureSet:
    """Features for every customer seen at or before ``cutoff``.

    Families: recency, tenure and signup cohort; purchases and revenue per window of
    ``settings.windows`` (``(cutoff - w, cutoff]``, to the second) with the window
    before it and a trend; purchase gaps and the overdue ratio; failed payments
    (windows, reasons, unrecovered, recovered share); refunds, complaints, cancels;
    usage of the top usage events; plan, plan changes and price increases; card
    expiry; configured extra columns; and with ``relations`` the network.

    ``layout`` fixes which features exist (default: derived from the events up to
    the cutoff). ``relations`` adds the network features; they need the customers
    active at the cutoff, taken from ``active`` (a ``customer_id`` frame) or else
    derived with ``labels.active_customers`` under ``label_settings``.
    """
    cutoff = naive_utc(cutoff)
    bad = [w for w in settings.windows if w < 1]
    if bad:
        raise ConfigError(
            f"setting `features.windows` must hold whole days of at least 1; got {bad}"
        )
    require_columns(events, [CUSTOMER_ID, TS, KIND, AMOUNT], what="the event log")
    if layout is None:
        layout = feature_layout(events, cutoff, settings)
    require_columns(
        events,
        [*layout.columns, *layout.extra_numeric, *layout.extra_categorical],
        what="the event log",
    )
    with_plan = PLAN in layout.columns and bool(layout.plan_ranks)
    schema = events.collect_schema()
    q = _Query(cutoff, layout, with_plan=with_plan, quantity=QUANTITY in schema)
    windows = sorted(set(settings.windows))
    _recency_family(q, windows)
    _gap_family(q)
    if q.has_kind(EventKind.PAYMENT_FAILED):
        _failure_family(q, windows)
    _service_family(q)
    if q.has_kind(EventKind.USAGE):
        _usage_family(q)
    if with_plan:
        _plan_family(q)
    _attribute_family(q, dict(schema))
    if relations is not None:
        _activity_aggs(q)

    frame = _aggregate(q, events, activity=relations is not None)
    frame = frame.with_columns(q.joined).with_columns(q.features).with_columns(q.derived)
    names = list(q.specs)
    if relations is None:
        result = frame.select(CUSTOMER_ID, *names)
    else:
        if active is None:
            ls = label_settings or LabelSettings()
            window = labels.active_window_days(events, cutoff, ls)
            active = labels.active_customers(
                events, cutoff, active_window=window, grace=ls.grace_period
            )
        result = _network(q, frame, names, relations, active, settings.network_coupling)
    logger.info("%d features at cutoff %s", len(q.specs), cutoff)
    return FeatureSet(frame=result, specs=q.specs, layout=layout)


def _aggregate(q: _Query, events: pl.LazyFrame, *, activity: bool) -> pl.LazyFrame:
    """One group-by per branch of kinds, joined into one row per customer.

    Branch "p": purchases (and plan changes when plans are known), "f": failed
    payments and complaints, "u": usage (all of it, and the recent part for the
    usage windows), "o": everything else. The branches share nothing until the
    final joins, so they run side by side.
    """
    ev = events_until(events, q.cutoff)
    usage_apart = q.has_kind(EventKind.USAGE)
    judged = bool(q.failure_aggs)
    in_p = (_is_purchase | _is_plan_change) if q.with_plan else _is_purchase
    in_f = (_is_failed | _is_complaint) if judged else pl.lit(False)
    in_o = ~in_p & ~in_f & ~_is_usage if usage_apart else ~in_p & ~in_f

    p_aggs = [*q.purchase_aggs, _ts.min().alias("_first_p"), _ts.max().alias("_last_p")]
    p = ev.filter(in_p).with_columns(q.purchase_rows).group_by(CUSTOMER_ID).agg(p_aggs)
    for stage in q.prepared:
        p = p.with_columns(stage)
    # The lists stay behind: the joins below move only the values derived from them.
    p = p.select(~cs.by_dtype(pl.List))
    o_aggs = [
        *q.other_aggs,
        _ts.min().alias("_first_o"),
        _ts.max().alias("_last_o"),
        pl.when(_is_signup).then(_ts).min().alias("_signup"),
    ]
    o = ev.filter(in_o).group_by(CUSTOMER_ID).agg(o_aggs)
    frame = p.join(o, on=CUSTOMER_ID, how="full", coalesce=True)
    branches = ["p", "o"]
    if judged:
        f_aggs = [*q.failure_aggs, _ts.min().alias("_first_f"), _ts.max().alias("_last_f")]
        f = ev.filter(in_f).group_by(CUSTOMER_ID).agg(f_aggs)
        frame = frame.join(f, on=CUSTOMER_ID, how="full", coalesce=True)
        branches.append("f")
    if usage_apart:
        u_aggs = [*q.usage_aggs, _ts.min().alias("_first_u"), _ts.max().alias("_last_u")]
        u = ev.filter(_is_usage).group_by(CUSTOMER_ID).agg(u_aggs)
        if q.recent_usage_aggs:
            # Filtered by time before the gate, so the scan skips old row groups
            # instead of sharing (and buffering) the full usage scan.
            recent = events_until(events.filter(q.after(USAGE_RECENT_DAYS)), q.cutoff)
            recent = recent.filter(_is_usage)
            u = u.join(
                recent.group_by(CUSTOMER_ID).agg(q.recent_usage_aggs), on=CUSTOMER_ID, how="left"
            )
        frame = frame.join(u, on=CUSTOMER_ID, how="full", coalesce=True)
        branches.append("u")
    frame = frame.with_columns(
        pl.min_horizontal([f"_first_{b}" for b in branches]).alias("_first_event"),
        pl.max_horizontal([f"_last_{b}" for b in branches]).alias("_last_event"),
    ).with_columns(pl.coalesce("_signup", "_first_event").alias("_cohort"))
    if activity:
        months = [
            pl.any_horizontal([pl.col(f"_act{m}_{b}").fill_null(False) for b in branches]).cast(
                pl.Float64
            )
            for m in range(_ACTIVITY_MONTHS)
        ]
        frame = frame.with_columns(pl.sum_horizontal(months).alias("_active_months"))
    return frame


def _network(
    q: _Query,
    frame: pl.LazyFrame,
    names: list[str],
    relations: pl.LazyFrame,
    active: pl.LazyFrame,
    coupling: float,
) -> pl.LazyFrame:
    """Ties to other customers (DOMAIN.md, "Stickiness through the customer network").

    Ties count only when ``since`` is at or before the cutoff (or unknown), in both
    directions. Own stickiness ``a = 0.5 · min(1, tenure_days / 365) + 0.5 · m / 3``
    where ``m`` is the number of the last three 30-day months with any event;
    ``network_stickiness = a + coupling · Σ a_j`` over related customers ``j``
    active at the cutoff (DOMAIN's ``a + n·b`` with ``n = features.network_coupling``).
    ``related_churned`` counts related customers seen before the cutoff who are no
    longer active (ended or lapsed).
    """
    require_columns(relations, [CUSTOMER_ID, RELATED_CUSTOMER_ID], what="the relations table")
    rel = relations
    if SINCE in rel.collect_schema().names():
        since = pl.col(SINCE).cast(pl.Datetime("us"))
        rel = rel.filter(since.is_null() | (since <= q.cutoff))
    me, other = pl.col(CUSTOMER_ID).cast(pl.String), pl.col(RELATED_CUSTOMER_ID).cast(pl.String)
    edges = (
        pl.concat(
            [
                rel.select(me.alias("_me"), other.alias("_other")),
                rel.select(other.alias("_me"), me.alias("_other")),
            ]
        )
        .filter(pl.col("_me").is_not_null() & pl.col("_other").is_not_null())
        .filter(pl.col("_me") != pl.col("_other"))
        .unique()
    )
    tenure = (pl.col("tenure_days") / STICKINESS_TENURE_DAYS).clip(0.0, 1.0)
    own = 0.5 * tenure + 0.5 * pl.col("_active_months") / _ACTIVITY_MONTHS
    status = (
        frame.select(CUSTOMER_ID, own.alias("_a"))
        .join(
            active.select(CUSTOMER_ID).unique().with_columns(pl.lit(True).alias("_active")),
            on=CUSTOMER_ID,
            how="left",
        )
        .with_columns(pl.col("_active").fill_null(False))
    )
    ties = (
        edges.join(status, left_on="_other", right_on=CUSTOMER_ID, how="left")
        .group_by("_me")
        .agg(
            pl.len().alias("_n"),
            pl.col("_active").fill_null(False).sum().alias("_n_active"),
            (pl.col("_a").is_not_null() & ~pl.col("_active").fill_null(False))
            .sum()
            .alias("_n_churned"),
            pl.when(pl.col("_active")).then(pl.col("_a")).otherwise(0.0).sum().alias("_a_nb"),
        )
    )
    net: list[tuple[pl.Expr, str, str, str, RiskDirection]] = [
        (
            pl.col("_n").fill_null(0).cast(pl.Float64),
            "related_customers",
            "customers tied to this one (referrals, shared accounts, teams)",
            "{related_customers:.0f} related customers",
            "low",
        ),
        (
            pl.col("_n_active").fill_null(0).cast(pl.Float64),
            "related_active",
            "related customers active at the cutoff",
            "{related_active:.0f} of {related_customers:.0f} related customers still active",
            "low",
        ),
        (
            pl.col("_n_churned").fill_null(0).cast(pl.Float64),
            "related_churned",
            "related customers seen before who are no longer active",
            "{related_churned:.0f} related customers have left",
            "high",
        ),
        (
            pl.col("_own") + coupling * pl.col("_a_nb").fill_null(0.0),
            "network_stickiness",
            "own stickiness plus coupling × stickiness of active related customers",
            "network stickiness {network_stickiness:.2f}",
            "low",
        ),
    ]
    for expr, name, description, sentence, risk in net:
        q.add(expr, name, description, sentence, risk)
    out = (
        frame.with_columns(own.alias("_own"))
        .join(ties, left_on=CUSTOMER_ID, right_on="_me", how="left")
        .with_columns([e.alias(n) for e, n, *_ in net])
    )
    return out.select(CUSTOMER_ID, *names, *(n for _, n, *_ in net))
