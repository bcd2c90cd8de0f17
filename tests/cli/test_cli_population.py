"""The CLI on data it was not tuned to: a shop export, a handful of customers, a
weak model saved with --force, and the gate on beating the baselines."""

from __future__ import annotations

import json
from pathlib import Path

FAST = {
    "CHURNKIT_TRAIN__SNAPSHOTS": "3",
    "CHURNKIT_TRAIN__LIGHTGBM__NUM_BOOST_ROUND": "100",
    "CHURNKIT_PREDICT__DRIVERS_TOP_N": "10",
}


def test_a_shop_export_is_scored_whole_with_win_backs(run_cli, tmp_path: Path):
    run_cli("sample", "--business", "retail", "--customers", "800", "--out", "shop")
    ws = ["--workspace", "ws"]
    run_cli(*ws, "ingest", "shop/transactions.csv")
    trained = run_cli(*ws, "train", "--json", env=FAST)
    result = json.loads(trained.stdout)
    assert result["business_model"] == "non_contractual"
    assert result["population"] == "all"
    assert result["scored_share"] == 1.0
    assert result["customer_base_baseline"]["auc"] > 0.5
    assert result["beats_baselines"] is True
    assert "calibration_error" in result
    text = run_cli(*ws, "train", env=FAST).stdout
    assert "BG/NBD baseline" in text and "non-contractual" in text
    predicted = json.loads(run_cli(*ws, "predict", "--json", env=FAST).stdout)
    assert any(n.startswith("business model non-contractual") for n in predicted["notes"])
    segments = run_cli(*ws, "segment", "--json", env=FAST).stdout
    assert "win_back" in segments


def test_twenty_customers_are_refused_and_force_saves_a_weak_model(run_cli, tmp_path: Path):
    run_cli("sample", "--customers", "20", "--months", "12", "--out", "tiny")
    ws = ["--workspace", "ws"]
    run_cli(*ws, "ingest", "tiny/transactions.csv", "--relations", "tiny/relations.csv")
    refused = run_cli(*ws, "train", env=FAST, expect=3)
    assert "cannot support a model" in refused.stderr
    assert "customers (" in refused.stderr  # the counts
    assert "--force" in refused.stderr
    assert not (tmp_path / "ws" / "models" / "default").exists()

    forced = run_cli(*ws, "train", "--force", env=FAST)
    assert "saved with --force" in forced.stderr
    card = json.loads((tmp_path / "ws" / "models" / "default" / "card.json").read_text())
    assert card["weak"] is True and card["weak_reasons"]
    predicted = run_cli(*ws, "predict", env=FAST)
    assert "saved with --force" in predicted.stderr


def test_the_beats_baseline_gate_reads_the_card(run_cli, tmp_path: Path):
    run_cli("sample", "--business", "retail", "--customers", "800", "--out", "shop")
    ws = ["--workspace", "ws"]
    run_cli(*ws, "ingest", "shop/transactions.csv")
    run_cli(*ws, "train", "--as-of", "2026-06-30", "--model", "back", env=FAST)
    card = tmp_path / "ws" / "models" / "back" / "card.json"
    gate = ["evaluate", "--model", "back", "--fail-under", "beats_baseline=1", "--json"]
    report = json.loads(run_cli(*ws, *gate, env=FAST, expect=None).stdout)
    check = next(c for c in report["gates"] if c["metric"] == "beats_baseline")
    assert check["value"] == 1.0
    data = json.loads(card.read_text())
    data["beats_baselines"] = False
    card.write_text(json.dumps(data))
    report = json.loads(run_cli(*ws, *gate, env=FAST, expect=1).stdout)
    check = next(c for c in report["gates"] if c["metric"] == "beats_baseline")
    assert check["value"] == 0.0 and not check["passed"]
