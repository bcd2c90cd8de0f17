"""The retention report: numbers that add up, the budget, the control group, a binary
model, filters, escaping and charts, on the fixed prediction set of tests/test_golden.py."""

from __future__ import annotations

import csv
import io
import json
import math

import polars as pl
import pytest
from test_golden import (
    CARD,
    HYPERLINK,
    SCRIPT,
    fixed_playbook,
    fixed_predictions,
    fixed_report,
    table_text,
)

from churnkit.core.errors import DataError, UsageError
from churnkit.render.report import (
    embedded,
    report_csv,
    report_html,
    report_json,
    report_markdown,
)
from churnkit.report.report import build_report, playbook_features


def build(**kwargs):
    args = {"playbook": fixed_playbook(), "top": 10, "card": CARD, "seed": 7}
    args.update(kwargs)
    predictions = args.pop("predictions", None)
    return build_report(fixed_predictions() if predictions is None else predictions, **args)


def test_summary_sums_the_population():
    frame = fixed_predictions()
    report = build()
    s = report.summary
    assert s.active_customers == 10
    assert s.expected_churners["voluntary"] == pytest.approx(frame["p_voluntary"].sum())
    assert s.expected_churners["involuntary"] == pytest.approx(frame["p_involuntary"].sum())
    assert s.value_at_risk == pytest.approx(frame["value_at_risk"].sum())
    assert sum(s.value_at_risk_by_kind.values()) == pytest.approx(s.value_at_risk)
    # the six customers predict put in a risk tier hold 5,000 of value
    assert (s.customers_at_risk, s.revenue_at_risk) == (6, pytest.approx(5000.0))
    assert s.risk_tiers == {"high": 3, "medium": 3, "low": 4}


def test_customers_are_ranked_by_value_at_risk():
    report = build(top=4)
    listed = report.customers
    assert listed["rank"].to_list() == [1, 2, 3, 4]
    assert listed["customer_id"].to_list() == ["C001", "C002", HYPERLINK, SCRIPT]
    assert listed["value_at_risk"].is_sorted(descending=True)


def test_without_a_budget_every_action_that_pays_is_planned():
    report = build()
    frame = report.customers
    paying = frame.filter(pl.col("expected_saved_value") > 0)
    assert frame["selected"].to_list() == (frame["expected_saved_value"] > 0).to_list()
    plan = report.actions
    assert plan["customers"].sum() == paying.height
    assert plan["cost"].sum() == pytest.approx(paying["action_cost"].sum())
    assert report.budget is None


@pytest.mark.parametrize("amount", [0.0, 1.0, 52.0, 90.0, 10_000.0])
def test_budget_numbers_add_up(amount):
    report = build(budget=amount)
    budget = report.budget
    assert budget is not None
    chosen = budget.chosen
    assert budget.spent <= amount + 1e-9
    assert budget.spent == pytest.approx(chosen["action_cost"].sum())
    assert budget.expected_saved_value == pytest.approx(chosen["expected_saved_value"].sum())
    assert budget.customers == chosen.height
    # the action plan is the chosen customers, grouped
    assert report.actions["customers"].sum() == chosen.height
    assert report.actions["cost"].sum() == pytest.approx(budget.spent)
    assert report.actions["expected_saved_value"].sum() == pytest.approx(
        budget.expected_saved_value
    )
    assert all(r.startswith("chosen") for r in chosen["selection_reason"].to_list())


def test_a_tight_budget_picks_the_best_combination():
    # 52 buys the complaint call (50, saves 343.60) and two card updates (1 each),
    # not the check-in emails (2) or the account managers (40) that save less.
    report = build(budget=52.0)
    assert report.budget is not None
    assert set(report.budget.chosen["customer_id"]) == {"C001", "C002", "C005"}
    assert report.budget.spent == pytest.approx(52.0)
    assert report.budget.method == "exact"


def test_control_customers_are_held_out_and_counted():
    report = build(control_share=0.3)
    listed = report.customers
    control = listed.filter(pl.col("control"))
    assert report.control.customers == control.height > 0
    assert not control["selected"].any()
    assert set(control["selection_reason"]) == {
        "control group: no action, to measure the actions' effect"
    }
    # the same seed holds out the same customers
    again = build(control_share=0.3)
    assert again.customers["control"].to_list() == listed["control"].to_list()


def test_the_control_group_is_said_and_marked_in_every_format():
    report = fixed_report()
    held_out = report.listed.filter(pl.col("control"))["customer_id"].to_list()
    assert held_out
    text = table_text(report)
    md = report_markdown(report)
    page = report_html(report)
    payload = report_json(report)
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert "control group" in text and "control: no action" in text
    assert "control group" in md and "control: no action" in md
    assert "control group" in page and 'class="control"' in page
    assert payload["control_group"] == {"share": 0.2, "customers": 5, "seed": 7}
    assert [c["customer_id"] for c in payload["customers"] if c["control"]] == held_out
    assert [r["customer_id"].lstrip("'") for r in rows if r["control"] == "true"] == held_out


def test_a_binary_model_says_so_and_shows_no_split():
    report = fixed_report(binary=True)
    assert report.binary
    assert list(report.summary.expected_churners) == ["churned"]
    payload = report_json(report)
    assert payload["model_type"] == "binary"
    assert "binary" in payload["note"]
    for customer in payload["customers"]:
        assert "p_voluntary" not in customer and "p_involuntary" not in customer
    header = report_csv(report).splitlines()[0].split(",")
    assert "p_voluntary" not in header and "p_involuntary" not in header
    for text in (table_text(report), report_markdown(report), report_html(report)):
        assert "binary model" in text
        assert "p voluntary" not in text and "p involuntary" not in text
        assert "involuntary 1" not in text  # no split in the summary either


def test_kind_filter_keeps_the_customers_whose_likelier_kind_it_is():
    report = build(kind="involuntary")
    assert set(report.customers["customer_id"]) == {"C002", "C005"}
    assert report.summary.active_customers == 2
    assert report.filters == {"kind": "involuntary"}
    with pytest.raises(UsageError, match="binary"):
        build(predictions=fixed_predictions(binary=True), kind="voluntary")


def test_segment_and_min_value_filters():
    report = build(segment="champions", min_value=500.0)
    assert set(report.customers["customer_id"]) == {"C002", "C005", "C007"}
    with pytest.raises(UsageError, match="no segment") as caught:
        build(segment="nobody")
    assert "champions" in (caught.value.hint or "")


def test_missing_columns_are_a_data_error():
    with pytest.raises(DataError, match="value_at_risk"):
        build(predictions=fixed_predictions().drop("value_at_risk"))


def test_without_a_playbook_there_are_no_actions_and_the_report_says_so():
    report = build(playbook=None)
    assert report.actions.height == 0
    assert not report.customers["selected"].any()
    assert any("playbook" in n for n in report.notes)
    with pytest.raises(UsageError, match="playbook"):
        build(playbook=None, budget=10.0)


def test_actions_from_predict_are_replaced_by_the_playbook():
    stale = fixed_predictions().with_columns(pl.lit("old-action").alias("action"))
    report = build(predictions=stale)
    assert "old-action" not in report.customers["action"].to_list()


def test_top_drivers_count_the_listed_customers_driver_features():
    report = build(top=3)
    counts = dict(zip(report.drivers["feature"], report.drivers["customers"], strict=True))
    assert counts["recency_days"] == 2
    assert counts["complaints_unresolved"] == 1
    described = dict(zip(report.drivers["feature"], report.drivers["description"], strict=True))
    assert described["recency_days"] == "recency days (what it measures)"


def test_the_model_card_adds_calibration_and_feature_deciles():
    report = build()
    assert report.calibration is not None and report.calibration.height == 10
    assert [f.feature for f in report.feature_deciles] == ["recency_days", "tenure_days"]
    bare = build(card=None)
    assert bare.calibration is None and bare.feature_deciles == ()


def test_playbook_rules_may_name_any_feature_churnkit_produces(settings):
    """A payment rule must load even for a model trained without failed payments."""
    names = playbook_features(None, settings)
    assert {"recency_days", "failed_card_expired", "related_churned"} <= set(names)
    assert "usage_any_trend" in names


def test_risk_distribution_covers_every_customer():
    report = build()
    dist = report.risk_distribution
    assert dist.height == 10
    assert dist["customers"].sum() == 10
    assert dist["value_at_risk"].sum() == pytest.approx(report.summary.value_at_risk)


def test_segments_sum_to_the_summary():
    report = build()
    seg = report.by_segment
    assert seg["customers"].sum() == 10
    assert seg["voluntary"].sum() == pytest.approx(report.summary.expected_churners["voluntary"])
    assert "(none)" in seg["segment"].to_list()


def test_html_escapes_every_value():
    page = report_html(fixed_report())
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    assert "http://" not in page.replace("http://evil.example", "")  # nothing external
    assert "&quot;http://evil.example&quot;" in page


def test_markdown_escapes_pipes_and_html():
    md = report_markdown(fixed_report())
    assert "price up 20% \\| plan pro" in md
    assert SCRIPT not in md
    for line in md.splitlines():
        if line.startswith("| 4 |"):
            assert line.count(" | ") == line.replace("\\|", "").count(" | ")


def test_csv_escapes_spreadsheet_formulas():
    rows = list(csv.DictReader(io.StringIO(report_csv(fixed_report()))))
    ids = [r["customer_id"] for r in rows]
    assert "'" + HYPERLINK in ids
    assert HYPERLINK not in ids
    assert rows[0]["driver_features"] == "complaints_unresolved; recency_days"


def test_json_has_the_documented_keys():
    payload = report_json(fixed_report())
    json.dumps(payload)  # plain JSON types only
    assert {"active_customers", "expected_churners", "value_at_risk"} <= set(payload["summary"])
    customer = payload["customers"][0]
    for key in (
        "customer_id",
        "p_churn",
        "churn_type",
        "value_at_risk",
        "driver_1",
        "action",
        "action_cost",
        "expected_saved_value",
        "selected",
        "control",
    ):
        assert key in customer, key  # fmt: skip
    for action in payload["actions"]:
        assert {"action", "customers", "cost", "expected_saved_value"} <= set(action)
    assert {"amount", "spent", "expected_saved_value"} <= set(payload["budget"])
    assert payload["budget"]["amount"] == 52.0
    assert all(math.isfinite(c["p_churn"]) for c in payload["customers"])


def test_charts_are_png_and_the_same_data_draws_the_same_bytes():
    from churnkit.render.charts import report_charts

    report = fixed_report()
    charts = report_charts(report)
    keys = [c.key for c in charts]
    assert keys == [
        "risk_distribution",
        "churn_by_segment",
        "top_drivers",
        "calibration",
        "feature_deciles",
    ]
    assert all(c.png.startswith(b"\x89PNG\r\n\x1a\n") for c in charts)
    assert [c.png for c in report_charts(report)] == [c.png for c in charts]
    page = report_html(report, embedded(charts))
    assert page.count("data:image/png;base64,") == len(charts)
    # a binary report without a model card still draws what it has
    assert [c.key for c in report_charts(fixed_report(binary=True))] == [
        "risk_distribution",
        "churn_by_segment",
        "top_drivers",
    ]


def test_report_columns_match_what_predict_writes():
    from churnkit.core.schema import PREDICTION_COLUMNS
    from churnkit.predict import pipeline as scoring

    assert scoring.OUTPUT_COLUMNS == PREDICTION_COLUMNS


def many_predictions(n: int = 300) -> pl.DataFrame:
    """``n`` customers in predict's layout, with long ids (emails)."""
    base = fixed_predictions().head(1)
    rows = pl.concat([base] * n).with_columns(
        pl.Series("customer_id", [f"customer.{i:04d}@example.com" for i in range(n)]),
        pl.Series("value", [100.0 + 10 * i for i in range(n)]),
    )
    return rows.with_columns((pl.col("p_churn") * pl.col("value")).alias("value_at_risk"))


def test_with_a_budget_files_list_the_whole_plan_and_top_limits_the_terminal():
    report = build(predictions=many_predictions(), top=5, budget=2000.0, control_share=0.1)
    assert report.budget is not None
    assert report.customers.height == 5
    plan = report.listed
    treated = plan.filter(~pl.col("control"))
    assert treated.height == report.budget.customers > 5
    assert treated["selected"].all()
    assert plan.filter(pl.col("control")).height > 0
    assert plan["rank"].to_list() == list(range(1, plan.height + 1))
    ids = set(plan["customer_id"])
    assert set(report.budget.chosen["customer_id"]) <= ids
    rows = list(csv.DictReader(io.StringIO(report_csv(report))))
    assert [r["customer_id"] for r in rows] == plan["customer_id"].to_list()
    payload = report_json(report)
    assert [c["customer_id"] for c in payload["customers"]] == plan["customer_id"].to_list()
    assert payload["customers_listed"].startswith("the whole plan by value at risk")
    md = report_markdown(report)
    assert all(i in md for i in ids)
    assert all(i in report_html(report) for i in ids)
    terminal = table_text(report, 200)
    listed = [i for i in ids if i in terminal.split("What to do")[0]]
    assert len(listed) == 5


def test_without_a_budget_files_list_the_top_customers():
    report = build(predictions=many_predictions(), top=5)
    assert report.listed.height == 5
    assert len(list(csv.DictReader(io.StringIO(report_csv(report))))) == 5
    assert report_json(report)["customers_listed"] == "the top 5 of 300 by value at risk"


@pytest.mark.parametrize("width", [80, 200])
def test_the_terminal_shows_long_ids_whole(width):
    uuids = [f"3f2b8c1e-9d4a-4b7e-8f61-{i:012d}" for i in range(3)]
    emails = [f"a.very.long.name.{i}@customers.example.com" for i in range(3)]
    predictions = many_predictions(6).with_columns(pl.Series("customer_id", uuids + emails))
    report = build(predictions=predictions, top=6, budget=100.0)
    text = table_text(report, width)
    assert max(len(line) for line in text.splitlines()) <= width
    for customer in uuids + emails:
        assert any(customer in line for line in text.splitlines()), customer


def test_the_terminal_says_what_each_listed_action_means():
    report = fixed_report()
    text = table_text(report, 120)
    assert "What to do" in text
    assert "service-recovery-call (phone)" in text  # the action's description
