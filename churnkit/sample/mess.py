"""How a real export spells things: the order of lines, status spellings of different
systems, and a small share of messy lines for ingest to reject, repair or de-duplicate
(blank ids, bad and day-first dates, currency amounts, duplicates, stray whitespace).

It has its own random stream (seeded from the simulation's seed), so the mess never
changes what happened, only how it is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from churnkit.core.errors import UsageError
from churnkit.sample.days import Array
from churnkit.sample.world import NO_AMOUNT, World

__all__ = ["MESS_KINDS", "STATUSES", "Layout", "layout", "mess_up", "messy_counts"]

# The status strings an export shows for each row kind (``world.SIGNUP`` ..
# ``world.PENDING``, in order); a spelling listed twice is twice as common.
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

# Kinds of messy lines (0: clean).
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


@dataclass(frozen=True)
class Layout:
    """Where each simulated row lands in the export, and how it is spelled."""

    order: Array  # row index per output line; a duplicated row appears twice
    mess: Array  # messy-line kind per output line
    variant: Array  # a random pick per line: which bad date, which currency, ...
    status: Array  # index into STATUSES, per row
    txid: Array  # transaction number, per row


def layout(world: World, messy_share: float) -> Layout:
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
    return Layout(lines, line_mess, line_variant, status, txid)


def messy_counts(lay: Layout) -> dict[str, int]:
    """Messy lines per kind (a duplicated row counts once)."""
    counts = np.bincount(lay.mess, minlength=len(MESS_KINDS))
    return {kind: int(counts[i]) for i, kind in enumerate(MESS_KINDS) if i != CLEAN}


def rewritten(mess: Array) -> Array:
    """Positions of the lines ``mess_up`` rewrites (a duplicate's copy is verbatim)."""
    where: Array = np.flatnonzero((mess != CLEAN) & (mess != DUPLICATE))
    return where


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


def mess_up(frame: pl.DataFrame, where: Array, raw: pl.DataFrame) -> pl.DataFrame:
    """Rewrite the messy lines ``where`` of ``frame`` (the clean export's lines) the way
    broken exports spell things. ``raw``, per messy line: ``mess``, ``variant``,
    ``cents``, ``day`` (a date) and ``sec`` (seconds into the day)."""
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
