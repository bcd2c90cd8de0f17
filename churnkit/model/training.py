"""``train``: leakage-free snapshots → LightGBM → out-of-time validation → refit.

Only events at or before ``as_of`` are ever read, so a file that also holds later
events gives the same model, bit for bit. Snapshots are taken at cutoffs
``<= as_of - horizon - grace`` (see ``thin_data.schedule``); the latest one is held
out to choose the number of boosting rounds and to measure the model against the
naive and customer-base baselines (``baselines``), then the model is refit on every
snapshot with that many rounds. With a single snapshot, a seeded customer-hash share
of it is held out instead. The business model (``population.business``) decides who
is in each snapshot: the active customers of a contractual business, every past
buyer of a non-contractual one.
"""

from __future__ import annotations

import dataclasses
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
    BaselineWarning,
    DataError,
    FewPositivesWarning,
    LeakageWarning,
    SingleChurnKindWarning,
    ThinDataWarning,
    WeakModelWarning,
)
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, KIND, TS, ChurnType, EventKind
from churnkit.core.timeline import events_until, resolve_as_of
from churnkit.core.workspace import Workspace
from churnkit.features import FeatureLayout, feature_layout
from churnkit.features.snapshot import CUTOFF, Snapshot, active_features, as_binary
from churnkit.model import baselines, metrics, store, thin_data
from churnkit.model.card import (
    BINARY,
    MULTICLASS,
    CalibrationBin,
    DecileBin,
    TrainingRecord,
)
from churnkit.model.lightgbm import ChurnModel
from churnkit.model.references import feature_notes
from churnkit.model.sampling import bounded_sample
from churnkit.population import labels
from churnkit.population.business import CONTRACTUAL, BusinessEvidence, detect_business

log = logging.getLogger(__name__)

FEW_CHURNERS = 30
TOO_GOOD_AUC = 0.99
TOO_GOOD_SINGLE_FEATURE = 0.98
OUT_OF_TIME = thin_data.OUT_OF_TIME


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
    business_model: str = CONTRACTUAL
    business_evidence: str = ""
    population: str = "active"
    validation: str = OUT_OF_TIME
    customer_base_baseline: dict[str, float] = field(default_factory=dict)
    customer_base: dict[str, Any] | None = None
    beats_baselines: bool = True
    calibration_error: float = float("nan")
    weak: bool = False
    weak_reasons: tuple[str, ...] = ()
    buyers: int = 0
    scored_buyers: int = 0
    sampling: tuple[str, ...] = ()

    @property
    def scored_share(self) -> float:
        """Share of the customers who have bought by the latest cutoff that it scores."""
        return self.scored_buyers / self.buyers if self.buyers else float("nan")

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "model_dir": str(self.model_dir),
            "mode": self.mode,
            "classes": list(self.classes),
            "as_of": self.as_of.isoformat(),
            "horizon": self.horizon,
            "business_model": self.business_model,
            "business_evidence": self.business_evidence,
            "population": self.population,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "validation_cutoff": self.cutoffs[-1].isoformat(),
            "validation": self.validation,
            "snapshots": self.snapshot_counts,
            "metrics": jsonable(self.metrics),
            "baseline": jsonable(self.baseline),
            "customer_base_baseline": jsonable(self.customer_base_baseline),
            "customer_base": jsonable(self.customer_base),
            "beats_baselines": self.beats_baselines,
            "calibration_error": jsonable(self.calibration_error),
            "scored_share": jsonable(self.scored_share),
            "weak": self.weak,
            "weak_reasons": list(self.weak_reasons),
            "best_iteration": self.best_iteration,
            "features": list(self.features),
            "warnings": list(self.warnings),
            "sampling": list(self.sampling),
        }


def train(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    workspace: Workspace,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
    model_name: str | None = None,
    force: bool = False,
) -> TrainResult:
    """Train and save a churn model as of ``as_of`` (default: the last event's day).

    Refuses (``DataError``, exit 3, nothing saved) when the data cannot support a
    model (see ``thin_data`` and ``_weakness``); ``force`` saves it anyway, marked weak.
    """
    name = store.check_name(model_name or settings.train.model)
    as_of = resolve_as_of(events, as_of)
    known = events_until(events, as_of)
    lab = settings.labels
    first_event = known.select(pl.col(TS).min()).collect().item()
    plan = thin_data.schedule(as_of, first_event, settings)
    schedule = plan.cutoffs
    caught: list[str] = [plan.note] if plan.note else []
    business = detect_business(known, as_of, lab)
    binary = not labels.has_failed_payments(known)
    layout = feature_layout(known, schedule[-1], settings.features)
    snapshots = [
        _snapshot(known, c, settings, relations, layout, binary, business) for c in schedule
    ]
    latest = snapshots[-1]
    specs = latest.specs
    features = list(specs)
    split = _split(snapshots, settings, binary)
    train_frame, valid_frame, validation, binary = split.train, split.valid, split.how, split.binary
    caught += split.notes
    classes = BINARY if binary else MULTICLASS
    parts = {"training": train_frame, "validation": valid_frame}
    weak_reasons = thin_data.too_few(parts, classes, settings.train.min_churners)
    if thin_data.empty_class(parts, classes) or (weak_reasons and not force):
        raise _refusal(weak_reasons or thin_data.too_few(parts, classes, 1), schedule[-1])

    validated, final, sampled = _fit(train_frame, valid_frame, latest, settings, binary=binary)
    for note in sampled:
        log.info(note)
    if validated.mode == "binary" and not binary:
        caught.append(
            "only one churn kind occurs in the training labels: the model is binary "
            "(churned vs retained)"
        )
    measured = _measure(validated, train_frame, valid_frame, known, latest, settings)
    scores, baseline, cb_baseline = measured.scores, measured.baseline, measured.customer_base
    y_valid, proba, beats = measured.y_valid, measured.proba, measured.beats
    caught += measured.notes
    weak_reasons += _weakness(scores, baseline, settings)
    if weak_reasons and not force:
        raise _refusal(weak_reasons, schedule[-1])
    if weak_reasons:
        caught.append("saved with --force although " + "; ".join(weak_reasons))
    caught += _sanity_warnings(scores, valid_frame, y_valid, features)
    curve = calibration_curve(y_valid, 1.0 - proba[:, 0])
    ece = baselines.expected_calibration_error(curve)

    counts = {c.cutoff.date().isoformat(): _class_counts(c.frame) for c in snapshots}
    cb_params = None if latest.customer_base is None else latest.customer_base.to_dict()
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
        calibration_curve=curve,
        feature_deciles=feature_deciles(valid_frame, y_valid, _top_features(final, 6)),
        warnings=tuple(caught),
        business_model=business.business_model,
        business_evidence=business.evidence,
        population=_population(latest),
        activity=business.activity,
        validation=validation,
        min_history_days=plan.min_history_days,
        customer_base=jsonable(cb_params),
        customer_base_baseline=jsonable(cb_baseline),
        beats_baselines=beats,
        calibration_error=jsonable(ece),
        weak=bool(weak_reasons),
        weak_reasons=tuple(weak_reasons),
    )
    store.save_model(final, workspace, name, record)
    for message in caught:
        warnings.warn(message, _category(message), stacklevel=2)
    buyers = _buyers(known, schedule[-1])
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
        business_model=business.business_model,
        business_evidence=business.evidence,
        population=_population(latest),
        validation=validation,
        customer_base_baseline=cb_baseline,
        customer_base=cb_params,
        beats_baselines=beats,
        calibration_error=ece,
        weak=bool(weak_reasons),
        weak_reasons=tuple(weak_reasons),
        buyers=buyers,
        scored_buyers=_scored_buyers(known, schedule[-1], latest.frame[CUSTOMER_ID]),
        sampling=tuple(sampled),
    )


@dataclass(frozen=True)
class _Split:
    """Training and validation rows, how they were split, and the class decision."""

    train: pl.DataFrame
    valid: pl.DataFrame
    how: str
    binary: bool
    notes: list[str]


def _split(snapshots: list[Snapshot], settings: Settings, binary: bool) -> _Split:
    """Out of time when there are several snapshots, else a customer-hash share of the
    only one; binary when the data cannot teach the two churn kinds apart."""
    latest, notes = snapshots[-1], []
    if len(snapshots) > 1:
        how = thin_data.OUT_OF_TIME
        train = pl.concat([s.frame for s in snapshots[:-1]], how="vertical_relaxed")
        valid = latest.frame
    else:
        how = thin_data.HASH_SPLIT
        share = settings.train.holdout_share
        train, valid = thin_data.split_one_snapshot(latest.frame, share, settings.train.seed)
        notes.append(
            f"only one snapshot fits the history ({latest.cutoff:%Y-%m-%d}): the model is "
            f"validated on {share:.0%} of its customers (a seeded customer-hash split), "
            "not out of time"
        )
    if binary:
        notes.append(
            "the data holds no failed payments: the model is binary (churned vs retained) "
            "and does not split voluntary from involuntary churn"
        )
        return _Split(train, valid, how, binary, notes)
    few = thin_data.short_classes(
        {"training": train, "validation": valid},
        (ChurnType.VOLUNTARY.value, ChurnType.INVOLUNTARY.value),
        settings.train.min_churners,
    )
    if few:
        notes.append(
            f"fewer than {settings.train.min_churners} {' or '.join(few)} churners to "
            "learn from: the model is binary (churned vs retained)"
        )
        return _Split(_binary(train), _binary(valid), how, True, notes)
    return _Split(train, valid, how, binary, notes)


@dataclass(frozen=True)
class _Measured:
    """The validated model against the naive and customer-base baselines."""

    scores: dict[str, float]
    baseline: dict[str, float]
    customer_base: dict[str, float]
    y_valid: pl.Series
    proba: np.ndarray
    beats: bool
    notes: list[str]


def _measure(
    validated: ChurnModel,
    train: pl.DataFrame,
    valid: pl.DataFrame,
    known: pl.LazyFrame,
    latest: Snapshot,
    settings: Settings,
) -> _Measured:
    proba = validated.predict_proba(valid.select(latest.features))
    y_valid = _labels_for(validated, valid[CHURN_TYPE])
    scores = metrics.multiclass_metrics(y_valid.to_numpy(), proba, validated.classes_)
    train_rate = float(np.mean((train[CHURN_TYPE] != ChurnType.RETAINED.value).to_numpy()))
    baseline = baselines.naive_baseline(valid, y_valid, train_rate)
    cb_baseline: dict[str, float] = {}
    if latest.customer_base is not None:
        cb_scores = baselines.customer_base_scores(
            known, latest.cutoff, valid[CUSTOMER_ID], latest.customer_base
        )
        cb_baseline = baselines.customer_base_baseline(y_valid, cb_scores)
    compared = {baselines.NAIVE: baseline, baselines.CUSTOMER_BASE: cb_baseline}
    margin = settings.train.baseline_margin
    beats, best = baselines.beats_baselines(scores.get("auc", float("nan")), compared, margin)
    notes = []
    if not beats:
        notes.append(
            f"the model does not beat the {best.replace('_', ' ') if best else 'best'} "
            f"baseline: validation AUC {scores.get('auc', float('nan')):.3f} against "
            f"{compared[best or baselines.NAIVE].get('auc', float('nan')):.3f} "
            f"(margin {margin})"
        )
    return _Measured(scores, baseline, cb_baseline, y_valid, proba, beats, notes)


def _population(snap: Snapshot) -> str:
    return snap.population.population if snap.population is not None else "active"


def _binary(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(as_binary(frame[CHURN_TYPE]))


def _weakness(scores: dict[str, float], naive: dict[str, float], settings: Settings) -> list[str]:
    """Why the validated model is no model: not above the naive ranking by the margin."""
    auc = scores.get("auc", float("nan"))
    floor = naive.get("auc", 0.5)
    floor = floor if np.isfinite(floor) else 0.5
    margin = settings.train.min_auc_margin
    if np.isfinite(auc) and auc > floor + margin:
        return []
    return [
        f"validation AUC {auc:.3f} is not above the naive baseline's {floor:.3f} by "
        f"{margin} (train.min_auc_margin)"
    ]


def _refusal(reasons: list[str], cutoff: datetime) -> DataError:
    return DataError(
        f"the data cannot support a model (latest cutoff {cutoff:%Y-%m-%d}): " + "; ".join(reasons),
        hint="ingest more customers or history, or change --horizon; --force saves the "
        "model anyway, marked weak",
    )


def _buyers(known: pl.LazyFrame, cutoff: datetime) -> int:
    """Customers with a purchase at or before ``cutoff``."""
    return int(
        events_until(known, cutoff)
        .filter(pl.col(KIND) == EventKind.PURCHASE.value)
        .select(pl.col(CUSTOMER_ID).n_unique())
        .collect(engine="streaming")
        .item()
    )


def _scored_buyers(known: pl.LazyFrame, cutoff: datetime, scored: pl.Series) -> int:
    buyers = (
        events_until(known, cutoff)
        .filter(pl.col(KIND) == EventKind.PURCHASE.value)
        .select(CUSTOMER_ID)
        .unique()
        .collect(engine="streaming")
    )
    return int(buyers[CUSTOMER_ID].is_in(scored.implode()).sum())


def _fit(
    train: pl.DataFrame,
    valid: pl.DataFrame,
    latest: Snapshot,
    settings: Settings,
    *,
    binary: bool,
) -> tuple[ChurnModel, ChurnModel, list[str]]:
    """The validated model (early stopping and calibration on the validation snapshot)
    and the final one: refit on every snapshot with the rounds the first one chose,
    carrying its calibration. Each fit trains on at most ``train.max_rows`` rows
    (``sampling``); the notes say when a fit was sampled."""
    features = latest.features
    described: dict[str, Any] = {
        "categorical": latest.categorical,
        "feature_descriptions": {n: spec.description for n, spec in latest.specs.items()},
        "feature_units": {n: spec.unit for n, spec in latest.specs.items()},
    }
    params = settings.train.lightgbm
    seed = settings.train.seed
    notes: list[str] = []

    def fit(frame: pl.DataFrame, model: ChurnModel, **extra: Any) -> ChurnModel:
        sample = bounded_sample(frame, settings.train.max_rows, seed)
        if sample.sampled:
            notes.append(sample.describe(frame.height))
        kept = sample.frame
        population = frame.select(features) if sample.sampled else None
        return model.fit(
            kept.select(features),
            kept[CHURN_TYPE],
            weight=sample.weights,
            population=population,
            **described,
            **extra,
        )

    validated = fit(
        train,
        ChurnModel(params=params, seed=seed, classes=BINARY if binary else None),
        valid=(valid.select(features), valid[CHURN_TYPE]),
    )
    validated.calibrate(
        valid.select(features), valid[CHURN_TYPE], method=settings.train.calibration
    )
    full = valid if train is valid else pl.concat([train, valid], how="vertical_relaxed")
    refit = params.model_copy(update={"num_boost_round": validated.best_iteration_})
    final = fit(full, ChurnModel(params=refit, seed=seed, classes=tuple(validated.classes_)))
    final.set_calibrator(validated.calibrator_)
    return validated, final, notes


def _snapshot(
    events: pl.LazyFrame,
    cutoff: datetime,
    settings: Settings,
    relations: pl.LazyFrame | None,
    layout: FeatureLayout,
    binary: bool,
    business: BusinessEvidence,
) -> Snapshot:
    population = labels.population_params(events, cutoff, settings.labels, business)
    snap = active_features(
        events,
        cutoff,
        settings=settings,
        relations=relations,
        layout=layout,
        with_labels=True,
        population=population,
    )
    frame = snap.frame.with_columns(pl.lit(cutoff).alias(CUTOFF))
    if binary:
        frame = frame.with_columns(as_binary(frame[CHURN_TYPE]))
    log.info("snapshot %s: %d customers", cutoff.date(), frame.height)
    return dataclasses.replace(snap, frame=frame)


def _labels_for(model: ChurnModel, churn_type: pl.Series) -> pl.Series:
    return as_binary(churn_type) if model.mode == "binary" else churn_type


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
    if message.startswith("saved with --force"):
        return WeakModelWarning
    if "does not beat" in message:
        return BaselineWarning
    if "only one snapshot" in message or "days of history" in message:
        return ThinDataWarning
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
