"""``train``: leakage-free snapshots → LightGBM → out-of-time validation → refit.

Only events at or before ``as_of`` are ever read, so a file that also holds later
events gives the same model, bit for bit. Snapshots are taken at cutoffs
``<= as_of - horizon - grace`` (see ``timeline.cutoffs``); the latest one is held out
to choose the number of boosting rounds and to measure the model against naive
baselines, then the model is refit on every snapshot with that many rounds.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import (
    DataError,
    FewPositivesWarning,
    LeakageWarning,
    SingleChurnKindWarning,
)
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import CHURN_TYPE, TS, ChurnType
from churnkit.core.timeline import cutoffs, events_until, resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.features import FeatureLayout, feature_layout
from churnkit.features.names import FAILED_PAYMENTS_30D, FAILED_PAYMENTS_90D, RECENCY_DAYS
from churnkit.features.snapshot import CUTOFF, Snapshot, active_features, as_binary
from churnkit.model import metrics, store
from churnkit.model.card import (
    BINARY,
    MULTICLASS,
    CalibrationBin,
    DecileBin,
    TrainingRecord,
)
from churnkit.model.lightgbm import ChurnModel
from churnkit.model.references import feature_notes
from churnkit.population import labels

log = logging.getLogger(__name__)

FEW_CHURNERS = 30
TOO_GOOD_AUC = 0.99
TOO_GOOD_SINGLE_FEATURE = 0.98
RECENCY = RECENCY_DAYS
FAILED_FLAG = (FAILED_PAYMENTS_90D, FAILED_PAYMENTS_30D, "unrecovered_failure_streak")


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    model_name: str
    mode: str
    classes: tuple[str, ...]
    as_of: datetime
    horizon: int
    cutoffs: tuple[datetime, ...]
    snapshot_counts: dict[str, dict[str, int]]
    metrics: dict[str, float]
    baseline: dict[str, float]
    best_iteration: int
    features: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "model_dir": str(self.model_dir),
            "mode": self.mode,
            "classes": list(self.classes),
            "as_of": self.as_of.isoformat(),
            "horizon": self.horizon,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "validation_cutoff": self.cutoffs[-1].isoformat(),
            "snapshots": self.snapshot_counts,
            "metrics": jsonable(self.metrics),
            "baseline": jsonable(self.baseline),
            "best_iteration": self.best_iteration,
            "features": list(self.features),
            "warnings": list(self.warnings),
        }


def train(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    workspace: Workspace,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
    model_name: str | None = None,
) -> TrainResult:
    """Train and save a churn model as of ``as_of`` (default: the last event's day)."""
    name = store.check_name(model_name or settings.train.model)
    as_of = resolve_as_of(events, as_of)
    known = events_until(events, as_of)
    lab = settings.labels
    first_event = known.select(pl.col(TS).min()).collect().item()
    schedule = cutoffs(
        as_of,
        horizon=lab.horizon,
        grace=lab.grace_period,
        count=settings.train.snapshots,
        step_days=settings.train.step_days,
        first_event=first_event,
    )
    binary = not labels.has_failed_payments(known)
    layout = feature_layout(known, schedule[-1], settings.features)
    snapshots = [_snapshot(known, c, settings, relations, layout, binary) for c in schedule]
    specs = snapshots[-1].specs
    features = list(specs)
    train_frame = pl.concat([s.frame for s in snapshots[:-1]], how="vertical_relaxed")
    valid_frame = snapshots[-1].frame
    caught: list[str] = []
    if binary:
        caught.append(
            "the data holds no failed payments: the model is binary (churned vs retained) "
            "and does not split voluntary from involuntary churn"
        )
    if train_frame.height == 0:
        # One snapshot only: validate on it and train on it too (stated in the output).
        caught.append("only one snapshot fits the history: validation is in-sample")
        train_frame = valid_frame
    _require_churners(train_frame, valid_frame, schedule[-1])

    validated, final = _fit(train_frame, valid_frame, snapshots[-1], settings, binary=binary)
    if validated.mode == "binary" and not binary:
        caught.append(
            "only one churn kind occurs in the training labels: the model is binary "
            "(churned vs retained)"
        )
    proba = validated.predict_proba(valid_frame.select(features))
    y_valid = _labels_for(validated, valid_frame[CHURN_TYPE])
    scores = metrics.multiclass_metrics(y_valid.to_numpy(), proba, validated.classes_)
    train_rate = float(np.mean((train_frame[CHURN_TYPE] != ChurnType.RETAINED.value).to_numpy()))
    baseline = _baseline(valid_frame, y_valid, train_rate)
    caught += _sanity_warnings(scores, valid_frame, y_valid, features)

    counts = {c.cutoff.date().isoformat(): _class_counts(c.frame) for c in snapshots}
    record = TrainingRecord(
        as_of=as_of,
        horizon=lab.horizon,
        grace_period=lab.grace_period,
        cutoffs=tuple(schedule),
        validation_cutoff=schedule[-1],
        config_hash=settings.fingerprint(),
        data_fingerprint=data_fingerprint(known),
        layout=layout,
        feature_importance=_importance(final),
        feature_specs=feature_notes(specs, [train_frame, valid_frame]),
        snapshots=counts,
        metrics=jsonable(scores),
        baseline=jsonable(baseline),
        validation_best_iteration=validated.best_iteration_,
        calibration_curve=calibration_curve(y_valid, 1.0 - proba[:, 0]),
        feature_deciles=feature_deciles(valid_frame, y_valid, _top_features(final, 6)),
        warnings=tuple(caught),
    )
    store.save_model(final, workspace, name, record)
    for message in caught:
        warnings.warn(message, _category(message), stacklevel=2)
    return TrainResult(
        model_dir=store.model_dir(workspace, name),
        model_name=name,
        mode=final.mode,
        classes=tuple(final.classes_),
        as_of=as_of,
        horizon=lab.horizon,
        cutoffs=tuple(schedule),
        snapshot_counts=counts,
        metrics=scores,
        baseline=baseline,
        best_iteration=validated.best_iteration_,
        features=tuple(features),
        warnings=tuple(caught),
    )


def _fit(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    latest: Snapshot,
    settings: Settings,
    *,
    binary: bool,
) -> tuple[ChurnModel, ChurnModel]:
    """The validated model (early stopping and calibration on the validation snapshot)
    and the final one: refit on every snapshot with the rounds the first one chose,
    carrying its calibration."""
    features = latest.features
    descriptions = {n: spec.description for n, spec in latest.specs.items()}
    params = settings.train.lightgbm
    seed = settings.train.seed
    validated = ChurnModel(params=params, seed=seed, classes=BINARY if binary else None).fit(
        train.select(features),
        train[CHURN_TYPE],
        valid=(valid.select(features), valid[CHURN_TYPE]),
        categorical=latest.categorical,
        feature_descriptions=descriptions,
    )
    validated.calibrate(
        valid.select(features), valid[CHURN_TYPE], method=settings.train.calibration
    )
    full = valid if train is valid else pl.concat([train, valid], how="vertical_relaxed")
    refit = params.model_copy(update={"num_boost_round": validated.best_iteration_})
    final = ChurnModel(params=refit, seed=seed, classes=tuple(validated.classes_)).fit(
        full.select(features),
        full[CHURN_TYPE],
        categorical=latest.categorical,
        feature_descriptions=descriptions,
    )
    final.set_calibrator(validated.calibrator_)
    return validated, final


def _snapshot(
    events: pl.LazyFrame,
    cutoff: datetime,
    settings: Settings,
    relations: pl.LazyFrame | None,
    layout: FeatureLayout,
    binary: bool,
) -> Snapshot:
    snap = active_features(
        events, cutoff, settings=settings, relations=relations, layout=layout, with_labels=True
    )
    frame = snap.frame.with_columns(pl.lit(cutoff).alias(CUTOFF))
    if binary:
        frame = frame.with_columns(as_binary(frame[CHURN_TYPE]))
    log.info("snapshot %s: %d active customers", cutoff.date(), frame.height)
    return Snapshot(cutoff, frame, snap.specs, snap.layout)


def _require_churners(train: pl.DataFrame, valid: pl.DataFrame, cutoff: datetime) -> None:
    for name, frame in (("training", train), ("validation", valid)):
        churned = frame.filter(pl.col(CHURN_TYPE) != ChurnType.RETAINED.value).height
        if frame.height == 0 or churned == 0 or churned == frame.height:
            raise DataError(
                f"the {name} snapshots (latest cutoff {cutoff:%Y-%m-%d}) hold "
                f"{frame.height} active customers of whom {churned} churned: "
                "nothing to learn from",
                hint="ingest more history or customers, or change --horizon",
            )


def _labels_for(model: ChurnModel, churn_type: pl.Series) -> pl.Series:
    return as_binary(churn_type) if model.mode == "binary" else churn_type


def _baseline(frame: pl.DataFrame, y: pl.Series, train_rate: float) -> dict[str, float]:
    """What a naive analyst gets: rank by days since the last purchase, call customers
    with failed payments involuntary, and predict the training churn rate for all."""
    churned = (y != ChurnType.RETAINED.value).to_numpy()
    out: dict[str, float] = {}
    constant = np.full(len(churned), train_rate)
    calibration = metrics.binary_metrics(churned, constant, probability=True)
    recency = None
    if RECENCY in frame.columns:
        recency = metrics.recency_baseline(frame[RECENCY].to_numpy())
        out.update(metrics.binary_metrics(churned, recency))
        out["auc_voluntary"] = metrics.auc((y == ChurnType.VOLUNTARY.value).to_numpy(), recency)
        out["auc_churned"] = out["auc"]
    out["brier"], out["log_loss"] = calibration["brier"], calibration["log_loss"]
    flag = next((c for c in FAILED_FLAG if c in frame.columns), None)
    if flag is not None:
        failed = metrics.failed_payment_baseline(frame[flag].fill_null(0).to_numpy())
        involuntary = (y == ChurnType.INVOLUNTARY.value).to_numpy()
        out["auc_involuntary"] = metrics.auc(involuntary, failed)
        kinds = y.is_in([ChurnType.VOLUNTARY.value, ChurnType.INVOLUNTARY.value]).to_numpy()
        if kinds.any():
            out["auc_involuntary_vs_voluntary"] = metrics.auc(involuntary[kinds], failed[kinds])
    return out


def _sanity_warnings(
    scores: dict[str, float], frame: pl.DataFrame, y: pl.Series, features: list[str]
) -> list[str]:
    found: list[str] = []
    if scores.get("auc", 0.0) > TOO_GOOD_AUC:
        found.append(
            f"validation AUC {scores['auc']:.3f} is too good to be true: check for a column "
            "that records the outcome (leakage)"
        )
    churned = (y != ChurnType.RETAINED.value).to_numpy()
    single = metrics.single_feature_auc(frame.select(features), churned)
    if single:
        best, value = max(single.items(), key=lambda kv: kv[1])
        if value > TOO_GOOD_SINGLE_FEATURE:
            found.append(
                f"feature {best!r} alone separates churners with AUC {value:.3f}: likely leakage"
            )
    for kind in (ChurnType.VOLUNTARY, ChurnType.INVOLUNTARY, ChurnType.CHURNED):
        n = int((y == kind.value).sum())
        if 0 < n < FEW_CHURNERS:
            found.append(
                f"the validation snapshot has only {n} {kind.value} churners: its metrics are noisy"
            )
    return found


def calibration_curve(
    y: pl.Series, p_churn: np.ndarray, bins: int = 10
) -> tuple[CalibrationBin, ...]:
    """Predicted vs observed churn by decile of predicted risk on the validation snapshot:
    the reliability view a report shows next to the ranking metrics."""
    frame = pl.DataFrame({"p": p_churn, "churned": (y != ChurnType.RETAINED.value)})
    binned = (
        frame.with_columns(
            (pl.col("p").rank("ordinal") * bins / (frame.height + 1)).floor().alias("bin")
        )
        .group_by("bin")
        .agg(
            pl.col("p").mean().alias("predicted"),
            pl.col("churned").mean().alias("observed"),
            pl.len().alias("customers"),
        )
        .sort("bin")
    )
    return tuple(CalibrationBin(**row) for row in jsonable(binned.drop("bin").to_dicts()))


def feature_deciles(
    frame: pl.DataFrame, y: pl.Series, features: list[str], bins: int = 10
) -> dict[str, tuple[DecileBin, ...]]:
    """Churn rate by decile of each important feature (the "metric cohort" view):
    how behaviour relates to churn, measured on the validation snapshot."""
    churned = (y != ChurnType.RETAINED.value).alias("churned")
    out: dict[str, tuple[DecileBin, ...]] = {}
    for name in features:
        if name not in frame.columns or not frame[name].dtype.is_numeric():
            continue
        values = frame.select(pl.col(name).cast(pl.Float64).alias("x")).with_columns(churned)
        known = values.drop_nulls("x")
        if known.height == 0:
            continue
        rows = (
            known.with_columns(
                (pl.col("x").rank("min") * bins / (known.height + 1)).floor().alias("bin")
            )
            .group_by("bin")
            .agg(
                pl.col("x").min().alias("low"),
                pl.col("x").max().alias("high"),
                pl.col("churned").mean().alias("churn_rate"),
                pl.len().alias("customers"),
            )
            .sort("bin")
            .drop("bin")
            .to_dicts()
        )
        out[name] = tuple(DecileBin(**row) for row in jsonable(rows))
    return out


def _importance(model: ChurnModel) -> dict[str, float]:
    """Share of total split gain per feature, largest first."""
    gain = model.booster_.feature_importance("gain")
    total = float(gain.sum()) or 1.0
    order = np.argsort(-gain, kind="stable")
    return {model.feature_names_[i]: round(float(gain[i]) / total, 6) for i in order}


def _top_features(model: ChurnModel, n: int) -> list[str]:
    gain = model.booster_.feature_importance("gain")
    order = np.argsort(-gain, kind="stable")[:n]
    return [model.feature_names_[i] for i in order]


def _category(message: str) -> type[Warning]:
    if "leakage" in message:
        return LeakageWarning
    if "binary" in message:
        return SingleChurnKindWarning
    return FewPositivesWarning


def _class_counts(frame: pl.DataFrame) -> dict[str, int]:
    counts = frame[CHURN_TYPE].value_counts()
    out = dict(zip(counts[CHURN_TYPE].to_list(), counts["count"].to_list(), strict=True))
    return {"customers": frame.height, **{str(k): int(v) for k, v in sorted(out.items())}}


def data_fingerprint(events: pl.LazyFrame) -> str:
    """An order-independent digest of the events the model saw."""
    row = events.select(
        pl.len().alias("n"),
        pl.struct(pl.all().exclude("_batch")).hash(7).sum().alias("h"),
    ).collect(engine="streaming")
    return f"{row['n'].item()}-{row['h'].item():016x}"


__all__ = ["MULTICLASS", "TrainResult", "data_fingerprint", "train"]
