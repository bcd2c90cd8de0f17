"""The retention report: who is most worth saving, why, and what to do.

``build_report`` turns a predictions table into a ``Report`` (``churnkit.report.result``):
filters, the playbook's actions, an optional control group (customers deliberately left
untreated, so the effect of the actions can be measured), an optional budget (the exact
selection of customers and actions that saves the most expected value within it), the
summary, the top-N customers ranked by value at risk, the action plan and the small
tables the charts draw. What the model card adds (calibration, feature deciles and
descriptions) is read here. Renderers in ``churnkit.render`` only read the result; this
module never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import UsageError
from churnkit.core.schema import P_CHURN
from churnkit.features.snapshot import feature_vocabulary
from churnkit.model.card import ModelCard
from churnkit.quality.estimate import PerformanceEstimate, estimate_for_card, estimate_performance
from churnkit.report.filters import (
    apply_filters,
    as_of_date,
    check_inputs,
    drop_actions,
    is_binary,
    ranked_customers,
    top_customers,
    with_optional_columns,
    without_actions,
)
from churnkit.report.result import ControlGroup, FeatureDeciles, Kind, ModelInfo, Report
from churnkit.report.summary import (
    budget_result,
    by_quadrant,
    churn_by_segment,
    report_notes,
    risk_distribution,
    summarise,
    top_drivers,
)
from churnkit.retention.budget import select_within_budget
from churnkit.retention.campaign import in_plan
from churnkit.retention.columns import CONTROL
from churnkit.retention.control import assign_control_group
from churnkit.retention.matching import assign_actions
from churnkit.retention.outcome import CampaignResult
from churnkit.retention.plan import action_plan
from churnkit.retention.playbook import Playbook

DECILE_FEATURES = 4


def build_report(
    predictions: pl.DataFrame,
    *,
    playbook: Playbook | None,
    top: int,
    budget: float | None = None,
    control_share: float = 0.0,
    seed: int = 0,
    kind: Kind | None = None,
    segment: str | None = None,
    min_value: float | None = None,
    card: ModelCard | None = None,
    model_name: str | None = None,
    campaigns: Sequence[CampaignResult] = (),
    quadrants: pl.DataFrame | None = None,
) -> Report:
    """Build the retention report from ``churnkit predict``'s table.

    Filters (``kind``: customers whose likelier churn kind it is; ``segment``;
    ``min_value``) narrow the population first; everything after describes what is
    left. The playbook assigns each customer an action; control customers (a seeded
    ``control_share`` of them) get none; the customers chosen to act on (``selected``)
    are those whose action pays, or with ``budget`` the exact best choice within it.
    ``card`` (the model card) adds the calibration and per-feature views and the
    feature descriptions; without it those parts are left out. Without a playbook
    the report has no actions and says so. ``campaigns`` (measured campaigns) are
    shown as they are; ``quadrants`` (``customer_id, value_cost_quadrant,
    quadrant_strategy`` from the last segment run) adds the value at risk per quadrant
    of value × cost-to-serve.
    """
    check_inputs(predictions, top=top, budget=budget, control_share=control_share)
    if playbook is None and budget is not None:
        raise UsageError(
            "--budget needs a retention playbook to know what actions cost",
            hint="create configs/actions.yaml or pass --playbook FILE",
        )
    binary = is_binary(predictions)
    frame, filters = apply_filters(
        predictions, binary=binary, kind=kind, segment=segment, min_value=min_value
    )
    frame = with_optional_columns(drop_actions(frame))

    frame = assign_actions(frame, playbook) if playbook is not None else without_actions(frame)
    frame = assign_control_group(frame, control_share, seed)
    plan = select_within_budget(frame, budget)
    frame = plan.frame

    listed = top_customers(frame, top)
    call_list = None
    if budget is not None:
        call_list = ranked_customers(frame.filter(in_plan(frame, budget=budget)))
    descriptions = _descriptions(card)
    notes = report_notes(frame, listed, playbook=playbook)
    return Report(
        as_of=as_of_date(predictions),
        binary=binary,
        top=top,
        filters=filters,
        summary=summarise(frame, binary=binary),
        control=ControlGroup(
            share=control_share,
            customers=int(frame[CONTROL].sum()),
            seed=seed,
        ),
        customers=listed,
        plan_customers=call_list,
        actions=action_plan(frame),
        budget=budget_result(frame, plan) if budget is not None else None,
        risk_distribution=risk_distribution(frame),
        by_segment=churn_by_segment(frame, binary=binary),
        drivers=top_drivers(listed, descriptions),
        calibration=_calibration(card),
        feature_deciles=_deciles(card, descriptions),
        model=_model_info(card, model_name),
        notes=notes,
        frame=frame,
        campaigns=tuple(campaigns),
        by_quadrant=by_quadrant(frame, quadrants) if quadrants is not None else None,
        estimate=_estimate(predictions, card),
    )


def _descriptions(card: ModelCard | None) -> dict[str, str]:
    """Feature → what it measures, from the card's feature notes (else its features)."""
    return card.descriptions if card is not None else {}


def playbook_features(card: ModelCard | None, settings: Settings) -> list[str]:
    """The feature names a playbook's rules may refer to: every feature churnkit can
    produce, plus the model's own (see ``snapshots.feature_vocabulary``)."""
    return feature_vocabulary(settings, list(_descriptions(card)))


def _calibration(card: ModelCard | None) -> pl.DataFrame | None:
    if card is None or not card.calibration_curve:
        return None
    return pl.DataFrame(
        [
            {"predicted": b.predicted, "observed": b.observed, "customers": b.customers}
            for b in card.calibration_curve
        ],
        schema={"predicted": pl.Float64, "observed": pl.Float64, "customers": pl.Int64},
    )


def _deciles(card: ModelCard | None, descriptions: Mapping[str, str]) -> tuple[FeatureDeciles, ...]:
    """The most important features' churn-rate-by-decile tables, most important first."""
    if card is None:
        return ()
    table = card.feature_deciles
    importance = card.feature_importance
    names = sorted(table, key=lambda n: (-float(importance.get(n, 0.0)), n))
    out = []
    for name in names[:DECILE_FEATURES]:
        bins = table[name]
        if not bins:
            continue
        out.append(
            FeatureDeciles(
                feature=name,
                description=descriptions.get(name),
                importance=float(importance[name]) if name in importance else None,
                deciles=pl.DataFrame(
                    [
                        {
                            "low": b.low,
                            "high": b.high,
                            "churn_rate": b.churn_rate,
                            "customers": b.customers,
                        }
                        for b in bins
                    ],
                    schema={
                        "low": pl.Float64,
                        "high": pl.Float64,
                        "churn_rate": pl.Float64,
                        "customers": pl.Int64,
                    },
                ),
            )
        )
    return tuple(out)


def _estimate(predictions: pl.DataFrame, card: ModelCard | None) -> PerformanceEstimate:
    """The label-free performance estimate over every scored customer (before filters),
    read against the card's validation numbers when there is a card."""
    p_churn = predictions.get_column(P_CHURN).cast(pl.Float64).to_numpy()
    return estimate_performance(p_churn) if card is None else estimate_for_card(p_churn, card)


def _model_info(card: ModelCard | None, name: str | None) -> ModelInfo | None:
    if card is None:
        return None
    return ModelInfo(
        name=name,
        mode=card.mode,
        horizon=card.horizon,
        trained_as_of=card.as_of.date().isoformat() if card.as_of is not None else None,
        metrics={
            str(k): float(v)
            for k, v in card.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        },
    )
