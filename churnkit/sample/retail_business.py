"""A shop (non-contractual): customers buy now and then until they silently stop.

The purchase process is Pareto/NBD's, with known parameters kept in the ground
truth: while alive a customer orders at a Poisson rate ``λ ~ Gamma(R, ALPHA)`` per
week, and stays alive for an exponential lifetime whose rate is
``μ ~ Gamma(S, BETA)`` per week. The first order is on the signup day. Nothing in
the export says a customer has gone: no cancels, no failed payments, no regular
billing; only orders (paid), a few pending ones and some refunds.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl

from churnkit.sample.days import Array
from churnkit.sample.orders import SHOP_CENTS, SHOP_ITEM_SHARE, SHOP_ITEMS, refunds
from churnkit.sample.world import (
    ORDER,
    PENDING,
    Rows,
    World,
    customer_ids,
    period,
    pick,
    signup_days,
)

__all__ = ["ALPHA", "BETA", "CHANNELS", "R", "S", "simulate"]

# Pareto/NBD parameters, rates per week: about one order in seven weeks on average,
# and a median lifetime of about a year, both widely spread between customers.
R, ALPHA = 0.9, 6.0
S, BETA = 0.8, 40.0
CHANNELS = ("web", "marketplace", "store")
CHANNEL_SHARE = (0.6, 0.3, 0.1)
PENDING_SHARE = 0.004
REFUND_SHARE = 0.02


def simulate(customers: int, *, seed: int, end: date, months: int) -> World:
    """Draw every customer's rate, lifetime and orders at once (no weekly loop needed:
    a customer's orders do not depend on anyone else's)."""
    per = period(customers, end, months)
    rng = np.random.default_rng(seed)
    signup = signup_days(rng, customers, per).astype(np.int64)
    lam = rng.gamma(R, 1.0 / ALPHA, customers)
    mu = rng.gamma(S, 1.0 / BETA, customers)
    death = signup + np.ceil(rng.exponential(1.0, customers) / mu * 7.0).astype(np.int64)
    channel = rng.choice(len(CHANNELS), customers, p=CHANNEL_SHARE).astype(np.int8)
    basket = rng.lognormal(0.0, 0.35, customers)

    # Repeat orders: a Poisson number over the days alive after signup, spread uniformly.
    stop = np.minimum(death, per.end_day + 1)
    alive_days = np.maximum(stop - signup - 1, 0)
    repeats = rng.poisson(lam * alive_days / 7.0)
    who = np.repeat(np.arange(customers), repeats)
    offset = 1 + np.floor(rng.random(len(who)) * alive_days[who]).astype(np.int64)
    cust = np.concatenate([np.arange(customers), who])
    day = np.concatenate([signup, signup[who] + offset])

    rows = Rows()
    item = rng.choice(len(SHOP_ITEMS), len(cust), p=SHOP_ITEM_SHARE)
    cents = np.round(SHOP_CENTS[item] * basket[cust] * rng.lognormal(0.0, 0.2, len(cust)))
    cents = cents.astype(np.int64)
    rows.add(rng, cust, day, ORDER, item=item, cents=cents)
    pending = rng.random(len(cust)) < PENDING_SHARE
    rows.add(rng, cust[pending], day[pending], PENDING, item=item[pending], cents=cents[pending])
    refunds(rng, rows, cust, day, item, cents, REFUND_SHARE)
    empty = np.zeros(0, np.int32)
    return World(
        seed=seed,
        n=customers,
        start_day=per.start_day,
        end_day=per.end_day,
        rows=rows.finish(per.end_day),
        items=SHOP_ITEMS,
        channels=CHANNELS,
        channel=channel,
        usage=[],
        referrer=empty,
        referred=empty,
        referred_on=np.zeros(0, np.int64),
        truth=_truth(signup, channel, lam, mu, death, per.end_day),
    )


def _truth(
    signup: Array, channel: Array, lam: Array, mu: Array, death: Array, end_day: int
) -> pl.DataFrame:
    """Each customer's rates and the day they stopped (when within the period), and the
    process's parameters (the same on every row)."""
    gone = death <= end_day
    n = len(signup)
    return pl.DataFrame(
        {
            "customer_id": customer_ids(n),
            "segment": pl.Series(["retail"] * n, dtype=pl.String),
            "signup": signup.astype("datetime64[D]"),
            "channel": pick(CHANNELS, channel),
            "churn": pick(("lapse",), np.where(gone, 0, -1)),
            "churn_date": pl.Series(death.astype("datetime64[D]")).set(pl.Series(~gone), None),
            "purchase_rate_weekly": lam,
            "dropout_rate_weekly": mu,
            "r": np.full(n, R),
            "alpha": np.full(n, ALPHA),
            "s": np.full(n, S),
            "beta": np.full(n, BETA),
        }
    )
