"""The statistics of a measured campaign: pure functions of counts and amounts.

A campaign compares two groups of the customers a plan chose: the treated (acted on)
and the control (held out at random). Their churn rates differ by the **uplift**
(control rate − treated rate: the share of customers the actions kept). The interval
is Newcombe's hybrid score interval (method 10 of Newcombe 1998, "Interval estimation
for the difference between independent proportions"), which keeps its coverage with
small groups and rates near 0 or 1, where the textbook Wald interval does not. The
p-value is Fisher's exact test when a cell of the 2×2 table is small, else the pooled
two-proportion z-test. Nothing here reads data: the caller counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import stats

CONFIDENCE = 0.95
# Below this expected count in a cell of the 2x2 table, the z-test's normal
# approximation is poor and Fisher's exact test is used instead.
FISHER_BELOW = 5.0
# An interval wider than ± this many points says little; the plan then needs a larger
# control group, sized for ± TARGET_HALF_WIDTH.
USEFUL_HALF_WIDTH = 0.10
TARGET_HALF_WIDTH = 0.05


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval for a proportion (0..1 when ``n`` is 0: nothing known)."""
    if n <= 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def newcombe_interval(
    x1: int, n1: int, x2: int, n2: int, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """``p1 - p2`` with Newcombe's hybrid score interval: ``(difference, low, high)``.

    ``x1`` of ``n1`` against ``x2`` of ``n2``. Each proportion gets its Wilson interval
    (``l``, ``u``); the difference's limits are ``d - sqrt((p1-l1)² + (u2-p2)²)`` and
    ``d + sqrt((u1-p1)² + (p2-l2)²)``. An empty group gives the widest interval.
    """
    if n1 <= 0 or n2 <= 0:
        return math.nan, -1.0, 1.0
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson_interval(x1, n1, confidence)
    l2, u2 = wilson_interval(x2, n2, confidence)
    d = p1 - p2
    low = d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return d, max(-1.0, low), min(1.0, high)


def two_proportion_p_value(x1: int, n1: int, x2: int, n2: int) -> float:
    """Two-sided p-value for "the two rates are equal": Fisher's exact test when an
    expected cell count is below ``FISHER_BELOW``, else the pooled z-test."""
    if n1 <= 0 or n2 <= 0:
        return math.nan
    pooled = (x1 + x2) / (n1 + n2)
    if pooled in (0.0, 1.0):
        return 1.0
    expected = min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if expected < FISHER_BELOW:
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        return float(stats.fisher_exact(table, alternative="two-sided").pvalue)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (x1 / n1 - x2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))


def success_rate_interval(
    treated_churned: int,
    treated: int,
    control_churned: int,
    control: int,
    confidence: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """The share of would-be churners an action kept, ``1 - treated rate / control
    rate`` (uplift over the control rate), with a Katz log interval for the ratio of
    the rates (½ added to every cell when one is zero). ``nan`` when the control group
    has no churner: without churners to keep, nothing can be said."""
    if treated <= 0 or control <= 0 or control_churned <= 0:
        return math.nan, math.nan, math.nan
    a, n1, c, n2 = float(treated_churned), float(treated), float(control_churned), float(control)
    if a == 0 or a == n1 or c == n2:
        a, n1, c, n2 = a + 0.5, n1 + 1.0, c + 0.5, n2 + 1.0
    ratio = (a / n1) / (c / n2)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n2)
    z = _z(confidence)
    low_ratio, high_ratio = ratio * math.exp(-z * se), ratio * math.exp(z * se)
    observed = 1 - (treated_churned / treated) / (control_churned / control)
    return observed, 1 - high_ratio, 1 - low_ratio


@dataclass(frozen=True)
class ControlSizing:
    """Whether the interval is useful, and the control share that would make it so.

    ``needed_share`` is the share of the plan's customers to hold out for an interval of
    about ± ``TARGET_HALF_WIDTH`` at the observed churn rate; ``None`` when even an even
    split is not enough, and then ``needed_customers`` is the plan size that would be.
    """

    half_width: float
    too_few: bool
    needed_share: float | None
    needed_customers: int | None


def control_sizing(
    low: float,
    high: float,
    *,
    churn_rate: float,
    customers: int,
    confidence: float = CONFIDENCE,
) -> ControlSizing:
    """Judge an uplift interval ``[low, high]`` of a plan of ``customers`` customers.

    With a churn rate ``p`` pooled over both groups and a control share ``s``, the
    interval's half-width is about ``z·sqrt(p(1-p)/N · 1/(s(1-s)))``; solving for a
    half-width of ``TARGET_HALF_WIDTH`` gives ``s(1-s) = z²p(1-p) / (N·w²)``.
    """
    half = (high - low) / 2 if math.isfinite(high - low) else math.inf
    too_few = half > USEFUL_HALF_WIDTH
    if not too_few:
        return ControlSizing(half, False, None, None)
    z = _z(confidence)
    variance = max(churn_rate * (1 - churn_rate), 0.01)
    need = z * z * variance / TARGET_HALF_WIDTH**2  # = N·s(1-s) needed
    product = need / customers if customers > 0 else math.inf
    if product <= 0.25:
        share = (1 - math.sqrt(1 - 4 * product)) / 2
        return ControlSizing(half, True, math.ceil(share * 100) / 100, None)
    return ControlSizing(half, True, None, math.ceil(need / 0.25))


@dataclass(frozen=True)
class Comparison:
    """Treated against control: counts, rates, uplift with its interval and p-value,
    revenue and what the actions returned on their cost."""

    treated: int
    treated_churned: int
    treated_voluntary: int
    treated_involuntary: int
    treated_revenue: float
    control: int
    control_churned: int
    control_voluntary: int
    control_involuntary: int
    control_revenue: float
    cost: float
    uplift: float
    ci_low: float
    ci_high: float
    p_value: float
    incremental_revenue: float
    incremental_revenue_low: float
    incremental_revenue_high: float

    @property
    def treated_rate(self) -> float:
        return self.treated_churned / self.treated if self.treated else math.nan

    @property
    def control_rate(self) -> float:
        return self.control_churned / self.control if self.control else math.nan

    @property
    def net_return(self) -> float:
        """Incremental revenue less what the actions cost."""
        return self.incremental_revenue - self.cost

    @property
    def return_per_unit(self) -> float:
        """Incremental revenue per unit spent (``nan`` for free actions)."""
        return self.incremental_revenue / self.cost if self.cost > 0 else math.nan

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


@dataclass(frozen=True)
class Group:
    """One group's figures: customers, churners by kind, revenue and its spread."""

    customers: int
    voluntary: int
    involuntary: int
    revenue: float
    revenue_sq: float  # Σ revenue², for the spread of revenue per customer

    @property
    def churned(self) -> int:
        return self.voluntary + self.involuntary


def compare(treated: Group, control: Group, *, cost: float) -> Comparison:
    """The comparison of a treated and a control group (see ``Comparison``).

    Incremental revenue is ``(treated revenue per customer − control revenue per
    customer) × treated customers``, with a normal-approximation interval from the two
    groups' spreads of revenue per customer.
    """
    uplift, low, high = newcombe_interval(
        control.churned, control.customers, treated.churned, treated.customers
    )
    p = two_proportion_p_value(
        control.churned, control.customers, treated.churned, treated.customers
    )
    incremental, inc_low, inc_high = _incremental_revenue(treated, control)
    return Comparison(
        treated=treated.customers,
        treated_churned=treated.churned,
        treated_voluntary=treated.voluntary,
        treated_involuntary=treated.involuntary,
        treated_revenue=treated.revenue,
        control=control.customers,
        control_churned=control.churned,
        control_voluntary=control.voluntary,
        control_involuntary=control.involuntary,
        control_revenue=control.revenue,
        cost=cost,
        uplift=uplift,
        ci_low=low,
        ci_high=high,
        p_value=p,
        incremental_revenue=incremental,
        incremental_revenue_low=inc_low,
        incremental_revenue_high=inc_high,
    )


def _incremental_revenue(treated: Group, control: Group) -> tuple[float, float, float]:
    if treated.customers <= 0 or control.customers <= 0:
        return math.nan, math.nan, math.nan
    mean_t = treated.revenue / treated.customers
    mean_c = control.revenue / control.customers
    diff = (mean_t - mean_c) * treated.customers
    var_t = _variance(treated)
    var_c = _variance(control)
    se = math.sqrt(var_t / treated.customers + var_c / control.customers) * treated.customers
    z = _z(CONFIDENCE)
    return diff, diff - z * se, diff + z * se


def _variance(group: Group) -> float:
    """Sample variance of revenue per customer (0 for a single customer)."""
    n = group.customers
    if n < 2:
        return 0.0
    mean = group.revenue / n
    return max(group.revenue_sq - n * mean * mean, 0.0) / (n - 1)
