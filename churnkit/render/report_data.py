"""The retention report as data: one JSON object, or the listed customers as CSV.

With a budget both hold every customer of the plan (the selected ones, and the
control customers it holds out, ``control: true``), not only the top ``--top``.

Floats are rounded to ``ROUND`` decimals so the output does not change with the last
bits of a sum; dates are ISO 8601.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from churnkit.core.jsonable import jsonable
from churnkit.core.schema import DRIVER_FEATURES, P_INVOLUNTARY, P_VOLUNTARY
from churnkit.render.formats import frame_csv
from churnkit.render.report_parts import BINARY_NOTE, listed_note
from churnkit.report.result import Report

ROUND = 6


def customer_columns(report: Report) -> list[str]:
    """The listed customers' columns; a binary model has no voluntary/involuntary ones."""
    drop = {P_VOLUNTARY, P_INVOLUNTARY} if report.binary else set()
    return [c for c in report.listed.columns if c not in drop]


def report_json(report: Report) -> dict[str, Any]:
    """The whole report as one JSON object (``--format json``)."""
    payload: dict[str, Any] = {
        "as_of": report.as_of.isoformat() if report.as_of else None,
        "model_type": "binary" if report.binary else "multiclass",
        "churn_kinds": list(report.kinds),
    }
    if report.binary:
        payload["note"] = BINARY_NOTE
    payload.update(
        {
            "filters": report.filters,
            "summary": _summary(report),
            "control_group": {
                "share": report.control.share,
                "customers": report.control.customers,
                "seed": report.control.seed,
            },
            "customers_listed": listed_note(report),
            "customers": _records(report.listed.select(customer_columns(report))),
            "actions": _records(report.actions),
            "budget": _budget(report),
            "top_drivers": _records(report.drivers),
            "segments": _records(report.by_segment),
            "risk_distribution": _records(report.risk_distribution),
            "model": _model(report),
            "performance_estimate": (
                jsonable(report.estimate.to_json(), digits=ROUND) if report.estimate else None
            ),
            "notes": list(report.notes),
        }
    )
    if report.by_quadrant is not None:
        payload["value_matrix"] = _records(report.by_quadrant)
    if report.campaigns:
        payload["campaigns"] = [c.to_json() for c in report.campaigns]
    return payload


def _summary(report: Report) -> dict[str, Any]:
    s = report.summary
    return {
        "active_customers": s.active_customers,
        "expected_churners": jsonable(s.expected_churners, digits=ROUND),
        "expected_churners_total": jsonable(s.expected_churners_total, digits=ROUND),
        "value_at_risk": jsonable(s.value_at_risk, digits=ROUND),
        "value_at_risk_by_kind": jsonable(s.value_at_risk_by_kind, digits=ROUND),
        "revenue_at_risk": jsonable(s.revenue_at_risk, digits=ROUND),
        "customers_at_risk": s.customers_at_risk,
        "total_value": jsonable(s.total_value, digits=ROUND),
        "risk_tiers": s.risk_tiers,
    }


def _budget(report: Report) -> dict[str, Any] | None:
    b = report.budget
    if b is None:
        return None
    return {
        "amount": jsonable(b.amount, digits=ROUND),
        "spent": jsonable(b.spent, digits=ROUND),
        "expected_saved_value": jsonable(b.expected_saved_value, digits=ROUND),
        "customers": b.customers,
        "method": b.method,
        "chosen": _records(b.chosen),
    }


def _model(report: Report) -> dict[str, Any] | None:
    m = report.model
    if m is None:
        return None
    return {
        "name": m.name,
        "mode": m.mode,
        "horizon": m.horizon,
        "trained_as_of": m.trained_as_of,
        "metrics": jsonable(m.metrics, digits=ROUND),
        "calibration": _records(report.calibration) if report.calibration is not None else [],
        "feature_deciles": {
            f.feature: {"description": f.description, "deciles": _records(f.deciles)}
            for f in report.feature_deciles
        },
    }


def report_csv(report: Report) -> str:
    """The listed customers (with a budget: the whole plan, control customers marked),
    one row each; cells a spreadsheet would run are escaped."""
    frame = report.listed.select(customer_columns(report))
    frame = frame.with_columns(
        pl.col(c).cast(pl.String)
        for c, dtype in frame.schema.items()
        if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime)
    )
    if DRIVER_FEATURES in frame.columns:
        frame = frame.with_columns(pl.col(DRIVER_FEATURES).list.join("; "))
    frame = frame.with_columns(pl.col(pl.Float64).round(ROUND))
    return frame_csv(frame)


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects, serialised by Polars (the chosen list can be long): floats
    rounded, NaN as null, datetimes in ISO 8601."""
    ready = frame.with_columns(
        pl.col(pl.Float64).round(ROUND),
        pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S%.f"),
        pl.col(pl.Date).dt.strftime("%Y-%m-%d"),
    )
    records: list[dict[str, Any]] = json.loads(ready.write_json())
    return records
