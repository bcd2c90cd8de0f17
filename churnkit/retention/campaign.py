"""A saved campaign: the plan a report chose, kept so its effect can be measured later.

``churnkit report --save-campaign NAME`` keeps, in ``WORKSPACE/campaigns/NAME/``,
``plan.parquet`` (one row per customer the plan chose: the treated, and the control
customers it would have chosen but holds out) and ``campaign.json`` (as_of, horizon,
grace, model, control share and seed, and a snapshot of the playbook with each
action's assumed success rate and cost). ``campaign.json`` is written last, so a
campaign exists once it does. ``churnkit measure NAME`` reads both
(``churnkit.retention.outcome``).

The control customers in the plan are those the same rule would have chosen had they
not been held out, so that treated and control are alike but for the action: without
a budget, every control customer whose action pays; with a budget, the best choice
among the control customers for the same budget per eligible customer (the budget
scaled by the number of control customers whose action pays over the number of
treatable ones).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from churnkit import __version__
from churnkit.core import names
from churnkit.core.errors import DataError, UsageError
from churnkit.core.schema import (
    ACTION,
    CHURN_TYPE,
    CUSTOMER_ID,
    P_CHURN,
    SEGMENT,
    VALUE,
    VALUE_AT_RISK,
)
from churnkit.core.workspace import Workspace, atomic_path, write_text_atomic
from churnkit.retention.budget import select_within_budget
from churnkit.retention.columns import (
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_SUCCESS_RATE,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    SELECTED,
    SELECTION_REASON,
)
from churnkit.retention.playbook import Playbook

PLAN_FILE = "plan.parquet"
META_FILE = "campaign.json"
MEASUREMENT_FILE = "measurement.json"
FORMAT_VERSION = 1

# The plan's columns, in order (those the predictions lack are left out).
PLAN_COLUMNS = (
    CUSTOMER_ID,
    CONTROL,
    ACTION,
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_SUCCESS_RATE,
    EXPECTED_SAVED_VALUE,
    P_CHURN,
    CHURN_TYPE,
    VALUE,
    VALUE_AT_RISK,
    SEGMENT,
    SELECTION_REASON,
)


def campaigns_dir(workspace: Workspace) -> Path:
    return workspace.root / "campaigns"


def campaign_dir(workspace: Workspace, name: str) -> Path:
    return campaigns_dir(workspace) / check_campaign_name(name)


def check_campaign_name(name: str, *, flag: str = "--save-campaign") -> str:
    """A campaign name is a name, never a path (as model names)."""
    return names.check_name(
        name, flag=flag, what="campaign", home="WORKSPACE/campaigns", example="spring-winback"
    )


@dataclass(frozen=True)
class Campaign:
    """A saved campaign: its settings (``campaign.json``) and its plan.

    ``as_of`` is the plan's analysis moment (the end of its day); the effect is
    measured over ``(as_of, as_of + horizon]``, plus ``grace`` days for a failed
    payment to be recovered, as training labels it. ``actions`` maps each action the
    playbook knew to its assumed ``success_rate``, ``unit_cost`` and ``channel``.
    """

    name: str
    as_of: datetime
    horizon: int
    grace: int
    model: str | None
    control_share: float
    seed: int
    budget: float | None
    created: str
    actions: dict[str, dict[str, Any]]
    playbook: dict[str, Any] | None
    playbook_path: str | None
    plan: pl.DataFrame

    @property
    def treated(self) -> int:
        return int((~self.plan[CONTROL]).sum())

    @property
    def control(self) -> int:
        return int(self.plan[CONTROL].sum())

    def meta_json(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "churnkit_version": __version__,
            "name": self.name,
            "created": self.created,
            "as_of": self.as_of.isoformat(),
            "horizon": self.horizon,
            "grace": self.grace,
            "model": self.model,
            "control_share": self.control_share,
            "seed": self.seed,
            "budget": self.budget,
            "customers": {"treated": self.treated, "control": self.control},
            "actions": self.actions,
            "playbook_path": self.playbook_path,
            "playbook": self.playbook,
        }


def build_plan(frame: pl.DataFrame, *, budget: float | None) -> pl.DataFrame:
    """The plan's customers from a report's frame (after actions, control group and
    selection): the selected ones (treated) and the control customers the plan would
    have chosen (see the module docstring), with ``control`` marking the latter."""
    plan = frame.filter(in_plan(frame, budget=budget))
    keep = [c for c in PLAN_COLUMNS if c in plan.columns]
    return plan.select(keep).sort(CUSTOMER_ID)


def in_plan(frame: pl.DataFrame, *, budget: float | None) -> pl.Series:
    """Per row of a report's frame, whether the customer is in the plan: selected
    (treated), or a control customer the plan would have chosen had they not been held
    out (with a budget: chosen again within the same share of the budget)."""
    cost = pl.col(ACTION_COST).cast(pl.Float64)
    worth = (
        (pl.col(EXPECTED_SAVED_VALUE).cast(pl.Float64).fill_nan(None) > 0)
        & cost.is_not_null()
        & cost.is_finite()
    ).fill_null(False)
    marked = frame.with_row_index("_row").with_columns(worth.alias("_worth"))
    treated = marked.filter(pl.col(SELECTED).fill_null(False) & ~pl.col(CONTROL))
    held = marked.filter(pl.col(CONTROL) & pl.col("_worth"))
    if budget is not None and held.height:
        eligible = marked.filter(~pl.col(CONTROL) & pl.col("_worth")).height
        scaled = budget * held.height / eligible if eligible else budget
        with _quiet(logging.getLogger("churnkit.retention.budget")):
            again = select_within_budget(held.with_columns(pl.lit(False).alias(CONTROL)), scaled)
        held = held.filter(again.selected)
    mask = np.zeros(frame.height, dtype=np.bool_)
    mask[treated.get_column("_row").to_numpy()] = True
    mask[held.get_column("_row").to_numpy()] = True
    return pl.Series("in_plan", mask)


@contextmanager
def _quiet(logger: logging.Logger) -> Iterator[None]:
    """The held-out choice re-runs the budget solver; its log line would read as if a
    second plan had been chosen."""
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def playbook_snapshot(playbook: Playbook) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Each action's assumed economics, and the whole playbook as plain data."""
    actions = {}
    for action in [*(r.action for r in playbook.rules), playbook.fallback]:
        actions[action.name] = {
            "success_rate": action.success_rate,
            "unit_cost": action.unit_cost,
            "channel": action.channel,
        }
    return actions, playbook.model_dump(mode="json", exclude_none=True)


def new_campaign(
    name: str,
    plan: pl.DataFrame,
    *,
    as_of: datetime,
    horizon: int,
    grace: int,
    model: str | None,
    control_share: float,
    seed: int,
    budget: float | None,
    playbook: Playbook,
    playbook_path: Path | None,
) -> Campaign:
    """A campaign ready to save; refuses plans that could never be measured."""
    check_campaign_name(name)
    if control_share <= 0:
        raise UsageError(
            "a campaign needs a control group to be measured against",
            hint="add --control-share 0.1 (or set report.control_share)",
        )
    treated = int((~plan[CONTROL]).sum()) if plan.height else 0
    if treated == 0:
        raise UsageError(
            f"campaign {name!r}: the plan treats nobody, so there is nothing to measure",
            hint="raise --budget, or loosen the filters",
        )
    actions, document = playbook_snapshot(playbook)
    return Campaign(
        name=name,
        as_of=as_of,
        horizon=horizon,
        grace=grace,
        model=model,
        control_share=control_share,
        seed=seed,
        budget=budget,
        created=datetime.now(UTC).replace(microsecond=0).isoformat(),
        actions=actions,
        playbook=document,
        playbook_path=None if playbook_path is None else str(playbook_path),
        plan=plan,
    )


def save_campaign(workspace: Workspace, campaign: Campaign, *, force: bool = False) -> Path:
    """Write the plan, then ``campaign.json``, atomically; an existing campaign of the
    same name is kept unless ``force``. Returns the campaign's directory."""
    folder = campaign_dir(workspace, campaign.name)
    meta = folder / META_FILE
    if meta.exists() and not force:
        raise UsageError(
            f"campaign {campaign.name!r} already exists in {folder}",
            hint="choose another name, or pass --force to replace it",
        )
    try:
        with atomic_path(folder / PLAN_FILE) as tmp:
            campaign.plan.write_parquet(tmp)
        write_text_atomic(meta, json.dumps(campaign.meta_json(), indent=2))
        (folder / MEASUREMENT_FILE).unlink(missing_ok=True)
    except OSError as exc:
        raise DataError(f"cannot write campaign {folder}: {exc.strerror}") from None
    return folder


def load_campaign(workspace: Workspace, name: str) -> Campaign:
    """Read a saved campaign; a missing one is a ``UsageError`` listing those that exist."""
    folder = campaign_dir(workspace, check_campaign_name(name, flag="campaign"))
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        known = available(workspace)
        listed = ", ".join(known) if known else "none yet"
        raise UsageError(
            f"no campaign {name!r} in {campaigns_dir(workspace)} (saved campaigns: {listed})",
            hint="save one with `churnkit report --budget AMOUNT --control-share 0.1 "
            "--save-campaign NAME`",
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        plan = pl.read_parquet(folder / PLAN_FILE)
        budget = meta.get("budget")
        return Campaign(
            name=str(meta["name"]),
            as_of=datetime.fromisoformat(str(meta["as_of"])),
            horizon=int(meta["horizon"]),
            grace=int(meta["grace"]),
            model=meta.get("model"),
            control_share=float(meta["control_share"]),
            seed=int(meta["seed"]),
            budget=None if budget is None else float(budget),
            created=str(meta.get("created", "")),
            actions=dict(meta.get("actions") or {}),
            playbook=meta.get("playbook"),
            playbook_path=meta.get("playbook_path"),
            plan=plan,
        )
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
        raise DataError(
            f"campaign {name!r} in {folder} is unreadable: {str(exc).splitlines()[0]}",
            hint="save it again with `churnkit report ... --save-campaign NAME --force`",
        ) from None


def available(workspace: Workspace) -> list[str]:
    """The saved campaigns' names, sorted."""
    root = campaigns_dir(workspace)
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{META_FILE}"))


def save_measurement(workspace: Workspace, name: str, payload: dict[str, Any]) -> Path:
    """Keep the latest measurement of a campaign (``measurement.json``), for reports."""
    path = campaign_dir(workspace, name) / MEASUREMENT_FILE
    try:
        write_text_atomic(path, json.dumps(payload, indent=2))
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror}") from None
    return path


def measurements(workspace: Workspace) -> list[dict[str, Any]]:
    """The latest measurement of every measured campaign (unreadable ones skipped),
    most recently planned first."""
    found = []
    for name in available(workspace):
        path = campaigns_dir(workspace) / name / MEASUREMENT_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "as_of" in data:
            found.append(data)
    return sorted(found, key=lambda d: (str(d["as_of"]), str(d.get("campaign"))), reverse=True)
