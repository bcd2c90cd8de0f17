"""predict: every active customer scored once, honest about the model, drivers where shown."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import Settings, load_settings
from churnkit.core.errors import ChurnkitWarning, ConfigError, ExitCode, ModelError, UsageError
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, TS, EventKind
from churnkit.core.workspace import Workspace
from churnkit.features.snapshot import active_features
from churnkit.model.card import ModelCard
from churnkit.model.lightgbm import ChurnModel
from churnkit.model.training import train
from churnkit.predict.drivers import risk_contributions
from churnkit.predict.pipeline import (
    OUTPUT_COLUMNS,
    Predictions,
    predict,
    risk_tiers,
    save_predictions,
)
from churnkit.predict.value import MAX_LIFETIME_MONTHS, monthly_churn_rate

FAST = {"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}}
NO_FAILURES = pl.col(KIND) != EventKind.PAYMENT_FAILED.value
# Low enough that the sample has customers in every tier.
TIERS = {"high": 0.3, "medium": 0.1}


@dataclasses.dataclass(frozen=True)
class Trained:
    workspace: Workspace
    events: pl.LazyFrame
    relations: pl.LazyFrame | None

    def settings(self, **predict: Any) -> Settings:
        return load_settings(None, env={}, overrides={**FAST, "predict": predict})

    def model(self, name: str) -> Path:
        return self.workspace.model_dir(name)


@pytest.fixture(scope="module")
def trained(sample_workspace, tmp_path_factory) -> Trained:
    """A multiclass model (with the referral network) and a binary one trained on the
    same export without its failed payments."""
    events = scan_events(sample_workspace)
    relations = scan_relations(sample_workspace)
    workspace = Workspace(tmp_path_factory.mktemp("scoring") / "ws")
    settings = load_settings(None, env={}, overrides=FAST)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(events, settings=settings, workspace=workspace, relations=relations, model_name="m")
        train(events.filter(NO_FAILURES), settings=settings, workspace=workspace, model_name="b")
    return Trained(workspace, events, relations)


@pytest.fixture(autouse=True)
def elsewhere(tmp_path, monkeypatch):
    """Run where no configs/actions.yaml lies, so the shipped playbook applies unless a
    test brings one."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
def scored(trained, tmp_path_factory) -> Predictions:
    with contextlib.chdir(tmp_path_factory.mktemp("elsewhere")):
        return predict(
            trained.events,
            settings=trained.settings(drivers_top_n=40, risk_tiers=TIERS),
            model_dir=trained.model("m"),
            relations=trained.relations,
        )


def test_every_active_customer_is_scored_once(trained, scored):
    frame = scored.frame
    active = active_features(
        trained.events,
        scored.as_of,
        settings=trained.settings(),
        relations=trained.relations,
        layout=ModelCard.read(trained.model("m")).layout,
    ).frame
    assert [c for c in frame.columns if c in OUTPUT_COLUMNS] == list(OUTPUT_COLUMNS)
    assert sorted(frame[CUSTOMER_ID].to_list()) == sorted(active[CUSTOMER_ID].to_list())
    assert scored.active_customers == active.height
    assert scored.mode == "multiclass"
    # p_churn = 1 - p_retained = p_voluntary + p_involuntary
    np.testing.assert_allclose(
        frame[P := "p_churn"].to_numpy(),
        (frame["p_voluntary"] + frame["p_involuntary"]).to_numpy(),
        atol=1e-9,
    )
    assert frame[P].min() >= 0.0 and frame[P].max() <= 1.0  # type: ignore[operator]
    assert frame["value_at_risk"].is_sorted(descending=True)
    assert scored.expected_churners == pytest.approx(
        {"voluntary": frame["p_voluntary"].sum(), "involuntary": frame["p_involuntary"].sum()}
    )
    assert scored.value_at_risk == pytest.approx(frame["value_at_risk"].sum())
    assert frame["as_of"].unique().to_list() == [scored.as_of]


def test_risk_tier_and_churn_type_follow_the_thresholds(scored):
    frame = scored.frame
    p = frame["p_churn"]
    expected_tier = np.where(p >= 0.3, "high", np.where(p >= 0.1, "medium", "low"))
    assert frame["risk_tier"].to_list() == expected_tier.tolist()
    kind = np.where(frame["p_involuntary"] > frame["p_voluntary"], "involuntary", "voluntary")
    expected_type = np.where(p >= 0.1, kind, "retained")
    assert frame["churn_type"].to_list() == expected_type.tolist()
    assert scored.tier_counts == {
        "high": int((p >= 0.3).sum()),
        "medium": int(((p >= 0.1) & (p < 0.3)).sum()),
        "low": int((p < 0.1).sum()),
    }
    assert min(scored.tier_counts.values()) > 0


@pytest.mark.parametrize(
    ("tiers", "fragment"),
    [({"high": 1.5}, "predict.risk_tiers.high"), ({"low": 0.1}, "predict.risk_tiers.low")],
)
def test_bad_risk_tiers_are_configuration_errors(tiers, fragment):
    with pytest.raises(ConfigError, match=fragment):
        risk_tiers(tiers)


def test_value_is_trailing_revenue_and_value_at_risk_its_share(trained, scored):
    window = 365
    plain = predict(
        trained.events,
        settings=trained.settings(value="trailing_revenue", value_window=window, drivers_top_n=0),
        model_dir=trained.model("m"),
        relations=trained.relations,
    ).frame
    start = scored.as_of - timedelta(days=window)
    money = (
        trained.events.filter(pl.col(TS) > start, pl.col(TS) <= scored.as_of)
        .group_by(CUSTOMER_ID)
        .agg(
            pl.when(pl.col(KIND) == EventKind.PURCHASE.value)
            .then(pl.col(AMOUNT))
            .when(pl.col(KIND) == EventKind.REFUND.value)
            .then(-pl.col(AMOUNT).abs())
            .otherwise(0.0)
            .sum()
            .clip(lower_bound=0.0)
            .alias("by_hand")
        )
        .collect()
    )
    both = plain.join(money, on=CUSTOMER_ID, how="left").with_columns(
        pl.col("by_hand").fill_null(0.0)
    )
    np.testing.assert_allclose(both["value"].to_numpy(), both["by_hand"].to_numpy())
    np.testing.assert_allclose(
        both["value_at_risk"].to_numpy(), (both["p_churn"] * both["value"]).to_numpy()
    )
    # expected_remaining: run-rate per 30 days × expected lifetime at the model's churn rate
    counts = ModelCard.read(trained.model("m")).class_counts
    rate = 1 - counts["retained"] / sum(counts.values())
    lifetime = min(MAX_LIFETIME_MONTHS, 1 / monthly_churn_rate(rate, 90))
    clv = scored.frame.join(plain.select(CUSTOMER_ID, pl.col("value").alias("tr")), on=CUSTOMER_ID)
    np.testing.assert_allclose(
        clv["value"].to_numpy(), (clv["tr"] * lifetime / (window / 30)).to_numpy()
    )


def test_monthly_churn_rate_assumes_a_constant_hazard():
    assert monthly_churn_rate(0.2, 90) == pytest.approx(1 - 0.8 ** (1 / 3))
    assert monthly_churn_rate(0.1, 30) == pytest.approx(0.1)
    assert monthly_churn_rate(0.0, 90) == 0.0


def test_drivers_only_for_the_top_customers_by_value_at_risk(scored):
    frame = scored.frame
    top = set(frame.head(40)[CUSTOMER_ID].to_list())
    explained = frame.filter(pl.col("driver_features").is_not_null())
    assert set(explained[CUSTOMER_ID].to_list()) == top
    assert scored.with_drivers == 40 < scored.active_customers
    rest = frame.filter(pl.col("driver_features").is_null())
    assert rest["driver_1"].null_count() == rest.height
    # Each explained customer's sentences line up with the features behind them.
    shown = explained.with_columns(pl.col("driver_features").list.len().alias("n"))
    assert (shown["n"] > 0).mean() > 0.5  # type: ignore[operator]
    for slot in (1, 2, 3):
        said = shown[f"driver_{slot}"].is_not_null()
        assert (said == (shown["n"] >= slot)).all()
    assert scored.drivers_for == "the top 40 by value at risk"


def test_drivers_never_say_a_non_reason(scored):
    said = pl.concat([scored.frame[f"driver_{i}"] for i in (1, 2, 3)]).drop_nulls().to_list()
    assert said
    for sentence in said:
        assert " 0 in the 30 days before" not in sentence
        assert " in -" not in sentence and "×" not in sentence
        assert not re.search(r"\b1 (days|complaints|failed payments|logins)\b", sentence)
        assert not re.search(r"down from 0\b", sentence)  # never "0 vs 0"


def test_customers_asked_for_get_drivers_wherever_they_rank(trained, scored):
    last = scored.frame[CUSTOMER_ID].to_list()[-3:]
    result = predict(
        trained.events,
        settings=trained.settings(drivers_top_n=5, risk_tiers=TIERS),
        model_dir=trained.model("m"),
        relations=trained.relations,
        explain_ids=[last[0], last[1], last[0]],
    )
    explained = result.frame.filter(pl.col("driver_features").is_not_null())
    assert set(last[:2]) <= set(explained[CUSTOMER_ID].to_list())
    assert result.with_drivers == 7
    assert result.drivers_for == (
        "the top 5 by value at risk and the 2 customers asked for with --explain"
    )


def test_an_unknown_customer_to_explain_is_a_usage_error_naming_it(trained):
    with pytest.raises(UsageError) as caught:
        predict(
            trained.events,
            settings=trained.settings(drivers_top_n=5),
            model_dir=trained.model("m"),
            relations=trained.relations,
            explain_ids=["nobody@example.com", "C999999"],
        )
    assert caught.value.exit_code == ExitCode.USAGE
    assert "'nobody@example.com', 'C999999'" in caught.value.message


def test_drivers_for_everyone_say_first_what_it_costs(trained):
    heard: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: heard.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("churnkit.predict.pipeline")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        result = predict(
            trained.events,
            settings=trained.settings(drivers_top_n=0),
            model_dir=trained.model("m"),
            relations=trained.relations,
            drivers="all",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert result.with_drivers == result.active_customers
    assert result.frame["driver_features"].null_count() == 0
    assert result.drivers_for == "every customer (--drivers all)"
    assert any(m.startswith("--drivers all: explaining") for m in heard)


def test_drivers_are_features_that_raise_the_risk_of_the_likelier_kind(trained, scored):
    model = ChurnModel.load(trained.model("m"))
    layout = model.card_.layout
    explained = scored.frame.filter(pl.col("driver_features").list.len() > 0)
    features = (
        active_features(
            trained.events,
            scored.as_of,
            settings=trained.settings(),
            relations=trained.relations,
            layout=layout,
        )
        .frame.join(explained.select(CUSTOMER_ID), on=CUSTOMER_ID)
        .sort(CUSTOMER_ID)
    )
    explained = explained.sort(CUSTOMER_ID)
    involuntary = (explained["p_involuntary"] > explained["p_voluntary"]).to_numpy()
    kind = np.where(involuntary, 2, 1).astype(np.intp)
    risk = risk_contributions(
        model.contributions(features.select(model.feature_names_)), kind, reference=0
    )
    index = {name: i for i, name in enumerate(model.feature_names_)}
    for row, names in enumerate(explained["driver_features"].to_list()):
        pushes = [risk[row, index[n]] for n in names]
        assert all(p > 0 for p in pushes), (explained[CUSTOMER_ID][row], names, pushes)
        assert pushes == sorted(pushes, reverse=True)


def test_a_model_whose_features_the_data_cannot_give_is_refused(trained):
    with pytest.raises(ModelError, match="related_customers") as caught:
        predict(trained.events, settings=trained.settings(), model_dir=trained.model("m"))
    assert caught.value.exit_code == ExitCode.MODEL
    assert "relations" in (caught.value.hint or "")


def test_a_model_trained_on_a_column_the_data_lacks_is_refused(trained):
    with pytest.raises(ModelError, match="'card_expiry'"):
        predict(
            trained.events.drop("card_expiry"),
            settings=trained.settings(),
            model_dir=trained.model("m"),
            relations=trained.relations,
        )


def test_a_multiclass_model_is_refused_on_data_without_failed_payments(trained):
    with pytest.raises(ModelError, match="holds no failed payments") as caught:
        predict(
            trained.events.filter(NO_FAILURES),
            settings=trained.settings(),
            model_dir=trained.model("m"),
            relations=trained.relations,
        )
    assert "involuntary" in caught.value.message


def test_a_binary_model_is_refused_on_data_that_now_has_failed_payments(trained):
    with pytest.raises(ModelError, match="never saw a failed payment") as caught:
        predict(trained.events, settings=trained.settings(), model_dir=trained.model("b"))
    assert "retrain" in (caught.value.hint or "")


def test_a_binary_model_says_so_and_splits_nothing(trained):
    result = predict(
        trained.events.filter(NO_FAILURES),
        settings=trained.settings(drivers_top_n=5),
        model_dir=trained.model("b"),
    )
    frame = result.frame
    assert result.mode == "binary"
    assert "binary" in result.to_json()["mode_note"]
    assert frame["p_voluntary"].null_count() == frame.height
    assert frame["p_involuntary"].null_count() == frame.height
    assert set(frame["churn_type"].unique().to_list()) <= {"churned", "retained"}
    assert set(result.expected_churners) == {"churned"}
    assert frame.filter(pl.col("churn_type") == "churned")["p_churn"].min() >= 0.25  # type: ignore[operator]
    assert frame["driver_1"].drop_nulls().len() >= 5


def test_segments_are_joined_and_never_invented(trained, scored):
    ids = scored.frame[CUSTOMER_ID].head(2).to_list()
    segments = pl.DataFrame(
        {
            CUSTOMER_ID: ids,
            "rfm_segment": ["champions", "at_risk"],
            "customer_type": ["loyal", "impulse"],
            "strategy": ["protect", "win_back"],
            "value_tier": ["high", "low"],
            "lifecycle_stage": ["loyalty", "retention"],
            "as_of": [scored.as_of - timedelta(days=30)] * 2,
        }
    )
    with pytest.warns(ChurnkitWarning, match="segments are as of"):
        result = predict(
            trained.events,
            settings=trained.settings(drivers_top_n=0),
            model_dir=trained.model("m"),
            relations=trained.relations,
            segments=segments,
        )
    frame = result.frame
    got = frame.filter(pl.col(CUSTOMER_ID).is_in(ids)).sort(CUSTOMER_ID)
    assert got["segment"].to_list() == sorted(
        ["champions", "at_risk"], key=lambda s: ids[["champions", "at_risk"].index(s)]
    )
    assert got["strategy"].null_count() == 0
    others = frame.filter(~pl.col(CUSTOMER_ID).is_in(ids))
    for column in ("segment", "customer_type", "strategy", "value_tier", "lifecycle_stage"):
        assert others[column].null_count() == others.height
        assert scored.frame[column].null_count() == scored.frame.height


def test_scoring_a_date_before_the_model_learned_is_refused(trained):
    with pytest.raises(ModelError) as caught:
        predict(
            trained.events,
            settings=trained.settings(drivers_top_n=0),
            model_dir=trained.model("m"),
            relations=trained.relations,
            as_of=datetime(2026, 6, 30, 23, 59, 59, 999999),
        )
    assert caught.value.exit_code == ExitCode.MODEL
    assert caught.value.message == (
        "model 'm' learned from events up to 2026-10-31, after as-of 2026-06-30: "
        "its scores would know what happened next"
    )
    assert "churnkit train --as-of DATE --model backtest" in (caught.value.hint or "")


def test_a_missing_model_names_the_ones_that_exist(trained):
    with pytest.raises(ModelError, match=r"no model 'nope'.*b, m") as caught:
        predict(trained.events, settings=trained.settings(), model_dir=trained.model("nope"))
    assert "--model" in (caught.value.hint or "")


def test_csv_output_escapes_formulas_and_flattens_driver_features(scored, tmp_path):
    evil = '=HYPERLINK("http://x","click")'
    frame = scored.frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.lit(evil))
        .otherwise(pl.col(CUSTOMER_ID))
        .alias(CUSTOMER_ID)
    )
    out = tmp_path / "at-risk.csv"
    path = save_predictions(
        dataclasses.replace(scored, frame=frame), workspace=Workspace(tmp_path), out=out
    )
    assert path == out
    back = pl.read_csv(out)
    assert back[CUSTOMER_ID][0] == "'" + evil
    first = frame.row(0, named=True)
    assert back["driver_features"][0] == "; ".join(first["driver_features"])
    assert back["driver_1"][0] == first["driver_1"]
    assert not (tmp_path / "predictions").exists()  # --out overrides the workspace


def test_saved_in_the_workspace_with_latest_pointing_at_it(scored, tmp_path):
    workspace = Workspace(tmp_path / "ws")
    path = save_predictions(scored, workspace=workspace)
    assert path == workspace.predictions_dir / f"predictions-{scored.as_of:%Y-%m-%d}.parquet"
    latest = workspace.predictions_dir / "latest.parquet"
    assert pl.read_parquet(latest).equals(scored.frame)
    assert pl.read_parquet(path).equals(scored.frame)
    # A later run replaces latest; the earlier file stays as it was.
    later = dataclasses.replace(
        scored, frame=scored.frame.head(3), as_of=scored.as_of + timedelta(days=1)
    )
    save_predictions(later, workspace=workspace)
    assert pl.read_parquet(latest).height == 3
    assert pl.read_parquet(path).height == scored.frame.height


def test_json_output_keeps_driver_features_as_lists(scored, tmp_path):
    out = tmp_path / "p.json"
    save_predictions(scored, workspace=Workspace(tmp_path), out=out)
    rows = json.loads(out.read_text())
    assert len(rows) == scored.active_customers
    assert rows[0]["driver_features"] == scored.frame["driver_features"][0].to_list()
    summary = scored.to_json(path=out)
    assert summary["path"] == str(out)
    assert summary["active_customers"] == scored.active_customers
    assert len(summary["top_customers"]) == 10
    assert summary["top_customers"][0][CUSTOMER_ID] == scored.frame[CUSTOMER_ID][0]
    json.dumps(summary)  # plain JSON


PLAYBOOK = """
rules:
  - name: fix-payment
    when:
      churn_type: [involuntary]
      drivers_any: [failed_*, days_to_card_expiry]
    action:
      name: card-update
      description: Ask for a new card, then retry.
      channel: email
      unit_cost: 0.5
      success_rate: 0.6
fallback:
  name: check-in
  description: A short personal email.
  channel: email
  unit_cost: 1.0
  success_rate: 0.05
"""


def test_actions_come_from_the_playbook(trained, tmp_path):
    playbook = tmp_path / "actions.yaml"
    playbook.write_text(PLAYBOOK)
    result = predict(
        trained.events,
        settings=trained.settings(playbook=str(playbook), drivers_top_n=40, risk_tiers=TIERS),
        model_dir=trained.model("m"),
        relations=trained.relations,
    )
    frame = result.frame
    assert result.actions_used
    assert frame["action"].null_count() == 0
    assert set(frame["action"].unique().to_list()) == {"card-update", "check-in"}
    fixed = frame.filter(pl.col("action") == "card-update")
    assert (fixed["churn_type"] == "involuntary").all()
    assert fixed["action_reason"].null_count() == 0
    # the playbook's own columns follow action_reason; the contract's columns keep their order
    assert frame.columns.index("action_reason") + 1 == frame.columns.index("action_description")
    assert [c for c in frame.columns if c in OUTPUT_COLUMNS] == list(OUTPUT_COLUMNS)


def test_a_configured_playbook_that_is_missing_is_a_configuration_error(trained, tmp_path):
    with pytest.raises(ConfigError, match=r"predict\.playbook"):
        predict(
            trained.events,
            settings=trained.settings(playbook=str(tmp_path / "gone.yaml")),
            model_dir=trained.model("m"),
            relations=trained.relations,
        )


def test_elsewhere_the_shipped_playbook_suggests_actions(scored):
    assert scored.actions_used
    assert scored.frame["action"].null_count() == 0
    assert not any("playbook" in note for note in scored.notes)
