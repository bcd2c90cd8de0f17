"""The BG/NBD customer-base model: who is still a customer when nobody cancels.

Fader, Hardie and Lee (2005), "Counting your customers the easy way": while alive a
customer buys at a Poisson rate ``λ ~ Gamma(r, α)``; after each purchase they drop
out with probability ``p ~ Beta(a, b)``. From each customer's repeat purchases ``x``,
the time of the last one ``t_x`` and their age ``T`` (all since the first purchase,
in weeks), maximum likelihood gives the four parameters, and then per customer the
probability of being alive and the purchases expected in the next ``h`` days.

It runs in two phases, like everything that needs the whole customer base:
``fit_customer_base`` once, on the summaries of all customers (or a bounded sample
picked by customer hash), gives a small frozen ``CustomerBaseParams``;
``p_alive``, ``expected_purchases`` and ``p_no_purchase`` are then per-customer
formulas any bucket of customers can evaluate on its own.

Written with numpy and scipy (``gammaln``, ``betaln``, ``hyp2f1``; L-BFGS-B on the
log-parameters) rather than a customer-base package: the model is a few dozen lines,
and the packages that implement it are either unmaintained or pull in a modelling
stack much heavier than churnkit.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.optimize import minimize
from scipy.special import betaln, gammaln, hyp2f1

from churnkit.core.schema import CUSTOMER_ID, KIND, TS, EventKind
from churnkit.core.timeline import events_until
from churnkit.engine.hashing import customer_hash

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

# Time unit of x / t_x / T and of α: a week, as in the literature.
UNIT_DAYS = 7.0
# Log-parameter bounds: keeps the optimiser away from overflow on degenerate data
# (a perfectly regular biller) without constraining any realistic fit.
_LOG_BOUNDS = (-9.0, 9.0)
_START = np.log(np.array([1.0, 1.0, 1.0, 1.0]))
# The fit reads at most this many customers: those with the smallest customer hash,
# a seeded sample that does not depend on how customers are split into buckets.
FIT_SAMPLE = 20_000
_US_PER_DAY = 86_400_000_000
# Summary columns: repeat purchase days, weeks from the first to the last purchase
# and from the first purchase to the cutoff.
X, T_X, AGE = "_cb_x", "_cb_t_x", "_cb_T"
_FIRST, _LAST = "_cb_first", "_cb_last"


@dataclass(frozen=True)
class CustomerBaseParams:
    """Fitted BG/NBD parameters (rates per week) and what they were fitted on.

    ``customers`` is how many customers the fit used; ``converged`` whether the
    optimiser reported success. Small, frozen and JSON-able: computed once per
    cutoff, passed to every bucket, recorded on the model card."""

    r: float
    alpha: float
    a: float
    b: float
    customers: int
    log_likelihood: float
    converged: bool
    # The horizon ``expected_purchases_horizon`` is computed for, in days.
    horizon_days: int = 90

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CustomerBaseParams:
        return cls(
            r=float(data["r"]),
            alpha=float(data["alpha"]),
            a=float(data["a"]),
            b=float(data["b"]),
            customers=int(data["customers"]),
            log_likelihood=float(data["log_likelihood"]),
            converged=bool(data["converged"]),
            horizon_days=int(data.get("horizon_days", 90)),
        )


def log_likelihood(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray) -> FloatArray:
    """Per-customer BG/NBD log-likelihood at ``params = (r, α, a, b)`` (FHL 2005, eq. 6)."""
    r, alpha, a, b = (float(v) for v in params)
    a1 = gammaln(r + x) - gammaln(r) + r * math.log(alpha)
    a2 = betaln(a, b + x) - betaln(a, b)
    a3 = -(r + x) * np.log(alpha + T)
    repeat = x > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(
            repeat,
            math.log(a) - np.log(np.maximum(b + x - 1.0, 1e-300)) - (r + x) * np.log(alpha + t_x),
            -np.inf,
        )
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=np.float64)


def fit_customer_base(
    x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray | None = None
) -> CustomerBaseParams:
    """Maximum-likelihood BG/NBD parameters for summaries in weeks (deterministic).

    ``weights`` counts customers sharing one ``(x, t_x, T)`` row, so identical
    summaries are evaluated once. Raises ``ValueError`` on no customers."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
    total = float(w.sum())
    if total <= 0:
        raise ValueError("BG/NBD needs at least one customer")

    def objective(theta: FloatArray) -> float:
        value = -float(np.dot(w, log_likelihood(np.exp(theta), x, t_x, T))) / total
        return value if math.isfinite(value) else 1e12

    result = minimize(
        objective,
        _START,
        method="L-BFGS-B",
        bounds=[_LOG_BOUNDS] * 4,
        options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-8},
    )
    r, alpha, a, b = (float(v) for v in np.exp(result.x))
    return CustomerBaseParams(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        customers=round(total),
        log_likelihood=-float(result.fun) * total,
        converged=bool(result.success),
    )


def p_alive(
    params: CustomerBaseParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """P(still a customer at age ``T`` | x, t_x): 1 for customers with no repeat purchase
    (BG/NBD lets customers drop out only after a purchase)."""
    return 1.0 / (1.0 + _odds_dead(params, x, t_x, T))


def expected_purchases(
    params: CustomerBaseParams, horizon: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """E[purchases in (T, T + horizon] | x, t_x, T] (FHL 2005, eq. 10), horizon in weeks."""
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    rx = r + x
    z = horizon / (alpha + T + horizon)
    tail = np.exp(rx * np.log((alpha + T) / (alpha + T + horizon))) * hyp2f1(
        rx, b + x, a + b + x - 1.0, z
    )
    if abs(a - 1.0) < 1e-9:
        a = 1.0 + 1e-9  # the formula's removable singularity at a = 1
    numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - tail)
    return np.asarray(numerator * p_alive(params, x, t_x, T), dtype=np.float64)


def p_no_purchase(
    params: CustomerBaseParams, horizon: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """P(no purchase in (T, T + horizon] | x, t_x, T), horizon in weeks.

    Dead customers never buy; a living one stays alive until their next purchase, and
    their rate's posterior is Gamma(r + x, α + T), so P(no purchase | alive) is
    ``((α + T) / (α + T + horizon)) ** (r + x)``."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    alive = p_alive(params, x, t_x, T)
    quiet = np.exp((params.r + x) * np.log((params.alpha + T) / (params.alpha + T + horizon)))
    return np.asarray(1.0 - alive + alive * quiet, dtype=np.float64)


def _odds_dead(
    params: CustomerBaseParams, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_odds = (
            math.log(a)
            - np.log(np.maximum(b + x - 1.0, 1e-300))
            + (r + x) * np.log((alpha + T) / (alpha + t_x))
        )
        odds = np.where(x > 0, np.exp(np.minimum(log_odds, 700.0)), 0.0)
    return np.asarray(odds, dtype=np.float64)


def simulate(
    params: CustomerBaseParams, T: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, FloatArray]:
    """``(x, t_x)`` for customers of ages ``T`` (weeks) drawn from the BG/NBD process
    itself: for checking that the fit recovers known parameters."""
    T = np.asarray(T, dtype=np.float64)
    n = len(T)
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = rng.beta(params.a, params.b, n)
    t = np.zeros(n)
    x = np.zeros(n)
    t_x = np.zeros(n)
    alive = np.ones(n, dtype=bool)
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1.0, len(idx)) / lam[idx]
        bought = idx[t[idx] <= T[idx]]
        x[bought] += 1
        t_x[bought] = t[bought]
        alive[idx[t[idx] > T[idx]]] = False
        alive[bought[rng.random(len(bought)) < p[bought]]] = False
    return x, t_x


# --- from the event log ---------------------------------------------------------------


def summary_aggs(is_purchase: pl.Expr) -> list[pl.Expr]:
    """Per-customer aggregations (inside a group-by on customer) over rows where
    ``is_purchase``: purchase days, first and last purchase day (day numbers)."""
    days = (pl.col(TS).filter(is_purchase).cast(pl.Int64) // _US_PER_DAY).alias("_d")
    return [
        days.n_unique().cast(pl.Float64).alias(X),
        days.min().alias(_FIRST),
        days.max().alias(_LAST),
    ]


def summary_columns(cutoff: datetime) -> list[pl.Expr]:
    """``x``, ``t_x`` and ``T`` in weeks from ``summary_aggs``' columns (null without a
    purchase). Days are whole days: several orders on one day are one purchase."""
    cutoff_day = (cutoff - datetime(1970, 1, 1)).days
    has = pl.col(_FIRST).is_not_null()
    return [
        pl.when(has).then(pl.col(X) - 1.0).alias(X),
        ((pl.col(_LAST) - pl.col(_FIRST)) / UNIT_DAYS).cast(pl.Float64).alias(T_X),
        ((cutoff_day - pl.col(_FIRST)) / UNIT_DAYS).cast(pl.Float64).alias(AGE),
    ]


def purchase_summary(events: pl.LazyFrame, cutoff: datetime) -> pl.LazyFrame:
    """``customer_id`` and the BG/NBD summary of every customer who bought by ``cutoff``."""
    is_purchase = pl.col(KIND) == EventKind.PURCHASE.value
    return (
        events_until(events, cutoff)
        .filter(is_purchase)
        .group_by(CUSTOMER_ID)
        .agg(summary_aggs(is_purchase))
        .with_columns(summary_columns(cutoff))
        .select(CUSTOMER_ID, X, T_X, AGE)
    )


def fit_at(events: pl.LazyFrame, cutoff: datetime, horizon_days: int) -> CustomerBaseParams | None:
    """The first phase at ``cutoff``: BG/NBD fitted on the purchases up to it (at most
    ``FIT_SAMPLE`` customers, picked by customer hash); None when nobody bought."""
    summary = purchase_summary(events, cutoff).collect(engine="streaming")
    if summary.height == 0:
        return None
    if summary.height > FIT_SAMPLE:
        rank = customer_hash(summary[CUSTOMER_ID]).rank("ordinal")
        summary = summary.filter(rank <= FIT_SAMPLE)
    grouped = summary.group_by(X, T_X, AGE).len().sort(X, T_X, AGE)
    params = fit_customer_base(
        grouped[X].to_numpy(),
        grouped[T_X].to_numpy(),
        grouped[AGE].to_numpy(),
        weights=grouped["len"].to_numpy().astype(np.float64),
    )
    params = dataclasses.replace(params, horizon_days=horizon_days)
    logger.debug(
        "BG/NBD at %s on %d customers: r=%.3g alpha=%.3g a=%.3g b=%.3g",
        cutoff.date(),
        params.customers,
        params.r,
        params.alpha,
        params.a,
        params.b,
    )
    return params
