"""`churnkit predict` end to end: a summary people can read, files cron jobs can use,
and exit 5 for a model that does not fit the data."""

from __future__ import annotations

import json
import shutil
import warnings
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import KIND, EventKind
from churnkit.core.workspace import Workspace
from churnkit.model.training import train

FAST = {"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}}
# Few drivers keep the runs quick.
ENV = {"CHURNKIT_PREDICT__DRIVERS_TOP_N": "25"}


@pytest.fixture(scope="module")
def workspace(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample workspace with the default model (trained at 2026-09-30, so
    that date can be scored too) and a binary model that never saw a failed payment."""
    root = tmp_path_factory.mktemp("cli-predict") / "ws"
    shutil.copytree(sample_workspace.root, root)
    copy = Workspace(root)
    events = scan_events(copy)
    settings = load_settings(None, env={}, overrides=FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(
            events,
            settings=settings,
            workspace=copy,
            relations=scan_relations(copy),
            as_of=datetime(2026, 9, 30, 23, 59, 59, 999999),
        )
        train(
            events.filter(pl.col(KIND) != EventKind.PAYMENT_FAILED.value),
            settings=settings,
            workspace=copy,
            model_name="nofail",
        )
    return root


def test_predict_prints_a_summary_and_writes_the_workspace_file(run_cli, workspace):
    result = run_cli("--workspace", str(workspace), "predict", env=ENV)
    out = result.stdout
    for fragment in (
        "active customers",
        "expected churners",
        "voluntary",
        "involuntary",
        "value at risk",
        "customers with drivers",
        "Top 10 by value at risk",
        "main driver",
    ):
        assert fragment in out, fragment
    files = sorted((workspace / "predictions").glob("predictions-*.parquet"))
    assert [f.name for f in files] == ["predictions-2026-10-31.parquet"]
    assert "predictions-2026-10-31.parquet" in out.replace("\n", "")
    frame = pl.read_parquet(files[0])
    latest = pl.read_parquet(workspace / "predictions" / "latest.parquet")
    assert latest.equals(frame)
    # the table shows the customers with the most value at risk, first one first
    assert frame["customer_id"][0] in out
    assert "Traceback" not in result.stderr


def test_predict_json_is_one_object_for_cron_jobs(run_cli, workspace):
    result = run_cli("--workspace", str(workspace), "predict", "--json", env=ENV)
    payload = json.loads(result.stdout)
    assert payload["mode"] == "multiclass"
    assert payload["active_customers"] > 0
    assert set(payload["expected_churners"]) == {"voluntary", "involuntary"}
    assert payload["value_at_risk"] > 0
    assert 25 <= payload["customers_with_drivers"] < payload["active_customers"]
    assert Path(payload["path"]).is_file()
    top = payload["top_customers"]
    assert len(top) == 10
    assert top[0]["value_at_risk"] >= top[-1]["value_at_risk"]
    assert top[0]["driver_1"]
    assert isinstance(top[0]["driver_features"], list)
    # the list is the top 10; the file holds everyone, and the payload says where
    assert payload["top_customers_note"] == (
        f"the top 10 customers by value at risk; all {payload['active_customers']:,} are in "
        f"{payload['path']}"
    )
    assert pl.read_parquet(payload["path"]).height == payload["active_customers"]


def test_predict_explains_the_customers_asked_for(run_cli, workspace, tmp_path):
    first = run_cli("--workspace", str(workspace), "predict", "--json", env=ENV)
    everyone = pl.read_parquet(json.loads(first.stdout)["path"])
    asked = everyone.filter(pl.col("driver_features").is_null())["customer_id"].tail(2).to_list()
    out = tmp_path / "asked.parquet"
    args = ["--explain", asked[0], "--explain", asked[1], "--out", str(out)]
    result = run_cli("--workspace", str(workspace), "predict", *args, env=ENV)
    assert "asked for with --explain" in result.stdout
    again = pl.read_parquet(out).filter(pl.col("customer_id").is_in(asked))
    assert again["driver_features"].null_count() == 0


def test_predict_refuses_to_explain_customers_it_does_not_know(run_cli, workspace):
    result = run_cli(
        "--workspace",
        str(workspace),
        "predict",
        "--explain",
        "ghost@example.com",
        env=ENV,
        expect=2,
    )
    assert "'ghost@example.com'" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_out_csv_at_a_past_date(run_cli, workspace, tmp_path):
    result = run_cli(
        "--workspace",
        str(workspace),
        "predict",
        "--as-of",
        "2026-09-30",
        "--out",
        "at-risk.csv",
        env=ENV,
    )
    out = tmp_path / "at-risk.csv"
    assert out.is_file()
    frame = pl.read_csv(out)
    assert frame.columns[:14] == [
        "customer_id",
        "p_churn",
        "p_voluntary",
        "p_involuntary",
        "churn_type",
        "risk_tier",
        "value",
        "value_at_risk",
        "segment",
        "driver_1",
        "driver_2",
        "driver_3",
        "action",
        "action_reason",
    ]
    assert frame["as_of"].str.starts_with("2026-09-30").all()
    assert "at-risk.csv" in result.stdout
    # an explicit --out leaves the workspace's predictions alone
    assert not (workspace / "predictions" / "predictions-2026-09-30.parquet").exists()


def test_a_missing_model_exits_5_and_names_the_models_there_are(run_cli, workspace):
    result = run_cli("--workspace", str(workspace), "predict", "--model", "nope", expect=5)
    assert "no model 'nope'" in result.stderr
    assert "default" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_that_never_saw_failed_payments_exits_5(run_cli, workspace):
    result = run_cli("--workspace", str(workspace), "predict", "--model", "nofail", expect=5)
    assert "never saw a failed payment" in result.stderr
    assert "hint:" in result.stderr
    assert result.stdout == ""


def test_a_model_needing_the_relations_table_exits_5_without_it(run_cli, workspace, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(workspace, bare, ignore=shutil.ignore_patterns("relations.parquet"))
    result = run_cli("--workspace", str(bare), "predict", expect=5)
    assert "related_customers" in result.stderr
    assert "relations" in result.stderr.split("hint:")[1]


def test_an_output_type_it_cannot_write_is_refused_before_scoring(run_cli, workspace):
    result = run_cli("--workspace", str(workspace), "predict", "--out", "p.xlsx", expect=2)
    assert "p.xlsx" in result.stderr
    assert ".parquet, .csv or .json" in result.stderr
