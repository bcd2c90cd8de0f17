"""evaluate: back-tests where outcomes are known and unseen, checks the validation and
today's drift right after training; gates pass and fail with a reason."""

from __future__ import annotations

import json
import warnings
from datetime import datetime

import pytest

from churnkit.core.errors import DataError, ExitCode, ModelError, UsageError
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.model.card import ModelCard
from churnkit.model.training import train
from churnkit.quality.evaluate import evaluate, parse_gates

TRAIN_AS_OF = datetime(2026, 5, 31, 23, 59, 59, 999999)


@pytest.fixture(scope="module")
def backtest_model(sample_workspace, tmp_path_factory):  # type: ignore[no-untyped-def]
    from churnkit.core.config import load_settings

    settings = load_settings(
        None, env={}, overrides={"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}}
    )
    workspace = Workspace(tmp_path_factory.mktemp("eval") / "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(
            scan_events(sample_workspace), settings=settings, workspace=workspace, as_of=TRAIN_AS_OF
        )
    return result.model_dir


def run(sample_workspace, model_dir, fast_settings, **kwargs):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(
            scan_events(sample_workspace), settings=fast_settings, model_dir=model_dir, **kwargs
        )


def test_default_as_of_is_the_latest_with_known_outcomes(
    sample_workspace, backtest_model, fast_settings
):
    report = run(sample_workspace, backtest_model, fast_settings)
    assert report.as_of.date().isoformat() == "2026-07-19"  # 2026-10-31 - 90 - 14 days
    assert 0.5 < report.metrics["auc"] <= 1.0
    assert report.customers > 0 and sum(report.churners.values()) > 0
    payload = report.to_json()
    for key in (
        "passed",
        "auc",
        "pr_auc",
        "lift_top_decile",
        "brier",
        "psi_max",
        "expected_profit",
        "gates",
    ):
        assert key in payload


def test_gate_above_what_the_model_reaches_fails_and_below_passes(
    sample_workspace, backtest_model, fast_settings
):
    failing = run(sample_workspace, backtest_model, fast_settings, gates={"auc": 0.999, "psi": 99})
    assert not failing.passed
    assert [c.metric for c in failing.checks if not c.passed] == ["auc"]
    passing = run(sample_workspace, backtest_model, fast_settings, gates={"auc": 0.5, "psi": 99})
    assert passing.passed


def test_refuses_an_as_of_the_model_trained_on(sample_workspace, backtest_model, fast_settings):
    with pytest.raises(ModelError, match="learned from events up to 2026-05-31") as caught:
        run(sample_workspace, backtest_model, fast_settings, as_of=datetime(2026, 1, 31, 23, 59))
    assert caught.value.exit_code == ExitCode.MODEL
    assert "after as-of 2026-01-31: its scores would know what happened next" in (
        caught.value.message
    )


def test_an_as_of_equal_to_the_models_is_fine(sample_workspace, backtest_model, fast_settings):
    report = run(sample_workspace, backtest_model, fast_settings, as_of=TRAIN_AS_OF)
    assert report.as_of == TRAIN_AS_OF and report.customers > 0


def test_a_backtest_refuses_an_as_of_whose_outcomes_are_unknown(
    sample_workspace, backtest_model, fast_settings
):
    with pytest.raises(DataError, match="not known yet"):
        run(
            sample_workspace,
            backtest_model,
            fast_settings,
            as_of=datetime(2026, 9, 30, 23, 59),
            mode="backtest",
        )


def test_auto_checks_the_validation_at_an_as_of_whose_outcomes_are_unknown(
    sample_workspace, backtest_model, fast_settings
):
    as_of = datetime(2026, 9, 30, 23, 59)
    report = run(sample_workspace, backtest_model, fast_settings, as_of=as_of)
    assert report.mode == "validation" and report.as_of == as_of
    assert report.churners == {} and report.profit == {}


def test_a_backtest_shows_the_estimate_beside_the_realised_auc(
    sample_workspace, backtest_model, fast_settings
):
    report = run(sample_workspace, backtest_model, fast_settings, mode="backtest")
    assert report.mode == "backtest"
    payload = report.to_json()
    assert payload["estimate"]["auc"] == pytest.approx(report.estimate.auc)
    assert payload["auc"] == pytest.approx(report.metrics["auc"])
    assert 0.5 < report.estimate.auc < 1 and report.estimate.customers == report.customers


@pytest.fixture(scope="module")
def fresh_model(sample_workspace, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A model trained at the last day of the data: no later outcomes exist."""
    from churnkit.core.config import load_settings

    settings = load_settings(
        None, env={}, overrides={"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 60}}}
    )
    workspace = Workspace(tmp_path_factory.mktemp("fresh") / "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(scan_events(sample_workspace), settings=settings, workspace=workspace)
    return result.model_dir


def test_right_after_training_the_gates_apply_to_the_validation(
    sample_workspace, fresh_model, fast_settings
):
    report = run(sample_workspace, fresh_model, fast_settings, gates={"auc": 0.5, "psi": 99})
    card = ModelCard.read(fresh_model)
    assert report.mode == "validation"
    assert report.as_of == report.trained_as_of == card.as_of  # today's customers
    assert report.metrics["auc"] == card.metrics["auc"]
    assert report.customers > 0 and report.churners == {} and report.profit == {}
    assert report.drift.height > 0 and report.psi_weighted is not None
    assert report.passed and report.exit_code == ExitCode.OK
    assert report.reason == "all gates passed"


def test_every_verdict_says_its_exit_code_and_reason(sample_workspace, fresh_model, fast_settings):
    report = run(
        sample_workspace,
        fresh_model,
        fast_settings,
        gates={"auc": 0.999, "estimated_auc": 0.999, "psi_weighted": 99},
    )
    payload = report.to_json()
    assert payload["passed"] is False and payload["exit_code"] == 1
    assert payload["mode"] == "validation"
    assert payload["reason"].startswith("2 of ")
    assert "auc 0." in payload["reason"] and "estimated_auc 0." in payload["reason"]
    for key in ("metrics", "gates", "drift", "estimate", "psi_max", "psi_weighted"):
        assert key in payload
    assert {"psi_max", "psi_weighted", "features"} <= set(payload["drift"])
    json.dumps(payload, allow_nan=False)


def test_a_gate_on_what_the_mode_cannot_measure_fails_and_says_so(
    sample_workspace, fresh_model, fast_settings
):
    report = run(sample_workspace, fresh_model, fast_settings, gates={"expected_profit": 0.0})
    assert not report.passed
    assert "expected_profit not measured" in report.reason


def test_the_default_drift_gate_is_weighted_by_importance(fast_settings):
    assert fast_settings.quality_gates.psi is None
    assert fast_settings.quality_gates.psi_weighted == 0.25
    assert parse_gates({"psi_weighted": "0.1"}, flag="--max-drift", direction="max") == {
        "psi_weighted": 0.1
    }
    assert parse_gates({"estimated_auc": "0.7"}, flag="--fail-under", direction="min") == {
        "estimated_auc": 0.7
    }


def test_missing_model_is_a_model_error(sample_workspace, tmp_path, fast_settings):
    with pytest.raises(ModelError):
        run(sample_workspace, tmp_path / "nope", fast_settings)


def test_gate_flags_name_known_metrics_only():
    assert parse_gates({"auc": "0.8"}, flag="--fail-under", direction="min") == {"auc": 0.8}
    with pytest.raises(UsageError, match="allowed"):
        parse_gates({"brier": "0.1"}, flag="--fail-under", direction="min")
    with pytest.raises(UsageError, match="number"):
        parse_gates({"auc": "high"}, flag="--fail-under", direction="min")


def test_the_default_backtest_keeps_the_models_weekday(backtest_model):  # type: ignore[no-untyped-def]
    """Weekly exports are then seen at the same point of their week as in training
    (a back-test a day off the model's weekday once showed PSI 3 on "days since the
    last event")."""
    from dataclasses import replace
    from datetime import timedelta

    from churnkit.model.card import ModelCard
    from churnkit.quality.evaluate import _latest_known

    card = ModelCard.read(backtest_model)
    last_event = datetime(2026, 10, 31, 23, 59, 59, 999999)
    saturday = datetime(2026, 5, 30, 23, 59, 59, 999999)
    weekly = replace(card, as_of=saturday, cutoffs=(saturday - timedelta(days=105),))
    assert _latest_known(last_event, weekly).date().isoformat() == "2026-07-18"
    # Snapshots off the as-of's weekday: the latest day with known outcomes.
    daily = replace(weekly, cutoffs=(saturday - timedelta(days=104),))
    assert _latest_known(last_event, daily).date().isoformat() == "2026-07-19"
