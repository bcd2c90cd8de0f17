"""``predict``: who is about to leave, how, what they are worth, and why.

Every customer active at ``as_of`` is scored with a saved model
(``predict.score.score_population``: the population, the compatibility checks and
the refusal of a model trained after ``as_of`` are shared with ``evaluate`` and
``segment``). The decisions docs/contract.md leaves open are made in these modules, and
stated in the output:

- **churn_type and risk_tier**: see ``predict.tiers``.
- **value.** ``predict.value`` (see ``churnkit.predict.value``); ``expected_remaining``
  uses the model's training churn rate per horizon, as a monthly rate.
  ``value_at_risk = p_churn × value``.
- **Drivers**: for a bounded set (the top ``predict.drivers_top_n`` by value at risk
  and any ``explain`` ids; ``drivers="all"``: everyone), see ``predict.explain``.
- **Segments** come from the segment table when given (``segment`` is its
  ``rfm_segment``); without one the segment columns are null, never invented.
- **Actions** come from the retention playbook (``predict.playbook`` when set, else
  ``configs/actions.yaml`` in the working directory, else the one shipped with
  churnkit; see ``churnkit.retention.playbook.playbook_path``). A playbook that does
  not load is a configuration error (exit 4).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import ChurnkitWarning, DataError, UsageError
from churnkit.core.io import write_table
from churnkit.core.jsonable import jsonable
from churnkit.core.progress import Progress, silent
from churnkit.core.schema import (
    ACTION,
    ACTION_REASON,
    AS_OF,
    CUSTOMER_ID,
    DRIVER_FEATURES,
    P_CHURN,
    PREDICTION_COLUMNS,
    SEGMENT,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.core.timeline import resolve_as_of
from churnkit.core.workspace import Workspace, atomic_path
from churnkit.features.snapshot import feature_vocabulary
from churnkit.model.store import load_model
from churnkit.predict.explain import (
    FIRST_CHUNK_ROWS,
    driver_rows,
    estimate_line,
    explain,
    unknown_ids,
)
from churnkit.predict.score import score_population
from churnkit.predict.tiers import (
    expected_churners,
    probability_frame,
    risk_tiers,
    tier_counts,
)
from churnkit.predict.value import customer_value
from churnkit.retention.matching import assign_actions
from churnkit.retention.playbook import Playbook, load_playbook, playbook_path

log = logging.getLogger(__name__)

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
OLD_CARD_NOTE = (
    "the model card predates driver references: drivers use its old sentences, with no "
    "typical customer or previous window to compare with; retrain for drivers that do"
)
# Who gets drivers: the bounded set (top N and --explain ids), or everyone.
DriversMode = Literal["top", "all"]


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
    segments_used: bool
    actions_used: bool
    drivers_mode: DriversMode = "top"
    explained: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def active_customers(self) -> int:
        return self.frame.height

    @property
    def drivers_for(self) -> str:
        """Who got drivers, in words."""
        if self.drivers_mode == "all":
            return "every customer (--drivers all)"
        rule = f"the top {self.drivers_top_n:,} by value at risk"
        if self.explained:
            n = len(self.explained)
            rule += f" and the {n:,} customer{'s' if n != 1 else ''} asked for with --explain"
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
        """The summary and the ``top`` customers by value at risk; every customer is in
        the file at ``path``."""
        customers = self.top(top).drop(AS_OF).to_dicts()
        where = f"all {self.active_customers:,} are in {path}" if path is not None else ""
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
            "top_customers_note": (
                f"the top {len(customers):,} customers by value at risk"
                + (f"; {where}" if where else "")
            ),
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
    explain_ids: Sequence[str] = (),
    drivers: DriversMode = "top",
    progress: Progress = silent,
) -> Predictions:
    """Score every customer active at ``as_of`` (default: the last event's day) with
    the model saved in ``model_dir``.

    Drivers go to the top ``predict.drivers_top_n`` by value at risk and to the
    customers ``explain_ids`` (each must be active at ``as_of``: ``UsageError``
    naming the others); ``drivers="all"`` explains everyone, after logging what it
    will cost."""
    as_of = resolve_as_of(events, as_of)
    tiers = risk_tiers(settings.predict.risk_tiers)
    model = load_model(model_dir.parent, model_dir.name)
    notes: list[str] = []
    playbook = _playbook(settings, model.feature_names_, notes)
    population = score_population(
        events, model, as_of=as_of, settings=settings, relations=relations
    )
    notes += population.notes
    if not any(n.wording is not None for n in model.card_.feature_specs.values()):
        notes.append(OLD_CARD_NOTE)
    scored, kind_index = probability_frame(
        population.frame.select(CUSTOMER_ID), population.proba, model.classes_, tiers
    )
    value = customer_value(
        events,
        as_of,
        population.frame,
        measure=settings.predict.value,
        window=settings.predict.value_window,
        class_counts=model.card_.class_counts,
        horizon=population.horizon,
    )
    scored = scored.join(value, on=CUSTOMER_ID, how="left").with_columns(
        pl.col(VALUE).fill_null(0.0)
    )
    scored = scored.with_columns((pl.col(P_CHURN) * pl.col(VALUE)).alias(VALUE_AT_RISK))

    _check_ids(scored, explain_ids, as_of)
    everyone = drivers == "all"
    chosen = driver_rows(scored, settings.predict.drivers_top_n, explain_ids, everyone=everyone)
    said = explain(
        model,
        population.frame,
        chosen,
        kind_index,
        first_chunk_rows=FIRST_CHUNK_ROWS if everyone else None,
        on_first_chunk=_log_estimate if everyone else None,
        progress=progress,
    )
    scored = scored.join(said, on=CUSTOMER_ID, how="left")

    scored, segments_used = _join_segments(scored, segments, as_of, notes)
    scored = _assign_actions(scored, playbook)
    scored = _ordered(scored.with_columns(pl.lit(as_of, dtype=pl.Datetime("us")).alias(AS_OF)))
    result = Predictions(
        frame=scored,
        as_of=as_of,
        model_name=population.name,
        mode=model.mode,
        horizon=population.horizon,
        model_as_of=model.card_.as_of,
        value_measure=settings.predict.value,
        risk_tiers=tiers,
        tier_counts=tier_counts(scored, tiers),
        expected_churners=expected_churners(scored, binary=model.mode == "binary"),
        value_at_risk=float(scored[VALUE_AT_RISK].sum()),
        with_drivers=len(chosen),
        drivers_top_n=settings.predict.drivers_top_n,
        segments_used=segments_used,
        actions_used=playbook is not None,
        drivers_mode=drivers,
        explained=tuple(dict.fromkeys(explain_ids)),
        notes=tuple(notes),
    )
    log.info(
        "scored %d active customers at %s; drivers for %d",
        result.active_customers,
        as_of.date(),
        result.with_drivers,
    )
    return result


def _check_ids(scored: pl.DataFrame, ids: Sequence[str], as_of: datetime) -> None:
    """Every ``--explain`` id must name a customer scored at ``as_of``."""
    unknown = unknown_ids(scored, ids)
    if unknown:
        shown = ", ".join(repr(i) for i in unknown[:10])
        more = f" and {len(unknown) - 10:,} more" if len(unknown) > 10 else ""
        raise UsageError(
            f"--explain: no active customer {shown}{more} at as-of {as_of:%Y-%m-%d} "
            f"({scored.height:,} customers are active)",
            hint="ids are matched exactly; `churnkit predict --out all.csv` lists every "
            "active customer",
        )


def _log_estimate(done: int, seconds: float, total: int) -> None:
    log.info(estimate_line(done, seconds, total))


def _ordered(scored: pl.DataFrame) -> pl.DataFrame:
    """The contract's columns in order, the playbook's own after ``action_reason``;
    sorted by value at risk."""
    ordered = [c for c in OUTPUT_COLUMNS if c in scored.columns]
    extra = [c for c in scored.columns if c not in OUTPUT_COLUMNS]
    at = ordered.index(ACTION_REASON) + 1
    return scored.select(*ordered[:at], *extra, *ordered[at:]).sort(
        [VALUE_AT_RISK, P_CHURN, CUSTOMER_ID], descending=[True, True, False]
    )


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
    """The retention playbook (see ``retention.playbook.playbook_path``), read before
    any scoring so a mistake in it costs seconds, not a scoring run.

    A playbook path set in the config or environment must exist (``ConfigError``
    otherwise). Rules may name any feature churnkit can produce
    (``snapshots.feature_vocabulary``); one this data lacks simply never fires.
    """
    path = playbook_path(None, settings.predict.playbook)
    return load_playbook(path, known_features=feature_vocabulary(settings, features))


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
    "predict",
    "read_segments",
    "risk_tiers",
    "save_predictions",
]
