"""train on data nobody tuned it to: a shop's order log, short history, thin data,
a usage export alone."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from churnkit.core.config import load_settings
from churnkit.core.errors import DataError, InsufficientHistoryError
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import KIND, TS, EventKind
from churnkit.core.timeline import resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.model.card import ModelCard
from churnkit.model.training import TrainResult, train
from churnkit.sample import make_sample

FAST = {"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}}


def settings(**extra: Any):  # type: ignore[no-untyped-def]
    merged: dict[str, Any] = {**FAST}
    for key, value in extra.items():
        merged[key] = {**merged.get(key, {}), **value}
    return load_settings(None, env={}, overrides=merged)


def workspace_of(root: Path, customers: int, *, business: str = "subscription", **kw: Any):  # type: ignore[no-untyped-def]
    result = make_sample(root / "export", customers, seed=3, business=business, **kw)
    ws = Workspace(root / "ws")
    plain = load_settings(None, env={})
    relations = result.paths["relations"] if result.rows["relations"] else None
    ingest([result.paths["transactions"]], settings=plain, workspace=ws, relations=relations)
    if result.rows["usage"]:
        ingest([result.paths["usage"]], settings=plain, workspace=ws, kind=EventKind.USAGE)
    return ws


def quiet_train(events: pl.LazyFrame, ws: Workspace, **kw: Any) -> TrainResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return train(events, workspace=ws, **{"settings": settings(), **kw})


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    return workspace_of(tmp_path_factory.mktemp("shop"), 1500, business="retail")


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """About five months of billing and weekly usage."""
    return workspace_of(tmp_path_factory.mktemp("short"), 1500, months=5)


def test_a_shop_scores_every_past_buyer_and_beats_both_baselines(shop, tmp_path):
    result = quiet_train(scan_events(shop), Workspace(tmp_path / "m"))
    assert result.business_model == "non_contractual"
    assert result.population == "all"
    assert result.mode == "binary"
    assert result.scored_share == 1.0
    assert result.customer_base_baseline["auc"] > result.baseline["auc"] - 0.05
    assert result.beats_baselines
    assert result.metrics["auc"] > result.customer_base_baseline["auc"]
    assert 0 <= result.calibration_error < 0.1
    card = ModelCard.read(result.model_dir)
    assert card.business_model == "non_contractual"
    assert card.population == "all"
    assert card.beats_baselines is True
    assert card.customer_base is not None and card.customer_base["converged"]
    assert card.customer_base_baseline["auc"] == pytest.approx(result.customer_base_baseline["auc"])
    assert {"p_alive", "expected_purchases_horizon"} <= set(card.feature_names)
    assert card.calibration_error == pytest.approx(result.calibration_error)
    assert result.to_json()["business_model"] == "non_contractual"


def test_a_shop_model_is_the_same_with_later_events_in_the_file(shop, tmp_path):
    events = scan_events(shop)
    as_of = resolve_as_of(events, None).replace(month=8, day=31)
    full = quiet_train(events, Workspace(tmp_path / "a"), as_of=as_of)
    cut = quiet_train(events.filter(pl.col(TS) <= as_of), Workspace(tmp_path / "b"), as_of=as_of)
    model = "model.txt"
    assert (full.model_dir / model).read_bytes() == (cut.model_dir / model).read_bytes()
    cards = [json.loads((r.model_dir / "card.json").read_text()) for r in (full, cut)]
    assert cards[0]["customer_base"] == cards[1]["customer_base"]


def test_the_population_setting_can_keep_a_shop_to_its_active_buyers(shop, tmp_path):
    result = quiet_train(
        scan_events(shop),
        Workspace(tmp_path / "m"),
        settings=settings(labels={"population": "active"}),
    )
    assert result.population == "active"
    assert result.scored_share < 0.8


def test_five_months_train_on_one_snapshot_split_by_customer(short, tmp_path):
    """Once exit 70 (an empty list of training snapshots)."""
    with pytest.warns(UserWarning, match="only one snapshot") as caught:
        result = train(
            scan_events(short),
            settings=settings(labels={"horizon": 60}),
            workspace=Workspace(tmp_path / "m"),
            relations=scan_relations(short),
        )
    assert len(result.cutoffs) == 1
    assert result.validation == "customer_hash_split"
    assert any("30% of its customers" in str(w.message) for w in caught)
    card = ModelCard.read(result.model_dir)
    assert card.validation == "customer_hash_split"
    assert result.metrics["auc"] > result.baseline["auc"]


def test_short_history_shortens_the_minimum_history_and_says_so(short, tmp_path):
    with pytest.warns(UserWarning, match="days of history before the latest cutoff"):
        result = train(
            scan_events(short),
            settings=settings(labels={"horizon": 90}, train={"min_churners": 5}),
            workspace=Workspace(tmp_path / "m"),
        )
    assert ModelCard.read(result.model_dir).min_history_days < 60


def test_no_snapshot_fits_names_the_history_needed(short, tmp_path):
    with pytest.raises(InsufficientHistoryError) as raised:
        train(
            scan_events(short),
            settings=settings(labels={"horizon": 140}),
            workspace=Workspace(tmp_path / "m"),
        )
    error = raised.value
    assert "140-day horizon needs at least 182 days" in str(error)
    assert "(140 horizon + 14 grace + 28 history)" in str(error)
    assert error.hint is not None and "--horizon 1" in error.hint


def test_twenty_customers_are_refused_with_the_counts(tmp_path):
    ws = workspace_of(tmp_path / "tiny", 20, months=12)
    with pytest.raises(DataError, match=r"cannot support a model.*customers \(") as raised:
        quiet_train(scan_events(ws), ws)
    assert "train.min_churners" in str(raised.value)
    assert not (ws.root / "models" / "default").exists()


def test_usage_export_alone_trains_on_activity(sample_workspace, tmp_path):
    events = scan_events(sample_workspace).filter(pl.col(KIND) == EventKind.USAGE.value)
    result = quiet_train(events, Workspace(tmp_path / "m"))
    assert result.mode == "binary"
    assert result.population == "active"
    assert "usage only" in result.business_evidence
    assert not result.customer_base_baseline
    assert result.metrics["auc"] > 0.7
    assert any(f.startswith("usage_") for f in result.features)


def test_usage_with_billing_scores_the_same_population_as_billing(sample_workspace, tmp_path):
    events = scan_events(sample_workspace)
    both = quiet_train(events, Workspace(tmp_path / "both"))
    billing = quiet_train(
        events.filter(pl.col(KIND) != EventKind.USAGE.value), Workspace(tmp_path / "billing")
    )
    assert both.snapshot_counts == billing.snapshot_counts
    assert any(f.startswith("usage_") for f in both.features)
    assert both.business_model == "contractual"
