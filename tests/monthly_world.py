"""A stationary subscription business billed monthly, as a card processor exports it.

Customers arrive at a constant daily rate from long before the dates under test, each
on one plan. A customer is charged on the signup's day of the month (the month's last
day when it is shorter), at the signup's time of day give or take half an hour. The
chance to leave each month depends on the plan, on the first months and on a lasting
"engagement" that also shows in how often the customer opens support tickets: the
process is the same at every date, so any feature drift between two dates is calendar
noise. Each charge fails with a small chance; a failed charge is retried three days
later and, when that fails too, billing stops (involuntary churn). A voluntary churner
cancels some days after the last charge.

``price_rise`` raises one plan's price from a date on: a real drift of the revenue
features. Events come in the canonical schema (``customer_id, ts, kind, amount,
plan``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl

from churnkit.core.schema import KIND_DTYPE

START = date(2016, 1, 1)
END = date(2025, 8, 31)
PLANS = ("basic", "pro", "business")
PRICES = np.array([19.0, 49.0, 199.0])
SHARES = (0.55, 0.33, 0.12)
# Monthly chance to leave by plan, doubled in the first three months.
HAZARD = np.array([0.045, 0.03, 0.018])
FAIL = 0.03
RETRY_FAILS = 0.5
MONTHS = 12 * (END.year - START.year + 1)


def monthly_events(
    *,
    per_day: float = 1.5,
    seed: int = 3,
    price_rise: tuple[str, float, date] | None = None,
) -> pl.DataFrame:
    """The event log of the business from ``START`` to ``END`` (see the module docstring).

    ``price_rise`` is ``(plan, factor, from_date)``: that plan's charges from that date
    on cost ``factor`` times as much."""
    rng = np.random.default_rng(seed)
    days = (END - START).days + 1
    arrivals = rng.poisson(per_day, days)
    day = np.repeat(np.arange(days), arrivals)
    n = len(day)
    signup = np.datetime64(START, "D") + day.astype("timedelta64[D]")
    seconds = rng.integers(6 * 3600, 22 * 3600, n)
    plan = rng.choice(3, n, p=SHARES)
    engagement = rng.lognormal(0.0, 0.6, n)
    hazard = np.clip(HAZARD[plan] / engagement, 0.002, 0.5)
    # Months until a voluntary cancel, and the first charge that fails twice.
    stay = np.ceil(np.log(rng.random(n)) / np.log1p(-hazard)).astype(np.int64)
    early = rng.random(n) < 1 - (1 - hazard) ** 3  # the first months are riskier
    stay = np.where(early, np.minimum(stay, rng.integers(1, 4, n)), stay)
    lost = rng.geometric(FAIL * RETRY_FAILS, n)
    customers = pl.DataFrame(
        {
            "customer_id": [f"cus_{i:06d}" for i in range(n)],
            "signup": signup.astype("datetime64[us]")
            + (seconds * 1_000_000).astype("timedelta64[us]"),
            "plan": [PLANS[p] for p in plan],
            "price": PRICES[plan],
            "months": np.minimum(stay, lost),
            "involuntary": lost < stay,
            "tickets": engagement < 0.6,
        }
    )
    return _events(customers, rng, price_rise)


def _events(
    customers: pl.DataFrame,
    rng: np.random.Generator,
    price_rise: tuple[str, float, date] | None,
) -> pl.DataFrame:
    """Signup, charges, failures, cancels and support tickets of every customer."""
    charges = (
        customers.with_columns(pl.int_ranges(0, pl.col("months")).alias("k"))
        .explode("k")
        .drop_nulls("k")
        .with_columns(
            pl.col("signup").dt.offset_by(pl.format("{}mo", pl.col("k"))).alias("ts"),
        )
    )
    jitter = rng.integers(-1800, 1800, charges.height) * 1_000_000
    charges = charges.with_columns(
        pl.when(pl.col("k") > 0)
        .then(pl.col("ts") + pl.Series(jitter).cast(pl.Duration("us")))
        .otherwise(pl.col("ts"))
        .alias("ts"),
        pl.Series(rng.random(charges.height) < FAIL).alias("_failed"),
    )
    last = pl.col("k") == pl.col("months") - 1
    failed_last = last & pl.col("involuntary")
    failed = charges.filter(pl.col("_failed") | failed_last)
    rows = [
        customers.select("customer_id", pl.col("signup").alias("ts"), "plan").with_columns(
            kind=pl.lit("signup"), amount=pl.lit(None, pl.Float64)
        ),
        # A charge that fails is retried three days later; the last one of an
        # involuntary churner fails again and billing stops.
        charges.filter(~failed_last)
        .with_columns(
            pl.when(pl.col("_failed")).then(pl.col("ts") + timedelta(days=3)).otherwise("ts")
        )
        .select("customer_id", "ts", "plan", kind=pl.lit("purchase"), amount="price"),
        failed.select("customer_id", "ts", "plan", kind=pl.lit("payment_failed"), amount="price"),
        failed.filter(failed_last)
        .select("customer_id", pl.col("ts") + timedelta(days=3), "plan")
        .with_columns(kind=pl.lit("payment_failed"), amount=pl.lit(None, pl.Float64)),
        charges.filter(last & ~pl.col("involuntary"))
        .select("customer_id", pl.col("ts") + timedelta(days=12), "plan")
        .with_columns(kind=pl.lit("cancel"), amount=pl.lit(None, pl.Float64)),
        charges.filter(pl.col("tickets") & (pl.col("k") % 4 == 1))
        .select("customer_id", pl.col("ts") + timedelta(days=9), "plan")
        .with_columns(kind=pl.lit("complaint"), amount=pl.lit(None, pl.Float64)),
    ]
    events = pl.concat([r.select("customer_id", "ts", "kind", "amount", "plan") for r in rows])
    if price_rise is not None:
        plan, factor, since = price_rise
        start = datetime.combine(since, datetime.min.time())
        rise = (pl.col("plan") == plan) & (pl.col("ts") >= start)
        events = events.with_columns(
            pl.when(rise).then(pl.col("amount") * factor).otherwise("amount").alias("amount")
        )
    end = datetime.combine(END, datetime.max.time())
    return (
        events.filter(pl.col("ts") <= end)
        .with_columns(pl.col("kind").cast(KIND_DTYPE), pl.col("ts").cast(pl.Datetime("us")))
        .sort("customer_id", "ts")
    )
