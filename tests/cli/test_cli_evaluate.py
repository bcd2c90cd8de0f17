"""The CI gate from the README: train, then evaluate with --json, and always a verdict."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from churnkit.core.workspace import Workspace

FAST = {
    "CHURNKIT_TRAIN__SNAPSHOTS": "3",
    "CHURNKIT_TRAIN__LIGHTGBM__NUM_BOOST_ROUND": "60",
}
README_GATE = ["evaluate", "--fail-under", "auc=0.75", "--max-drift", "psi=0.25", "--json"]


@pytest.fixture
def trained(run_cli, sample_workspace: Workspace, tmp_path: Path) -> Path:
    """A copy of the sample workspace right after `churnkit train`."""
    root = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, root)
    run_cli("--workspace", str(root), "--quiet", "train", env=FAST)
    return root


def test_the_readme_ci_example_works_right_after_train(run_cli, trained):
    result = run_cli("--workspace", str(trained), *README_GATE, env=FAST, expect=None)
    assert result.exit_code in (0, 1), result.stderr
    verdict = json.loads(result.stdout)  # the whole of stdout is one JSON object
    assert verdict["exit_code"] == result.exit_code
    assert verdict["passed"] is (result.exit_code == 0)
    assert verdict["mode"] == "validation"
    assert verdict["reason"] and "\n" not in verdict["reason"]
    gates = {g["metric"]: g for g in verdict["gates"]}
    assert gates["auc"]["threshold"] == 0.75 and gates["psi"]["threshold"] == 0.25
    assert "psi_weighted" in gates  # the default drift gate stays on
    assert verdict["estimate"]["auc"] is not None
    assert verdict["drift"]["features"][0]["importance"] is not None


def test_the_table_says_what_was_checked_and_why_it_passed_or_failed(run_cli, trained):
    result = run_cli(
        "--workspace", str(trained), "evaluate", "--fail-under", "auc=0.99", env=FAST, expect=1
    )
    out = " ".join(result.stdout.split())
    assert "Validation check of model 'default'" in out
    assert "Performance estimate: estimated AUC" in out and "Drift: PSI weighted" in out
    assert "FAILED: " in out and "auc 0." in out and "< 0.99" in out


def test_a_backtest_of_a_model_newer_than_any_known_outcome_is_refused(run_cli, trained):
    result = run_cli("--workspace", str(trained), "evaluate", "--mode", "backtest", expect=5)
    assert "learned from events up to 2026-10-31" in result.stderr


def test_an_error_with_json_is_one_json_object_too(run_cli, trained):
    result = run_cli("--workspace", str(trained), "evaluate", "--model", "nope", "--json", expect=5)
    verdict = json.loads(result.stdout)
    assert verdict["exit_code"] == 5 and "no model 'nope'" in verdict["error"]
