"""Failed payments: per window, unrecovered since the last purchase, recovered
share, days since the last one; with a reason column, counts by reason.

A purchase at or after a failed payment recovers it; without any purchase every
failure is open.
"""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from churnkit.core.schema import REASON, EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.keys import (
    EPOCH_1970,
    FAILURE_ENTRY,
    JUDGED_KEYS,
    JUDGED_UNIT,
    REASON_ENTRY,
    after_last_purchase,
    count,
    judged_key_after,
)
from churnkit.features.names import (
    FAILED_CARD_EXPIRED,
    FAILED_INSUFFICIENT_FUNDS,
    FAILED_PAYMENTS_UNRECOVERED,
)
from churnkit.features.query import US_PER_DAY, FeatureQuery, ratio
from churnkit.features.spec import Sentence

_e = pl.element()

# Reason codes of the judged key, with the feature-name fragment and the words.
_REASONS = (
    (FAILED_CARD_EXPIRED, 1, "an expired card"),
    (FAILED_INSUFFICIENT_FUNDS, 2, "insufficient funds"),
    ("failed_other", 0, "other reasons"),
)


def build(q: FeatureQuery) -> None:
    q.judged_keys()
    last_us = pl.col(JUDGED_KEYS).list.eval(_e.filter(FAILURE_ENTRY) // JUDGED_UNIT).list.max()
    cutoff_us = (q.cutoff - EPOCH_1970) // timedelta(microseconds=1)
    q.joined.extend(
        [
            count(JUDGED_KEYS, FAILURE_ENTRY).alias("_f_n"),
            after_last_purchase(complaints=False).alias("_f_open"),
            ((cutoff_us - last_us) / US_PER_DAY).alias("_f_days"),
        ],
    )
    for w in q.windows:
        after = judged_key_after(q.cutoff - timedelta(days=w))
        q.add(
            count(JUDGED_KEYS, FAILURE_ENTRY & (_e >= after)),
            f"failed_payments_{w}d",
            f"failed payments in the last {w} days",
            Sentence(f"{{value}} in the last {w} days", noun="failed payment"),
            "high",
        )
    _totals(q)


def _totals(q: FeatureQuery) -> None:
    q.add(
        pl.col("_f_n").fill_null(0.0),
        "failed_payments_total",
        "failed payments up to the cutoff",
        Sentence("{value} in total", noun="failed payment"),
        "high",
    )
    q.add(
        pl.col("_f_open").fill_null(0.0),
        FAILED_PAYMENTS_UNRECOVERED,
        "failed payments since the last successful purchase",
        Sentence("{value} not recovered since the last purchase", noun="failed payment"),
        "high",
    )
    q.add(
        pl.col("_f_days"),
        "days_since_last_failure",
        "days since the last failed payment (null if none)",
        Sentence("last failed payment {value} ago", noun="day"),
        "low",
        unit="days",
    )
    q.add(
        ratio(pl.col("_f_n") - pl.col("_f_open"), pl.col("_f_n")),
        "failed_recovered_share",
        "share of failed payments later recovered by a purchase",
        Sentence("{value} of failed payments recovered", number=".0%"),
        "low",
    )


def build_reasons(q: FeatureQuery) -> None:
    """Failed payments by the reason code of the judged key."""
    q.judged_keys()
    for name, code, text in _REASONS:
        q.add(
            count(JUDGED_KEYS, FAILURE_ENTRY & (code == REASON_ENTRY)),
            name,
            f"failed payments due to {text}",
            Sentence(f"{{value}} due to {text}", noun="failed payment"),
            "high",
        )


FAMILY = Family(
    name="failures",
    needs=Needs(kinds=(EventKind.PAYMENT_FAILED,)),
    produces=(
        "failed_payments_{w}d",
        "failed_payments_total",
        FAILED_PAYMENTS_UNRECOVERED,
        "days_since_last_failure",
        "failed_recovered_share",
    ),
    build=build,
)
REASONS = Family(
    name="failure_reasons",
    needs=Needs(kinds=(EventKind.PAYMENT_FAILED,), columns=(REASON,)),
    produces=tuple(name for name, _, _ in _REASONS),
    build=build_reasons,
)
