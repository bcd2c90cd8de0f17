"""The model card: what a saved model is, what it learned from, and how it did.

``card.json`` sits beside the model's own file in ``models/NAME/``. This module is
the only one that reads or writes it; everything else uses ``ModelCard``'s typed
attributes. A card is read strictly: a missing required key, a value of the wrong
type, a card written by a newer card format or by another major version of churnkit
is a ``ModelError`` that names the file. Keys this version does not know are
ignored, so a later minor version may add some.

Fields come in two groups. The estimator's own (classes, features, calibration,
parameters, the hash of the model file) are written by every model family;
``TrainingRecord`` holds what training knows beyond the estimator (as_of, horizon,
feature layout, validation metrics, ...), which scoring needs to rebuild the
population the model was trained on.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from churnkit import __version__
from churnkit.core.errors import ModelError
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import ChurnType
from churnkit.core.workspace import write_text_atomic
from churnkit.features import FeatureLayout
from churnkit.features.spec import FeatureSpec, Sentence
from churnkit.model.calibration import Calibrator

CARD_FILE = "card.json"
# Bump when the card changes in a way older readers would misread; keep reading 1.
CARD_FORMAT = 1
# Cards of format 1 predate model families: they are all LightGBM models.
DEFAULT_MODEL_TYPE = "lightgbm"

RETRAIN_HINT = "retrain with `churnkit train`"
TRAIN_FIRST_HINT = "run `churnkit train` first"

Mode = Literal["multiclass", "binary"]
FeatureType = Literal["numeric", "categorical"]
MULTICLASS: tuple[str, ...] = (
    ChurnType.RETAINED.value,
    ChurnType.VOLUNTARY.value,
    ChurnType.INVOLUNTARY.value,
)
BINARY: tuple[str, ...] = (ChurnType.RETAINED.value, ChurnType.CHURNED.value)

T = TypeVar("T")


def mode_of(classes: Sequence[str]) -> Mode:
    """Binary (retained / churned) or multiclass (retained / voluntary / involuntary)."""
    return "binary" if len(classes) == 2 else "multiclass"


@dataclass(frozen=True)
class CardFeature:
    """One model input: its type, what it measures, its share of the model's split
    gain (LightGBM; ``None`` for families without one) and its training distribution
    (``metrics.feature_profile``, for drift checks)."""

    name: str
    type: FeatureType
    description: str
    importance_gain: float | None = None
    profile: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CategoryChurn:
    """How many training customers had a category, and the share of them who churned."""

    customers: int
    churn_rate: float


@dataclass(frozen=True, kw_only=True)
class FeatureNote:
    """How to talk about a feature: its description, which direction raises risk, how
    a driver sentence speaks of it (``wording``, see ``features.spec.Sentence``) and
    the references recorded at training that make a value unusual or not.

    ``typical`` is the training median and ``quartiles`` the 25th and 75th
    percentiles (numeric features); ``constant`` marks a feature with a single value
    in training (never a reason); ``categories`` and ``average_churn`` give a
    categorical feature's churn rate per category and over everyone. ``sentence`` is
    the ``str.format`` template of cards written before ``wording`` existed.
    """

    kind: str | None = None
    description: str
    sentence: str | None = None
    risk_when: Literal["high", "low"] | None = None
    wording: Sentence | None = None
    typical: float | None = None
    quartiles: tuple[float, float] | None = None
    constant: bool = False
    categories: Mapping[str, CategoryChurn] = field(default_factory=dict)
    average_churn: float | None = None

    @classmethod
    def from_spec(cls, spec: FeatureSpec) -> FeatureNote:
        """The note of a feature as its family declares it (references added later)."""
        return cls(
            kind=spec.kind,
            description=spec.description,
            risk_when=spec.risk_when,
            wording=spec.sentence,
        )

    def to_json(self) -> dict[str, Any]:
        """The note as plain JSON; references a note does not record are left out."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "description": self.description,
            "sentence": self.sentence,
            "risk_when": self.risk_when,
        }
        if self.wording is not None:
            out["wording"] = self.wording.to_dict()
        if self.typical is not None:
            out["typical"] = self.typical
        if self.quartiles is not None:
            out["quartiles"] = list(self.quartiles)
        if self.constant:
            out["constant"] = True
        if self.categories:
            out["categories"] = {k: dataclasses.asdict(v) for k, v in self.categories.items()}
        if self.average_churn is not None:
            out["average_churn"] = self.average_churn
        return out


@dataclass(frozen=True)
class CalibrationBin:
    """Predicted against observed churn in one decile of predicted risk."""

    predicted: float
    observed: float
    customers: int


@dataclass(frozen=True)
class DecileBin:
    """The churn rate of the customers whose feature value lies in ``[low, high]``."""

    low: float | None
    high: float | None
    churn_rate: float | None
    customers: int


@dataclass(frozen=True, kw_only=True)
class TrainingRecord:
    """What training knows about a model beyond the estimator, kept in its card."""

    as_of: datetime | None = None
    horizon: int | None = None
    grace_period: int | None = None
    cutoffs: tuple[datetime, ...] = ()
    validation_cutoff: datetime | None = None
    config_hash: str | None = None
    data_fingerprint: str | None = None
    layout: FeatureLayout | None = None
    feature_importance: Mapping[str, float] = field(default_factory=dict)
    feature_specs: Mapping[str, FeatureNote] = field(default_factory=dict)
    snapshots: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    baseline: Mapping[str, float | None] = field(default_factory=dict)
    validation_best_iteration: int | None = None
    calibration_curve: tuple[CalibrationBin, ...] = ()
    feature_deciles: Mapping[str, tuple[DecileBin, ...]] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    # Who the model scores: the business model the data showed and why, the population
    # (active / all) and the event kinds that count as activity.
    business_model: str | None = None
    business_evidence: str | None = None
    population: str | None = None
    activity: tuple[str, ...] = ()
    # How the model was validated: out of time, or on a customer-hash split of a
    # single snapshot; and the history each cutoff had at least.
    validation: str | None = None
    min_history_days: int | None = None
    # BG/NBD parameters at the latest cutoff, its baseline metrics on the validation
    # snapshot, and whether the model beat every baseline by the configured margin.
    customer_base: Mapping[str, Any] | None = None
    customer_base_baseline: Mapping[str, float | None] = field(default_factory=dict)
    beats_baselines: bool | None = None
    # Expected calibration error over deciles of predicted risk (validation snapshot).
    calibration_error: float | None = None
    # Saved with --force although the data could not support a model, and why.
    weak: bool = False
    weak_reasons: tuple[str, ...] = ()

    def training_fields(self) -> dict[str, Any]:
        """The record's fields by name, to carry them into a card."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingRecord)}


@dataclass(frozen=True, kw_only=True)
class ModelCard(TrainingRecord):
    """The typed model card (see the module docstring).

    ``location`` is the model directory the card was read from or written to; it is
    not part of the file.
    """

    format_version: int = CARD_FORMAT
    model_type: str = DEFAULT_MODEL_TYPE
    churnkit_version: str = __version__
    lightgbm_version: str | None = None
    created: datetime | None = None
    mode: Mode
    classes: tuple[str, ...]
    features: tuple[CardFeature, ...]
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    calibration: Calibrator | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    best_iteration: int | None = None
    best_score: float | None = None
    n_train: int | None = None
    class_counts: Mapping[str, int] = field(default_factory=dict)
    model_sha256: str | None = None
    location: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.classes not in (MULTICLASS, BINARY):
            raise ValueError(f"`classes` must be {list(MULTICLASS)} or {list(BINARY)}")
        if self.mode != mode_of(self.classes):
            raise ValueError(f"`mode` {self.mode!r} does not fit `classes` {list(self.classes)}")
        if self.calibration is not None and self.calibration.classes != self.classes:
            raise ValueError("`calibration` is for other classes than the model's")

    # --- what readers ask -------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model's name: its directory's."""
        return self.location.name if self.location is not None else "unsaved"

    @property
    def path(self) -> Path:
        """Where the card file is (or would be)."""
        return (self.location or Path(".")) / CARD_FILE

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def descriptions(self) -> dict[str, str]:
        """Feature → what it measures: the feature notes' words, else the feature list's."""
        out = {f.name: f.description for f in self.features}
        out.update({n: s.description for n, s in self.feature_specs.items()})
        return out

    @property
    def profiles(self) -> dict[str, Mapping[str, Any]]:
        """Feature → its training distribution, for the features that have one."""
        return {f.name: f.profile for f in self.features if f.profile}

    def with_training(self, record: TrainingRecord) -> ModelCard:
        """This card with ``record``'s training fields."""
        return dataclasses.replace(self, **record.training_fields())

    # --- the file ---------------------------------------------------------------------

    @classmethod
    def read(cls, directory: Path) -> ModelCard:
        """The card in ``directory``; ``ModelError`` naming the file when it is missing,
        unreadable, corrupt or from an incompatible churnkit."""
        path = directory / CARD_FILE
        if not path.is_file():
            raise ModelError(f"no model card at {path}", hint=TRAIN_FIRST_HINT)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ModelError(f"model card {path} is unreadable: {exc}", hint=RETRAIN_HINT) from None
        if not isinstance(data, dict):
            raise ModelError(f"model card {path} is not a JSON object", hint=RETRAIN_HINT)
        return cls.from_json(data, location=directory)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, location: Path | None = None) -> ModelCard:
        """A card from its JSON object (see ``read``)."""
        path = (location or Path(".")) / CARD_FILE
        _check_versions(data, path)
        try:
            return cls(**_parse(data), location=location)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(
                f"model card {path} is corrupt: {_reason(exc)}", hint=RETRAIN_HINT
            ) from None

    def write(self, directory: Path) -> ModelCard:
        """Write ``card.json`` atomically into ``directory``; the card, located there."""
        text = json.dumps(self.to_json(), indent=2, allow_nan=False) + "\n"
        try:
            write_text_atomic(directory / CARD_FILE, text)
        except OSError as exc:
            raise ModelError(
                f"cannot write the model card to {directory}: {exc.strerror or exc}",
                hint="check that the directory is writable",
            ) from None
        return dataclasses.replace(self, location=directory)

    def to_json(self) -> dict[str, Any]:
        """The card as plain JSON, keys in the order cards have always had."""
        own: dict[str, Any] = {
            "format_version": self.format_version,
            "model_type": self.model_type,
            "churnkit_version": self.churnkit_version,
            "lightgbm_version": self.lightgbm_version,
            "created": _iso(self.created, timespec="seconds"),
            "mode": self.mode,
            "classes": list(self.classes),
            "features": [dataclasses.asdict(f) for f in self.features],
            "categories": {k: list(v) for k, v in self.categories.items()},
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "params": dict(self.params),
            "seed": self.seed,
            "best_iteration": self.best_iteration,
            "best_score": self.best_score,
            "n_train": self.n_train,
            "class_counts": dict(self.class_counts),
            "model_sha256": self.model_sha256,
        }
        if self.lightgbm_version is None:
            del own["lightgbm_version"]
        training: dict[str, Any] = {
            "as_of": _iso(self.as_of),
            "horizon": self.horizon,
            "grace_period": self.grace_period,
            "cutoffs": [c.isoformat() for c in self.cutoffs],
            "validation_cutoff": _iso(self.validation_cutoff),
            "config_hash": self.config_hash,
            "data_fingerprint": self.data_fingerprint,
            "layout": None if self.layout is None else self.layout.to_dict(),
            "feature_importance": dict(self.feature_importance),
            "feature_specs": {n: s.to_json() for n, s in self.feature_specs.items()},
            "snapshots": {k: dict(v) for k, v in self.snapshots.items()},
            "metrics": dict(self.metrics),
            "baseline": dict(self.baseline),
            "validation_best_iteration": self.validation_best_iteration,
            "calibration_curve": [dataclasses.asdict(b) for b in self.calibration_curve],
            "feature_deciles": {
                n: [dataclasses.asdict(b) for b in bins] for n, bins in self.feature_deciles.items()
            },
            "warnings": list(self.warnings),
            "business_model": self.business_model,
            "business_evidence": self.business_evidence,
            "population": self.population,
            "activity": list(self.activity) if self.activity else None,
            "validation": self.validation,
            "min_history_days": self.min_history_days,
            "customer_base": None if self.customer_base is None else dict(self.customer_base),
            "customer_base_baseline": dict(self.customer_base_baseline) or None,
            "beats_baselines": self.beats_baselines,
            "calibration_error": self.calibration_error,
            "weak": self.weak or None,
            "weak_reasons": list(self.weak_reasons) or None,
        }
        # Training fields a card does not record are left out, as they always were.
        recorded = {k: v for k, v in training.items() if v is not None}
        out: dict[str, Any] = jsonable({**own, **recorded})
        return out


# --- reading --------------------------------------------------------------------------


def _parse(data: Mapping[str, Any]) -> dict[str, Any]:
    """``ModelCard``'s keyword arguments from the JSON object; ValueError on a bad key."""
    return {
        "format_version": _get(data, "format_version", _int),
        "model_type": _opt(data, "model_type", _str) or DEFAULT_MODEL_TYPE,
        "churnkit_version": _get(data, "churnkit_version", _str),
        "lightgbm_version": _opt(data, "lightgbm_version", _str),
        "created": _opt(data, "created", _datetime),
        "mode": _get(data, "mode", _str),
        "classes": _get(data, "classes", _strings),
        "features": _get(data, "features", lambda v: tuple(_feature(f) for f in v)),
        "categories": _opt(data, "categories", lambda v: _mapping(v, _strings)) or {},
        "calibration": _opt(data, "calibration", Calibrator.from_dict),
        "params": _opt(data, "params", lambda v: _mapping(v, lambda x: x)) or {},
        "seed": _opt(data, "seed", _int),
        "best_iteration": _opt(data, "best_iteration", _int),
        "best_score": _opt(data, "best_score", _number),
        "n_train": _opt(data, "n_train", _int),
        "class_counts": _opt(data, "class_counts", lambda v: _mapping(v, _int)) or {},
        "model_sha256": _opt(data, "model_sha256", _str),
        "as_of": _opt(data, "as_of", _datetime),
        "horizon": _opt(data, "horizon", _int),
        "grace_period": _opt(data, "grace_period", _int),
        "cutoffs": _opt(data, "cutoffs", lambda v: tuple(_datetime(c) for c in v)) or (),
        "validation_cutoff": _opt(data, "validation_cutoff", _datetime),
        "config_hash": _opt(data, "config_hash", _str),
        "data_fingerprint": _opt(data, "data_fingerprint", _str),
        "layout": _opt(data, "layout", FeatureLayout.from_dict),
        "feature_importance": _opt(data, "feature_importance", _numbers) or {},
        "feature_specs": _opt(data, "feature_specs", lambda v: _mapping(v, _note)) or {},
        "snapshots": _opt(data, "snapshots", lambda v: _mapping(v, _counts)) or {},
        "metrics": _opt(data, "metrics", _optional_numbers) or {},
        "baseline": _opt(data, "baseline", _optional_numbers) or {},
        "validation_best_iteration": _opt(data, "validation_best_iteration", _int),
        "calibration_curve": _opt(data, "calibration_curve", _calibration_curve) or (),
        "feature_deciles": _opt(data, "feature_deciles", lambda v: _mapping(v, _deciles)) or {},
        "warnings": _opt(data, "warnings", _strings) or (),
        "business_model": _opt(data, "business_model", _str),
        "business_evidence": _opt(data, "business_evidence", _str),
        "population": _opt(data, "population", _str),
        "activity": _opt(data, "activity", _strings) or (),
        "validation": _opt(data, "validation", _str),
        "min_history_days": _opt(data, "min_history_days", _int),
        "customer_base": _opt(data, "customer_base", lambda v: _mapping(v, lambda x: x)),
        "customer_base_baseline": _opt(data, "customer_base_baseline", _optional_numbers) or {},
        "beats_baselines": _opt(data, "beats_baselines", _bool),
        "calibration_error": _opt(data, "calibration_error", _number),
        "weak": _opt(data, "weak", _bool) or False,
        "weak_reasons": _opt(data, "weak_reasons", _strings) or (),
    }


def _get(data: Mapping[str, Any], key: str, convert: Callable[[Any], T]) -> T:
    """A required key's value, converted."""
    value = _opt(data, key, convert)
    if value is None:
        raise ValueError(f"`{key}` is missing")
    return value


def _opt(data: Mapping[str, Any], key: str, convert: Callable[[Any], T]) -> T | None:
    """An optional key's value, converted; None when absent or null."""
    value = data.get(key)
    if value is None:
        return None
    try:
        return convert(value)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"`{key}`: {_reason(exc)}") from None


def _reason(exc: Exception) -> str:
    return f"{exc.args[0]!r} is missing" if isinstance(exc, KeyError) else str(exc)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {value!r}")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return value


def _optional_number(value: Any) -> float | None:
    return _number(value) if value is not None else None


def _datetime(value: Any) -> datetime:
    return datetime.fromisoformat(_str(value))


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {value!r}")
    return tuple(_str(v) for v in value)


def _mapping(value: Any, convert: Callable[[Any], T]) -> dict[str, T]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {value!r}")
    return {_str(k): convert(v) for k, v in value.items()}


def _numbers(value: Any) -> dict[str, float]:
    return _mapping(value, _number)


def _optional_numbers(value: Any) -> dict[str, float | None]:
    return _mapping(value, _optional_number)


def _counts(value: Any) -> dict[str, int]:
    return _mapping(value, _int)


def _feature(value: Any) -> CardFeature:
    kind = _str(value["type"])
    if kind not in ("numeric", "categorical"):
        raise ValueError(f"feature type {kind!r} is neither numeric nor categorical")
    gain = value.get("importance_gain")
    return CardFeature(
        name=_str(value["name"]),
        type=kind,  # type: ignore[arg-type]
        description=_str(value["description"]),
        importance_gain=None if gain is None else _number(gain),
        profile=_mapping(value.get("profile") or {}, lambda x: x),
    )


def _note(value: Any) -> FeatureNote:
    risk = value.get("risk_when")
    if risk not in (None, "high", "low"):
        raise ValueError(f"risk_when {risk!r} is neither 'high' nor 'low'")
    kind, sentence = value.get("kind"), value.get("sentence")
    wording = value.get("wording")
    quartiles = value.get("quartiles")
    if quartiles is not None and (not isinstance(quartiles, list) or len(quartiles) != 2):
        raise ValueError(f"quartiles must be two numbers, got {quartiles!r}")
    constant = value.get("constant", False)
    if not isinstance(constant, bool):
        raise TypeError(f"constant must be true or false, got {constant!r}")
    return FeatureNote(
        description=_str(value["description"]),
        kind=None if kind is None else _str(kind),
        sentence=None if sentence is None else _str(sentence),
        risk_when=risk,
        wording=None if wording is None else Sentence.from_dict(_mapping(wording, _str)),
        typical=_optional_number(value.get("typical")),
        quartiles=None if quartiles is None else (_number(quartiles[0]), _number(quartiles[1])),
        constant=constant,
        categories=_mapping(value.get("categories") or {}, _category),
        average_churn=_optional_number(value.get("average_churn")),
    )


def _category(value: Any) -> CategoryChurn:
    return CategoryChurn(
        customers=_int(value["customers"]), churn_rate=_number(value["churn_rate"])
    )


def _calibration_curve(value: Any) -> tuple[CalibrationBin, ...]:
    return tuple(
        CalibrationBin(
            predicted=_number(r["predicted"]),
            observed=_number(r["observed"]),
            customers=_int(r["customers"]),
        )
        for r in value
    )


def _deciles(value: Any) -> tuple[DecileBin, ...]:
    return tuple(
        DecileBin(
            low=_optional_number(r.get("low")),
            high=_optional_number(r.get("high")),
            churn_rate=_optional_number(r.get("churn_rate")),
            customers=_int(r.get("customers") or 0),
        )
        for r in value
    )


def _iso(value: datetime | None, *, timespec: str = "auto") -> str | None:
    return None if value is None else value.isoformat(timespec=timespec)


def _check_versions(data: Mapping[str, Any], path: Path) -> None:
    fmt = data.get("format_version")
    version = str(data.get("churnkit_version") or "")
    if isinstance(fmt, bool) or not isinstance(fmt, int):
        raise ModelError(f"model card {path} has no format version", hint=RETRAIN_HINT)
    if fmt > CARD_FORMAT:
        raise ModelError(
            f"model card {path} was written by a newer churnkit ({version or 'unknown'}, card "
            f"format {fmt}); this churnkit {__version__} reads format {CARD_FORMAT}",
            hint="upgrade churnkit or " + RETRAIN_HINT,
        )
    if version.split(".")[0] != __version__.split(".")[0]:
        raise ModelError(
            f"model card {path} was written by churnkit {version or 'unknown'}; this is "
            f"churnkit {__version__} (major version differs)",
            hint=RETRAIN_HINT,
        )
