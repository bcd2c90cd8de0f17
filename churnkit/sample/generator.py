"""Seeded, realistic sample data: a subscription business that also sells one-off items.

Used by ``churnkit sample``, the tests and the benchmarks, so it must be fast: the
simulation is vectorised over customers with numpy and loops over weeks only.
Behaviour follows DOMAIN.md. Voluntary churn has a weekly hazard that rises when a
customer's usage declines (the decline shows in the usage export weeks before the
cancel), after a price rise, after an unresolved complaint, when a promotion ends and
when a referral contact has left. Involuntary churn happens when a card expires or a
charge is declined and the dunning retries fail; billing then simply stops. Shop
customers buy irregularly and churn by lapsing. The transactions export mimics a real
billing/order CSV, with a small share of messy rows for ingest to reject, repair or
de-duplicate. Nothing on a row reveals the future.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.errors import UsageError
from churnkit.core.workspace import atomic_path

__all__ = [
    "FILES",
    "RELATION_COLUMNS",
    "TRANSACTION_COLUMNS",
    "USAGE_COLUMNS",
    "SampleResult",
    "SyntheticData",
    "generate",
    "make_sample",
    "write_sample",
]

Array = npt.NDArray[Any]

TRANSACTION_COLUMNS = (
    "Customer ID",
    "Invoice Date",
    "Amount",
    "Status",
    "Plan",
    "Reason",
    "Transaction ID",
    "Card Exp",
    "Channel",
    "Discount",
)
USAGE_COLUMNS = ("user_id", "timestamp", "event", "count")
RELATION_COLUMNS = ("customer_id", "related_customer_id", "kind", "since")
FILES = {
    "transactions": "transactions.csv",
    "usage": "usage.csv.gz",
    "relations": "relations.csv",
}

# --- the business ---------------------------------------------------------------------

PLANS = ("basic", "pro", "business")
PLAN_CENTS = np.array([1900, 4900, 19900])
PLAN_SHARE = (0.55, 0.33, 0.12)
PRICE_RISE_PLAN = 1  # pro: 49.00 -> 59.00 ...
PRICE_RISE_CENTS = 5900
PRICE_RISE_AT = 0.75  # ... from the first of the month three quarters into the period
ADDONS = ("extra_seats", "storage_pack", "priority_support", "onboarding_package")
ADDON_CENTS = np.array([2500, 900, 4900, 145000])
SHOP_ITEMS = ("starter_kit", "template_pack", "training_session", "bulk_order")
SHOP_CENTS = np.array([2900, 1200, 14900, 123450])
SHOP_ITEM_SHARE = (0.45, 0.38, 0.15, 0.02)
ITEMS = PLANS + ADDONS + SHOP_ITEMS
CHANNELS = ("web", "partner", "sales")
USAGE_EVENTS = ("login", "report_run", "export")
USAGE_RATE = np.array([[5.0, 1.0, 0.3], [7.0, 2.5, 0.6], [9.0, 5.0, 1.2]])  # per plan, weekly
SUBSCRIBER_SHARE = 0.75
REFERRAL_SHARE = 0.18
RETRY_DAYS = np.array([3, 7, 14])
NONE = -1
NEVER = np.iinfo(np.int32).max

# Row types of the simulation and the status strings an export shows for each (a
# spelling listed twice is twice as common).
SIGNUP, BILL_OK, BILL_FAIL, ADDON, ORDER = range(5)
REFUND, CANCEL, COMPLAINT, PLAN_CHANGE, PENDING = range(5, 10)
STATUS_VARIANTS: tuple[tuple[str, ...], ...] = (
    ("signup",),
    ("paid", "paid", "Succeeded"),
    ("failed", "declined", "card_declined"),
    ("paid", "Succeeded"),
    ("COMPLETED", "completed", "paid"),
    ("refunded", "refunded", "Refunded", "chargeback"),
    ("canceled", "cancelled", "Canceled"),
    ("complaint",),
    ("plan_change",),
    ("pending",),
)
STATUSES = tuple(s for variants in STATUS_VARIANTS for s in variants)
_STATUS_OFFSET = np.cumsum([0] + [len(v) for v in STATUS_VARIANTS])[:-1]
_STATUS_COUNT = np.array([len(v) for v in STATUS_VARIANTS])
NO_AMOUNT = np.isin(np.arange(10), [SIGNUP, CANCEL, COMPLAINT, PLAN_CHANGE])

REASONS = (
    "",
    "card_expired",
    "insufficient_funds",
    "do_not_honor",
    "too_expensive",
    "not_using",
    "switched_competitor",
    "poor_service",
    "missing_features",
    "moving",
    "other",
    "billing_issue",
    "bug",
    "slow_support",
    "feature_request",
    "upgrade",
    "downgrade",
    "requested_by_customer",
    "duplicate_charge",
)
R_CARD, R_FUNDS, R_DNH = 1, 2, 3
R_CANCEL = np.arange(4, 11)  # too_expensive .. other
R_COMPLAINT = np.arange(11, 15)
R_UPGRADE, R_DOWNGRADE = 15, 16
R_REFUND = np.array([17, 18])

# Customer states.
PENDING_SIGNUP, ACTIVE, DUNNING, VOLUNTARY, INVOLUNTARY, LAPSED = range(6)

# Kinds of messy rows (0: clean).
MESS_KINDS = (
    "clean",
    "blank_customer_id",
    "unparseable_date",
    "day_first_date",
    "currency_amount",
    "unparseable_amount",
    "duplicate",
    "stray_whitespace",
)
(
    CLEAN,
    BLANK_ID,
    BAD_DATE,
    DAY_FIRST,
    CURRENCY,
    BAD_AMOUNT,
    DUPLICATE,
    WHITESPACE,
) = range(len(MESS_KINDS))
MESS_SHARE = np.array([0.0, 0.07, 0.08, 0.25, 0.20, 0.10, 0.15, 0.15])
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class SyntheticData:
    """The three exports, shaped as written (transactions: strings as in the CSV), plus
    the ground truth per customer for tests (never written: no export carries it)."""

    transactions: pl.DataFrame
    usage: pl.DataFrame
    relations: pl.DataFrame
    customers: pl.DataFrame


@dataclass(frozen=True)
class SampleResult:
    """What ``make_sample`` wrote: paths and row counts per file, and the messy rows."""

    paths: dict[str, Path]
    rows: dict[str, int]
    customers: int
    seed: int
    start: date
    end: date
    messy_rows: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "seed": self.seed,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "files": {
                name: {"path": str(path), "rows": self.rows[name]}
                for name, path in self.paths.items()
            },
            "messy_rows": self.messy_rows,
        }


def generate(
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
) -> SyntheticData:
    """Simulate ``customers`` customers signing up over ``months`` months up to ``end``.

    The same arguments give the same frames, bit for bit; ``messy_share=0`` gives
    clean data (no rejects, no duplicates).
    """
    world = _simulate(customers, seed=seed, end=end, months=months)
    layout = _layout(world, messy_share)
    transactions = pl.concat(list(_transaction_chunks(world, layout, CHUNK_ROWS)))
    usage_chunks = list(_usage_chunks(world))
    usage = pl.concat(usage_chunks) if usage_chunks else _empty_usage()
    return SyntheticData(transactions, usage, _relations_frame(world), _customers_frame(world))


def write_sample(
    out_dir: Path,
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
) -> dict[str, Path]:
    """Write ``transactions.csv``, ``usage.csv.gz`` and ``relations.csv`` into ``out_dir``."""
    return make_sample(
        out_dir, customers, seed=seed, end=end, months=months, messy_share=messy_share
    ).paths


def make_sample(
    out_dir: Path,
    customers: int,
    *,
    seed: int = 7,
    end: date = date(2026, 10, 31),
    months: int = 24,
    messy_share: float = 0.015,
) -> SampleResult:
    """Like ``write_sample``, returning row counts too.

    Output is formatted and written in chunks, so memory stays bounded by the compact
    simulation arrays rather than by millions of formatted strings. Each file appears
    atomically; the gzip header carries no time stamp, so equal seeds give equal bytes.
    """
    world = _simulate(customers, seed=seed, end=end, months=months)
    layout = _layout(world, messy_share)
    paths = {name: out_dir / filename for name, filename in FILES.items()}
    rows: dict[str, int] = {}
    with atomic_path(paths["transactions"]) as tmp, open(tmp, "wb") as handle:
        rows["transactions"] = _write_chunks(
            handle.write, _transaction_chunks(world, layout, CHUNK_ROWS), TRANSACTION_COLUMNS
        )
    with (
        atomic_path(paths["usage"]) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=3) as handle,
    ):
        rows["usage"] = _write_chunks(handle.write, _usage_chunks(world), USAGE_COLUMNS)
    relations = _relations_frame(world)
    with atomic_path(paths["relations"]) as tmp:
        relations.write_csv(tmp)
    rows["relations"] = relations.height
    counts = np.bincount(layout.mess, minlength=len(MESS_KINDS))
    messy = {kind: int(counts[i]) for i, kind in enumerate(MESS_KINDS) if i != CLEAN}
    return SampleResult(
        paths=paths,
        rows=rows,
        customers=customers,
        seed=seed,
        start=_to_date(world.start_day),
        end=end,
        messy_rows=messy,
    )


def _write_chunks(
    write: Callable[[bytes], object], chunks: Iterator[pl.DataFrame], header: tuple[str, ...]
) -> int:
    """Write CSV chunks; the previous chunk is written (and compressed) on a second
    thread while the next one is formatted, which roughly halves the time for gzip."""
    total, first = 0, True
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[object] | None = None
        for frame in chunks:
            buffer = io.BytesIO()
            frame.write_csv(buffer, include_header=first)
            total, first = total + frame.height, False
            if pending is not None:
                pending.result()
            pending = pool.submit(write, buffer.getvalue())
        if pending is not None:
            pending.result()
    if first:
        write((",".join(header) + "\n").encode())
    return total


# --- the simulation -------------------------------------------------------------------


_ROW_COLUMNS = ("cust", "day", "sec", "kind", "item", "cents", "reason", "card", "discount")


@dataclass
class _Rows:
    """Transaction rows as compact columns, appended week by week."""

    parts: dict[str, list[Array]] = field(default_factory=dict)

    def add(
        self,
        rng: np.random.Generator,
        cust: Array,
        day: Array | int,
        kind: int,
        *,
        item: Array | int = NONE,
        cents: Array | int = 0,
        reason: Array | int = 0,
        card: Array | int = NONE,
        discount: Array | int = NONE,
        sec: Array | None = None,
    ) -> None:
        n = len(cust)
        if n == 0:
            return
        columns: tuple[Array, ...] = (
            cust.astype(np.int32),
            np.broadcast_to(day, n).astype(np.int32),
            rng.integers(0, 86_400, n, dtype=np.int32) if sec is None else sec.astype(np.int32),
            np.full(n, kind, np.int8),
            np.broadcast_to(item, n).astype(np.int16),
            np.broadcast_to(cents, n).astype(np.int32),
            np.broadcast_to(reason, n).astype(np.int8),
            np.broadcast_to(card, n).astype(np.int32),
            np.broadcast_to(discount, n).astype(np.int8),
        )
        for name, values in zip(_ROW_COLUMNS, columns, strict=True):
            self.parts.setdefault(name, []).append(values)

    def finish(self) -> dict[str, Array]:
        return {
            name: np.concatenate(self.parts[name]) if name in self.parts else np.zeros(0, np.int32)
            for name in _ROW_COLUMNS
        }


@dataclass
class _State:
    """Per-customer traits (fixed at signup) and state (changed week by week)."""

    rise_day: int
    signup_day: Array
    is_sub: Array
    plan: Array
    channel: Array
    promo_pct: Array
    promo_left: Array
    price_sensitive: Array
    discount_driven: Array
    shop_rate: Array
    basket: Array
    lam: Array
    decline_p: Array
    bill_dom: Array
    card_exp: Array
    rise_seen: Array
    status: Array
    end_of: Array
    next_bill: Array
    hold_until: Array
    churn_day: Array
    log_e: Array
    drift: Array
    complaint_until: Array  # weeks from here on
    price_until: Array
    promo_until: Array
    network_until: Array
    last_fail_week: Array
    winbacks: Array
    rel_a: Array = field(default_factory=lambda: np.zeros(0, np.int32))  # referred
    rel_b: Array = field(default_factory=lambda: np.zeros(0, np.int32))  # referrer
    rel_days: list[Array] = field(default_factory=list)


def _customers(
    rng: np.random.Generator, n: int, start_day: int, end_day: int, rise_day: int
) -> _State:
    """Draw who the customers are; ids follow signup order, signups grow over time."""
    growth = 0.8
    u = rng.random(n)
    x = (np.sqrt(1 + 2 * growth * u * (1 + growth / 2)) - 1) / growth
    signup_day = np.sort(start_day + (x * (end_day - start_day + 1)).astype(np.int64))
    is_sub = rng.random(n) < SUBSCRIBER_SHARE
    plan = rng.choice(3, n, p=PLAN_SHARE).astype(np.int8)
    channel = np.where(
        plan == 2, rng.choice(3, n, p=(0.2, 0.2, 0.6)), rng.choice(3, n, p=(0.65, 0.25, 0.10))
    ).astype(np.int8)
    promo = is_sub & (channel != 2) & (rng.random(n) < 0.22)
    month = _month_of(signup_day)

    def full(value: int, dtype: type[np.generic] = np.int32) -> Array:
        return np.full(n, value, dtype)

    return _State(
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
        lam=USAGE_RATE[plan] * rng.lognormal(0.0, 0.45, (n, 1)),
        # A few customers are short of money often: declines repeat for them.
        decline_p=np.where(rng.random(n) < 0.12, 0.2, 0.01) * np.array([1.3, 1.0, 0.7])[plan],
        bill_dom=(signup_day - _first_of_month(month) + 1).astype(np.int16),
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


@dataclass
class _World:
    """Everything the simulation produced, as compact arrays."""

    seed: int
    n: int
    start_day: int
    end_day: int
    rows: dict[str, Array]
    usage: list[tuple[int, Array, Array, Array]]  # (week start day, cust, event, count)
    first_plan: Array
    st: _State


def _simulate(customers: int, *, seed: int, end: date, months: int) -> _World:
    """Run the business week by week; each step acts on all customers at once."""
    if customers < 1:
        raise UsageError(f"customers must be at least 1; got {customers}")
    if months < 1:
        raise UsageError(f"months must be at least 1; got {months}")
    rng = np.random.default_rng(seed)
    n = customers
    end_day = _day(end)
    end_month = int(_month_of(np.array([end_day]))[0])
    first_month = end_month - months + 1
    start_day = int(_first_of_month(np.array([first_month]))[0])
    rise_day = int(_first_of_month(np.array([first_month + round(PRICE_RISE_AT * months)]))[0])
    week0 = start_day - (start_day + 3) % 7  # the Monday on or before the start
    n_weeks = (end_day - week0) // 7 + 1
    st = _customers(rng, n, start_day, end_day, rise_day)
    first_plan = st.plan.copy()
    sale_week = rng.random(n_weeks) < 0.15
    rows = _Rows()
    usage: list[tuple[int, Array, Array, Array]] = []

    for w in range(n_weeks):
        d0 = week0 + 7 * w
        d7 = min(d0 + 7, end_day + 1)
        ended = np.zeros(n, bool)
        _signups(rng, rows, st, w, d0, d7, bool(sale_week[w]))

        # Dunning that ran out of retries ends the subscription: billing stops, no cancel row.
        due = np.flatnonzero((st.status == DUNNING) & (st.churn_day < d7))
        st.status[due] = INVOLUNTARY
        st.end_of[due] = st.churn_day[due]
        ended[due] = True

        _engagement(rng, st, w)
        _cancels_and_lapses(rng, rows, st, w, d0, ended)
        _plan_changes(rng, rows, st, w, d0, d7)
        billable = (st.status == ACTIVE) | ((st.status == VOLUNTARY) & ended)
        bill = np.flatnonzero(billable & (st.next_bill < np.minimum(d7, st.end_of)))
        _billing(rng, rows, st, w, bill)
        _usage(rng, usage, st, d0, d7, ended)
        _purchases(rng, rows, st, d0, d7, bool(sale_week[w]))
        _complaints(rng, rows, st, w, d0, d7)

        # A contact who left raises the hazard of those tied to them for a quarter.
        st.network_until[st.rel_b[ended[st.rel_a]]] = w + 13
        st.network_until[st.rel_a[ended[st.rel_b]]] = w + 13
        _winbacks(rng, rows, st, d0)

    raw = rows.finish()
    keep = raw["day"] <= end_day
    return _World(
        seed=seed,
        n=n,
        start_day=start_day,
        end_day=end_day,
        rows={k: v[keep] for k, v in raw.items()},
        usage=usage,
        first_plan=first_plan,
        st=st,
    )


def _signups(
    rng: np.random.Generator, rows: _Rows, st: _State, w: int, d0: int, d7: int, sale: bool
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
        cents=_price(st.plan[subs], day, st.rise_day, st.promo_pct[subs]),
        card=st.card_exp[subs],
        discount=st.promo_pct[subs],
        sec=sec + rng.integers(5, 300, len(subs), dtype=np.int32),
    )
    st.promo_left[subs] = np.maximum(st.promo_left[subs] - 1, 0)
    st.next_bill[subs] = _bill_day(_month_of(day) + 1, st.bill_dom[subs])
    shop = new[~st.is_sub[new]]
    _shop_orders(rng, rows, st, shop, st.signup_day[shop], sale)

    referred = subs[rng.random(len(subs)) < REFERRAL_SHARE]
    pool = np.flatnonzero((st.status == ACTIVE) & st.is_sub & (st.signup_day < d0))
    if len(referred) and len(pool):
        referrer = pool[rng.integers(0, len(pool), len(referred))]
        st.rel_a = np.concatenate([st.rel_a, referred.astype(np.int32)])
        st.rel_b = np.concatenate([st.rel_b, referrer.astype(np.int32)])
        st.rel_days.append(st.signup_day[referred])


def _engagement(rng: np.random.Generator, st: _State, w: int) -> None:
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


def _cancel_hazard(st: _State, w: int, d0: int, who: Array, contacts: Array) -> Array:
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


def _cancels_and_lapses(
    rng: np.random.Generator, rows: _Rows, st: _State, w: int, d0: int, ended: Array
) -> None:
    """Subscribers cancel (a row with a reason); shop customers just stop buying."""
    n = len(st.status)
    cand = np.flatnonzero((st.status == ACTIVE) & (st.hold_until < d0) & (st.signup_day < d0))
    contacts = np.zeros(n, bool)
    active = st.status == ACTIVE
    contacts[st.rel_a[active[st.rel_b]]] = True
    contacts[st.rel_b[active[st.rel_a]]] = True

    subs = cand[st.is_sub[cand]]
    hazard = _cancel_hazard(st, w, d0, subs, contacts)
    cancel = subs[rng.random(len(subs)) < -np.expm1(-hazard)]
    day = d0 + rng.integers(0, 7, len(cancel), dtype=np.int32)
    st.status[cancel] = VOLUNTARY
    st.end_of[cancel] = day
    ended[cancel] = True
    rows.add(
        rng, cancel, day, CANCEL, item=st.plan[cancel], reason=_cancel_reasons(rng, st, w, cancel)
    )

    shop = cand[~st.is_sub[cand]]
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


def _cancel_reasons(rng: np.random.Generator, st: _State, w: int, who: Array) -> Array:
    """The reason a customer gives follows what drove them, with noise; staff
    indifference (poor_service) is the largest share, as in DOMAIN.md."""
    k = len(who)
    price = (st.price_until[who] >= w) | (st.promo_until[who] >= w)
    weights = np.column_stack(
        [
            0.15 + 3.0 * price + 0.3 * st.price_sensitive[who],
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


def _plan_changes(
    rng: np.random.Generator, rows: _Rows, st: _State, w: int, d0: int, d7: int
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
        _days(rng, np.maximum(d0, st.signup_day[who]), d7),
        PLAN_CHANGE,
        item=new_plan,
        reason=np.where(up[moved], R_UPGRADE, R_DOWNGRADE),
    )
    st.plan[who] = new_plan
    st.price_until[cand[down]] = -1
    st.rise_seen[who] |= d0 >= st.rise_day


def _billing(rng: np.random.Generator, rows: _Rows, st: _State, w: int, bill: Array) -> None:
    """Charge the monthly fee: expired cards fail unless updated, some charges are
    declined; retries after 3, 7 and 14 days recover or end in involuntary churn."""
    k = len(bill)
    if k == 0:
        return
    day = st.next_bill[bill]
    month = _month_of(day)
    plan = st.plan[bill]
    discount = np.where(st.promo_left[bill] > 0, st.promo_pct[bill], 0)
    cents = _price(plan, day, st.rise_day, discount)
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
    card = st.card_exp[bill]
    ok = reason == 0
    rows.add(
        rng,
        bill[ok],
        day[ok],
        BILL_OK,
        item=plan[ok],
        cents=cents[ok],
        card=card[ok],
        discount=discount[ok],
    )
    _refunds(rng, rows, bill[ok], day[ok], plan[ok], cents[ok], 0.008)

    # Someone who cancels later this week does not go through dunning.
    failed = ~ok & (st.status[bill] == ACTIVE)
    who, fday, freason = bill[failed], day[failed], reason[failed]
    fcents, fcard, fdisc, fplan = cents[failed], card[failed], discount[failed], plan[failed]
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
            item=fplan[m],
            cents=fcents[m],
            reason=freason[m],
            card=fcard[m],
            discount=fdisc[m],
        )
    back = who[recovered]
    back_day = fday[recovered] + RETRY_DAYS[attempts[recovered]]
    # A retry that succeeds after the card expired was paid with an updated card.
    new_card = (freason[recovered] == R_CARD) | (_month_of(back_day) > st.card_exp[back])
    st.card_exp[back[new_card]] = _month_of(back_day[new_card]) + rng.integers(
        24, 61, int(new_card.sum())
    )
    rows.add(
        rng,
        back,
        back_day,
        BILL_OK,
        item=fplan[recovered],
        cents=fcents[recovered],
        card=st.card_exp[back],
        discount=fdisc[recovered],
    )
    st.hold_until[who] = fday + RETRY_DAYS[np.minimum(attempts, 2)]
    st.last_fail_week[who] = w
    lost = ~recovered
    st.status[who[lost]] = DUNNING
    st.churn_day[who[lost]] = fday[lost] + RETRY_DAYS[-1]

    paid = np.concatenate([bill[ok], back])
    ending = paid[st.promo_left[paid] == 1]
    st.promo_until[ending] = w + 16  # the next charge is at full price
    st.promo_left[paid] = np.maximum(st.promo_left[paid] - 1, 0)
    st.next_bill[bill] = _bill_day(month + 1, st.bill_dom[bill])


def _usage(
    rng: np.random.Generator,
    usage: list[tuple[int, Array, Array, Array]],
    st: _State,
    d0: int,
    d7: int,
    ended: Array,
) -> None:
    """Weekly counts per event for the days of the week a subscriber was live."""
    live = (st.status == ACTIVE) | (st.status == DUNNING) | ended
    who = np.flatnonzero(st.is_sub & live)
    days = np.minimum(d7, st.end_of[who]).astype(np.int64) - np.maximum(d0, st.signup_day[who])
    keep = days > 0
    who, days = who[keep], np.minimum(days[keep], 7)
    counts = rng.poisson(st.lam[who] * (np.exp(st.log_e[who]) * days / 7.0)[:, None])
    row, event = np.nonzero(counts)
    if len(row):
        usage.append(
            (
                d0,
                who[row].astype(np.int32),
                event.astype(np.int8),
                counts[row, event].astype(np.int32),
            )
        )


def _purchases(
    rng: np.random.Generator, rows: _Rows, st: _State, d0: int, d7: int, sale: bool
) -> None:
    """Add-ons bought by subscribers and orders of shop customers."""
    active = np.flatnonzero(st.status == ACTIVE)
    subs = active[st.is_sub[active]]
    buy = subs[rng.random(len(subs)) < 0.010 * np.exp(st.log_e[subs])]
    buy = buy[_month_of(np.full(len(buy), d7 - 1)) <= st.card_exp[buy]]  # a valid card
    addon = np.where(
        (st.plan[buy] == 2) & (rng.random(len(buy)) < 0.1), 3, rng.integers(0, 3, len(buy))
    )
    day = _days(rng, np.maximum(d0, st.signup_day[buy]), d7)
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
    _refunds(rng, rows, buy, day, item, ADDON_CENTS[addon], 0.03)

    shop = active[~st.is_sub[active] & (st.signup_day[active] < d0)]
    if sale:
        boost = np.where(st.discount_driven[shop], 3.0, 1.3)
    else:
        boost = np.where(st.discount_driven[shop], 0.5, 1.0)
    p = -np.expm1(-st.shop_rate[shop] * np.exp(st.log_e[shop]) * boost)
    buyers = shop[rng.random(len(shop)) < p]
    _shop_orders(rng, rows, st, buyers, _days(rng, np.full(len(buyers), d0), d7), sale)


def _shop_orders(
    rng: np.random.Generator, rows: _Rows, st: _State, who: Array, day: Array, sale: bool
) -> None:
    """One-off orders; discount-driven customers buy mostly at a discount."""
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
    item = len(PLANS) + len(ADDONS) + pick
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
    _refunds(rng, rows, who, day, item, cents, 0.02)


def _refunds(
    rng: np.random.Generator,
    rows: _Rows,
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


def _complaints(
    rng: np.random.Generator, rows: _Rows, st: _State, w: int, d0: int, d7: int
) -> None:
    """Complaints come more often after a failed payment or when things go badly; a
    resolved one restores engagement, an unresolved one starts a decline."""
    live = np.flatnonzero((st.status == ACTIVE) | (st.status == DUNNING))
    after_failure = w - st.last_fail_week[live] <= 4
    p = (
        np.where(st.is_sub[live], 0.004, 0.002)
        * np.where(after_failure, 4.0, 1.0)
        * np.where(st.log_e[live] < -0.7, 2.0, 1.0)
    )
    hit = rng.random(len(live)) < p
    who = live[hit]
    rows.add(
        rng,
        who,
        _days(rng, np.maximum(d0, st.signup_day[who]), d7),
        COMPLAINT,
        item=np.where(st.is_sub[who], st.plan[who], NONE),
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


def _winbacks(rng: np.random.Generator, rows: _Rows, st: _State, d0: int) -> None:
    """A few involuntary churners come back with a new card within two months."""
    lost = np.flatnonzero((st.status == INVOLUNTARY) & (st.end_of >= d0 - 56) & (st.end_of < d0))
    back = lost[rng.random(len(lost)) < 0.015]
    day = d0 + rng.integers(0, 7, len(back), dtype=np.int32)
    st.card_exp[back] = _month_of(day) + rng.integers(24, 61, len(back))
    rows.add(
        rng,
        back,
        day,
        BILL_OK,
        item=st.plan[back],
        cents=_price(st.plan[back], day, st.rise_day, np.zeros(len(back), np.int8)),
        card=st.card_exp[back],
        discount=0,
    )
    st.status[back] = ACTIVE
    st.end_of[back] = NEVER
    st.churn_day[back] = NEVER
    st.log_e[back] = 0.0
    st.drift[back] = 0.0
    st.winbacks[back] += 1
    st.next_bill[back] = _bill_day(_month_of(day) + 1, st.bill_dom[back])


def _days(rng: np.random.Generator, first: Array, stop: int) -> Array:
    """A day drawn uniformly from ``[first, stop)`` per customer (events never precede
    the signup they belong to)."""
    days: Array = (first + rng.random(len(first)) * (stop - first)).astype(np.int32)
    return days


def _price(plan: Array, day: Array, rise_day: int, discount: Array) -> Array:
    list_price = np.where(
        (plan == PRICE_RISE_PLAN) & (day >= rise_day), PRICE_RISE_CENTS, PLAN_CENTS[plan]
    )
    return np.round(list_price * (100 - discount.astype(np.int64)) / 100).astype(np.int64)


# --- calendar helpers (days and months since 1970) ------------------------------------


def _day(value: date) -> int:
    return (value - date(1970, 1, 1)).days


def _to_date(day: int) -> date:
    return date.fromordinal(date(1970, 1, 1).toordinal() + day)


def _month_of(days: Array) -> Array:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _first_of_month(months: Array) -> Array:
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def _bill_day(months: Array, dom: Array) -> Array:
    """The billing anniversary in a month: day ``dom``, or the month's last day."""
    first = _first_of_month(months)
    length = _first_of_month(months + 1) - first
    day: Array = (first + np.minimum(dom, length) - 1).astype(np.int32)
    return day


# --- the exports ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where each simulated row lands in the export, and how it is spelled."""

    order: Array  # row index per output line; a duplicated row appears twice
    mess: Array  # messy-row kind per output line
    variant: Array  # a random pick per line: which bad date, which currency, ...
    status: Array  # index into STATUSES, per row
    txid: Array  # transaction number, per row


def _layout(world: _World, messy_share: float) -> _Layout:
    """Sort rows by time, pick status spellings and the messy lines."""
    if not 0.0 <= messy_share <= 0.5:
        raise UsageError(f"messy_share must be between 0 and 0.5; got {messy_share}")
    rng = np.random.default_rng([world.seed, 1])
    rows = world.rows
    m = len(rows["day"])
    kind = rows["kind"].astype(np.int64)
    status = _STATUS_OFFSET[kind] + (rng.random(m) * _STATUS_COUNT[kind]).astype(np.int64)
    ts = rows["day"].astype(np.int64) * 86_400 + rows["sec"]
    order = np.argsort(ts, kind="stable")
    txid = np.empty(m, np.int64)
    txid[order] = np.arange(1, m + 1)

    # Positions below are in time order; only the few messy lines are touched.
    has_amount = ~NO_AMOUNT[kind[order]]
    pos = np.flatnonzero(rng.random(m) < messy_share)
    picked = rng.choice(len(MESS_KINDS), len(pos), p=MESS_SHARE / MESS_SHARE.sum())
    money_only = ~has_amount[pos] & np.isin(picked, [CURRENCY, BAD_AMOUNT])
    picked = np.where(money_only, WHITESPACE, picked)
    mess = np.zeros(m, np.int8)
    mess[pos] = picked
    variant = rng.integers(0, 6, m).astype(np.int8)
    # Currency spelling shows most on large amounts ("$1,234.50", thousands separators)
    # and refunds (accounting "(12.00)"): spell more of those so that both appear.
    cents = rows["cents"][order]
    quirky = np.flatnonzero(((np.abs(cents) >= 100_000) | (cents < 0)) & has_amount & (mess == 0))
    quirky = quirky[rng.random(len(quirky)) < min(1.0, 10 * messy_share)]
    mess[quirky] = CURRENCY
    variant[quirky] = 0
    if len(pos):
        # The first messy line is an impossible day-first date ("31/02/2025"): any
        # head-of-file sample that holds a slash date then also proves the order.
        mess[pos[0]] = BAD_DATE
        variant[pos[0]] = 1

    copies = np.where(mess == DUPLICATE, 2, 1)
    lines = np.repeat(order, copies)
    line_mess = np.repeat(mess, copies)
    line_variant = np.repeat(variant, copies)
    first_copy = np.concatenate([[True], lines[1:] != lines[:-1]])
    line_mess = np.where((line_mess == DUPLICATE) & first_copy, CLEAN, line_mess)
    return _Layout(lines, line_mess, line_variant, status, txid)


@dataclass(frozen=True)
class _Labels:
    """Every string a column can hold, computed once: formatting a line is then a
    gather by index, which is far cheaper than formatting millions of values."""

    customer: pl.Series
    day: pl.Series
    day_lo: int
    time: pl.Series
    card: pl.Series  # the last entry is null
    card_lo: int
    fraction: pl.Series  # ".00" .. ".99"


def _customer_ids(n: int) -> pl.Series:
    width = max(6, len(str(n)))
    ids = pl.int_range(1, n + 1, eager=True).cast(pl.String).str.zfill(width)
    return ("C" + ids).alias("customer_id")


def _labels(world: _World) -> _Labels:
    days = np.arange(world.start_day - 7, world.end_day + 1)
    card = world.rows["card"]
    card = card[card >= 0]
    card_lo, card_hi = (int(card.min()), int(card.max())) if len(card) else (0, 0)
    months = np.arange(card_lo, card_hi + 1)
    card_text = pl.DataFrame({"m": months}).select(
        pl.concat_str(
            (pl.col("m") % 12 + 1).cast(pl.String).str.zfill(2),
            pl.lit("/"),
            ((pl.col("m") // 12 + 1970) % 100).cast(pl.String).str.zfill(2),
        )
    )
    seconds = np.arange(86_400)
    time_text = pl.DataFrame({"s": seconds}).select(
        pl.concat_str(
            (pl.col("s") // 3600).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (pl.col("s") // 60 % 60).cast(pl.String).str.zfill(2),
            pl.lit(":"),
            (pl.col("s") % 60).cast(pl.String).str.zfill(2),
        )
    )
    return _Labels(
        customer=_customer_ids(world.n),
        day=pl.Series(days.astype("datetime64[D]")).dt.strftime("%Y-%m-%d"),
        day_lo=int(days[0]),
        time=time_text.to_series(),
        card=pl.concat([card_text.to_series(), pl.Series([None], dtype=pl.String)]),
        card_lo=card_lo,
        fraction=pl.Series([f".{i:02d}" for i in range(100)]),
    )


def _pick(names: tuple[str, ...], index: Array) -> pl.Series:
    """``names[index]``, null where ``index`` is negative."""
    table = pl.Series([*names, None], dtype=pl.String)
    return table.gather(np.where(index < 0, len(names), index))


def _money(cents: pl.Expr, *, thousands: bool = False) -> pl.Expr:
    whole = cents.abs() // 100
    fraction = (cents.abs() % 100).cast(pl.String).str.zfill(2)
    text = whole.cast(pl.String)
    if thousands:
        text = (
            pl.when(whole >= 1000)
            .then(
                (whole // 1000).cast(pl.String) + "," + (whole % 1000).cast(pl.String).str.zfill(3)
            )
            .otherwise(text)
        )
    return text + "." + fraction


def _transaction_chunks(world: _World, layout: _Layout, chunk: int) -> Iterator[pl.DataFrame]:
    """The export's lines, formatted as strings, ``chunk`` lines at a time."""
    rows = world.rows
    labels = _labels(world)
    for start in range(0, len(layout.order), chunk):
        idx = layout.order[start : start + chunk]
        cust = rows["cust"][idx]
        cents = rows["cents"][idx].astype(np.int64)
        kind = rows["kind"][idx]
        card = rows["card"][idx]
        discount = rows["discount"][idx]
        parts = pl.DataFrame(
            {
                "customer": labels.customer.gather(cust),
                "date": labels.day.gather(rows["day"][idx] - labels.day_lo),
                "time": labels.time.gather(rows["sec"][idx]),
                "sign": _pick(("", "-"), np.where(NO_AMOUNT[kind], -1, cents < 0)),
                "whole": np.abs(cents) // 100,
                "fraction": labels.fraction.gather(np.abs(cents) % 100),
                "status": _pick(STATUSES, layout.status[idx]),
                "plan": _pick(ITEMS, rows["item"][idx]),
                "reason": _pick(
                    REASONS, np.where(rows["reason"][idx] > 0, rows["reason"][idx], -1)
                ),
                "txid": layout.txid[idx],
                "card": labels.card.gather(np.where(card >= 0, card - labels.card_lo, -1)),
                "channel": _pick(CHANNELS, world.st.channel[cust]),
                "discount": _pick(
                    tuple(str(i) for i in range(101)), np.where(discount >= 0, discount, -1)
                ),
            }
        )
        frame = parts.select(
            pl.col("customer").alias("Customer ID"),
            pl.concat_str("date", "time", separator=" ").alias("Invoice Date"),
            pl.concat_str("sign", pl.col("whole").cast(pl.String), "fraction").alias("Amount"),
            pl.col("status").alias("Status"),
            pl.col("plan").alias("Plan"),
            pl.col("reason").alias("Reason"),
            pl.concat_str(pl.lit("T"), pl.col("txid").cast(pl.String).str.zfill(9)).alias(
                "Transaction ID"
            ),
            pl.col("card").alias("Card Exp"),
            pl.col("channel").alias("Channel"),
            pl.col("discount").alias("Discount"),
        )
        mess = layout.mess[start : start + chunk]
        messy = np.flatnonzero((mess != CLEAN) & (mess != DUPLICATE))
        if len(messy):
            frame = _mess_up(
                frame,
                messy,
                pl.DataFrame(
                    {
                        "mess": mess[messy],
                        "variant": layout.variant[start : start + chunk][messy],
                        "cents": cents[messy],
                        "day": rows["day"][idx[messy]].astype("datetime64[D]"),
                        "sec": rows["sec"][idx[messy]],
                    }
                ),
            )
        yield frame


def _mess_up(frame: pl.DataFrame, where: Array, raw: pl.DataFrame) -> pl.DataFrame:
    """Rewrite the messy lines (a small share) the way broken exports spell things."""
    clean = frame[where]
    mess, variant, cents = pl.col("mess"), pl.col("variant"), pl.col("cents")
    ts = pl.col("day").cast(pl.Datetime("us")) + pl.duration(seconds=pl.col("sec"))
    pad = variant % 3
    customer, amount, status = (pl.col(c) for c in ("Customer ID", "Amount", "Status"))
    currency = (
        pl.when(cents < 0)
        .then(pl.lit("(") + _money(cents) + ")")
        .when(variant % 3 == 0)
        .then(pl.lit("$") + _money(cents, thousands=True))
        .when(variant % 3 == 1)
        .then(pl.lit("€") + _money(cents))
        .otherwise(pl.lit("USD ") + _money(cents))
    )
    fixed = pl.concat([clean, raw], how="horizontal").select(
        pl.when(mess == BLANK_ID)
        .then(None)
        .when((mess == WHITESPACE) & (pad == 0))
        .then(pl.lit(" ") + customer + " ")
        .otherwise(customer)
        .alias("Customer ID"),
        pl.when((mess == BAD_DATE) & (variant % 2 == 0))
        .then(pl.lit("not a date"))
        .when(mess == BAD_DATE)
        .then(pl.lit("31/02/") + ts.dt.year().cast(pl.String))
        .when(mess == DAY_FIRST)
        .then(ts.dt.strftime("%d/%m/%Y %H:%M"))
        .otherwise(pl.col("Invoice Date"))
        .alias("Invoice Date"),
        pl.when(amount.is_null())
        .then(None)
        .when(mess == CURRENCY)
        .then(currency)
        .when((mess == BAD_AMOUNT) & (variant % 2 == 0))
        .then(pl.lit("n/a"))
        .when(mess == BAD_AMOUNT)
        .then(pl.lit("12..5"))
        .when((mess == WHITESPACE) & (pad == 1))
        .then(pl.lit(" ") + amount + "  ")
        .otherwise(amount)
        .alias("Amount"),
        pl.when((mess == WHITESPACE) & ((pad == 2) | ((pad == 1) & amount.is_null())))
        .then(pl.lit("  ") + status + " ")
        .otherwise(status)
        .alias("Status"),
    )
    positions = pl.Series(where)
    return frame.with_columns(frame[name].scatter(positions, fixed[name]) for name in fixed.columns)


def _usage_chunks(world: _World) -> Iterator[pl.DataFrame]:
    """Weekly usage counts, one frame per week, dated the week's last day (Sunday): a
    pre-aggregated row is only known once its period is over, so dating it at the start
    would let a mid-week cutoff see days after it."""
    customer = _customer_ids(world.n)
    for week_start, cust, event, count in world.usage:
        if week_start + 6 > world.end_day:
            continue  # the export is taken before this week is over
        yield pl.DataFrame(
            {
                "user_id": customer.gather(cust),
                "timestamp": pl.Series([_to_date(week_start + 6)]).extend_constant(
                    _to_date(week_start + 6), len(cust) - 1
                ),
                "event": _pick(USAGE_EVENTS, event),
                "count": count.astype(np.int64),
            }
        )


def _empty_usage() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"user_id": pl.String, "timestamp": pl.Date, "event": pl.String, "count": pl.Int64}
    )


def _relations_frame(world: _World) -> pl.DataFrame:
    """Referrals: ``customer_id`` referred ``related_customer_id``, who signed up on ``since``."""
    st = world.st
    ids = _customer_ids(world.n)
    days = np.concatenate(st.rel_days) if st.rel_days else np.zeros(0, np.int64)
    return pl.DataFrame(
        {
            "customer_id": ids.gather(st.rel_b),
            "related_customer_id": ids.gather(st.rel_a),
            "kind": pl.Series(["referral"] * len(days), dtype=pl.String),
            "since": days.astype("datetime64[D]"),
        },
        schema={c: pl.Date if c == "since" else pl.String for c in RELATION_COLUMNS},
    )


def _customers_frame(world: _World) -> pl.DataFrame:
    """Ground truth per customer: who they are and how (and when) they last left."""
    st = world.st
    ended = np.isin(st.status, [VOLUNTARY, INVOLUNTARY, LAPSED]) & (st.end_of <= world.end_day)
    churn = np.select(
        [ended & (st.status == VOLUNTARY), ended & (st.status == INVOLUNTARY), ended], [0, 1, 2], -1
    )
    return pl.DataFrame(
        {
            "customer_id": _customer_ids(world.n),
            "segment": _pick(("shop", "subscription"), st.is_sub.astype(np.int64)),
            "signup": st.signup_day.astype("datetime64[D]"),
            "plan": _pick(PLANS, np.where(st.is_sub, world.first_plan, -1)),
            "channel": _pick(CHANNELS, st.channel),
            "churn": _pick(("voluntary", "involuntary", "lapse"), churn),
            "churn_date": pl.Series(st.end_of.astype("datetime64[D]")).set(pl.Series(~ended), None),
            "winbacks": st.winbacks.astype(np.int32),
        }
    )
