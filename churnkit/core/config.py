"""Typed settings and the one place where their precedence is decided.

flag > ``CHURNKIT_*`` environment > YAML file > built-in default. Defaults live in
the pydantic models below and nowhere else; the shipped ``churnkit/data/churnkit.yaml``
(and its copy ``configs/churnkit.yaml``) mirrors them with comments (a test keeps them
in step).
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from churnkit.core.errors import ConfigError
from churnkit.core.schema import MAPPABLE, EventKind

ENV_PREFIX = "CHURNKIT_"
# Environment variables that name files rather than settings.
ENV_NOT_SETTINGS = frozenset({"CHURNKIT_CONFIG"})
DEFAULT_CONFIG = Path("configs/churnkit.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IngestSettings(Section):
    mapping: dict[str, str] = Field(default_factory=dict)
    source: str = "auto"
    encoding: str | None = None
    delimiter: str | None = None
    date_order: Literal["auto", "dmy", "mdy"] = "auto"
    date_formats: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    decimal: Literal["auto", ".", ","] = "auto"
    status_map: dict[str, EventKind] = Field(default_factory=dict)
    sample_rows: int = Field(10_000, ge=100)
    earliest_date: date = date(1970, 1, 1)
    latest_date: date | None = None
    max_abs_amount: float = Field(1e9, gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone name such as UTC or Europe/Berlin") from None
        return value

    @field_validator("encoding")
    @classmethod
    def _known_codec(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError("a Python codec name such as utf-8, cp1252 or utf-16") from None
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is None:
            return None
        named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
        value = named.get(value.lower(), value)
        if len(value) != 1 or value in '"\r\n':
            raise ValueError("one character, or tab, comma, semicolon or pipe")
        return value


class LabelSettings(Section):
    horizon: int = Field(90, ge=1)
    active_window: int | None = Field(None, ge=1)
    active_window_quantile: float = Field(0.9, gt=0, lt=1)
    grace_period: int = Field(14, ge=0)
    # Who is scored: `active` (bought within the active window), `all` (every customer
    # who has bought and not explicitly ended), `auto` (active for a contractual
    # business, all for a non-contractual one; see churnkit.population.business).
    population: Literal["auto", "active", "all"] = "auto"
    # Regular billing: a repeat buyer whose purchase gaps have a coefficient of variation
    # at most `billing_cv_max` around a billing period; the business is contractual when
    # at least `billing_share_min` of repeat buyers are billed so.
    billing_cv_max: float = Field(0.2, gt=0)
    billing_share_min: float = Field(0.25, gt=0, le=1)


class FeatureSettings(Section):
    windows: list[int] = Field(default_factory=lambda: [30, 90, 180, 365])
    usage_top_events: int = Field(5, ge=0)
    extra_numeric: list[str] = Field(default_factory=list)
    extra_categorical: list[str] = Field(default_factory=list)
    network_coupling: float = Field(0.5, ge=0)


class LightGBMParams(Section):
    num_leaves: int = Field(31, ge=2)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_boost_round: int = Field(500, ge=1)
    early_stopping_rounds: int = Field(50, ge=1)
    min_child_samples: int = Field(40, ge=1)
    feature_fraction: float = Field(0.9, gt=0, le=1)
    bagging_fraction: float = Field(0.9, gt=0, le=1)
    bagging_freq: int = Field(1, ge=0)
    lambda_l2: float = Field(1.0, ge=0)
    # 0: every core. Training is deterministic for a given seed and thread count; set
    # a fixed count to get the same trees on machines with different core counts.
    num_threads: int = Field(0, ge=0)


class TrainSettings(Section):
    snapshots: int = Field(6, ge=1)
    step_days: int = Field(28, ge=1)
    seed: int = 42
    calibration: Literal["none", "sigmoid", "isotonic"] = "none"
    # A name, not a path (as churnkit.model.store.check_name checks --model).
    model: str = Field("default", pattern=r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$")
    lightgbm: LightGBMParams = Field(default_factory=LightGBMParams)
    # History a snapshot cutoff needs before it; with less data, a shorter one down to
    # `min_history_floor_days` is used (and said).
    min_history_days: int = Field(60, ge=0)
    min_history_floor_days: int = Field(28, ge=0)
    # Refusal (exit 3, no model saved unless --force): fewer than `min_churners` of a
    # class in the training or validation snapshot, or a validation AUC not above the
    # naive baseline's by `min_auc_margin`.
    min_churners: int = Field(10, ge=1)
    min_auc_margin: float = Field(0.01, ge=0, le=0.5)
    # `beats_baselines` on the card: validation AUC >= every baseline's + this margin.
    baseline_margin: float = Field(0.005, ge=0, le=0.5)
    # One snapshot only: the share of customers (by a seeded customer hash) validated on.
    holdout_share: float = Field(0.3, gt=0, lt=1)
    # Most rows a fit trains on (null: no bound). Above it, a seeded customer sample per
    # class, weighted back to the population (churnkit.model.sampling).
    max_rows: int | None = Field(1_000_000, ge=1000)


def _default_rfm_segments() -> dict[str, dict[Literal["r", "f", "m"], tuple[int, int]]]:
    """Score ranges per named RFM segment, tried in order (first match wins); they
    cover every (r, f, m) combination. See ``churnkit/segments.py``."""
    return {
        "champions": {"r": (5, 5), "f": (4, 5)},
        "loyal": {"r": (3, 4), "f": (4, 5)},
        "cant_lose_them": {"r": (1, 2), "f": (4, 5), "m": (4, 5)},
        "at_risk": {"r": (1, 2), "f": (3, 5)},
        "need_attention": {"r": (3, 3), "f": (3, 3)},
        "potential_loyalists": {"r": (4, 5), "f": (2, 3)},
        "new": {"r": (5, 5), "f": (1, 1)},
        "promising": {"r": (4, 4), "f": (1, 1)},
        "about_to_sleep": {"r": (3, 3), "f": (1, 2)},
        "lost": {"r": (1, 1), "f": (1, 2), "m": (1, 2)},
        "hibernating": {"r": (1, 2), "f": (1, 2)},
    }


class CostToServe(Section):
    """What serving a customer costs, per event over the RFM window (money units)."""

    refund: float = Field(5.0, ge=0, allow_inf_nan=False)
    complaint: float = Field(15.0, ge=0, allow_inf_nan=False)
    failed_payment: float = Field(2.0, ge=0, allow_inf_nan=False)
    discount: float = Field(1.0, ge=0, allow_inf_nan=False)


Quadrant = Literal[
    "high_value_low_cost", "high_value_high_cost", "low_value_low_cost", "low_value_high_cost"
]
StrategyName = Literal["build", "protect", "reshape", "enhance", "harvest", "end", "win_back"]


def _default_quadrant_strategies() -> dict[Quadrant, StrategyName]:
    """The seven strategies applied to the value × cost-to-serve matrix: keep the
    profitable customers everyone courts, invest where value is high but dear to serve,
    spend little on the cheap small ones, move the dear small ones to cheaper channels."""
    return {
        "high_value_low_cost": "protect",
        "high_value_high_cost": "build",
        "low_value_low_cost": "harvest",
        "low_value_high_cost": "reshape",
    }


class SegmentSettings(Section):
    # Value tier: a customer's percentile of monetary value at or above the threshold.
    value_tiers: dict[str, float] = Field(default_factory=lambda: {"high": 0.8, "medium": 0.5})
    # RFM: frequency and monetary over the last rfm_window days (null: whole history).
    rfm_window: int | None = Field(365, ge=1)
    rfm_segments: dict[str, dict[Literal["r", "f", "m"], tuple[int, int]]] = Field(
        default_factory=_default_rfm_segments
    )
    # Lifecycle stage thresholds.
    new_max_purchases: int = Field(1, ge=1)
    retained_min_purchases: int = Field(3, ge=1)
    retained_min_tenure_days: int = Field(90, ge=0)
    loyal_min_purchases: int = Field(6, ge=1)
    loyal_min_tenure_days: int = Field(365, ge=0)
    at_risk_overdue: float = Field(1.5, gt=0)
    lapsed_overdue: float = Field(3.0, gt=0)
    # Behavioural type thresholds; discount_column names a kept source attribute.
    discount_column: str | None = None
    discount_share_min: float = Field(0.5, gt=0, le=1)
    pattern_min_purchases: int = Field(3, ge=2)
    regular_gap_cv_max: float = Field(0.5, ge=0)
    loyal_type_min_score: int = Field(4, ge=1, le=5)
    loyal_type_min_tenure_days: int = Field(180, ge=0)
    # Relationship strategy: revenue trend window and risk.
    trend_window: int = Field(90, ge=1)
    trend_up: float = Field(0.2, ge=0, le=1)
    risk_source: Literal["auto", "model", "rules"] = "auto"
    risk_high: float = Field(0.5, gt=0, le=1)
    failed_payment_risk: float = Field(0.8, ge=0, le=1)
    # Churn health (`segment --health`).
    health_months: int = Field(12, ge=1)
    recovery_days: int = Field(30, ge=1)
    # Value × cost-to-serve matrix: costs per event and the strategy per quadrant.
    cost_to_serve: CostToServe = Field(default_factory=CostToServe)
    quadrant_strategies: dict[Quadrant, StrategyName] = Field(
        default_factory=_default_quadrant_strategies
    )
    # Retention curves (`segment --health`): acquisition channel column and cohorts.
    channel_column: str | None = None
    survival_cohort: Literal["month", "quarter"] = "quarter"

    @field_validator("value_tiers")
    @classmethod
    def _tier_shares(cls, value: dict[str, float]) -> dict[str, float]:
        if not value or any(not 0 < v < 1 for v in value.values()) or "low" in value:
            raise ValueError(
                "a mapping of tier name to a percentile between 0 and 1 (exclusive), "
                "such as {high: 0.8, medium: 0.5}; customers below every tier are `low`"
            )
        return value

    @field_validator("rfm_segments")
    @classmethod
    def _score_ranges(
        cls, value: dict[str, dict[str, tuple[int, int]]]
    ) -> dict[str, dict[str, tuple[int, int]]]:
        for ranges in value.values():
            if any(not 1 <= lo <= hi <= 5 for lo, hi in ranges.values()):
                raise ValueError(
                    "score ranges [low, high] with 1 <= low <= high <= 5, "
                    "such as {champions: {r: [5, 5], f: [4, 5]}}"
                )
        if not value:
            raise ValueError("at least one named segment")
        return value


class PredictSettings(Section):
    value: Literal["trailing_revenue", "expected_remaining"] = "expected_remaining"
    value_window: int = Field(365, ge=1)
    risk_tiers: dict[str, float] = Field(default_factory=lambda: {"high": 0.5, "medium": 0.25})
    drivers_top_n: int = Field(5000, ge=0)
    # None: ./configs/actions.yaml when it exists, else the shipped default playbook.
    playbook: Path | None = None


class ReportSettings(Section):
    top: int = Field(20, ge=1)
    control_share: float = Field(0.0, ge=0, lt=1)
    seed: int = 7


class QualityGates(Section):
    auc: float | None = Field(0.7, ge=0, le=1)
    pr_auc: float | None = Field(None, ge=0, le=1)
    lift_top_decile: float | None = Field(None, ge=0)
    brier: float | None = Field(None, ge=0, le=1)
    psi: float | None = Field(None, ge=0)
    psi_weighted: float | None = Field(0.25, ge=0)
    estimated_auc: float | None = Field(None, ge=0, le=1)
    expected_profit: float | None = None


class EvaluateSettings(Section):
    contact_cost: float = Field(5.0, ge=0)
    success_rate: float = Field(0.3, ge=0, le=1)


class EngineSettings(Section):
    """Where per-bucket work runs: in this process, or as tasks on a Dask cluster."""

    kind: Literal["local", "dask"] = "local"
    scheduler: str | None = Field(None, validate_default=True)
    # Customer-hash buckets of the event log; None: from the data size.
    buckets: int | None = Field(None, ge=1, le=100_000)

    @field_validator("scheduler")
    @classmethod
    def _address_for_dask(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and (not value.strip() or any(c.isspace() for c in value)):
            raise ValueError("a scheduler address such as tcp://10.0.0.5:8786")
        if value is None and info.data.get("kind") == "dask":
            raise ValueError(
                "a scheduler address such as tcp://10.0.0.5:8786 when engine.kind is dask "
                "(flag --scheduler, env CHURNKIT_ENGINE__SCHEDULER)"
            )
        return value


class Settings(Section):
    workspace: Path = Path(".churnkit")
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    labels: LabelSettings = Field(default_factory=LabelSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    segments: SegmentSettings = Field(default_factory=SegmentSettings)
    predict: PredictSettings = Field(default_factory=PredictSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    quality_gates: QualityGates = Field(default_factory=QualityGates)
    evaluate: EvaluateSettings = Field(default_factory=EvaluateSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    def fingerprint(self) -> str:
        """A hash of the resolved settings, recorded in model cards for reproducibility.

        Where the work ran (``engine``) changes no result, so it is left out."""
        text = json.dumps(self.model_dump(mode="json", exclude={"engine"}), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge defaults < file < environment < flags and validate once.

    ``env`` is passed in (not read from ``os.environ``) so tests stay hermetic;
    ``overrides`` holds only the flags the user actually typed.
    """
    merged: dict[str, Any] = {}
    if config_path is not None:
        _deep_merge(merged, _read_yaml(config_path))
    _deep_merge(merged, _from_env(env or {}))
    _deep_merge(merged, dict(overrides or {}))
    try:
        settings = Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_explain(exc, config_path)) from None
    _check_mapping(settings.ingest.mapping)
    return settings


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read config file {path}: {exc.strerror}",
            hint="pass an existing file with --config",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    return data


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """``CHURNKIT_LABELS__HORIZON=60`` becomes ``{"labels": {"horizon": 60}}``.

    Values are read as YAML scalars/lists, so ``[30, 90]`` and ``true`` work.
    """
    out: dict[str, Any] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_NOT_SETTINGS:
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return out


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value


def _explain(exc: ValidationError, config_path: Path | None) -> str:
    """One line naming the dotted key, what is allowed and what was found."""
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    key = ".".join(loc)
    kind = err["type"]
    got = err.get("input")
    source = f" (in {config_path})" if config_path else ""
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"unknown setting `{key}`{source}; allowed keys here: {', '.join(allowed)}"
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        allowed_text = f"one of {ctx['expected']}"
    elif kind.startswith(("greater", "less")):
        allowed_text = err["msg"].lower().replace("input should be ", "a value ")
    elif kind == "value_error":
        allowed_text = err["msg"].removeprefix("Value error, ")
    else:
        allowed_text = err["msg"].lower().replace("input should be ", "")
    return f"setting `{key}`{source} must be {allowed_text}; got {got!r}"


def _allowed_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _check_mapping(mapping: Mapping[str, str]) -> None:
    for canonical in mapping:
        if canonical not in MAPPABLE:
            raise ConfigError(
                f"setting `ingest.mapping.{canonical}` names no canonical column; "
                f"allowed: {', '.join(MAPPABLE)}"
            )
