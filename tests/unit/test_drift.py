"""Drift profiles and PSI: calendar noise is not drift, a real change is."""

from __future__ import annotations

import math
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from monthly_world import monthly_events

from churnkit.core.config import load_settings
from churnkit.core.timeline import end_of_day
from churnkit.core.workspace import Workspace
from churnkit.model.drift import (
    MONTH_SPANS,
    PSI_FLOOR,
    day_edges,
    feature_profile,
    psi,
    psi_table,
)
from churnkit.model.training import train
from churnkit.quality.evaluate import GateReport, evaluate

TRAINED = end_of_day(date(2024, 12, 31))
# Three months later, across February.
LATER = end_of_day(date(2025, 3, 31))
SETTINGS = {"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 80}}}
PRICE_FEATURES = ("revenue_30d", "revenue_90d", "avg_purchase_amount", "price_increases")


def test_no_day_bin_splits_a_calendar_period_and_edges_are_distinct_whole_days():
    edges = np.asarray(day_edges())
    assert (np.diff(edges) > 0).all() and (edges == edges.round()).all()
    for low, high in [*MONTH_SPANS, (365, 366), (730, 731), (1461, 1461)]:
        inside = (edges >= low) & (edges < high)
        assert not inside.any(), (low, high)
    assert {0, 2, 4, 7, 27, 31} <= set(edges.tolist())  # two-day bins below a week
    assert {-1, -3, -32} <= set(edges.tolist())  # negative days mirror positive ones


def test_a_monthly_gap_is_one_bin_whatever_the_month():
    december = pl.Series("gap", [30.0] * 90 + [31.0] * 10)
    profile = feature_profile(december.to_frame(), units={"gap": "days"})["gap"]
    assert profile["binning"] == "days" and profile["step"] == 1.0
    assert all(e == round(e) for e in profile["edges"])
    # February: 28 days, give or take the hour of the charge.
    march = pl.Series([27.9, 28.0, 28.2] * 33)
    assert psi(profile, march) < 0.01
    assert psi(profile, pl.Series([61.0] * 100)) > 1  # paying every other month


def test_a_dominant_value_gets_bins_below_at_and_above_it():
    counts = pl.Series("n", [0.0] * 3 + [1.0] * 94 + [2.0] * 3)
    profile = feature_profile(counts.to_frame())["n"]
    assert profile["edges"] == [0.0, 1.0]
    constant = feature_profile(pl.Series("c", [0.0] * 50).to_frame())["c"]
    assert constant["edges"] == [0.0]
    assert psi(constant, pl.Series([0.0] * 35 + [1.0] * 15)) > 0.25  # e.g. price rises begin


def test_bins_never_hold_less_than_a_twentieth_of_training_rows():
    rng = np.random.default_rng(4)
    X = pl.DataFrame({"spend": rng.lognormal(3, 1, 2000), "days": rng.integers(0, 400, 2000)})
    profiles = feature_profile(X, units={"days": "days"})
    for profile in profiles.values():
        assert min(profile["proportions"]) >= 0.05 - 1e-9
        assert len(profile["edges"]) == len(set(profile["edges"]))


def test_an_empty_bin_is_floored_not_infinite():
    profile = feature_profile(pl.Series("x", list(range(100)), dtype=pl.Float64).to_frame())["x"]
    emptied = pl.Series([99.0] * 100)  # every bin but the last empties
    value = psi(profile, emptied)
    assert math.isfinite(value)
    worst = (1 - PSI_FLOOR) * math.log(1 / PSI_FLOOR) + 1.0
    assert value < len(profile["proportions"]) * worst


def test_profiles_from_before_whole_day_bins_are_judged_raw_and_said_to_be():
    old = {"type": "numeric", "edges": [29.99, 30.0, 30.01], "proportions": [0.25] * 4}
    old |= {"missing": 0.0, "count": 100}
    table = psi_table({"gap": old}, pl.DataFrame({"gap": [29.98, 29.995, 30.005, 30.02] * 25}))
    assert table.row(0) == ("gap", pytest.approx(0.0), "raw")
    assert psi(old, pl.Series([28.0] * 100)) > 1  # the old method: calendar noise is drift


@pytest.fixture(scope="module")
def stationary(tmp_path_factory: pytest.TempPathFactory) -> GateReport:
    return _trained_and_checked(monthly_events(seed=3), tmp_path_factory.mktemp("still"))


@pytest.fixture(scope="module")
def price_rise(tmp_path_factory: pytest.TempPathFactory) -> GateReport:
    events = monthly_events(seed=3, price_rise=("pro", 1.2, date(2025, 1, 15)))
    return _trained_and_checked(events, tmp_path_factory.mktemp("rise"))


def _trained_and_checked(events: pl.DataFrame, root: Path) -> GateReport:
    settings = load_settings(None, env={}, overrides=SETTINGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        workspace = Workspace(root / "ws")
        trained = train(events.lazy(), settings=settings, workspace=workspace, as_of=TRAINED)
        return evaluate(events.lazy(), settings=settings, model_dir=trained.model_dir, as_of=LATER)


def test_a_stationary_monthly_business_shows_no_drift_across_february(stationary):
    assert stationary.mode == "backtest" and stationary.as_of == LATER
    drift = dict(stationary.drift.select("feature", "psi").iter_rows())
    assert {"gap_last_days", "gap_mean_days", "gap_cv", "tenure_days"} <= set(drift)
    assert "signup_cohort" not in drift
    assert max(drift.values()) < 0.1, sorted(drift.items(), key=lambda kv: -kv[1])[:5]
    assert stationary.psi_weighted is not None and stationary.psi_weighted < 0.05


def test_a_price_rise_drifts_the_price_and_revenue_features(price_rise, stationary):
    drift = dict(price_rise.drift.select("feature", "psi").iter_rows())
    for feature in PRICE_FEATURES:
        assert drift[feature] > 0.25, feature
    unpriced = ("gap_last_days", "tenure_days", "recency_days")
    assert all(drift[f] < 0.1 for f in unpriced)
    assert price_rise.psi_weighted is not None
    assert price_rise.psi_weighted > stationary.psi_weighted  # type: ignore[operator]
    # Both numbers for every drifted feature: its PSI and its weight in the model.
    top = price_rise.to_json()["drift"]["features"][0]
    assert top["feature"] in drift and {"psi", "importance", "weighted"} <= set(top)
    assert top["weighted"] == pytest.approx(top["psi"] * top["importance"])
