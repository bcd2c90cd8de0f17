"""Recency, tenure, and purchases and revenue per window.

Tenure (days since the first event) is the customer's age at the cutoff: a signup is
a customer's first event but for same-day noise, so a separate age since signup would
repeat it. The age is used rather than the signup month, which as a calendar index
drifts by construction between any two cutoffs.

Windows come from ``features.windows``: ``(cutoff - w, cutoff]`` (to the second),
the ``w`` days before it, and a trend between the two.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import polars as pl

from churnkit.features.family import Family, Needs
from churnkit.features.keys import (
    LAST_PURCHASE,
    PURCHASE_ENTRY,
    PURCHASE_KEYS,
    PURCHASES,
    REVENUE,
    amount_where,
    count,
    purchase_key_after,
)
from churnkit.features.names import (
    GAP_MEDIAN_DAYS,
    PURCHASES_TOTAL,
    RECENCY_DAYS,
    REVENUE_TOTAL,
    TENURE_DAYS,
)
from churnkit.features.query import (
    FIRST_EVENT,
    LAST_EVENT,
    FeatureQuery,
    ratio,
    trend,
)
from churnkit.features.spec import Sentence

_e = pl.element()
# Days since the last purchase against the customer's usual gap; the overdue ratio
# (gaps) says the same.
OVERDUE = Sentence(
    "no purchase for {value}, {times}x the usual gap of {reference}",
    noun="day",
    reference="usual",
    against=GAP_MEDIAN_DAYS,
    value=RECENCY_DAYS,
    alone="no purchase for {value}",
)


def build(q: FeatureQuery) -> None:
    q.add(
        q.days_since(LAST_PURCHASE),
        RECENCY_DAYS,
        "days since the last purchase",
        OVERDUE,
        "high",
        unit="days",
    )
    q.add(
        q.days_since(LAST_EVENT),
        "days_since_last_event",
        "days since the customer's last event of any kind",
        Sentence("no activity of any kind for {value}", noun="day"),
        "high",
        unit="days",
    )
    q.add(
        q.days_since(FIRST_EVENT),
        TENURE_DAYS,
        "days since the customer's first event",
        Sentence("a customer for {value}", noun="day"),
        "low",
        unit="days",
    )
    _totals(q)
    for w in q.windows:
        _window(q, w)


def _totals(q: FeatureQuery) -> None:
    q.add(
        pl.col(PURCHASES).fill_null(0.0),
        PURCHASES_TOTAL,
        "purchases up to the cutoff",
        Sentence("{value} in total", noun="purchase"),
        "low",
    )
    q.add(
        pl.col(REVENUE).fill_null(0.0),
        REVENUE_TOTAL,
        "revenue from purchases up to the cutoff",
        Sentence("spent {value} in total", number=",.2f"),
        "low",
    )
    q.add(
        ratio(pl.col(REVENUE), pl.col(PURCHASES)),
        "avg_purchase_amount",
        "average purchase amount",
        Sentence("average purchase {value}", number=",.2f"),
    )


def _window(q: FeatureQuery, w: int) -> None:
    """Purchases and revenue in the last ``w`` days, the ``w`` before, and the trend."""
    start, mid = (purchase_key_after(q.cutoff - timedelta(days=d)) for d in (2 * w, w))
    recent = PURCHASE_ENTRY & (_e >= mid)
    before = PURCHASE_ENTRY & (_e >= start) & (_e < mid)
    values = {
        "purchases": (count(PURCHASE_KEYS, recent), count(PURCHASE_KEYS, before)),
        "revenue": (amount_where(recent), amount_where(before)),
    }
    for what, (cur, prev) in values.items():
        now, then = f"{what}_{w}d", f"{what}_prev_{w}d"
        said, before_said = _window_words(what, w)
        window = replace(said, reference="previous", against=then)
        q.prepare(0, *[cur.alias(f"_{what}_{w}"), prev.alias(f"_{what}_prev_{w}")])
        c, p = pl.col(f"_{what}_{w}").fill_null(0.0), pl.col(f"_{what}_prev_{w}").fill_null(0.0)
        q.add(c, now, f"{what} in the last {w} days", window, "low")
        q.add(p, then, f"{what} in the {w} days before the last {w}", before_said)
        q.add(
            trend(c, p),
            f"{what}_trend_{w}d",
            f"change in {what}, last {w} days vs the {w} before (-1 stopped, +1 new)",
            replace(window, value=now),
            "low",
        )


def _window_words(what: str, w: int) -> tuple[Sentence, Sentence]:
    """How a window's count or revenue is said, and the window before it."""
    if what == "purchases":
        return (
            Sentence(f"{{value}} in the last {w} days", noun="purchase"),
            Sentence(f"{{value}} in the {w} days before the last {w}", noun="purchase"),
        )
    return (
        Sentence(f"spent {{value}} in the last {w} days", number=",.2f"),
        Sentence(f"spent {{value}} in the {w} days before the last {w}", number=",.2f"),
    )


FAMILY = Family(
    name="recency",
    needs=Needs(),
    produces=(
        RECENCY_DAYS,
        "days_since_last_event",
        TENURE_DAYS,
        PURCHASES_TOTAL,
        REVENUE_TOTAL,
        "avg_purchase_amount",
        "purchases_{w}d",
        "purchases_prev_{w}d",
        "purchases_trend_{w}d",
        "revenue_{w}d",
        "revenue_prev_{w}d",
        "revenue_trend_{w}d",
    ),
    build=build,
)
