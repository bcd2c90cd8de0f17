"""One-off purchases, refunds and complaints, and shop customers lapsing: the parts of
a business that do not depend on subscriptions.

Shop customers buy irregularly (more in sale weeks when discount-driven) and churn by
lapsing: their orders just stop, with no row saying so. Some purchases are refunded
days later; complaints that get resolved restore engagement, unresolved ones start a
decline.
"""

from __future__ import annotations

import numpy as np

from churnkit.sample.days import Array, uniform_days
from churnkit.sample.world import (
    COMPLAINT,
    LAPSED,
    ORDER,
    PENDING,
    R_COMPLAINT,
    R_REFUND,
    REFUND,
    Customers,
    Rows,
)

__all__ = ["SHOP_ITEMS", "complaints", "lapses", "refunds", "shop_orders", "shop_week"]

SHOP_ITEMS = ("starter_kit", "template_pack", "training_session", "bulk_order")
SHOP_CENTS = np.array([2900, 1200, 14900, 123450])
SHOP_ITEM_SHARE = (0.45, 0.38, 0.15, 0.02)


def shop_week(
    rng: np.random.Generator,
    rows: Rows,
    st: Customers,
    shop: Array,
    d0: int,
    d7: int,
    sale: bool,
    *,
    first_item: int,
) -> None:
    """Orders of the shop customers ``shop`` in the week ``[d0, d7)``: a customer's
    rate scaled by engagement; discount-driven customers wait for sale weeks."""
    if sale:
        boost = np.where(st.discount_driven[shop], 3.0, 1.3)
    else:
        boost = np.where(st.discount_driven[shop], 0.5, 1.0)
    p = -np.expm1(-st.shop_rate[shop] * np.exp(st.log_e[shop]) * boost)
    buyers = shop[rng.random(len(shop)) < p]
    days = uniform_days(rng, np.full(len(buyers), d0), d7)
    shop_orders(rng, rows, st, buyers, days, sale, first_item=first_item)


def shop_orders(
    rng: np.random.Generator,
    rows: Rows,
    st: Customers,
    who: Array,
    day: Array,
    sale: bool,
    *,
    first_item: int,
) -> None:
    """One order per customer in ``who``; discount-driven customers buy mostly at a
    discount. ``first_item``: where ``SHOP_ITEMS`` start in the business's items."""
    k = len(who)
    if k == 0:
        return
    pick = rng.choice(len(SHOP_ITEMS), k, p=SHOP_ITEM_SHARE)
    base = SHOP_CENTS[pick] * st.basket[who]
    if sale:
        share = np.where(st.discount_driven[who], 0.85, 0.3)
    else:
        share = np.where(st.discount_driven[who], 0.25, 0.04)
    pct = np.where(rng.random(k) < share, rng.choice([10, 20, 30], k), 0)
    cents = np.round(base * (100 - pct) / 100).astype(np.int64)
    item = first_item + pick
    rows.add(rng, who, day, ORDER, item=item, cents=cents, discount=pct)
    pending = rng.random(k) < 0.004
    rows.add(
        rng,
        who[pending],
        day[pending],
        PENDING,
        item=item[pending],
        cents=cents[pending],
        discount=pct[pending],
    )
    refunds(rng, rows, who, day, item, cents, 0.02)


def refunds(
    rng: np.random.Generator,
    rows: Rows,
    who: Array,
    day: Array,
    item: Array,
    cents: Array,
    share: float,
) -> None:
    """Some purchases are refunded days later, in full or in part; most exports show a
    refund as a negative amount, some as a positive amount with a refund status."""
    hit = rng.random(len(who)) < share
    k = int(hit.sum())
    if k == 0:
        return
    amount = np.where(
        rng.random(k) < 0.6, cents[hit], np.round(cents[hit] * rng.uniform(0.2, 0.8, k))
    )
    sign = np.where(rng.random(k) < 0.75, -1, 1)
    rows.add(
        rng,
        who[hit],
        day[hit] + rng.integers(1, 15, k),
        REFUND,
        item=item[hit],
        cents=sign * amount,
        reason=rng.choice(R_REFUND, k, p=(0.8, 0.2)),
    )


def lapses(
    rng: np.random.Generator, st: Customers, w: int, d0: int, shop: Array, ended: Array
) -> None:
    """Shop customers ``shop`` stop buying: more often when disengaged, after an
    unresolved complaint, or when they only ever came for discounts. No row says so."""
    hazard = (
        0.003
        * np.exp(-2.5 * np.minimum(st.log_e[shop], 0.0))
        * np.where(st.complaint_until[shop] >= w, 3.0, 1.0)
        * np.where(st.discount_driven[shop], 1.4, 1.0)
    )
    lapse = shop[rng.random(len(shop)) < hazard]
    st.status[lapse] = LAPSED
    st.end_of[lapse] = d0 + rng.integers(0, 7, len(lapse), dtype=np.int32)
    ended[lapse] = True


def complaints(
    rng: np.random.Generator,
    rows: Rows,
    st: Customers,
    w: int,
    d0: int,
    d7: int,
    *,
    live: Array,
    rate: Array,
    after_failure: Array,
    item: Array,
) -> None:
    """Complaints of customers ``live`` at a weekly ``rate`` (per customer in ``live``),
    doubled when things go badly; one ``after_failure`` (a failed payment) is a billing
    issue. A resolved complaint restores engagement, an unresolved one starts a decline.
    ``item``: what each complaint is about (per customer in ``live``)."""
    p = rate * np.where(st.log_e[live] < -0.7, 2.0, 1.0)
    hit = rng.random(len(live)) < p
    who = live[hit]
    rows.add(
        rng,
        who,
        uniform_days(rng, np.maximum(d0, st.signup_day[who]), d7),
        COMPLAINT,
        item=item[hit],
        reason=np.where(
            after_failure[hit],
            R_COMPLAINT[0],
            rng.choice(R_COMPLAINT, len(who), p=(0.2, 0.3, 0.3, 0.2)),
        ),
    )
    resolved = rng.random(len(who)) < 0.55
    st.log_e[who[resolved]] += 0.15
    unresolved = who[~resolved]
    st.complaint_until[unresolved] = w + 10
    decline = unresolved[rng.random(len(unresolved)) < 0.5]
    st.drift[decline] = -rng.uniform(0.08, 0.2, len(decline))
