"""BG/NBD: the fit recovers known parameters, and the formulas match the published
example and a direct numerical integration over the customer's rate and dropout."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl
import pytest
from scipy import special

from churnkit.core.schema import CUSTOMER_ID, KIND, TS
from churnkit.population.customer_base import (
    CustomerBaseParams,
    expected_purchases,
    fit_at,
    fit_customer_base,
    log_likelihood,
    p_alive,
    p_no_purchase,
    purchase_summary,
    simulate,
)

# Fader, Hardie and Lee (2005), fitted on the CDNOW sample (weeks).
CDNOW = CustomerBaseParams(
    r=0.243, alpha=4.414, a=0.793, b=2.426, customers=2357, log_likelihood=0.0, converged=True
)


def one(v: float) -> np.ndarray:
    return np.array([v], dtype=np.float64)


def test_the_published_conditional_expectation():
    # FHL 2005: a customer with x = 2, t_x = 30.43, T = 38.86 expects 1.226 purchases
    # in the next 39 weeks.
    got = expected_purchases(CDNOW, 39.0, one(2), one(30.43), one(38.86))
    assert got[0] == pytest.approx(1.226, abs=5e-4)


def test_the_fit_recovers_the_parameters_it_was_simulated_with():
    rng = np.random.default_rng(2005)
    T = rng.uniform(27.0, 39.0, 30_000)
    x, t_x = simulate(CDNOW, T, rng)
    fitted = fit_customer_base(x, t_x, T)
    assert fitted.converged
    assert fitted.r == pytest.approx(CDNOW.r, rel=0.1)
    assert fitted.alpha == pytest.approx(CDNOW.alpha, rel=0.15)
    # a and b are identified less sharply; their mean dropout a / (a + b) sharply.
    assert fitted.a / (fitted.a + fitted.b) == pytest.approx(CDNOW.a / (CDNOW.a + CDNOW.b), rel=0.1)
    assert fitted.a == pytest.approx(CDNOW.a, rel=0.35)
    assert fitted.b == pytest.approx(CDNOW.b, rel=0.35)
    again = fit_customer_base(x, t_x, T)
    assert again == fitted  # deterministic


def test_weights_stand_for_repeated_rows():
    rng = np.random.default_rng(3)
    T = np.round(rng.uniform(10, 20, 2000))
    x, t_x = simulate(CDNOW, T, rng)
    t_x = np.round(t_x)
    frame = pl.DataFrame({"x": x, "t": t_x, "T": T})
    grouped = frame.group_by("x", "t", "T").len()
    weighted = fit_customer_base(
        grouped["x"].to_numpy(),
        grouped["t"].to_numpy(),
        grouped["T"].to_numpy(),
        weights=grouped["len"].to_numpy().astype(float),
    )
    plain = fit_customer_base(x, t_x, T)
    assert weighted.r == pytest.approx(plain.r, rel=1e-4)
    assert weighted.a == pytest.approx(plain.a, rel=1e-3)


def _individual(lam: float, p: float, x: float, t_x: float, T: float) -> float:
    """One customer's likelihood given their rate and dropout probability."""
    alive = (1 - p) ** x * lam**x * np.exp(-lam * T)
    died = p * (1 - p) ** (x - 1) * lam**x * np.exp(-lam * t_x) if x > 0 else 0.0
    return float(alive + died)


def _mixed(f, params: CustomerBaseParams) -> float:  # type: ignore[no-untyped-def]
    """∫∫ f(λ, p) over the Gamma(r, α) and Beta(a, b) mixing distributions, by Gauss
    quadrature whose weights are those densities (generalised Laguerre, Jacobi)."""
    x, wx = special.roots_genlaguerre(120, params.r - 1.0)
    u, wu = special.roots_jacobi(120, params.b - 1.0, params.a - 1.0)
    lam, p = x / params.alpha, (1.0 + u) / 2.0
    grid = np.array([[f(la, pp) for pp in p] for la in lam])
    return float(wx @ grid @ wu / (wx.sum() * wu.sum()))


HAND = CustomerBaseParams(
    r=1.3, alpha=3.0, a=1.5, b=2.5, customers=0, log_likelihood=0.0, converged=True
)


@pytest.mark.parametrize(("x", "t_x", "T"), [(0.0, 0.0, 5.0), (1.0, 2.0, 6.0), (4.0, 9.5, 10.0)])
def test_formulas_match_numerical_integration(x: float, t_x: float, T: float):
    likelihood = _mixed(lambda lam, p: _individual(lam, p, x, t_x, T), HAND)
    params = np.array([HAND.r, HAND.alpha, HAND.a, HAND.b])
    assert np.exp(log_likelihood(params, one(x), one(t_x), one(T)))[0] == pytest.approx(
        likelihood, rel=1e-5
    )
    alive = _mixed(lambda lam, p: (1 - p) ** x * lam**x * np.exp(-lam * T), HAND) / likelihood
    assert p_alive(HAND, one(x), one(t_x), one(T))[0] == pytest.approx(alive, rel=1e-5)
    # No purchase in (T, T + h]: dead, or alive with no event in h more weeks.
    h = 4.0
    quiet = _mixed(lambda lam, p: _individual(lam, p, x, t_x, T + h), HAND) / likelihood
    assert p_no_purchase(HAND, h, one(x), one(t_x), one(T))[0] == pytest.approx(quiet, rel=1e-5)


def test_more_purchases_expected_from_a_frequent_recent_buyer():
    frequent = expected_purchases(CDNOW, 10.0, one(8), one(30), one(31))[0]
    gone_quiet = expected_purchases(CDNOW, 10.0, one(8), one(5), one(31))[0]
    assert frequent > gone_quiet
    assert p_alive(CDNOW, one(8), one(5), one(31))[0] < 0.05


def test_summaries_and_the_fit_read_nothing_after_the_cutoff():
    cutoff = datetime(2024, 6, 30, 23, 59, 59, 999999)
    rows = [
        ("a", datetime(2024, 6, 2, 10), "purchase"),
        ("a", datetime(2024, 6, 2, 15), "purchase"),  # same day: one purchase day
        ("a", datetime(2024, 6, 16, 10), "purchase"),
        ("a", datetime(2024, 7, 5, 10), "purchase"),  # after the cutoff
        ("b", datetime(2024, 6, 23, 10), "refund"),
    ]
    events = pl.DataFrame(rows, schema=[CUSTOMER_ID, TS, KIND], orient="row").lazy()
    summary = purchase_summary(events, cutoff).collect()
    assert summary[CUSTOMER_ID].to_list() == ["a"]
    assert summary.row(0)[1:] == (1.0, 2.0, 4.0)  # x, t_x and T in weeks
    cut = events.filter(pl.col(TS) <= cutoff)
    assert fit_at(events, cutoff, 90) == fit_at(cut, cutoff, 90)
    assert fit_at(events.filter(pl.col(KIND) == "refund"), cutoff, 90) is None
