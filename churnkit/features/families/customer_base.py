"""The customer-base model's view of each customer: alive, and how much they will buy.

BG/NBD (``churnkit.population.customer_base``) fitted once on every customer at the cutoff
gives, per customer, the probability of still being a customer and the purchases
expected in the horizon. The parameters come with the query (``q.customer_base``):
the family only evaluates the formulas on each customer's purchase days, so it works
bucket by bucket. Without parameters (nobody bought) it adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from churnkit.core.schema import EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.query import FeatureQuery, is_kind
from churnkit.features.spec import Sentence
from churnkit.population.customer_base import (
    AGE,
    T_X,
    UNIT_DAYS,
    FloatArray,
    X,
    expected_purchases,
    p_alive,
    summary_aggs,
    summary_columns,
)

Formula = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]
P_ALIVE = "p_alive"
EXPECTED = "expected_purchases_horizon"


def build(q: FeatureQuery) -> None:
    params = q.customer_base
    if params is None:
        return
    q.purchase_aggs.extend(summary_aggs(is_kind(EventKind.PURCHASE)))
    q.prepare(0, *summary_columns(q.cutoff))
    weeks = params.horizon_days / UNIT_DAYS
    summary = pl.struct(X, T_X, AGE)
    q.add(
        summary.map_batches(
            lambda s: _apply(s, lambda x, t, T: p_alive(params, x, t, T)),
            return_dtype=pl.Float64,
            is_elementwise=True,
        ),
        P_ALIVE,
        "probability the customer is still a customer (BG/NBD on purchase days)",
        Sentence(
            "{value} likely to still be a customer, from how often and how recently they bought",
            number=".0%",
        ),
        "low",
    )
    q.add(
        summary.map_batches(
            lambda s: _apply(s, lambda x, t, T: expected_purchases(params, weeks, x, t, T)),
            return_dtype=pl.Float64,
            is_elementwise=True,
        ),
        EXPECTED,
        f"purchases expected in the next {params.horizon_days} days (BG/NBD)",
        Sentence("{value} expected in the horizon", noun="purchase", number=".1f"),
        "low",
    )


def _apply(s: pl.Series, f: Formula) -> pl.Series:
    """``f(x, t_x, T)`` on the rows with a purchase; null elsewhere."""
    frame = s.struct.unnest()
    x = frame[X].to_numpy().astype(np.float64)
    out = np.full(len(x), np.nan)
    has = ~np.isnan(x)
    if has.any():
        t_x = frame[T_X].to_numpy().astype(np.float64)
        T = frame[AGE].to_numpy().astype(np.float64)
        out[has] = f(x[has], t_x[has], T[has])
    return pl.Series(out).fill_nan(None)


FAMILY = Family(
    name="customer_base",
    needs=Needs(kinds=(EventKind.PURCHASE,)),
    produces=(P_ALIVE, EXPECTED),
    build=build,
)
