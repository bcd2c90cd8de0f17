"""What a retention report holds: the numbers every output format shows.

``churnkit.report.report.build_report`` fills a :class:`Report`; the renderers in
``churnkit.render`` only read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

import polars as pl

from churnkit.core.schema import ChurnType
from churnkit.quality.estimate import PerformanceEstimate
from churnkit.retention.columns import (
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_DESCRIPTION,
    ACTION_LEVER,
    ACTION_SUCCESS_RATE,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    SELECTED,
    SELECTION_REASON,
)
from churnkit.retention.outcome import CampaignResult

# What the report adds per customer (from the playbook, the control group and the budget).
RANK = "rank"
ADDED_COLUMNS = (
    ACTION_DESCRIPTION,
    ACTION_CHANNEL,
    ACTION_LEVER,
    ACTION_COST,
    ACTION_SUCCESS_RATE,
    EXPECTED_SAVED_VALUE,
    CONTROL,
    SELECTED,
    SELECTION_REASON,
)

VOLUNTARY = ChurnType.VOLUNTARY.value
INVOLUNTARY = ChurnType.INVOLUNTARY.value
CHURNED = ChurnType.CHURNED.value
KINDS = (VOLUNTARY, INVOLUNTARY)
RETAINED = ChurnType.RETAINED.value

Kind = Literal["voluntary", "involuntary"]


@dataclass(frozen=True)
class Summary:
    """The population the report covers (after filters) in a few numbers.

    ``expected_churners`` and ``value_at_risk_by_kind`` are keyed by churn kind:
    voluntary and involuntary, or only ``churned`` for a binary model.
    ``value_at_risk`` is the expected loss, Σ p_churn × value; ``revenue_at_risk`` the
    whole value held by the ``customers_at_risk``: those predict places in a risk
    tier (their churn_type is a churn kind, not ``retained``).
    """

    active_customers: int
    expected_churners: dict[str, float]
    value_at_risk: float
    value_at_risk_by_kind: dict[str, float]
    revenue_at_risk: float
    customers_at_risk: int
    total_value: float
    risk_tiers: dict[str, int]

    @property
    def expected_churners_total(self) -> float:
        return sum(self.expected_churners.values())


@dataclass(frozen=True)
class ControlGroup:
    """Customers left untreated on purpose; their churn measures what the actions save."""

    share: float
    customers: int
    seed: int


@dataclass(frozen=True)
class BudgetResult:
    """What the budget buys. ``chosen`` lists every selected customer, best first, with
    the reason each is in."""

    amount: float
    spent: float
    expected_saved_value: float
    customers: int
    method: str
    max_shortfall: float
    chosen: pl.DataFrame


@dataclass(frozen=True)
class FeatureDeciles:
    """Churn rate by decile of one important feature, on the validation snapshot."""

    feature: str
    description: str | None
    importance: float | None
    deciles: pl.DataFrame


@dataclass(frozen=True)
class ModelInfo:
    name: str | None
    mode: str | None
    horizon: int | None
    trained_as_of: str | None
    metrics: dict[str, float]


@dataclass(frozen=True)
class Report:
    """Everything every output format shows; see the module docstring."""

    as_of: date | None
    binary: bool
    top: int
    filters: dict[str, str]
    summary: Summary
    control: ControlGroup
    customers: pl.DataFrame
    actions: pl.DataFrame
    budget: BudgetResult | None
    risk_distribution: pl.DataFrame
    by_segment: pl.DataFrame
    drivers: pl.DataFrame
    calibration: pl.DataFrame | None = None
    feature_deciles: tuple[FeatureDeciles, ...] = ()
    model: ModelInfo | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)
    # Every customer after filters, actions, control group and selection: what a saved
    # campaign's plan is taken from (``retention.campaign.build_plan``).
    frame: pl.DataFrame | None = field(default=None, repr=False, compare=False)
    # Measured campaigns of the workspace, shown in their own section.
    campaigns: tuple[CampaignResult, ...] = ()
    # Per quadrant of value × cost-to-serve (when the workspace has segments).
    by_quadrant: pl.DataFrame | None = None
    # The model's performance now, estimated from every scored customer's p_churn.
    estimate: PerformanceEstimate | None = None

    # With a budget: every customer of the plan (selected, and the control customers
    # the plan would have chosen), in ``customers``' layout. Files list these.
    plan_customers: pl.DataFrame | None = None

    @property
    def listed(self) -> pl.DataFrame:
        """The customers a file lists: with a budget the whole plan (control customers
        marked), else the top ``top`` by value at risk (the terminal always shows
        those)."""
        return self.plan_customers if self.plan_customers is not None else self.customers

    @property
    def kinds(self) -> tuple[str, ...]:
        """The churn kinds the model tells apart."""
        return (CHURNED,) if self.binary else KINDS
