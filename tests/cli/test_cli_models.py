"""Every command finds its model the same way: names not paths, the same refusal of a
model newer than the as-of, the same list of models when one is missing."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.workspace import Workspace
from churnkit.model.training import train

FAST = {"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 60}}}
NEWER = (
    "model 'default' learned from events up to 2026-10-31, after as-of 2026-06-30: "
    "its scores would know what happened next"
)


@pytest.fixture(scope="module")
def workspace(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the sample workspace with the default model, trained at the last day."""
    root = tmp_path_factory.mktemp("cli-models") / "ws"
    shutil.copytree(sample_workspace.root, root)
    copy = Workspace(root)
    settings = load_settings(None, env={}, overrides=FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(scan_events(copy), settings=settings, workspace=copy, relations=scan_relations(copy))
    return root


COMMANDS = {
    "train": ["train"],
    "predict": ["predict"],
    "evaluate": ["evaluate"],
    "segment": ["segment", "--risk", "model"],
    "report": ["report"],
}


@pytest.mark.parametrize("name", ["../x", "../../elsewhere/m", ".hidden", "a/b"])
@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
def test_model_paths_are_usage_errors_everywhere(run_cli, workspace, command, name):
    result = run_cli("--workspace", str(workspace), *command, "--model", name, expect=2)
    assert f"--model {name!r}" in result.stderr
    assert "letters, digits" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (workspace.parent / "x").exists()
    assert sorted(p.name for p in (workspace / "models").iterdir()) == ["default"]


SCORING = {
    "predict": ["predict"],
    "evaluate": ["evaluate"],
    "segment": ["segment", "--risk", "model"],
}


@pytest.mark.parametrize("command", list(SCORING.values()), ids=list(SCORING))
def test_a_model_newer_than_the_as_of_exits_5_with_one_message(run_cli, workspace, command):
    result = run_cli("--workspace", str(workspace), *command, "--as-of", "2026-06-30", expect=5)
    lines = result.stderr.strip().splitlines()
    assert f"error: {NEWER}" in lines
    assert lines[-1] == (
        "hint: use a later --as-of, or train a model with an earlier --as-of "
        "(e.g. `churnkit train --as-of DATE --model backtest`)"
    )


def test_segment_auto_falls_back_to_rules_and_says_why(run_cli, workspace, tmp_path):
    copy = tmp_path / "ws"
    shutil.copytree(workspace, copy)  # segment writes into its workspace
    result = run_cli("--workspace", str(copy), "segment", "--as-of", "2026-06-30", "--json")
    payload = json.loads(result.stdout)
    assert payload["risk_sources"] == {"rules": payload["customers"]}
    assert any(NEWER in note for note in payload["notes"])


MISSING = {
    "predict": ["predict"],
    "evaluate": ["evaluate"],
    "segment": ["segment", "--risk", "model"],
    "report": ["report"],
}


@pytest.mark.parametrize("command", list(MISSING.values()), ids=list(MISSING))
def test_a_missing_model_lists_the_models_there_are_everywhere(run_cli, workspace, command):
    result = run_cli("--workspace", str(workspace), *command, "--model", "nope", expect=5)
    models = workspace / "models"
    assert f"error: no model 'nope' in {models}; models in {models}: default" in (
        result.stderr.replace("\n", " ")
    )
    assert "--model" in result.stderr.split("hint:")[1]


def test_a_model_path_in_the_config_is_a_config_error(run_cli, workspace):
    result = run_cli(
        "--workspace",
        str(workspace),
        "predict",
        env={"CHURNKIT_TRAIN__MODEL": "../x"},
        expect=4,
    )
    assert "train.model" in result.stderr
