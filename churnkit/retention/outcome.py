"""What a saved campaign achieved: ``churnkit measure``.

Among the customers the plan chose, the treated are compared with the control
customers held out at random (``churnkit.retention.campaign``). Each plan customer's
outcome over the plan's window ``(as_of, as_of + horizon]`` is labelled exactly as
training labels it (``population.labels.label_window``, with the grace period for a
failed payment to be recovered). When the data does not yet reach the end of the
window plus grace, the window is cut at the last event's day and the result says
``window_complete: false``: a customer who has not bought yet in a short window counts
as lapsed, so churn rates run high until it completes, but both groups are judged by
the same rule, so the comparison stays fair.

The statistics are ``churnkit.retention.measure``'s; per action, the observed
success rate (the share of would-be churners the action kept, uplift over the control
churn rate) is set against the playbook's assumed rate (``feedback``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from churnkit.core.config import LabelSettings
from churnkit.core.errors import DataError
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import ACTION, AMOUNT, CHURN_TYPE, CUSTOMER_ID, KIND, TS, EventKind
from churnkit.core.timeline import events_between, events_until, resolve_as_of
from churnkit.population import labels
from churnkit.retention.campaign import Campaign
from churnkit.retention.columns import ACTION_COST, CONTROL
from churnkit.retention.measure import (
    CONFIDENCE,
    TARGET_HALF_WIDTH,
    Comparison,
    ControlSizing,
    Group,
    compare,
    control_sizing,
    success_rate_interval,
)

_PURCHASE = pl.col(KIND) == EventKind.PURCHASE.value
_FAILED = pl.col(KIND) == EventKind.PAYMENT_FAILED.value
_CANCEL = pl.col(KIND) == EventKind.CANCEL.value
_REFUND = pl.col(KIND) == EventKind.REFUND.value
_DAY_US = 86_400_000_000

# Feedback verdicts: the action's observed success rate against the assumed one.
CONSISTENT = "consistent"
LOWER = "lower"
HIGHER = "higher"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class ActionResult:
    """One action's treated-vs-control comparison and its feedback to the playbook.

    ``observed_success_rate`` (with ``success_low``..``success_high``) is the share of
    would-be churners the action kept; ``verdict`` says how it stands against
    ``assumed_success_rate``: ``lower`` or ``higher`` when the interval excludes it,
    ``consistent`` when it does not, ``unknown`` when the control group of this action
    had no churners (or no customers) to compare with.
    """

    action: str
    comparison: Comparison
    assumed_success_rate: float | None
    observed_success_rate: float
    success_low: float
    success_high: float
    verdict: str


@dataclass(frozen=True)
class CampaignResult:
    """The measured campaign; see the module docstring.

    ``curve``: one row per day of the window (0 = as_of), with the share of the
    treated and of the control customers not yet churned by the end of that day.
    """

    campaign: str
    as_of: date
    window_end: date
    window_complete: bool
    days: int
    horizon: int
    grace: int
    data_until: date
    model: str | None
    control_share: float
    overall: Comparison
    actions: tuple[ActionResult, ...]
    sizing: ControlSizing
    curve: pl.DataFrame
    notes: tuple[str, ...] = ()
    suggested_playbook: str | None = None

    def with_suggestion(self, path: str | None, note: str | None) -> CampaignResult:
        notes = self.notes if note is None else (*self.notes, note)
        return replace(self, suggested_playbook=path, notes=notes)

    def to_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "as_of": self.as_of.isoformat(),
            "window_end": self.window_end.isoformat(),
            "window_complete": self.window_complete,
            "window_days": self.days,
            "horizon": self.horizon,
            "grace": self.grace,
            "data_until": self.data_until.isoformat(),
            "model": self.model,
            "control_share": self.control_share,
            "confidence": CONFIDENCE,
            "overall": _comparison_json(self.overall),
            "actions": [
                {
                    "action": a.action,
                    **_comparison_json(a.comparison),
                    "assumed_success_rate": a.assumed_success_rate,
                    "observed_success_rate": a.observed_success_rate,
                    "success_ci_low": a.success_low,
                    "success_ci_high": a.success_high,
                    "feedback": a.verdict,
                }
                for a in self.actions
            ],
            "control_sizing": {
                "half_width": self.sizing.half_width,
                "too_few_control": self.sizing.too_few,
                "target_half_width": TARGET_HALF_WIDTH,
                "needed_control_share": self.sizing.needed_share,
                "needed_customers": self.sizing.needed_customers,
            },
            "retention_curve": jsonable(self.curve.to_dicts()),
            "suggested_playbook": self.suggested_playbook,
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignResult:
        """Read back what ``to_json`` wrote (``measurement.json``)."""
        sizing = data["control_sizing"]
        return cls(
            campaign=str(data["campaign"]),
            as_of=date.fromisoformat(data["as_of"]),
            window_end=date.fromisoformat(data["window_end"]),
            window_complete=bool(data["window_complete"]),
            days=int(data["window_days"]),
            horizon=int(data["horizon"]),
            grace=int(data["grace"]),
            data_until=date.fromisoformat(data["data_until"]),
            model=data.get("model"),
            control_share=float(data["control_share"]),
            overall=_comparison_from(data["overall"]),
            actions=tuple(
                ActionResult(
                    action=str(a["action"]),
                    comparison=_comparison_from(a),
                    assumed_success_rate=a.get("assumed_success_rate"),
                    observed_success_rate=_num(a.get("observed_success_rate")),
                    success_low=_num(a.get("success_ci_low")),
                    success_high=_num(a.get("success_ci_high")),
                    verdict=str(a["feedback"]),
                )
                for a in data["actions"]
            ),
            sizing=ControlSizing(
                half_width=_num(sizing["half_width"]),
                too_few=bool(sizing["too_few_control"]),
                needed_share=sizing.get("needed_control_share"),
                needed_customers=sizing.get("needed_customers"),
            ),
            curve=pl.DataFrame(
                data["retention_curve"],
                schema={"day": pl.Int64, "treated": pl.Float64, "control": pl.Float64},
            ),
            notes=tuple(str(n) for n in data.get("notes") or ()),
            suggested_playbook=data.get("suggested_playbook"),
        )


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _comparison_from(data: dict[str, Any]) -> Comparison:
    t, c = data["treated"], data["control"]
    return Comparison(
        treated=int(t["customers"]),
        treated_churned=int(t["churned"]),
        treated_voluntary=int(t["voluntary"]),
        treated_involuntary=int(t["involuntary"]),
        treated_revenue=float(t["revenue"]),
        control=int(c["customers"]),
        control_churned=int(c["churned"]),
        control_voluntary=int(c["voluntary"]),
        control_involuntary=int(c["involuntary"]),
        control_revenue=float(c["revenue"]),
        cost=float(data["cost"]),
        uplift=_num(data["uplift"]),
        ci_low=_num(data["ci_low"]),
        ci_high=_num(data["ci_high"]),
        p_value=_num(data["p_value"]),
        incremental_revenue=_num(data["incremental_revenue"]),
        incremental_revenue_low=_num(data["incremental_revenue_ci_low"]),
        incremental_revenue_high=_num(data["incremental_revenue_ci_high"]),
    )


def _comparison_json(c: Comparison) -> dict[str, Any]:
    payload = {
        "treated": {
            "customers": c.treated,
            "churned": c.treated_churned,
            "voluntary": c.treated_voluntary,
            "involuntary": c.treated_involuntary,
            "churn_rate": c.treated_rate,
            "revenue": c.treated_revenue,
        },
        "control": {
            "customers": c.control,
            "churned": c.control_churned,
            "voluntary": c.control_voluntary,
            "involuntary": c.control_involuntary,
            "churn_rate": c.control_rate,
            "revenue": c.control_revenue,
        },
        "uplift": c.uplift,
        "ci_low": c.ci_low,
        "ci_high": c.ci_high,
        "p_value": c.p_value,
        "cost": c.cost,
        "incremental_revenue": c.incremental_revenue,
        "incremental_revenue_ci_low": c.incremental_revenue_low,
        "incremental_revenue_ci_high": c.incremental_revenue_high,
        "net_return": c.net_return,
        "return_per_unit": c.return_per_unit,
    }
    out: dict[str, Any] = jsonable(payload)
    return out


def measure_campaign(
    events: pl.LazyFrame,
    campaign: Campaign,
    *,
    label_settings: LabelSettings,
    as_of: datetime | None = None,
) -> CampaignResult:
    """Measure ``campaign`` on the events known at ``as_of`` (default: the last
    event's day). Raises ``DataError`` when no event after the plan's as_of is known."""
    start = campaign.as_of
    known_until = resolve_as_of(events, as_of)
    if known_until <= start:
        raise DataError(
            f"campaign {campaign.name!r} was planned at {start:%Y-%m-%d} and the data "
            f"ends {known_until:%Y-%m-%d}: nothing has happened since to measure",
            hint="ingest the events after the plan's as-of, then run measure again",
        )
    full_end = start + timedelta(days=campaign.horizon)
    window_end = min(full_end, known_until)
    days = max(1, round((window_end - start) / timedelta(days=1)))
    complete = known_until >= full_end + timedelta(days=campaign.grace)
    grace = campaign.grace if complete else max(0, (known_until - window_end).days)
    known = events_until(events, known_until)
    plan = campaign.plan.select(CUSTOMER_ID, CONTROL, ACTION, ACTION_COST)
    outcome = _outcomes(
        known,
        plan,
        start=start,
        days=days,
        grace=grace,
        active_window=labels.active_window_days(known, start, label_settings),
    )
    overall = _compare(outcome)
    per_action = tuple(
        _action_result(str(name), outcome.filter(pl.col(ACTION) == name), campaign)
        for name in sorted(outcome[ACTION].drop_nulls().unique().to_list())
    )
    pooled = (overall.treated_churned + overall.control_churned) / max(
        overall.treated + overall.control, 1
    )
    sizing = control_sizing(
        overall.ci_low,
        overall.ci_high,
        churn_rate=pooled,
        customers=overall.treated + overall.control,
    )
    notes = _notes(campaign, complete, days, window_end, known_until, sizing, pooled)
    return CampaignResult(
        campaign=campaign.name,
        as_of=start.date(),
        window_end=window_end.date(),
        window_complete=complete,
        days=days,
        horizon=campaign.horizon,
        grace=campaign.grace,
        data_until=known_until.date(),
        model=campaign.model,
        control_share=campaign.control_share,
        overall=overall,
        actions=per_action,
        sizing=sizing,
        curve=_curve(outcome, days),
        notes=tuple(notes),
    )


def _outcomes(
    known: pl.LazyFrame,
    plan: pl.DataFrame,
    *,
    start: datetime,
    days: int,
    grace: int,
    active_window: int,
) -> pl.DataFrame:
    """Per plan customer: ``churn_type`` (the training labels over the window),
    ``revenue`` in the window (purchases minus refunds) and ``churn_day``: the day of
    the window on which a churner left (the cancel, the failed payment that was never
    recovered, or for a lapse the day their last purchase fell out of the active
    window), null for the retained."""
    window_end = start + timedelta(days=days)
    look_end = window_end + timedelta(days=grace)
    ids = plan.lazy().select(CUSTOMER_ID)
    label = labels.label_window(known, start, horizon=days, grace=grace, active=ids)
    ours = known.join(ids, on=CUSTOMER_ID, how="semi")
    after = events_between(ours, start, look_end)
    in_window = pl.col(TS) <= window_end
    last_purchase = pl.when(_PURCHASE).then(pl.col(TS)).max()
    since_last = last_purchase.is_null() | (pl.col(TS) > last_purchase)
    signed = pl.when(_REFUND).then(-pl.col(AMOUNT).abs()).otherwise(pl.col(AMOUNT))
    moments = after.group_by(CUSTOMER_ID).agg(
        pl.when(_FAILED & in_window & since_last).then(pl.col(TS)).min().alias("_fail"),
        pl.when(_CANCEL & in_window & (last_purchase.is_null() | (pl.col(TS) >= last_purchase)))
        .then(pl.col(TS))
        .min()
        .alias("_cancel"),
        pl.when((_PURCHASE | _REFUND) & in_window)
        .then(signed.fill_null(0.0))
        .sum()
        .alias("revenue"),
    )
    before = (
        events_until(ours, start)
        .filter(_PURCHASE)
        .group_by(CUSTOMER_ID)
        .agg(pl.col(TS).max().alias("_last_before"))
    )
    lapse_at = pl.col("_last_before") + timedelta(days=active_window)
    moment = (
        pl.when(pl.col(CHURN_TYPE) == "involuntary")
        .then(pl.col("_fail"))
        .when(pl.col(CHURN_TYPE) == "voluntary")
        .then(pl.coalesce(pl.col("_cancel"), lapse_at, pl.lit(window_end)))
    )
    elapsed = (moment - pl.lit(start)).dt.total_microseconds()
    churn_day = ((elapsed + _DAY_US - 1) // _DAY_US).clip(1, days).cast(pl.Int64).alias("churn_day")
    frame = (
        plan.lazy()
        .join(label, on=CUSTOMER_ID, how="left")
        .join(moments, on=CUSTOMER_ID, how="left")
        .join(before, on=CUSTOMER_ID, how="left")
        .with_columns(
            pl.col(CHURN_TYPE).cast(pl.String),
            pl.col("revenue").fill_null(0.0),
            pl.col(ACTION_COST).cast(pl.Float64).fill_null(0.0),
        )
        .with_columns(churn_day)
        .select(CUSTOMER_ID, CONTROL, ACTION, ACTION_COST, CHURN_TYPE, "revenue", "churn_day")
    )
    return frame.collect(engine="in-memory")


def _groups(outcome: pl.DataFrame) -> dict[bool, tuple[Group, float]]:
    """Per control flag: the group's figures and what its actions cost."""
    totals = outcome.group_by(CONTROL).agg(
        pl.len().alias("n"),
        (pl.col(CHURN_TYPE) == "voluntary").sum().alias("voluntary"),
        (pl.col(CHURN_TYPE) == "involuntary").sum().alias("involuntary"),
        pl.col("revenue").sum().alias("revenue"),
        (pl.col("revenue") ** 2).sum().alias("revenue_sq"),
        pl.col(ACTION_COST).sum().alias("cost"),
    )
    out = {flag: (Group(0, 0, 0, 0.0, 0.0), 0.0) for flag in (False, True)}
    for row in totals.iter_rows(named=True):
        out[bool(row[CONTROL])] = (
            Group(
                customers=int(row["n"]),
                voluntary=int(row["voluntary"]),
                involuntary=int(row["involuntary"]),
                revenue=float(row["revenue"]),
                revenue_sq=float(row["revenue_sq"]),
            ),
            float(row["cost"]),
        )
    return out


def _compare(outcome: pl.DataFrame) -> Comparison:
    groups = _groups(outcome)
    treated, cost = groups[False]
    control, _ = groups[True]
    return compare(treated, control, cost=cost)


def _action_result(name: str, outcome: pl.DataFrame, campaign: Campaign) -> ActionResult:
    comparison = _compare(outcome)
    observed, low, high = success_rate_interval(
        comparison.treated_churned,
        comparison.treated,
        comparison.control_churned,
        comparison.control,
    )
    assumed_raw = (campaign.actions.get(name) or {}).get("success_rate")
    assumed = None if assumed_raw is None else float(assumed_raw)
    if assumed is None or not math.isfinite(low):
        verdict = UNKNOWN
    elif high < assumed:
        verdict = LOWER
    elif low > assumed:
        verdict = HIGHER
    else:
        verdict = CONSISTENT
    return ActionResult(name, comparison, assumed, observed, low, high, verdict)


def _curve(outcome: pl.DataFrame, days: int) -> pl.DataFrame:
    """Share not churned by the end of each day, per group (vectorised by bincount)."""
    columns: dict[str, Any] = {"day": np.arange(days + 1, dtype=np.int64)}
    for flag, name in ((False, "treated"), (True, "control")):
        group = outcome.filter(pl.col(CONTROL) == flag)
        churn_days = group["churn_day"].drop_nulls().to_numpy().astype(np.int64)
        left = np.full(days + 1, np.nan)
        if group.height:
            gone = np.cumsum(np.bincount(churn_days, minlength=days + 1)[: days + 1])
            left = 1.0 - gone / group.height
        columns[name] = left
    return pl.DataFrame(columns)


def _notes(
    campaign: Campaign,
    complete: bool,
    days: int,
    window_end: datetime,
    known_until: datetime,
    sizing: ControlSizing,
    pooled: float,
) -> list[str]:
    notes: list[str] = []
    if not complete:
        due = (campaign.as_of + timedelta(days=campaign.horizon + campaign.grace)).date()
        notes.append(
            f"the window is incomplete: {days} of {campaign.horizon} days observed (data to "
            f"{known_until:%Y-%m-%d}); customers who have not bought yet count as lapsed, so "
            f"both churn rates run high until the window and its {campaign.grace}-day grace "
            f"end on {due:%Y-%m-%d}"
        )
    if sizing.too_few:
        spread = f"±{100 * sizing.half_width:.1f} points"
        if sizing.needed_share is not None:
            fix = (
                f"hold out about {100 * sizing.needed_share:.0f}% of the plan's customers "
                f"(--control-share {sizing.needed_share:g})"
            )
        else:
            fix = (
                f"even an even split is not enough: the plan needs about "
                f"{sizing.needed_customers:,} customers"
            )
        notes.append(
            f"too few control customers for a useful answer: the 95% interval spans {spread}; "
            f"{fix} for ±{100 * TARGET_HALF_WIDTH:.0f} points at the observed churn rate of "
            f"{100 * pooled:.1f}%"
        )
    return notes
