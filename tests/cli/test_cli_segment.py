"""`churnkit segment` end to end on the generated sample export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from churnkit.core.workspace import Workspace
from churnkit.segment.segments import STRATEGIES

CONTRACT_COLUMNS = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "lifecycle_stage",
    "customer_type",
    "value_tier",
    "strategy",
    "strategy_reason",
]


@pytest.fixture
def ws(sample_workspace: Workspace, tmp_path: Path) -> Path:
    """A private copy, so the files segment writes never reach other tests."""
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, root)
    return root


def test_segment_writes_the_table_and_prints_the_summary(run_cli, ws, tmp_path):
    out = tmp_path / "segments.csv"
    result = run_cli("--workspace", str(ws), "segment", "--out", str(out))
    assert "RFM segments" in result.stdout
    assert "Relationship strategies" in result.stdout
    assert "champions" in result.stdout
    table = pl.read_parquet(ws / "segments.parquet")
    assert table.columns[: len(CONTRACT_COLUMNS)] == CONTRACT_COLUMNS
    assert "network_stickiness" in table.columns  # the sample has a relations table
    assert table["customer_id"].is_unique().all()
    assert set(table["strategy"].cast(pl.String)) <= set(STRATEGIES)
    assert table["strategy_reason"].null_count() == 0
    assert pl.read_csv(out).height == table.height
    assert "discount_driven is not assigned" in result.stdout


def test_segment_json_with_health_at_a_past_date(run_cli, ws):
    result = run_cli(
        "--workspace",
        str(ws),
        "segment",
        "--as-of",
        "2026-06-30",
        "--health",
        "--json",
        env={"CHURNKIT_SEGMENTS__DISCOUNT_COLUMN": "Discount"},
    )
    payload = json.loads(result.stdout)
    assert payload["as_of"].startswith("2026-06-30")
    assert payload["outcomes_known"] is True
    tiers = payload["summary"]["value_tier"]
    assert sum(t["customers"] for t in tiers) == payload["customers"]
    assert all(t["churn_rate"] is not None for t in tiers)
    types = {t["segment"] for t in payload["summary"]["customer_type"]}
    assert "discount_driven" in types
    health = payload["health"]
    assert health["has_failed_payments"] is True
    assert health["months"][-1]["month"] == "2026-06-01"
    assert 0 < health["summary"]["involuntary_share"] < 1
    assert 0 < health["summary"]["recovery_rate"] <= 1
    assert health["cohorts"][0]["retention"][0] is not None
    assert payload["outputs"]["segments"].endswith("segments.parquet")
    assert result.stderr.count("{") == 0  # logs stay off stdout, JSON off stderr


def test_markdown_report_has_a_heat_map_beside_it(run_cli, ws, tmp_path):
    report = tmp_path / "health.md"
    run_cli("--workspace", str(ws), "segment", "--health", "--report", str(report))
    text = report.read_text()
    image = tmp_path / "health-cohorts.png"
    assert image.read_bytes().startswith(b"\x89PNG")
    assert "](health-cohorts.png)" in text
    assert "### Monthly churn by kind" in text
    assert "### Cohort retention" in text
    assert "| as of | " in text  # the facts, as a table like the retention report's


def test_html_report_embeds_the_heat_map(run_cli, ws):
    result = run_cli("--workspace", str(ws), "segment", "--health", "--format", "html")
    assert result.stdout.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in result.stdout
    assert "<h2>Churn health</h2>" in result.stdout
    # the retention report's page shell: no scripts, nothing fetched from elsewhere
    assert "default-src 'none'" in result.stdout
    assert "<script" not in result.stdout


def test_model_risk_when_a_model_exists(run_cli, ws):
    env = {"CHURNKIT_TRAIN__SNAPSHOTS": "3", "CHURNKIT_TRAIN__LIGHTGBM__NUM_BOOST_ROUND": "60"}
    run_cli("--workspace", str(ws), "train", "--json", env=env)
    scored = json.loads(run_cli("--workspace", str(ws), "segment", "--json").stdout)
    assert scored["risk_sources"] == {"model": scored["customers"]}
    assert scored["model"] == "default"
    # Before the model's as-of its risk would know the future: rules, and it says why.
    past = json.loads(
        run_cli("--workspace", str(ws), "segment", "--as-of", "2026-03-31", "--json").stdout
    )
    assert past["risk_sources"] == {"rules": past["customers"]}
    assert any("after as-of 2026-03-31" in n for n in past["notes"])


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (["--risk", "model"], 5, "no model"),
        (["--report", "health.txt"], 2, ".md or .html"),
        (["--format", "json", "--report", "r.md"], 2, "Markdown or HTML"),
        (["--as-of", "2001-01-01"], 3, "no events at or before"),
    ],
    ids=["model-required", "report-suffix", "json-report", "as-of-before-data"],
)
def test_segment_errors_have_their_exit_codes(run_cli, ws, argv, code, fragment):
    result = run_cli("--workspace", str(ws), "segment", *argv, expect=code)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
