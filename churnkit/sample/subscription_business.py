"""A subscription business that also sells one-off items: who its customers are and
how a week goes, for all customers at once.

Three quarters of the customers subscribe (a plan, a card, monthly billing, product
usage); the others are shop customers who buy now and then. Engagement drifts, and
declines more often after an unresolved complaint, a price rise or a contact leaving;
the subscription mechanics are in ``subscriptions``, the one-off purchases in
``orders``, the usage in ``usage``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import polars as pl

from churnkit.sample import orders, subscriptions, usage
from churnkit.sample.days import Array, first_of_month, month_of
from churnkit.sample.subscriptions import ADDONS, PLANS, Subscribers
from churnkit.sample.world import (
    ACTIVE,
    BILL_OK,
    DUNNING,
    INVOLUNTARY,
    LAPSED,
    NEVER,
    NONE,
    PENDING_SIGNUP,
    SIGNUP,
    VOLUNTARY,
    Period,
    Rows,
    UsageWeek,
    World,
    customer_ids,
    period,
    pick,
    signup_days,
)

__all__ = ["CHANNELS", "DEFAULT", "ITEMS", "SAAS", "Profile", "simulate", "simulate_saas"]

ITEMS = PLANS + ADDONS + orders.SHOP_ITEMS
SHOP_FIRST_ITEM = len(PLANS) + len(ADDONS)
CHANNELS = ("web", "partner", "sales")
USAGE_RATE = np.array([[5.0, 1.0, 0.3], [7.0, 2.5, 0.6], [9.0, 5.0, 1.2]])  # per plan, weekly
SUBSCRIBER_SHARE = 0.75
REFERRAL_SHARE = 0.18
SALE_WEEK_SHARE = 0.15


@dataclass(frozen=True)
class Profile:
    """What sets one subscription business apart: the share of subscribers and how
    much they use the product (a scale on ``USAGE_RATE``)."""

    subscriber_share: float = SUBSCRIBER_SHARE
    usage_scale: float = 1.0


DEFAULT = Profile()
# A usage-heavy SaaS: nearly everyone subscribes and uses the product every week, so
# a decline in usage shows well before a cancel.
SAAS = Profile(subscriber_share=0.97, usage_scale=4.0)


def simulate(
    customers: int, *, seed: int, end: date, months: int, profile: Profile = DEFAULT
) -> World:
    """Run the business week by week up to ``end``; each step acts on all customers."""
    per = period(customers, end, months)
    rng = np.random.default_rng(seed)
    rise_day = per.first_of(per.first_month + round(subscriptions.PRICE_RISE_AT * months))
    st = _customers(rng, customers, per, rise_day, profile)
    first_plan = st.plan.copy()
    sale_week = rng.random(per.n_weeks) < SALE_WEEK_SHARE
    rows = Rows()
    weeks: list[UsageWeek] = []
    for w in range(per.n_weeks):
        _week(rng, rows, weeks, st, w, per, bool(sale_week[w]))
    return World(
        seed=seed,
        n=customers,
        start_day=per.start_day,
        end_day=per.end_day,
        rows=rows.finish(per.end_day),
        items=ITEMS,
        channels=CHANNELS,
        channel=st.channel,
        usage=weeks,
        referrer=st.rel_b,
        referred=st.rel_a,
        referred_on=np.concatenate(st.rel_days) if st.rel_days else np.zeros(0, np.int64),
        truth=_truth(st, first_plan, per.end_day),
    )


def _week(
    rng: np.random.Generator,
    rows: Rows,
    weeks: list[UsageWeek],
    st: Subscribers,
    w: int,
    per: Period,
    sale: bool,
) -> None:
    """One week: signups, churn, plan changes, billing, usage, purchases, complaints and
    win-backs, in that order (the order is part of what a seed gives)."""
    d0, d7 = per.week(w)
    ended = np.zeros(len(st.status), bool)
    _signups(rng, rows, st, d0, d7, sale)
    subscriptions.end_dunning(st, d7, ended)
    _engagement(rng, st, w)

    cand = np.flatnonzero((st.status == ACTIVE) & (st.hold_until < d0) & (st.signup_day < d0))
    subscriptions.cancels(rng, rows, st, w, d0, cand[st.is_sub[cand]], ended)
    orders.lapses(rng, st, w, d0, cand[~st.is_sub[cand]], ended)
    subscriptions.plan_changes(rng, rows, st, w, d0, d7)
    subscriptions.billing(rng, rows, st, w, d7, ended)

    live = (st.status == ACTIVE) | (st.status == DUNNING) | ended
    usage.weekly_usage(rng, weeks, st, np.flatnonzero(st.is_sub & live), st.lam, d0, d7)

    active = np.flatnonzero(st.status == ACTIVE)
    subscriptions.addons(rng, rows, st, active, d0, d7)
    shop = active[~st.is_sub[active] & (st.signup_day[active] < d0)]
    orders.shop_week(rng, rows, st, shop, d0, d7, sale, first_item=SHOP_FIRST_ITEM)
    _complaints(rng, rows, st, w, d0, d7)

    # A contact who left raises the hazard of those tied to them for a quarter.
    st.network_until[st.rel_b[ended[st.rel_a]]] = w + 13
    st.network_until[st.rel_a[ended[st.rel_b]]] = w + 13
    subscriptions.winbacks(rng, rows, st, d0)


def simulate_saas(customers: int, *, seed: int, end: date, months: int) -> World:
    """The usage-heavy profile (``SAAS``)."""
    return simulate(customers, seed=seed, end=end, months=months, profile=SAAS)


def _customers(
    rng: np.random.Generator, n: int, per: Period, rise_day: int, profile: Profile
) -> Subscribers:
    """Draw who the customers are; ids follow signup order, signups grow over time."""
    signup_day = signup_days(rng, n, per)
    is_sub = rng.random(n) < profile.subscriber_share
    plan = rng.choice(3, n, p=subscriptions.PLAN_SHARE).astype(np.int8)
    channel = np.where(
        plan == 2, rng.choice(3, n, p=(0.2, 0.2, 0.6)), rng.choice(3, n, p=(0.65, 0.25, 0.10))
    ).astype(np.int8)
    promo = is_sub & (channel != 2) & (rng.random(n) < 0.22)
    month = month_of(signup_day)

    def full(value: int, dtype: type[np.generic] = np.int32) -> Array:
        return np.full(n, value, dtype)

    return Subscribers(
        rise_day=rise_day,
        signup_day=signup_day.astype(np.int32),
        is_sub=is_sub,
        plan=plan,
        channel=channel,
        promo_pct=np.where(promo, rng.choice([20, 30, 50], n), 0).astype(np.int8),
        promo_left=np.where(promo, rng.choice([3, 6], n), 0).astype(np.int16),
        price_sensitive=rng.random(n) < np.where(promo, 0.6, 0.2),
        discount_driven=~is_sub & (rng.random(n) < 0.3),
        shop_rate=rng.lognormal(np.log(0.45), 0.4, n),
        basket=rng.lognormal(0.0, 0.25, n),
        lam=USAGE_RATE[plan] * rng.lognormal(0.0, 0.45, (n, 1)) * profile.usage_scale,
        # A few customers are short of money often: declines repeat for them.
        decline_p=np.where(rng.random(n) < 0.12, 0.2, 0.01) * np.array([1.3, 1.0, 0.7])[plan],
        bill_dom=(signup_day - first_of_month(month) + 1).astype(np.int16),
        card_exp=(month + rng.integers(1, 61, n)).astype(np.int32),
        rise_seen=signup_day >= rise_day,
        status=full(PENDING_SIGNUP, np.int8),
        end_of=full(NEVER),
        next_bill=full(NEVER),
        hold_until=full(-1),
        churn_day=full(NEVER),
        log_e=rng.normal(0.0, 0.15, n),
        drift=np.zeros(n),
        complaint_until=full(-1),
        price_until=full(-1),
        promo_until=full(-1),
        network_until=full(-1),
        last_fail_week=full(-100),
        winbacks=full(0, np.int16),
    )


def _signups(
    rng: np.random.Generator, rows: Rows, st: Subscribers, d0: int, d7: int, sale: bool
) -> None:
    """New subscribers: a signup row and the first charge; shop customers: a first order.

    A share of new subscribers were referred by a customer active at the time."""
    new = np.arange(*np.searchsorted(st.signup_day, [d0, d7]))
    st.status[new] = ACTIVE
    subs = new[st.is_sub[new]]
    day = st.signup_day[subs]
    sec = rng.integers(0, 86_000, len(subs), dtype=np.int32)
    rows.add(rng, subs, day, SIGNUP, item=st.plan[subs], sec=sec)
    rows.add(
        rng,
        subs,
        day,
        BILL_OK,
        item=st.plan[subs],
        cents=subscriptions.price(st.plan[subs], day, st.rise_day, st.promo_pct[subs]),
        card=st.card_exp[subs],
        discount=st.promo_pct[subs],
        sec=sec + rng.integers(5, 300, len(subs), dtype=np.int32),
    )
    st.promo_left[subs] = np.maximum(st.promo_left[subs] - 1, 0)
    st.next_bill[subs] = subscriptions.bill_day(month_of(day) + 1, st.bill_dom[subs])
    shop = new[~st.is_sub[new]]
    orders.shop_orders(rng, rows, st, shop, st.signup_day[shop], sale, first_item=SHOP_FIRST_ITEM)

    referred = subs[rng.random(len(subs)) < REFERRAL_SHARE]
    pool = np.flatnonzero((st.status == ACTIVE) & st.is_sub & (st.signup_day < d0))
    if len(referred) and len(pool):
        referrer = pool[rng.integers(0, len(pool), len(referred))]
        st.rel_a = np.concatenate([st.rel_a, referred.astype(np.int32)])
        st.rel_b = np.concatenate([st.rel_b, referrer.astype(np.int32)])
        st.rel_days.append(st.signup_day[referred])


def _engagement(rng: np.random.Generator, st: Subscribers, w: int) -> None:
    """Engagement (log scale, around 0) drifts; disengagement starts more often after an
    unresolved complaint, a price rise or a contact leaving, and shows in usage."""
    live = np.flatnonzero((st.status == ACTIVE) | (st.status == DUNNING))
    complaint = st.complaint_until[live] >= w
    shocked = (st.price_until[live] >= w) | (st.network_until[live] >= w)
    st.log_e[live] = 0.95 * st.log_e[live] + st.drift[live] + rng.normal(0.0, 0.07, len(live))
    onset_p = 0.02 * np.where(complaint, 5.0, 1.0) * np.where(shocked, 2.0, 1.0)
    onset = live[(st.drift[live] == 0) & (rng.random(len(live)) < onset_p)]
    st.drift[onset] = -rng.uniform(0.03, 0.08, len(onset))
    recover = live[(st.drift[live] < 0) & (rng.random(len(live)) < 0.015)]
    st.drift[recover] = 0.0


def _complaints(
    rng: np.random.Generator, rows: Rows, st: Subscribers, w: int, d0: int, d7: int
) -> None:
    """Subscribers complain twice as often as shop customers, and four times as often
    within a month of a failed payment (then about billing)."""
    live = np.flatnonzero((st.status == ACTIVE) | (st.status == DUNNING))
    after_failure = w - st.last_fail_week[live] <= 4
    orders.complaints(
        rng,
        rows,
        st,
        w,
        d0,
        d7,
        live=live,
        rate=np.where(st.is_sub[live], 0.004, 0.002) * np.where(after_failure, 4.0, 1.0),
        after_failure=after_failure,
        item=np.where(st.is_sub[live], st.plan[live], NONE),
    )


def _truth(st: Subscribers, first_plan: Array, end_day: int) -> pl.DataFrame:
    """Ground truth per customer: who they are and how (and when) they last left."""
    ended = np.isin(st.status, [VOLUNTARY, INVOLUNTARY, LAPSED]) & (st.end_of <= end_day)
    churn = np.select(
        [ended & (st.status == VOLUNTARY), ended & (st.status == INVOLUNTARY), ended], [0, 1, 2], -1
    )
    return pl.DataFrame(
        {
            "customer_id": customer_ids(len(st.status)),
            "segment": pick(("shop", "subscription"), st.is_sub.astype(np.int64)),
            "signup": st.signup_day.astype("datetime64[D]"),
            "plan": pick(PLANS, np.where(st.is_sub, first_plan, -1)),
            "channel": pick(CHANNELS, st.channel),
            "churn": pick(("voluntary", "involuntary", "lapse"), churn),
            "churn_date": pl.Series(st.end_of.astype("datetime64[D]")).set(pl.Series(~ended), None),
            "winbacks": st.winbacks.astype(np.int32),
        }
    )
