"""train: leakage-free, reproducible, better than the naive baseline, honest warnings."""

from __future__ import annotations

import json
import warnings
from datetime import datetime

import numpy as np
import polars as pl
import pytest

from churnkit.core.errors import InsufficientHistoryError, SingleChurnKindWarning
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import KIND, TS, EventKind
from churnkit.core.workspace import Workspace
from churnkit.features import FeatureLayout
from churnkit.features.snapshot import active_features
from churnkit.model.lightgbm import ChurnModel
from churnkit.model.training import train

AS_OF = datetime(2026, 8, 31, 23, 59, 59, 999999)


def fit(events, settings, tmp_path, name="m", relations=None, **kwargs):  # type: ignore[no-untyped-def]
    workspace = Workspace(tmp_path / name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = train(
            events, settings=settings, workspace=workspace, relations=relations, **kwargs
        )
    return result, workspace


def test_multiclass_model_beats_the_naive_baseline(sample_workspace, fast_settings, tmp_path):
    events = scan_events(sample_workspace)
    result, _ = fit(events, fast_settings, tmp_path, relations=scan_relations(sample_workspace))

    assert result.mode == "multiclass"
    assert result.classes == ("retained", "voluntary", "involuntary")
    assert result.metrics["auc"] > result.baseline["auc"] + 0.05
    assert result.metrics["auc_involuntary_vs_voluntary"] > 0.75
    assert result.cutoffs[-1] <= result.as_of
    card = json.loads((result.model_dir / "card.json").read_text())
    for key in ("as_of", "horizon", "classes", "config_hash", "data_fingerprint", "layout"):
        assert key in card
    assert set(card["feature_specs"]) == set(result.features)
    assert (result.model_dir / "model.txt").read_text().startswith("tree")


def test_events_after_as_of_change_nothing(sample_workspace, fast_settings, tmp_path):
    """The contract: the same command on a file that also holds later events gives the same
    model, to the bit, and the same predictions."""
    events = scan_events(sample_workspace)
    cut = events.filter(pl.col(TS) <= AS_OF)
    full, _ = fit(events, fast_settings, tmp_path, name="full", as_of=AS_OF)
    only_past, _ = fit(cut, fast_settings, tmp_path, name="cut", as_of=AS_OF)

    assert (full.model_dir / "model.txt").read_bytes() == (
        only_past.model_dir / "model.txt"
    ).read_bytes()
    card_full = json.loads((full.model_dir / "card.json").read_text())
    card_cut = json.loads((only_past.model_dir / "card.json").read_text())
    assert card_full["data_fingerprint"] == card_cut["data_fingerprint"]

    model_a = ChurnModel.load(full.model_dir)
    model_b = ChurnModel.load(only_past.model_dir)
    layout = FeatureLayout.from_dict(card_full["layout"])
    snap = active_features(cut, AS_OF, settings=fast_settings, relations=None, layout=layout)
    X = snap.frame.select(model_a.feature_names_)
    np.testing.assert_array_equal(model_a.predict_proba(X), model_b.predict_proba(X))


def test_same_seed_same_model(sample_workspace, fast_settings, tmp_path):
    events = scan_events(sample_workspace)
    a, _ = fit(events, fast_settings, tmp_path, name="a", as_of=AS_OF)
    b, _ = fit(events, fast_settings, tmp_path, name="b", as_of=AS_OF)
    assert (a.model_dir / "model.txt").read_bytes() == (b.model_dir / "model.txt").read_bytes()


def test_purchase_log_without_failed_payments_gives_a_binary_model(
    sample_workspace, fast_settings, tmp_path
):
    events = scan_events(sample_workspace).filter(pl.col(KIND) != EventKind.PAYMENT_FAILED.value)
    workspace = Workspace(tmp_path / "bin")
    with pytest.warns(SingleChurnKindWarning, match="binary"):
        result = train(events, settings=fast_settings, workspace=workspace)
    assert result.mode == "binary"
    assert result.classes == ("retained", "churned")
    assert "auc_involuntary_vs_voluntary" not in result.metrics


def test_too_little_history_for_the_horizon_is_a_data_error(
    sample_workspace, make_settings, tmp_path
):
    settings = make_settings(labels={"horizon": 700})
    with pytest.raises(InsufficientHistoryError, match="700-day horizon"):
        train(
            scan_events(sample_workspace),
            settings=settings,
            workspace=Workspace(tmp_path / "w"),
        )


def test_training_rows_above_max_rows_are_sampled_and_said(
    sample_workspace, fast_settings, tmp_path
):
    events = scan_events(sample_workspace)
    whole, _ = fit(events, fast_settings, tmp_path, name="whole", as_of=AS_OF)
    bounded = fast_settings.model_copy(
        update={"train": fast_settings.train.model_copy(update={"max_rows": 1000})}
    )
    sampled, _ = fit(events, bounded, tmp_path, name="sampled", as_of=AS_OF)

    assert whole.sampling == ()
    assert sampled.sampling and "train.max_rows" in sampled.sampling[0]
    card = json.loads((sampled.model_dir / "card.json").read_text())
    assert card["n_train"] <= 1100
    # Fewer rows, but the same signal, ranked almost as well and still calibrated.
    assert sampled.metrics["auc"] > whole.metrics["auc"] - 0.05
    assert sampled.calibration_error < 0.05
