"""Golden files of the retention report in every format, on a fixed prediction set.

``pytest tests/test_golden.py --update-golden`` rewrites tests/golden/; review the
diff like code. The prediction set, playbook and model card below are the shared
fixtures of the report tests (tests/unit/test_report.py and
tests/cli/test_cli_report.py import them from here).
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from rich.console import Console

from churnkit.model.card import (
    MULTICLASS,
    CalibrationBin,
    DecileBin,
    FeatureNote,
    ModelCard,
)
from churnkit.render.charts import Chart
from churnkit.render.report import (
    embedded,
    report_csv,
    report_html,
    report_json,
    report_markdown,
    report_table,
)
from churnkit.report.report import build_report
from churnkit.report.result import Report
from churnkit.retention.playbook import Playbook, parse_playbook

GOLDEN = Path(__file__).parent / "golden"
AS_OF = datetime(2026, 6, 30, 23, 59, 59, 999999)
HYPERLINK = '=HYPERLINK("http://evil.example","click")'
SCRIPT = "<script>alert(1)</script>"

FEATURES = [
    "complaints_unresolved",
    "recency_days",
    "days_to_card_expiry",
    "failed_payments_30d",
    "usage_login_trend",
    "price_increases",
    "failed_insufficient_funds",
    "tenure_days",
]

# id, p_churn, p_voluntary, p_involuntary, churn_type, risk_tier, value, segment,
# customer_type, strategy, value_tier, lifecycle_stage, drivers, driver_features
ROWS: list[tuple[Any, ...]] = [
    ("C001", 0.82, 0.70, 0.12, "voluntary", "high", 1200.0, "at_risk", "loyal", "protect",
     "high", "at_risk",
     ["1 complaint unresolved for 21 days", "no purchase for 74 days; usual gap 21 days"],
     ["complaints_unresolved", "recency_days"]),
    ("C002", 0.65, 0.10, 0.55, "involuntary", "high", 900.0, "champions", "need_based",
     "protect", "high", "loyal",
     ["card expires in 12 days", "2 failed payments in the last 30 days"],
     ["days_to_card_expiry", "failed_payments_30d"]),
    (HYPERLINK, 0.55, 0.45, 0.10, "voluntary", "high", 800.0, "hibernating", "impulse",
     "win_back", "medium", "lapsed",
     ["logins down 80% vs the previous 30 days", "no purchase for 60 days; usual gap 30 days"],
     ["usage_login_trend", "recency_days"]),
    (SCRIPT, 0.40, 0.30, 0.10, "voluntary", "medium", 1000.0, "at_risk", "discount_driven",
     "protect", "high", "retained", ["price up 20% | plan pro"], ["price_increases"]),
    ("C005", 0.35, 0.05, 0.30, "involuntary", "medium", 600.0, "champions", "loyal", "protect",
     "medium", "loyal", ["1 payment failed for insufficient funds"],
     ["failed_insufficient_funds"]),
    ("C006", 0.30, 0.25, 0.05, "voluntary", "medium", 500.0, "need_attention", "need_based",
     "enhance", "medium", "retained", ["no purchase for 45 days; usual gap 30 days"],
     ["recency_days"]),
    ("C007", 0.20, 0.15, 0.05, "retained", "low", 1500.0, "champions", "loyal", "build",
     "high", "loyal", [], []),
    ("C008", 0.15, 0.10, 0.05, "retained", "low", 300.0, "need_attention", "wanderer",
     "harvest", "low", "retained", [], None),
    ("C009", 0.10, 0.08, 0.02, "retained", "low", 200.0, None, None, None, None, None, [],
     None),
    ("C010", 0.05, 0.04, 0.01, "retained", "low", 100.0, "champions", "loyal", "build", "low",
     "loyal", [], None),
]  # fmt: skip

SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "p_churn": pl.Float64,
    "p_voluntary": pl.Float64,
    "p_involuntary": pl.Float64,
    "churn_type": pl.String,
    "risk_tier": pl.String,
    "value": pl.Float64,
    "value_at_risk": pl.Float64,
    "segment": pl.String,
    "driver_1": pl.String,
    "driver_2": pl.String,
    "driver_3": pl.String,
    "action": pl.String,
    "action_reason": pl.String,
    "customer_type": pl.String,
    "strategy": pl.String,
    "value_tier": pl.String,
    "lifecycle_stage": pl.String,
    "driver_features": pl.List(pl.String),
    "as_of": pl.Datetime("us"),
}


def fixed_predictions(*, binary: bool = False) -> pl.DataFrame:
    """Ten customers in predict's layout; value_at_risk = p_churn × value to the cent."""
    records = []
    for row in ROWS:
        cid, p, pv, pi, kind, tier, value, seg, ctype, strat, vtier, stage, drv, feats = row
        if binary:
            pv = pi = None
            kind = "retained" if kind == "retained" else "churned"
        drivers = [*drv, None, None, None][:3]
        records.append(
            {
                "customer_id": cid,
                "p_churn": p,
                "p_voluntary": pv,
                "p_involuntary": pi,
                "churn_type": kind,
                "risk_tier": tier,
                "value": value,
                "value_at_risk": round(p * value, 2),
                "segment": seg,
                "driver_1": drivers[0],
                "driver_2": drivers[1],
                "driver_3": drivers[2],
                "action": None,
                "action_reason": None,
                "customer_type": ctype,
                "strategy": strat,
                "value_tier": vtier,
                "lifecycle_stage": stage,
                "driver_features": feats,
                "as_of": AS_OF,
            }
        )
    return pl.DataFrame(records, schema=SCHEMA)


def _action(name: str, channel: str, cost: float, rate: float) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} ({channel})",
        "channel": channel,
        "unit_cost": cost,
        "success_rate": rate,
    }


PLAYBOOK: dict[str, Any] = {
    "rules": [
        {
            "name": "card",
            "when": {"churn_type": ["involuntary"]},
            "action": _action("card-update", "email", 1.0, 0.6),
        },
        {
            "name": "complaint",
            "when": {"drivers_any": ["complaints_unresolved"]},
            "action": _action("service-recovery-call", "phone", 50.0, 0.4),
        },
        {
            "name": "manager",
            "when": {"churn_type": ["voluntary", "churned"], "value_tier": ["high", "medium"]},
            "action": _action("account-manager", "account_manager", 40.0, 0.3),
        },
    ],
    "fallback": _action("check-in-email", "email", 2.0, 0.05),
}


def fixed_playbook() -> Playbook:
    return parse_playbook(PLAYBOOK, known_features=FEATURES)


CARD = ModelCard(
    mode="multiclass",
    classes=MULTICLASS,
    features=(),
    horizon=90,
    as_of=datetime(2026, 3, 31, 23, 59, 59, 999999),
    metrics={"auc": 0.812, "pr_auc": 0.55},
    feature_importance={
        "recency_days": 0.4,
        "usage_login_trend": 0.3,
        "tenure_days": 0.2,
        "complaints_unresolved": 0.1,
    },
    feature_specs={
        f: FeatureNote(description=f.replace("_", " ") + " (what it measures)") for f in FEATURES
    },
    calibration_curve=tuple(
        CalibrationBin(predicted=0.05 + 0.1 * i, observed=0.04 + 0.1 * i, customers=50)
        for i in range(10)
    ),
    feature_deciles={
        "recency_days": tuple(
            DecileBin(low=10.0 * i, high=10.0 * i + 9, churn_rate=0.02 * i, customers=40)
            for i in range(10)
        ),
        "tenure_days": tuple(
            DecileBin(low=100.0 * i, high=100.0 * i + 99, churn_rate=0.2 - 0.02 * i, customers=40)
            for i in range(10)
        ),
    },
)


def fixed_report(*, binary: bool = False, budget: float | None = 52.0) -> Report:
    """The golden report: top 8, a budget of 52 (not everything fits), 20% control."""
    return build_report(
        fixed_predictions(binary=binary),
        playbook=fixed_playbook(),
        top=8,
        budget=budget,
        control_share=0.2,
        seed=7,
        card=None if binary else CARD,
        model_name=None if binary else "default",
    )


def table_text(report: Report, width: int = 100) -> str:
    """The terminal rendering, without colour, at a fixed width, trailing blanks cut."""
    console = Console(
        width=width, no_color=True, force_terminal=False, record=True, file=io.StringIO()
    )
    console.print(report_table(report))
    return "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"


FAKE_CHARTS = [
    Chart(key, key.replace("_", " ").title(), f"{key} chart", b"\x89PNG fake")
    for key in ("risk_distribution", "churn_by_segment")
]


def _check(name: str, text: str, update: bool) -> None:
    path = GOLDEN / name
    if update:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no golden file {path}; run pytest --update-golden"
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} differs from its golden file; see the diff above"


def test_report_table(update_golden):
    _check("report_table.txt", table_text(fixed_report()), update_golden)


def test_report_table_binary(update_golden):
    _check("report_binary_table.txt", table_text(fixed_report(binary=True)), update_golden)


def test_report_markdown(update_golden):
    from churnkit.render.report import ChartRef

    refs = [ChartRef(c.key, c.title, c.alt, f"report_files/{c.key}.png") for c in FAKE_CHARTS]
    _check("report.md", report_markdown(fixed_report(), refs), update_golden)


def test_report_markdown_binary(update_golden):
    _check("report_binary.md", report_markdown(fixed_report(binary=True)), update_golden)


def test_report_json(update_golden):
    text = json.dumps(report_json(fixed_report()), indent=2) + "\n"
    _check("report.json", text, update_golden)


def test_report_csv(update_golden):
    _check("report.csv", report_csv(fixed_report()), update_golden)


def test_report_html(update_golden):
    html = report_html(fixed_report(), embedded(FAKE_CHARTS))
    _check("report.html", html, update_golden)


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_table_fits_the_terminal(width):
    lines = table_text(fixed_report(), width).splitlines()
    assert max(len(line) for line in lines) <= width
    for customer in (HYPERLINK, SCRIPT, "C001"):  # ids are shown whole
        assert any(customer in line for line in lines), customer
    listed = "\n".join(lines).split("Top 8")[1].split("What to do")[0]
    assert ("chosen" in listed) == (width >= 160)  # dropped first where narrow
