"""Subscriptions: plans and prices, monthly billing with failed payments and retries,
voluntary cancels, plan changes, add-ons and win-backs.

Voluntary churn has a weekly hazard that rises as engagement declines, after a price
rise, after an unresolved complaint, when a promotion ends and when a referral contact
has left. Involuntary churn happens when a card expires or a charge is declined and the
retries fail; billing then simply stops, with no cancel row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnkit.sample.days import Array, first_of_month, month_of, uniform_days
from churnkit.sample.orders import refunds
from churnkit.sample.world import (
    ACTIVE,
    ADDON,
    BILL_FAIL,
    BILL_OK,
    CANCEL,
    DUNNING,
    INVOLUNTARY,
    NEVER,
    PLAN_CHANGE,
    R_CANCEL,
    R_CARD,
    R_DNH,
    R_DOWNGRADE,
    R_FUNDS,
    R_UPGRADE,
    VOLUNTARY,
    Customers,
    Rows,
)

__all__ = [
    "ADDONS",
    "PLANS",
    "Subscribers",
    "addons",
    "bill_day",
    "billing",
    "cancels",
    "end_dunning",
    "plan_changes",
    "price",
    "winbacks",
]

PLANS = ("basic", "pro", "business")
PLAN_CENTS = np.array([1900, 4900, 19900])
PLAN_SHARE = (0.55, 0.33, 0.12)
PRICE_RISE_PLAN = 1  # pro: 49.00 -> 59.00 ...
PRICE_RISE_CENTS = 5900
PRICE_RISE_AT = 0.75  # ... from the first of the month three quarters into the period
ADDONS = ("extra_seats", "storage_pack", "priority_support", "onboarding_package")
ADDON_CENTS = np.array([2500, 900, 4900, 145000])
RETRY_DAYS = np.array([3, 7, 14])


@dataclass(kw_only=True)
class Subscribers(Customers):
    """Customers of a business that sells subscriptions (``is_sub``) next to one-off
    items: plan, promotion, card and billing state on top of the common state."""

    rise_day: int
    is_sub: Array
    plan: Array
    promo_pct: Array
    promo_left: Array  # discounted charges still to come
    price_sensitive: Array
    lam: Array  # weekly usage rate per event
    decline_p: Array
    bill_dom: Array  # the day of the month billing falls on
    card_exp: Array  # month number of the card's expiry
    rise_seen: Array
    next_bill: Array
    hold_until: Array  # no cancel or plan change while a payment is being retried
    churn_day: Array  # the day dunning runs out of retries
    price_until: Array  # weeks from here on
    promo_until: Array
    network_until: Array
    last_fail_week: Array
    winbacks: Array


@dataclass(frozen=True)
class _Charges:
    """Monthly charges of one week, one per customer in ``who``."""

    who: Array
    day: Array
    plan: Array
    cents: Array
    card: Array
    discount: Array
    reason: Array  # why the first attempt failed; 0 when it was paid

    def where(self, mask: Array) -> _Charges:
        return _Charges(
            self.who[mask],
            self.day[mask],
            self.plan[mask],
            self.cents[mask],
            self.card[mask],
            self.discount[mask],
            self.reason[mask],
        )


def price(plan: Array, day: Array, rise_day: int, discount: Array) -> Array:
    """The charge in cents: the list price on ``day`` less a percent ``discount``."""
    list_price = np.where(
        (plan == PRICE_RISE_PLAN) & (day >= rise_day), PRICE_RISE_CENTS, PLAN_CENTS[plan]
    )
    return np.round(list_price * (100 - discount.astype(np.int64)) / 100).astype(np.int64)


def bill_day(months: Array, dom: Array) -> Array:
    """The billing anniversary in a month: day ``dom``, or the month's last day."""
    first = first_of_month(months)
    length = first_of_month(months + 1) - first
    day: Array = (first + np.minimum(dom, length) - 1).astype(np.int32)
    return day


def end_dunning(st: Subscribers, d7: int, ended: Array) -> None:
    """Dunning that ran out of retries ends the subscription: billing stops, no cancel row."""
    due = np.flatnonzero((st.status == DUNNING) & (st.churn_day < d7))
    st.status[due] = INVOLUNTARY
    st.end_of[due] = st.churn_day[due]
    ended[due] = True


def _cancel_hazard(st: Subscribers, w: int, d0: int, who: Array, contacts: Array) -> Array:
    """Weekly voluntary-cancel hazard of subscribers ``who``."""
    tenure_months = (d0 - st.signup_day[who]) / 30.4
    sensitive = st.price_sensitive[who]
    hazard: Array = (
        0.0004
        * (1.0 + np.exp(-tenure_months / 3.0))
        * np.array([1.25, 1.0, 0.6])[st.plan[who]]
        * np.array([1.0, 1.25, 0.8])[st.channel[who]]
        * np.exp(-3.5 * np.minimum(st.log_e[who], 0.0))
        * np.where(st.price_until[who] >= w, np.where(sensitive, 5.0, 2.0), 1.0)
        * np.where(st.promo_until[who] >= w, np.where(sensitive, 3.5, 1.5), 1.0)
        * np.where(st.complaint_until[who] >= w, 3.0, 1.0)
        * np.where(st.network_until[who] >= w, 2.5, 1.0)
        * np.where(contacts[who], 0.75, 1.0)
    )
    return hazard


def cancels(
    rng: np.random.Generator,
    rows: Rows,
    st: Subscribers,
    w: int,
    d0: int,
    subs: Array,
    ended: Array,
) -> None:
    """Subscribers ``subs`` cancel (a row with a reason) under their weekly hazard;
    having an active referral contact makes them stay a little more."""
    contacts = np.zeros(len(st.status), bool)
    active = st.status == ACTIVE
    contacts[st.rel_a[active[st.rel_b]]] = True
    contacts[st.rel_b[active[st.rel_a]]] = True
    hazard = _cancel_hazard(st, w, d0, subs, contacts)
    cancel = subs[rng.random(len(subs)) < -np.expm1(-hazard)]
    day = d0 + rng.integers(0, 7, len(cancel), dtype=np.int32)
    st.status[cancel] = VOLUNTARY
    st.end_of[cancel] = day
    ended[cancel] = True
    rows.add(
        rng, cancel, day, CANCEL, item=st.plan[cancel], reason=_cancel_reasons(rng, st, w, cancel)
    )


def _cancel_reasons(rng: np.random.Generator, st: Subscribers, w: int, who: Array) -> Array:
    """The reason a customer gives follows what drove them, with noise; staff
    indifference (poor_service) is the largest share."""
    k = len(who)
    price_shock = (st.price_until[who] >= w) | (st.promo_until[who] >= w)
    weights = np.column_stack(
        [
            0.15 + 3.0 * price_shock + 0.3 * st.price_sensitive[who],
            0.10 + 0.6 * np.maximum(-st.log_e[who], 0.0),
            0.25 + 3.0 * (st.network_until[who] >= w),
            0.60 + 3.0 * (st.complaint_until[who] >= w),
            np.full(k, 0.12),
            np.full(k, 0.04),
            np.full(k, 0.06),
        ]
    )
    cum = weights.cumsum(axis=1)
    pick = (cum < (rng.random(k) * cum[:, -1])[:, None]).sum(axis=1)
    reasons: Array = R_CANCEL[np.minimum(pick, len(R_CANCEL) - 1)]
    return reasons


def plan_changes(
    rng: np.random.Generator, rows: Rows, st: Subscribers, w: int, d0: int, d7: int
) -> None:
    """Engaged customers upgrade; disengaged or price-shocked ones downgrade. Not in a
    billing week, so each charge is at the plan in force that day."""
    cand = np.flatnonzero(
        (st.status == ACTIVE) & st.is_sub & (st.hold_until < d0) & (st.next_bill >= d7)
    )
    plan = st.plan[cand]
    log_e = st.log_e[cand]
    r = rng.random(len(cand))
    up = (plan < 2) & (r < 0.004 * np.where(log_e > 0.2, 2.5, 1.0))
    down_p = (
        0.002 * np.where(log_e < -0.5, 3.0, 1.0) * np.where(st.price_until[cand] >= w, 4.0, 1.0)
    )
    down = ~up & (plan > 0) & (rng.random(len(cand)) < down_p)
    moved = up | down
    who = cand[moved]
    new_plan = (plan + up.astype(np.int8) - down.astype(np.int8))[moved]
    rows.add(
        rng,
        who,
        uniform_days(rng, np.maximum(d0, st.signup_day[who]), d7),
        PLAN_CHANGE,
        item=new_plan,
        reason=np.where(up[moved], R_UPGRADE, R_DOWNGRADE),
    )
    st.plan[who] = new_plan
    st.price_until[cand[down]] = -1
    st.rise_seen[who] |= d0 >= st.rise_day


def billing(
    rng: np.random.Generator, rows: Rows, st: Subscribers, w: int, d7: int, ended: Array
) -> None:
    """Charge the monthly fees due before ``d7`` (also to those who cancelled this week,
    up to their last day): expired cards fail unless updated, some charges are declined;
    retries after 3, 7 and 14 days recover or end in involuntary churn."""
    billable = (st.status == ACTIVE) | ((st.status == VOLUNTARY) & ended)
    bill = np.flatnonzero(billable & (st.next_bill < np.minimum(d7, st.end_of)))
    if len(bill) == 0:
        return
    charges = _first_attempt(rng, st, w, bill)
    ok = charges.reason == 0
    paid = charges.where(ok)
    rows.add(
        rng,
        paid.who,
        paid.day,
        BILL_OK,
        item=paid.plan,
        cents=paid.cents,
        card=paid.card,
        discount=paid.discount,
    )
    refunds(rng, rows, paid.who, paid.day, paid.plan, paid.cents, 0.008)
    # Someone who cancels later this week does not go through dunning.
    back = _dunning(rng, rows, st, w, charges.where(~ok & (st.status[bill] == ACTIVE)))

    paid_for = np.concatenate([paid.who, back])
    ending = paid_for[st.promo_left[paid_for] == 1]
    st.promo_until[ending] = w + 16  # the next charge is at full price
    st.promo_left[paid_for] = np.maximum(st.promo_left[paid_for] - 1, 0)
    st.next_bill[bill] = bill_day(month_of(charges.day) + 1, st.bill_dom[bill])


def _first_attempt(rng: np.random.Generator, st: Subscribers, w: int, bill: Array) -> _Charges:
    """The charges due to ``bill`` at the plan, price and promotion of the day; a price
    rise is noticed at the first charge after it. An expired card is updated by about a
    third of customers (engaged ones more often), other charges are declined now and then."""
    k = len(bill)
    day = st.next_bill[bill]
    month = month_of(day)
    plan = st.plan[bill]
    discount = np.where(st.promo_left[bill] > 0, st.promo_pct[bill], 0)
    cents = price(plan, day, st.rise_day, discount)
    risen = (plan == PRICE_RISE_PLAN) & (day >= st.rise_day) & ~st.rise_seen[bill]
    st.rise_seen[bill[risen]] = True
    st.price_until[bill[risen]] = w + 13

    expired = month > st.card_exp[bill]
    updated = expired & (rng.random(k) < np.where(st.log_e[bill] > 0, 0.45, 0.3))
    st.card_exp[bill[updated]] = month[updated] + rng.integers(24, 61, int(updated.sum()))
    declined = rng.random(k) < st.decline_p[bill]
    reason = np.where(
        expired & ~updated,
        R_CARD,
        np.where(declined, np.where(rng.random(k) < 0.75, R_FUNDS, R_DNH), 0),
    )
    return _Charges(bill, day, plan, cents, st.card_exp[bill], discount, reason)


def _dunning(
    rng: np.random.Generator, rows: Rows, st: Subscribers, w: int, failed: _Charges
) -> Array:
    """Retry failed charges after 3, 7 and 14 days; returns who paid in the end. The
    others go into dunning and churn involuntarily when the last retry fails."""
    who, fday, freason = failed.who, failed.day, failed.reason
    retry_p = np.array([0.0, 0.2, 0.35, 0.3])[freason]
    success = rng.random((len(who), 3)) < retry_p[:, None]
    recovered = success.any(axis=1)
    attempts = np.where(recovered, success.argmax(axis=1), 3)  # failed retries
    for j in range(-1, 3):
        m = attempts > j
        rows.add(
            rng,
            who[m],
            fday[m] + (RETRY_DAYS[j] if j >= 0 else 0),
            BILL_FAIL,
            item=failed.plan[m],
            cents=failed.cents[m],
            reason=freason[m],
            card=failed.card[m],
            discount=failed.discount[m],
        )
    back = who[recovered]
    back_day = fday[recovered] + RETRY_DAYS[attempts[recovered]]
    # A retry that succeeds after the card expired was paid with an updated card.
    new_card = (freason[recovered] == R_CARD) | (month_of(back_day) > st.card_exp[back])
    st.card_exp[back[new_card]] = month_of(back_day[new_card]) + rng.integers(
        24, 61, int(new_card.sum())
    )
    rows.add(
        rng,
        back,
        back_day,
        BILL_OK,
        item=failed.plan[recovered],
        cents=failed.cents[recovered],
        card=st.card_exp[back],
        discount=failed.discount[recovered],
    )
    st.hold_until[who] = fday + RETRY_DAYS[np.minimum(attempts, 2)]
    st.last_fail_week[who] = w
    lost = ~recovered
    st.status[who[lost]] = DUNNING
    st.churn_day[who[lost]] = fday[lost] + RETRY_DAYS[-1]
    return back


def addons(
    rng: np.random.Generator, rows: Rows, st: Subscribers, active: Array, d0: int, d7: int
) -> None:
    """Add-ons bought now and then by the subscribers among ``active``, on a valid card;
    only the ``business`` plan buys the onboarding package."""
    subs = active[st.is_sub[active]]
    buy = subs[rng.random(len(subs)) < 0.010 * np.exp(st.log_e[subs])]
    buy = buy[month_of(np.full(len(buy), d7 - 1)) <= st.card_exp[buy]]
    addon = np.where(
        (st.plan[buy] == 2) & (rng.random(len(buy)) < 0.1), 3, rng.integers(0, 3, len(buy))
    )
    day = uniform_days(rng, np.maximum(d0, st.signup_day[buy]), d7)
    item = len(PLANS) + addon
    rows.add(
        rng,
        buy,
        day,
        ADDON,
        item=item,
        cents=ADDON_CENTS[addon],
        card=st.card_exp[buy],
        discount=0,
    )
    refunds(rng, rows, buy, day, item, ADDON_CENTS[addon], 0.03)


def winbacks(rng: np.random.Generator, rows: Rows, st: Subscribers, d0: int) -> None:
    """A few involuntary churners come back with a new card within two months."""
    lost = np.flatnonzero((st.status == INVOLUNTARY) & (st.end_of >= d0 - 56) & (st.end_of < d0))
    back = lost[rng.random(len(lost)) < 0.015]
    day = d0 + rng.integers(0, 7, len(back), dtype=np.int32)
    st.card_exp[back] = month_of(day) + rng.integers(24, 61, len(back))
    rows.add(
        rng,
        back,
        day,
        BILL_OK,
        item=st.plan[back],
        cents=price(st.plan[back], day, st.rise_day, np.zeros(len(back), np.int8)),
        card=st.card_exp[back],
        discount=0,
    )
    st.status[back] = ACTIVE
    st.end_of[back] = NEVER
    st.churn_day[back] = NEVER
    st.log_e[back] = 0.0
    st.drift[back] = 0.0
    st.winbacks[back] += 1
    st.next_bill[back] = bill_day(month_of(day) + 1, st.bill_dom[back])
