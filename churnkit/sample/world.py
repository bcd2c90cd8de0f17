"""What every simulated business shares: the period, the customers' common state, the
transaction rows as compact columns, and the ``World`` a business hands to the export.

A business (such as ``subscription_business``) draws its customers, runs its own
week-by-week loop and returns a ``World``; the export (``mess``, ``usage``, ``writer``)
reads nothing else, so another kind of business can be added without touching it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np
import polars as pl

from churnkit.core.errors import UsageError
from churnkit.sample.days import Array, day_number, first_of_month, month_of

__all__ = [
    "NEVER",
    "NONE",
    "REASONS",
    "Business",
    "Customers",
    "Period",
    "Rows",
    "UsageWeek",
    "World",
    "customer_ids",
    "period",
    "pick",
    "signup_days",
]

NONE = -1
NEVER = int(np.iinfo(np.int32).max)

# Row kinds of the simulation; ``mess.STATUS_VARIANTS`` spells each in the export.
SIGNUP, BILL_OK, BILL_FAIL, ADDON, ORDER = range(5)
REFUND, CANCEL, COMPLAINT, PLAN_CHANGE, PENDING = range(5, 10)
ROW_KINDS = 10
NO_AMOUNT = np.isin(np.arange(ROW_KINDS), [SIGNUP, CANCEL, COMPLAINT, PLAN_CHANGE])

# Every reason a row can give (index 0: none), and the codes the businesses use.
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

ROW_COLUMNS = ("cust", "day", "sec", "kind", "item", "cents", "reason", "card", "discount")

# One week of product usage: (week start day, customer, event, count).
UsageWeek = tuple[int, Array, Array, Array]


@dataclass
class Rows:
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
        """Append one row per customer in ``cust``; a random time of day unless ``sec``."""
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
        for name, values in zip(ROW_COLUMNS, columns, strict=True):
            self.parts.setdefault(name, []).append(values)

    def finish(self, last_day: int) -> dict[str, Array]:
        """All rows up to ``last_day`` (a refund or retry may fall after the period)."""
        raw = {
            name: np.concatenate(self.parts[name]) if name in self.parts else np.zeros(0, np.int32)
            for name in ROW_COLUMNS
        }
        keep = raw["day"] <= last_day
        return {name: values[keep] for name, values in raw.items()}


@dataclass(frozen=True)
class Period:
    """The simulated months, and the weeks (Monday to Sunday) the loop steps through."""

    start_day: int
    end_day: int
    first_month: int
    months: int
    week0: int  # the Monday on or before the start
    n_weeks: int

    def week(self, w: int) -> tuple[int, int]:
        """``[d0, d7)``: the days of week ``w`` within the period."""
        d0 = self.week0 + 7 * w
        return d0, min(d0 + 7, self.end_day + 1)

    def first_of(self, month: int) -> int:
        """The first day of month number ``month`` since 1970."""
        return int(first_of_month(np.array([month]))[0])


def period(customers: int, end: date, months: int) -> Period:
    """The ``months`` whole months up to ``end``, checking the simulation's arguments."""
    if customers < 1:
        raise UsageError(f"customers must be at least 1; got {customers}")
    if months < 1:
        raise UsageError(f"months must be at least 1; got {months}")
    end_day = day_number(end)
    first_month = int(month_of(np.array([end_day]))[0]) - months + 1
    start_day = int(first_of_month(np.array([first_month]))[0])
    week0 = start_day - (start_day + 3) % 7
    return Period(
        start_day=start_day,
        end_day=end_day,
        first_month=first_month,
        months=months,
        week0=week0,
        n_weeks=(end_day - week0) // 7 + 1,
    )


def signup_days(rng: np.random.Generator, n: int, per: Period) -> Array:
    """Signup days in order (customer ids follow signup order); signups grow over time."""
    growth = 0.8
    u = rng.random(n)
    x = (np.sqrt(1 + 2 * growth * u * (1 + growth / 2)) - 1) / growth
    days: Array = np.sort(per.start_day + (x * (per.end_day - per.start_day + 1)).astype(np.int64))
    return days


@dataclass(kw_only=True)
class Customers:
    """The per-customer state every business has: traits fixed at signup, the state the
    weekly loop changes, and who referred whom."""

    signup_day: Array
    channel: Array
    status: Array
    end_of: Array  # the day a customer left, NEVER while they stay
    log_e: Array  # engagement, log scale around 0
    drift: Array  # weekly drift of log_e: below 0 while disengaging
    complaint_until: Array  # an unresolved complaint weighs until this week
    discount_driven: Array
    shop_rate: Array  # weekly order rate of a shop customer
    basket: Array  # a shop customer's spend, relative to list prices
    rel_a: Array = field(default_factory=lambda: np.zeros(0, np.int32))  # referred
    rel_b: Array = field(default_factory=lambda: np.zeros(0, np.int32))  # referrer
    rel_days: list[Array] = field(default_factory=list)


@dataclass(frozen=True)
class World:
    """What a business simulation produced, as compact arrays: all the export needs.

    ``rows`` (``ROW_COLUMNS``) index ``items`` and ``REASONS``; ``channel`` per customer
    indexes ``channels``; ``truth`` is the ground truth per customer, which no export
    carries (its columns are the business's own)."""

    seed: int
    n: int
    start_day: int
    end_day: int
    rows: dict[str, Array]
    items: tuple[str, ...]
    channels: tuple[str, ...]
    channel: Array
    usage: list[UsageWeek]
    referrer: Array
    referred: Array
    referred_on: Array
    truth: pl.DataFrame


class Business(Protocol):
    """A kind of business: simulates ``customers`` over ``months`` up to ``end``."""

    def __call__(self, customers: int, *, seed: int, end: date, months: int) -> World: ...


def customer_ids(n: int) -> pl.Series:
    """``C000001`` .. in signup order, at least six digits wide."""
    width = max(6, len(str(n)))
    ids = pl.int_range(1, n + 1, eager=True).cast(pl.String).str.zfill(width)
    return ("C" + ids).alias("customer_id")


def pick(names: tuple[str, ...], index: Array) -> pl.Series:
    """``names[index]``, null where ``index`` is negative."""
    table = pl.Series([*names, None], dtype=pl.String)
    return table.gather(np.where(index < 0, len(names), index))
