"""Whom to act on within a budget: an exact 0/1 knapsack, and why each was chosen.

:func:`select_within_budget` chooses the customers to act on so that the total
expected saved value is as large as possible while the total cost stays within the
budget, and words each customer's outcome (``selection_reason``). Money is compared
in whole cents: each action's cost is rounded up to the cent and the budget down, so
a plan never spends more than its budget.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.errors import UsageError
from churnkit.core.schema import CUSTOMER_ID, require_columns
from churnkit.retention.columns import (
    ACTION_COST,
    CONTROL,
    EXPECTED_SAVED_VALUE,
    SELECTED,
    SELECTION_REASON,
)
from churnkit.retention.control import CONTROL_REASON

logger = logging.getLogger(__name__)

NOT_WORTH_IT = "not chosen: the action costs more than it is expected to save"
NO_ACTION = "not chosen: no action with a known cost and expected effect"
TOO_DEAR = "not chosen: the action alone costs more than the whole budget"
OUTRANKED = "not chosen: budget exhausted by customers with a better return"
NO_ROOM = "not chosen: the budget left does not cover it, and other customers together save more"

# The knapsack is first shrunk exactly (reduced-cost fixing, see _knapsack); when more
# than this many customers are still undecided, they are chosen greedily by return per
# unit spent instead of by the solver, and the plan says so (method "greedy", with a
# bound on the expected saved value that may be missed, usually a tiny fraction). HiGHS
# proves optimality for a core of this size in about a second; much larger cores can
# take minutes. With a playbook's few distinct costs the core stays small for most
# budgets even with a million customers.
EXACT_CORE_LIMIT = 1500
SOLVER_TIME_LIMIT = 20.0

SelectionMethod = Literal["all_fit", "exact", "greedy", "unlimited"]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class BudgetPlan:
    """Whom to act on within a budget, and why.

    ``frame`` is the input with ``selected`` (bool) and ``selection_reason`` added, in
    the input's row order. ``method`` says how the choice was made: ``all_fit`` (every
    action worth doing fits in the budget), ``exact`` (the best possible choice, proven
    by an integer-programming solver), ``greedy`` (a huge problem, chosen by return per
    unit spent; ``max_shortfall`` bounds how much expected saved value that may miss) or
    ``unlimited`` (no budget given: every action worth doing is chosen).
    """

    frame: pl.DataFrame
    amount: float | None
    spent: float
    expected_saved_value: float
    customers_selected: int
    method: SelectionMethod
    max_shortfall: float = 0.0

    @property
    def selected(self) -> pl.Series:
        return self.frame.get_column(SELECTED)

    def to_dict(self) -> dict[str, object]:
        return {
            "amount": self.amount,
            "spent": self.spent,
            "expected_saved_value": self.expected_saved_value,
            "customers_selected": self.customers_selected,
            "method": self.method,
            "max_shortfall": self.max_shortfall,
        }


def select_within_budget(frame: pl.DataFrame, budget: float | None) -> BudgetPlan:
    """Choose the customers to act on (each with its matched action) that maximise the
    total expected saved value with total cost <= ``budget``.

    Customers whose action is not expected to save more than it costs, and customers in
    the control group (a ``control`` column, see ``assign_control_group``), are never
    chosen. ``budget=None`` means no limit. The problem is solved exactly (reduced-cost
    fixing around the best fractional solution, then ``scipy.optimize.milp``/HiGHS on the
    customers left undecided); only when more than ``EXACT_CORE_LIMIT`` customers remain
    undecided does it fall back to a greedy choice by return per unit spent.
    """
    if budget is not None and (not math.isfinite(budget) or budget < 0):
        raise UsageError(f"the budget must be a non-negative amount; got {budget}")
    require_columns(
        frame.lazy(), [CUSTOMER_ID, ACTION_COST, EXPECTED_SAVED_VALUE], what="the action frame"
    )
    saved = frame.get_column(EXPECTED_SAVED_VALUE).cast(pl.Float64).fill_nan(None)
    saved_np = saved.fill_null(0.0).to_numpy()
    cost_np = frame.get_column(ACTION_COST).cast(pl.Float64).fill_nan(None).to_numpy()
    control = (
        frame.get_column(CONTROL).fill_null(False).to_numpy()
        if CONTROL in frame.columns
        else np.zeros(frame.height, dtype=bool)
    )
    worth = (saved_np > 0) & ~control & np.isfinite(cost_np)
    chosen, too_dear, method, shortfall = _choose(saved_np, cost_np, worth, budget)
    spent = round(math.fsum(cost_np[chosen].tolist()), 2)
    total = math.fsum(saved_np[chosen].tolist())
    unknown = saved.is_null().to_numpy() | ~np.isfinite(cost_np)
    why = _outcomes(
        saved_np,
        cost_np,
        control=control,
        worth=worth,
        chosen=chosen,
        too_dear=too_dear,
        unknown=unknown,
    )
    out = frame.with_columns(
        pl.Series(SELECTED, chosen, dtype=pl.Boolean),
        _selection_reason(frame, why, np.flatnonzero(chosen)),
    )
    logger.info(
        "selected %d customers for %.2f (method %s, expected saved value %.2f)",
        int(chosen.sum()),
        spent,
        method,
        total,
    )
    return BudgetPlan(
        frame=out,
        amount=None if budget is None else float(budget),
        spent=spent,
        expected_saved_value=total,
        customers_selected=int(chosen.sum()),
        method=method,
        max_shortfall=shortfall,
    )


def _choose(
    saved: npt.NDArray[np.float64],
    cost: npt.NDArray[np.float64],
    worth: Mask,
    budget: float | None,
) -> tuple[Mask, Mask, SelectionMethod, float]:
    """Whom to act on among those worth it: everyone without a budget, else the best
    choice in whole cents. Also returns who alone costs more than the whole budget,
    the method and the bound on what a greedy choice may miss."""
    if budget is None:
        return worth, np.zeros(len(worth), dtype=bool), "unlimited", 0.0
    cents = np.zeros(len(worth), dtype=np.int64)
    # Up to the cent; a billionth of a unit of float noise is not a cent more.
    cents[worth] = np.ceil(cost[worth] * 100 - 1e-7).astype(np.int64)
    budget_cents = _budget_cents(budget)
    too_dear = worth & (cents > budget_cents)
    idx = np.flatnonzero(worth & ~too_dear)
    picked, method, shortfall = _knapsack(saved[idx], cents[idx], budget_cents)
    chosen = np.zeros(len(worth), dtype=bool)
    chosen[idx[picked]] = True
    return chosen, too_dear, method, shortfall


def _outcomes(
    saved: npt.NDArray[np.float64],
    cost: npt.NDArray[np.float64],
    *,
    control: Mask,
    worth: Mask,
    chosen: Mask,
    too_dear: Mask,
    unknown: Mask,
) -> npt.NDArray[np.int_]:
    """Each customer's outcome as a code (see ``_REASONS``; 1 is chosen). A customer
    left out who returns no more per unit than the worst chosen one was outranked; one
    who returns more did not fit in what was left."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = np.divide(saved, cost, out=np.full(len(saved), np.inf), where=cost > 0)
    worst_chosen = float(ratio[chosen].min()) if chosen.any() else math.inf
    outranked = worth & ~chosen & ~too_dear & (ratio <= worst_chosen)
    codes: npt.NDArray[np.int_] = np.select(
        [control, chosen, unknown, ~worth, too_dear, outranked], [0, 1, 6, 2, 3, 4], 5
    )
    return codes


def _budget_cents(budget: float) -> int:
    cents = math.floor(budget * 100 + 1e-7)
    return cents - 1 if cents / 100 > budget else cents


def _knapsack(
    value: npt.NDArray[np.float64], cost: npt.NDArray[np.int64], capacity: int
) -> tuple[npt.NDArray[np.bool_], SelectionMethod, float]:
    """0/1 knapsack: values > 0, integer costs each <= capacity.

    Returns the chosen mask, the method and an upper bound on the value missed (0 when
    exact). The fractional optimum (by return per unit, cut at the first item that no
    longer fits) gives an upper bound UB and a multiplier ``lam``; with LB the value of
    the greedy choice, an item whose reduced value ``v - lam*c`` exceeds UB - LB is in
    every optimal choice, and one below -(UB - LB) is in none. Only the rest, the core,
    goes to the solver.
    """
    n = len(value)
    if n == 0 or int(cost.sum()) <= capacity:
        return np.ones(n, dtype=bool), "all_fit", 0.0
    ratio = value / np.maximum(cost, 1e-9)
    order = np.lexsort((-value, -ratio))
    cumulative = np.cumsum(cost[order])
    brk = order[int(np.searchsorted(cumulative, capacity, side="right"))]
    lam = float(value[brk] / cost[brk])
    reduced = value - lam * cost
    upper = lam * capacity + float(np.maximum(reduced, 0.0).sum())
    greedy = _greedy(value, cost, capacity, order)
    lower = float(value[greedy].sum())
    gap = max(upper - lower, 0.0)
    slack = gap * (1 + 1e-9) + 1e-9 * max(1.0, abs(upper))
    always = reduced > slack
    never = reduced < -slack
    core = np.flatnonzero(~(always | never))
    room = capacity - int(cost[always].sum())
    if len(core) > EXACT_CORE_LIMIT or room < 0:
        logger.info("%d undecided customers: choosing greedily by return per unit", len(core))
        return greedy, "greedy", gap
    solved = _solve_core(value[core], cost[core], room)
    if solved is None:
        return greedy, "greedy", gap
    exact = always.copy()
    exact[core[solved]] = True
    if float(value[exact].sum()) < lower - 1e-9 * max(1.0, lower):
        return greedy, "greedy", gap  # never worse than greedy, whatever the solver did
    return exact, "exact", 0.0


def _greedy(
    value: npt.NDArray[np.float64],
    cost: npt.NDArray[np.int64],
    capacity: int,
    order: npt.NDArray[np.intp],
) -> npt.NDArray[np.bool_]:
    """Best return per unit first, skipping what no longer fits; vectorised in rounds
    (each round drops every customer dearer than what is left, so there are at most as
    many rounds as distinct costs)."""
    chosen = np.zeros(len(value), dtype=bool)
    left = capacity
    rest = order
    while len(rest):
        cumulative = np.cumsum(cost[rest])
        fit = int(np.searchsorted(cumulative, left, side="right"))
        chosen[rest[:fit]] = True
        if fit:
            left -= int(cumulative[fit - 1])
        rest = rest[fit:]
        # What is left and still fits comes next; its first item always fits.
        rest = rest[cost[rest] <= left]
    best_single = int(np.argmax(value))
    if value[best_single] > value[chosen].sum():
        chosen = np.zeros(len(value), dtype=bool)
        chosen[best_single] = True
    return chosen


def _solve_core(
    value: npt.NDArray[np.float64], cost: npt.NDArray[np.int64], capacity: int
) -> npt.NDArray[np.bool_] | None:
    if len(value) == 0:
        return np.zeros(0, dtype=bool)
    from scipy.optimize import Bounds, LinearConstraint, milp

    with _quiet_stdout():
        result = milp(
            -value,
            integrality=np.ones(len(value)),
            bounds=Bounds(0, 1),
            constraints=LinearConstraint(cost[None, :].astype(np.float64), -np.inf, capacity),
            options={"mip_rel_gap": 0.0, "time_limit": SOLVER_TIME_LIMIT},
        )
    if result.status != 0 or result.x is None:
        logger.info("solver stopped without proving optimality: %s", result.message)
        return None
    picked = np.asarray(result.x) > 0.5
    if int(cost[picked].sum()) > capacity:
        return None
    return picked


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """HiGHS may write internal diagnostics straight to file descriptor 1, which would
    corrupt machine-readable output (``--json``); silence that descriptor while it runs.
    The solver's status is checked instead."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError):
        yield
        return
    sink = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(sink, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(sink)


def _money(expr: pl.Expr, decimals: int = 2) -> pl.Expr:
    """A non-negative amount as text with thousands separators and a fixed number of
    decimals (huge or non-finite amounts, which no real plan has, are shown as they are)."""
    scale = 10**decimals
    units = (expr * scale).round().cast(pl.Int64, strict=False)
    whole = (
        (units // scale)
        .cast(pl.String)
        .str.reverse()
        .str.replace_all(r"(\d{3})", "$1,")
        .str.strip_suffix(",")
        .str.reverse()
    )
    fixed = pl.format("{}.{}", whole, (units % scale).cast(pl.String).str.zfill(decimals))
    return fixed.fill_null(expr.cast(pl.String))


_REASONS = {
    0: CONTROL_REASON,
    2: NOT_WORTH_IT,
    3: TOO_DEAR,
    4: OUTRANKED,
    5: NO_ROOM,
    6: NO_ACTION,
}


def _selection_reason(
    frame: pl.DataFrame, why: npt.NDArray[np.int_], chosen: npt.NDArray[np.intp]
) -> pl.Series:
    """Words for each customer's outcome (``why`` codes it, see select_within_budget);
    the figures are worded for the chosen customers only."""
    fixed = pl.Series(SELECTION_REASON, why).replace_strict(
        _REASONS, default=None, return_dtype=pl.String
    )
    if not len(chosen):
        return fixed
    esv = pl.col(EXPECTED_SAVED_VALUE).cast(pl.Float64)
    cost = pl.col(ACTION_COST).cast(pl.Float64)
    worded = frame.select(EXPECTED_SAVED_VALUE, ACTION_COST)[chosen].select(
        pl.when(cost >= 0.005)
        .then(
            pl.format(
                "chosen: saves {} for {} ({} per unit spent)",
                _money(esv),
                _money(cost),
                _money(esv / cost, 1),
            )
        )
        .otherwise(pl.format("chosen: saves {} at no cost", _money(esv)))
    )
    return fixed.scatter(chosen, worded.to_series())
