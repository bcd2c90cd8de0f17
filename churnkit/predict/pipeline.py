"""``predict``: who is about to leave, how, what they are worth, and why.

Every customer active at ``as_of`` is scored with a saved model. The decisions
DESIGN.md leaves open are made here, and stated in the output:

- **Compatibility.** The model is refused (``ModelError``, exit 5) when the data
  cannot give it the features it learned from (a source column, the relations table
  or a feature setting is missing), or when its classes do not fit the data: a
  multiclass model (voluntary / involuntary) on data with no failed payments up to
  ``as_of`` would call nobody involuntary for lack of evidence, not because nobody
  is; a binary model trained on data *without* failed payments, on data that now
  holds them, would ignore the strongest sign of involuntary churn. Retrain in both
  cases. A binary model trained with failed payments in its data (only one churn kind
  occurred in its labels) scores such data as usual.
- **churn_type.** For a customer in a risk tier (``p_churn`` at or above the lowest
  ``predict.risk_tiers`` threshold), the likelier churn kind (``voluntary`` or
  ``involuntary``; ``churned`` for binary models); below it, ``retained``. This keeps
  the type consistent with the tier: a customer 55% likely to leave is never called
  "retained" because staying is the single likeliest outcome.
- **risk_tier.** The highest tier whose threshold ``p_churn`` reaches, else ``low``.
  With no tiers configured everyone is ``low`` and churn_type uses a 0.5 cut.
- **value.** ``predict.value`` (see ``churnkit.value``); ``expected_remaining`` uses
  the model's training churn rate per horizon, as a monthly rate.
  ``value_at_risk = p_churn × value``.
- **Drivers** cost ~165x a prediction, so they are computed only for the customers a
  report can show: the top ``predict.drivers_top_n`` by value at risk plus every
  customer in the highest risk tier. Each driver is a feature that pushes the
  customer's likelier churn kind up against staying (binary: the churned log-odds),
  strongest first, as a sentence with the customer's values. A feature whose value
  sits on the safe side of today's median (``risk_when`` in the card: "card expires
  in 1,189 days", "0 failed payments") is not offered as a reason even when its push
  is positive (``explain.drop_implausible``). Customers outside that
  set have null drivers and a null ``driver_features``; customers inside it whose
  model output has no risk-raising feature get an empty list.
- **Segments** come from the segment table when given (``segment`` is its
  ``rfm_segment``); without one the segment columns are null, never invented.
- **Actions** come from the retention playbook (``predict.playbook``, by default
  ``configs/actions.yaml`` in the working directory; see ``churnkit.actions``). When
  the default playbook is absent the action columns are null and the result says
  so; a playbook that does not load is a configuration error (exit 4).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import (
    ChurnkitWarning,
    ConfigError,
    DataError,
    DriftWarning,
    LeakageWarning,
    ModelError,
    UsageError,
)
from churnkit.core.io import write_table
from churnkit.core.jsonable import jsonable
from churnkit.core.schema import (
    ACTION,
    ACTION_REASON,
    AS_OF,
    CHURN_TYPE,
    CUSTOMER_ID,
    DRIVER_FEATURES,
    DRIVERS,
    KIND,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    PREDICTION_COLUMNS,
    RISK_TIER,
    SEGMENT,
    VALUE,
    VALUE_AT_RISK,
    ChurnType,
    EventKind,
)
from churnkit.core.timeline import events_until, resolve_as_of
from churnkit.core.workspace import Workspace, atomic_path
from churnkit.features import FeatureLayout
from churnkit.features.names import NETWORK_FEATURES
from churnkit.features.snapshot import active_features, feature_vocabulary
from churnkit.model.lightgbm import RETRAIN_HINT, TRAIN_FIRST_HINT, ChurnModel
from churnkit.predict.drivers import (
    CANDIDATES_PER_DRIVER,
    driver_sentences,
    drop_implausible,
    risk_contributions,
    top_drivers,
)
from churnkit.predict.value import expected_remaining, monthly_churn_rate, trailing_revenue
from churnkit.retention.playbook import Playbook, assign_actions, load_playbook

log = logging.getLogger(__name__)

TOP_DRIVERS = len(DRIVERS)
LOW_TIER = "low"
# Used as the churn_type cut when no risk tier is configured.
DEFAULT_RISK_CUT = 0.5
LATEST = "latest.parquet"
# Output column <- segment table column.
SEGMENT_COLUMNS = {
    SEGMENT: "rfm_segment",
    "customer_type": "customer_type",
    "strategy": "strategy",
    "value_tier": "value_tier",
    "lifecycle_stage": "lifecycle_stage",
}
OUTPUT_COLUMNS = PREDICTION_COLUMNS
_VOLUNTARY = ChurnType.VOLUNTARY.value
_INVOLUNTARY = ChurnType.INVOLUNTARY.value
_CHURNED = ChurnType.CHURNED.value
_RETAINED = ChurnType.RETAINED.value


@dataclass(frozen=True)
class Predictions:
    """The scored population and what a reader needs to trust it.

    ``frame`` has ``OUTPUT_COLUMNS`` (plus any columns the playbook adds after
    ``action_reason``), one row per active customer, sorted by value at risk.
    ``expected_churners`` sums the probabilities per churn kind (``churned`` for a
    binary model).
    """

    frame: pl.DataFrame
    as_of: datetime
    model_name: str
    mode: Literal["multiclass", "binary"]
    horizon: int
    model_as_of: datetime | None
    value_measure: str
    risk_tiers: dict[str, float]
    tier_counts: dict[str, int]
    expected_churners: dict[str, float]
    value_at_risk: float
    with_drivers: int
    drivers_top_n: int
    top_tier: str | None
    segments_used: bool
    actions_used: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def active_customers(self) -> int:
        return self.frame.height

    @property
    def drivers_for(self) -> str:
        """Who got drivers, in words."""
        rule = f"the top {self.drivers_top_n:,} by value at risk"
        if self.top_tier is not None:
            rule += f" and every customer in the {self.top_tier} risk tier"
        return rule

    @property
    def mode_note(self) -> str:
        if self.mode == "binary":
            return (
                "binary model (churned vs retained): it does not split voluntary from "
                "involuntary churn, so p_voluntary and p_involuntary are empty"
            )
        return "multiclass model: retained / voluntary / involuntary"

    def top(self, n: int = 10) -> pl.DataFrame:
        """The ``n`` customers with the largest value at risk."""
        return self.frame.head(n)

    def to_json(self, *, path: Path | None = None, top: int = 10) -> dict[str, Any]:
        customers = self.top(top).drop(AS_OF).to_dicts()
        return {
            "model": self.model_name,
            "mode": self.mode,
            "mode_note": self.mode_note,
            "as_of": self.as_of.isoformat(),
            "horizon": self.horizon,
            "model_as_of": None if self.model_as_of is None else self.model_as_of.isoformat(),
            "active_customers": self.active_customers,
            "expected_churners": {k: round(v, 2) for k, v in self.expected_churners.items()},
            "value_measure": self.value_measure,
            "value_at_risk": round(self.value_at_risk, 2),
            "risk_tiers": self.tier_counts,
            "customers_with_drivers": self.with_drivers,
            "drivers_for": self.drivers_for,
            "segments": self.segments_used,
            "actions": self.actions_used,
            "path": None if path is None else str(path),
            "notes": list(self.notes),
            "top_customers": jsonable(customers, digits=6),
        }


def predict(
    events: pl.LazyFrame,
    *,
    settings: Settings,
    model_dir: Path,
    relations: pl.LazyFrame | None = None,
    as_of: datetime | None = None,
    segments: pl.DataFrame | None = None,
) -> Predictions:
    """Score every customer active at ``as_of`` (default: the last event's day)."""
    as_of = resolve_as_of(events, as_of)
    tiers = risk_tiers(settings.predict.risk_tiers)
    model = load_model(model_dir)
    card = model.card_
    layout = _layout(card, model_dir)
    horizon = int(card.get("horizon", settings.labels.horizon))
    grace = int(card.get("grace_period", settings.labels.grace_period))
    model_as_of = _model_as_of(card)
    notes: list[str] = []
    playbook = _playbook(settings, model.feature_names_, notes)

    _require_source_columns(events, layout, model_dir)
    known = events_until(events, as_of)
    notes += _check_classes(model, layout, known, model_dir, as_of)
    if model_as_of is not None and model_as_of > as_of:
        _warn(
            f"model {model_dir.name!r} was trained on data up to {model_as_of:%Y-%m-%d}, "
            f"after as-of {as_of:%Y-%m-%d}: it has seen what happened next, so these scores "
            "are not a forecast (use `churnkit evaluate` to back-test)",
            LeakageWarning,
            notes,
        )

    lab = settings.labels.model_copy(update={"horizon": horizon, "grace_period": grace})
    snap = active_features(
        events,
        as_of,
        settings=settings.model_copy(update={"labels": lab}),
        relations=relations,
        layout=layout,
    )
    frame = snap.frame
    if frame.height == 0:
        raise DataError(
            f"no customer is active at as-of {as_of:%Y-%m-%d}",
            hint="choose an --as-of within the data, or check the active window setting",
        )
    _require_features(model, frame.columns, relations, model_dir)
    X = frame.select(model.feature_names_)
    proba = model.predict_proba(X)
    scored, kind_index = _probabilities(frame.select(CUSTOMER_ID), proba, model, tiers)

    value = _value(events, as_of, frame, settings, model, horizon)
    scored = scored.join(value, on=CUSTOMER_ID, how="left").with_columns(
        pl.col(VALUE).fill_null(0.0)
    )
    scored = scored.with_columns((pl.col(P_CHURN) * pl.col(VALUE)).alias(VALUE_AT_RISK))

    top_tier = max(tiers, key=lambda t: tiers[t]) if tiers else None
    chosen = _driver_rows(scored, settings.predict.drivers_top_n, top_tier)
    drivers = _drivers(model, frame, X, chosen, kind_index)
    scored = scored.join(drivers, on=CUSTOMER_ID, how="left")

    scored, segments_used = _join_segments(scored, segments, as_of, notes)
    scored = _assign_actions(scored, playbook)
    scored = scored.with_columns(pl.lit(as_of, dtype=pl.Datetime("us")).alias(AS_OF))
    ordered = [c for c in OUTPUT_COLUMNS if c in scored.columns]
    extra = [c for c in scored.columns if c not in OUTPUT_COLUMNS]
    at = ordered.index(ACTION_REASON) + 1
    scored = scored.select(*ordered[:at], *extra, *ordered[at:]).sort(
        [VALUE_AT_RISK, P_CHURN, CUSTOMER_ID], descending=[True, True, False]
    )

    tier_counts = dict.fromkeys([*sorted(tiers, key=lambda t: -tiers[t]), LOW_TIER], 0)
    counted = scored[RISK_TIER].value_counts()
    for tier, n in zip(counted[RISK_TIER].to_list(), counted["count"].to_list(), strict=True):
        tier_counts[str(tier)] = int(n)
    if model.mode == "binary":
        expected = {_CHURNED: float(scored[P_CHURN].sum())}
    else:
        expected = {
            _VOLUNTARY: float(scored[P_VOLUNTARY].sum()),
            _INVOLUNTARY: float(scored[P_INVOLUNTARY].sum()),
        }
    result = Predictions(
        frame=scored,
        as_of=as_of,
        model_name=model_dir.name,
        mode=model.mode,
        horizon=horizon,
        model_as_of=model_as_of,
        value_measure=settings.predict.value,
        risk_tiers=tiers,
        tier_counts=tier_counts,
        expected_churners=expected,
        value_at_risk=float(scored[VALUE_AT_RISK].sum()),
        with_drivers=len(chosen),
        drivers_top_n=settings.predict.drivers_top_n,
        top_tier=top_tier,
        segments_used=segments_used,
        actions_used=playbook is not None,
        notes=tuple(notes),
    )
    log.info(
        "scored %d active customers at %s; drivers for %d",
        result.active_customers,
        as_of.date(),
        result.with_drivers,
    )
    return result


# --- the model and the data ---------------------------------------------------------------


def load_model(model_dir: Path) -> ChurnModel:
    """``ChurnModel.load``, naming the models that do exist when this one does not."""
    if not model_dir.is_dir():
        parent = model_dir.parent
        found = sorted(p.name for p in parent.iterdir() if p.is_dir()) if parent.is_dir() else []
        known = f"; models in {parent}: {', '.join(found)}" if found else ""
        raise ModelError(
            f"no model {model_dir.name!r} in {parent}{known}",
            hint=TRAIN_FIRST_HINT + (" or pick one with --model" if found else ""),
        )
    return ChurnModel.load(model_dir)


def _layout(card: Mapping[str, Any], model_dir: Path) -> FeatureLayout:
    try:
        return FeatureLayout.from_dict(card["layout"])
    except (KeyError, TypeError, ValueError):
        raise ModelError(
            f"the model card in {model_dir} does not record its feature layout",
            hint=RETRAIN_HINT,
        ) from None


def _model_as_of(card: Mapping[str, Any]) -> datetime | None:
    raw = card.get("as_of")
    try:
        return datetime.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def _require_source_columns(events: pl.LazyFrame, layout: FeatureLayout, model_dir: Path) -> None:
    needed = [*layout.columns, *layout.extra_numeric, *layout.extra_categorical]
    present = set(events.collect_schema().names())
    missing = [c for c in needed if c not in present]
    if missing:
        raise ModelError(
            f"model {model_dir.name!r} was trained on data with the column(s) "
            f"{', '.join(repr(c) for c in missing)}, which the data lacks",
            hint="ingest the source that holds them (mapped with --map), or " + RETRAIN_HINT,
        )


def _check_classes(
    model: ChurnModel,
    layout: FeatureLayout,
    known: pl.LazyFrame,
    model_dir: Path,
    as_of: datetime,
) -> list[str]:
    """Refuse a model whose classes do not fit the data (see the module docstring);
    warn about other event kinds the model learned from that the data lacks."""
    kinds = set(
        known.select(pl.col(KIND).cast(pl.String).unique())
        .collect(engine="streaming")
        .to_series()
        .drop_nulls()
        .to_list()
    )
    failed = EventKind.PAYMENT_FAILED.value
    name = model_dir.name
    if model.mode == "multiclass" and failed not in kinds:
        raise ModelError(
            f"model {name!r} tells voluntary from involuntary churn, but the data up to "
            f"{as_of:%Y-%m-%d} holds no failed payments (event kinds: "
            f"{', '.join(sorted(kinds))}): it cannot judge involuntary churn here",
            hint="ingest the billing export with failed payments, or "
            + RETRAIN_HINT
            + " on this data (it will train a binary model)",
        )
    if model.mode == "binary" and failed in kinds and failed not in layout.kinds:
        raise ModelError(
            f"model {name!r} is binary and never saw a failed payment, but the data up to "
            f"{as_of:%Y-%m-%d} holds failed payments: it would ignore them and could not "
            "tell involuntary churn apart",
            hint=RETRAIN_HINT + " on this data (it will split voluntary and involuntary)",
        )
    notes: list[str] = []
    gone = [k for k in layout.kinds if k not in kinds]
    if gone:
        _warn(
            f"the data up to {as_of:%Y-%m-%d} holds no {', '.join(gone)} events, which "
            f"model {name!r} learned from: their features are empty for every customer",
            DriftWarning,
            notes,
        )
    return notes


def _require_features(
    model: ChurnModel, columns: list[str], relations: pl.LazyFrame | None, model_dir: Path
) -> None:
    present = set(columns)
    missing = [f for f in model.feature_names_ if f not in present]
    if not missing:
        return
    network = set(NETWORK_FEATURES)
    if relations is None and network & set(missing):
        hint = "ingest the relations table (churnkit ingest --relations FILE), or " + RETRAIN_HINT
    else:
        hint = "score with the feature settings used in training, or " + RETRAIN_HINT
    shown = ", ".join(missing[:8]) + (f", … ({len(missing) - 8} more)" if len(missing) > 8 else "")
    raise ModelError(
        f"the data lacks {len(missing)} feature(s) model {model_dir.name!r} was trained on: "
        f"{shown}",
        hint=hint,
    )


def risk_tiers(configured: Mapping[str, float]) -> dict[str, float]:
    """The configured tiers, highest threshold first; thresholds must lie in (0, 1]."""
    for name, threshold in configured.items():
        if not 0.0 < threshold <= 1.0:
            raise ConfigError(
                f"setting `predict.risk_tiers.{name}` must be a probability in (0, 1]; "
                f"got {threshold!r}"
            )
    if LOW_TIER in configured:
        raise ConfigError(
            f"setting `predict.risk_tiers.{LOW_TIER}`: {LOW_TIER!r} is the name of the "
            "customers below every tier and cannot have a threshold"
        )
    return dict(sorted(configured.items(), key=lambda kv: -kv[1]))


# --- scores, value, drivers ---------------------------------------------------------------


def _probabilities(
    ids: pl.DataFrame, proba: np.ndarray[Any, Any], model: ChurnModel, tiers: Mapping[str, float]
) -> tuple[pl.DataFrame, np.ndarray[Any, Any]]:
    """Probability columns, churn_type and risk_tier; and per row the index of the class
    its drivers explain (the likelier churn kind)."""
    classes = model.classes_
    p_churn = 1.0 - proba[:, classes.index(_RETAINED)]
    cut = min(tiers.values()) if tiers else DEFAULT_RISK_CUT
    p_vol: np.ndarray[Any, Any] | None = None
    p_inv: np.ndarray[Any, Any] | None = None
    if model.mode == "binary":
        kind: pl.Expr = pl.lit(_CHURNED)
        kind_index = np.full(len(p_churn), classes.index(_CHURNED), dtype=np.intp)
    else:
        p_vol = proba[:, classes.index(_VOLUNTARY)]
        p_inv = proba[:, classes.index(_INVOLUNTARY)]
        kind = (
            pl.when(pl.col(P_INVOLUNTARY) > pl.col(P_VOLUNTARY))
            .then(pl.lit(_INVOLUNTARY))
            .otherwise(pl.lit(_VOLUNTARY))
        )
        kind_index = np.where(
            p_inv > p_vol, classes.index(_INVOLUNTARY), classes.index(_VOLUNTARY)
        ).astype(np.intp)
    churn_type = pl.when(pl.col(P_CHURN) >= cut).then(kind).otherwise(pl.lit(_RETAINED))
    tier: pl.Expr = pl.lit(LOW_TIER)
    for name, threshold in sorted(tiers.items(), key=lambda kv: kv[1]):
        tier = pl.when(pl.col(P_CHURN) >= threshold).then(pl.lit(name)).otherwise(tier)

    def probability(name: str, values: np.ndarray[Any, Any] | None) -> pl.Expr:
        if values is None:
            return pl.lit(None, dtype=pl.Float64).alias(name)
        return pl.lit(pl.Series(name, values, dtype=pl.Float64))

    frame = ids.with_columns(
        probability(P_CHURN, p_churn),
        probability(P_VOLUNTARY, p_vol),
        probability(P_INVOLUNTARY, p_inv),
    ).with_columns(
        churn_type.cast(pl.String).alias(CHURN_TYPE), tier.cast(pl.String).alias(RISK_TIER)
    )
    return frame, kind_index


def _value(
    events: pl.LazyFrame,
    as_of: datetime,
    frame: pl.DataFrame,
    settings: Settings,
    model: ChurnModel,
    horizon: int,
) -> pl.DataFrame:
    window = settings.predict.value_window
    revenue = trailing_revenue(events, as_of, window).collect(engine="streaming")
    base = (
        frame.select(CUSTOMER_ID)
        .join(revenue, on=CUSTOMER_ID, how="left")
        .with_columns(pl.col(VALUE).fill_null(0.0))
    )
    if settings.predict.value == "expected_remaining":
        counts = model.class_counts_
        total = sum(counts.values())
        rate = 1.0 - counts.get(_RETAINED, 0) / total if total else 0.0
        monthly = monthly_churn_rate(rate, horizon)
        log.info(
            "value: expected remaining revenue at a monthly churn rate of %.1f%% "
            "(the model's training rate of %.1f%% per %d days)",
            100 * monthly,
            100 * rate,
            horizon,
        )
        base = expected_remaining(base, days=window, monthly_churn_rate=monthly)
    return base.select(CUSTOMER_ID, VALUE)


def _driver_rows(scored: pl.DataFrame, top_n: int, top_tier: str | None) -> np.ndarray[Any, Any]:
    """Row positions of the customers who get drivers: the top ``top_n`` by value at
    risk (ties by id) and everyone in the top risk tier, in row order."""
    ranked = (
        scored.select(CUSTOMER_ID, VALUE_AT_RISK, RISK_TIER)
        .with_row_index("_pos")
        .sort([VALUE_AT_RISK, CUSTOMER_ID], descending=[True, False])
    )
    picked = ranked.head(top_n)
    if top_tier is not None:
        picked = pl.concat([picked, ranked.filter(pl.col(RISK_TIER) == top_tier)])
    return np.unique(picked["_pos"].to_numpy()).astype(np.intp)


def _drivers(
    model: ChurnModel,
    frame: pl.DataFrame,
    X: pl.DataFrame,
    rows: np.ndarray[Any, Any],
    kind_index: np.ndarray[Any, Any],
) -> pl.DataFrame:
    """``customer_id, driver_1..3, driver_features`` for the chosen rows."""
    chosen = frame[rows]
    contributions = model.contributions(X[rows])
    reference = None if model.mode == "binary" else model.classes_.index(_RETAINED)
    risk = risk_contributions(contributions, kind_index[rows], reference=reference)
    specs: Mapping[str, Any] = model.card_.get("feature_specs", {})
    names = model.feature_names_
    directions = [
        specs.get(n, {}).get("risk_when") if n not in model.categories_ else None for n in names
    ]
    numeric = [
        pl.col(n).cast(pl.Float64) if d is not None else pl.lit(None, dtype=pl.Float64).alias(n)
        for n, d in zip(names, directions, strict=True)
    ]
    medians = frame.select(e.fill_nan(None).median() for e in numeric).to_numpy()[0]
    values = chosen.select(numeric).to_numpy().astype(np.float64)
    risk = drop_implausible(risk, values, directions, medians.astype(np.float64))
    candidates = top_drivers(risk, TOP_DRIVERS * CANDIDATES_PER_DRIVER)
    templates = {
        name: str(specs[name]["sentence"])
        if name in specs
        else _fallback_template(name, model.feature_descriptions_.get(name, name))
        for name in model.feature_names_
    }
    said = driver_sentences(chosen, candidates, model.feature_names_, templates, top=TOP_DRIVERS)
    return pl.concat([chosen.select(CUSTOMER_ID), said], how="horizontal")


def _fallback_template(name: str, description: str) -> str:
    """For a model card without sentences: the description and the value."""
    text = description.replace("{", "{{").replace("}", "}}")
    return f"{text}: {{{name}}}"


# --- segments and actions -----------------------------------------------------------------


def _join_segments(
    scored: pl.DataFrame, segments: pl.DataFrame | None, as_of: datetime, notes: list[str]
) -> tuple[pl.DataFrame, bool]:
    if segments is None:
        return scored.with_columns(
            pl.lit(None, dtype=pl.String).alias(c) for c in SEGMENT_COLUMNS
        ), False
    if CUSTOMER_ID not in segments.columns:
        raise DataError(
            "the segment table has no customer_id column", hint="re-run `churnkit segment`"
        )
    if AS_OF in segments.columns:
        dates = {str(v)[:10] for v in segments[AS_OF].drop_nulls().unique().to_list()}
        if dates and dates != {as_of.date().isoformat()}:
            _warn(
                f"the segments are as of {', '.join(sorted(dates))}, the predictions as of "
                f"{as_of:%Y-%m-%d}: re-run `churnkit segment --as-of {as_of:%Y-%m-%d}` for "
                "matching segments",
                ChurnkitWarning,
                notes,
            )
    picked = [
        (pl.col(source).cast(pl.String) if source in segments.columns else pl.lit(None))
        .cast(pl.String)
        .alias(out)
        for out, source in SEGMENT_COLUMNS.items()
    ]
    table = segments.select(pl.col(CUSTOMER_ID).cast(pl.String), *picked).unique(
        CUSTOMER_ID, keep="first", maintain_order=True
    )
    return scored.join(table, on=CUSTOMER_ID, how="left"), True


def _playbook(settings: Settings, features: list[str], notes: list[str]) -> Playbook | None:
    """The retention playbook (``predict.playbook``), read before any scoring so a
    mistake in it costs seconds, not a scoring run.

    A playbook path set in the config, environment or on the command line must exist
    (``ConfigError`` otherwise); the default one may be absent, and then the action
    columns are null and the result says so. Rules may name any feature churnkit can
    produce (``snapshots.feature_vocabulary``); one this data lacks simply never fires.
    """
    path = settings.predict.playbook
    if path.is_file():
        return load_playbook(path, known_features=feature_vocabulary(settings, features))
    if "playbook" in settings.predict.model_fields_set:
        raise ConfigError(
            f"setting `predict.playbook` names {path}, which does not exist",
            hint="point it at a playbook such as configs/actions.yaml",
        )
    notes.append(f"no playbook at {path}: the action columns are empty")
    return None


def _assign_actions(scored: pl.DataFrame, playbook: Playbook | None) -> pl.DataFrame:
    if playbook is None:
        return scored.with_columns(
            pl.lit(None, dtype=pl.String).alias(ACTION),
            pl.lit(None, dtype=pl.String).alias(ACTION_REASON),
        )
    return assign_actions(scored, playbook)


def _warn(message: str, category: type[Warning], notes: list[str]) -> None:
    notes.append(message)
    warnings.warn(message, category, stacklevel=3)


# --- files ----------------------------------------------------------------------------------


def read_segments(path: Path) -> pl.DataFrame | None:
    """The segment table written by ``churnkit segment``, if there is one."""
    if not path.is_file():
        return None
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(
            f"{path}: cannot read the segment table ({exc})", hint="re-run `churnkit segment`"
        ) from None


OUTPUT_SUFFIXES = (".parquet", ".pq", ".csv", ".json")


def check_output_path(out: Path) -> None:
    """Refuse an output type we cannot write before spending minutes on scoring."""
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(
            f"{out}: cannot write predictions as {out.suffix or 'a file without extension'}",
            hint="use a name ending in .parquet, .csv or .json",
        )


def latest_path(workspace: Workspace) -> Path:
    """The predictions of the most recent ``predict`` run into the workspace."""
    return workspace.predictions_dir / LATEST


def default_path(workspace: Workspace, as_of: datetime) -> Path:
    return workspace.predictions_dir / f"predictions-{as_of:%Y-%m-%d}.parquet"


def save_predictions(
    predictions: Predictions, *, workspace: Workspace, out: Path | None = None
) -> Path:
    """Write the predictions; return where they went.

    Without ``out``: ``predictions/predictions-<as_of>.parquet`` in the workspace, and
    ``predictions/latest.parquet`` is then replaced by the same file (a hard link
    where the file system allows, else a copy; atomic either way), so ``report``
    always finds the latest run. With ``out`` (``.parquet``, ``.csv`` or ``.json``)
    only that file is written: explicit paths override the workspace. CSV cells are
    escaped against spreadsheet formulas and ``driver_features`` is joined with
    ``"; "``.
    """
    frame = predictions.frame
    if out is not None:
        check_output_path(out)
        if out.suffix.lower() == ".csv":
            frame = frame.with_columns(pl.col(DRIVER_FEATURES).list.join("; "))
        write_table(frame, out)
        return out
    path = default_path(workspace, predictions.as_of)
    write_table(frame, path)
    latest = latest_path(workspace)
    try:
        with atomic_path(latest) as tmp:
            tmp.unlink()
            try:
                os.link(path, tmp)
            except OSError:
                frame.write_parquet(tmp)
    except OSError as exc:
        raise DataError(f"cannot write {latest}: {exc.strerror or exc}") from None
    return path


__all__ = [
    "OUTPUT_COLUMNS",
    "Predictions",
    "check_output_path",
    "default_path",
    "latest_path",
    "load_model",
    "predict",
    "read_segments",
    "risk_tiers",
    "save_predictions",
]
