"""The retention playbook: which action fits which at-risk customer, and whom to act on.

Three steps, each a pure function:

1. :func:`load_playbook` reads ``configs/actions.yaml``: an ordered list of rules, each
   a set of conditions (``when``) and an ``action`` with a channel, a cost per customer
   and an assumed success rate, plus a ``fallback`` action for everyone no rule fits.
2. :func:`assign_actions` gives every customer the action of the **first** rule whose
   conditions all hold (first match wins, so put specific rules before general ones),
   and its expected saved value::

       value_at_risk        = p_churn × value          (computed by predict)
       expected_saved_value = success_rate × value_at_risk − unit_cost

   i.e. the share of the value at risk the action is assumed to keep, minus what the
   action costs. A customer with no known value at risk counts as worth nothing to save.
3. :func:`select_within_budget` chooses whom to act on so that the total expected saved
   value is as large as possible while the total cost stays within the budget (a 0/1
   knapsack), and says why each customer was or was not chosen. :func:`action_plan`
   totals the result per action; :func:`assign_control_group` holds out a reproducible
   share of customers who get no action, so the actions' effect can be measured.

Money is compared in whole cents when selecting: each action's cost is rounded up to
the cent and the budget down, so a plan never spends more than its budget.
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import math
import os
import re
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import reduce
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl
import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from churnkit.core.errors import ConfigError, DataError, UsageError
from churnkit.core.schema import (
    ACTION,
    ACTION_REASON,
    CHURN_TYPE,
    CUSTOMER_ID,
    CUSTOMER_TYPE,
    DRIVER_FEATURES,
    LIFECYCLE_STAGE,
    P_CHURN,
    RISK_TIER,
    SEGMENT,
    STRATEGY,
    VALUE,
    VALUE_AT_RISK,
    VALUE_TIER,
    ChurnType,
    require_columns,
)

logger = logging.getLogger(__name__)

DEFAULT_PLAYBOOK = Path("configs/actions.yaml")

# Columns added here.
ACTION_DESCRIPTION = "action_description"
ACTION_CHANNEL = "action_channel"
ACTION_LEVER = "action_lever"
ACTION_COST = "action_cost"
ACTION_SUCCESS_RATE = "action_success_rate"
EXPECTED_SAVED_VALUE = "expected_saved_value"
CONTROL = "control"
SELECTED = "selected"
SELECTION_REASON = "selection_reason"

FALLBACK_REASON = "fallback: no playbook rule matched"
CONTROL_REASON = "control group: no action, to measure the actions' effect"
NOT_WORTH_IT = "not chosen: the action costs more than it is expected to save"
NO_ACTION = "not chosen: no action with a known cost and expected effect"
TOO_DEAR = "not chosen: the action alone costs more than the whole budget"
OUTRANKED = "not chosen: budget exhausted by customers with a better return"
NO_ROOM = "not chosen: the budget left does not cover it, and other customers together save more"

_RULE = "_rule"
_ROW = "_row"

# The knapsack is first shrunk exactly (reduced-cost fixing, see _knapsack); when more
# than this many customers are still undecided, they are chosen greedily by return per
# unit spent instead of by the solver, and the plan says so (method "greedy", with a
# bound on the expected saved value that may be missed, usually a tiny fraction). HiGHS
# proves optimality for a core of this size in about a second; much larger cores can
# take minutes. With a playbook's few distinct costs the core stays small for most
# budgets even with a million customers.
EXACT_CORE_LIMIT = 1500
SOLVER_TIME_LIMIT = 20.0

Channel = Literal[
    "email", "sms", "phone", "in_app", "account_manager", "billing_system", "self_service", "none"
]
Lever = Literal["procedural", "relational", "financial", "service_recovery", "payment_recovery"]
Strategy = Literal["build", "protect", "reshape", "enhance", "harvest", "end", "win_back"]
CustomerType = Literal["loyal", "discount_driven", "need_based", "impulse", "wanderer"]
ValueTier = Literal["high", "medium", "low"]
LifecycleStage = Literal["new", "converting", "retained", "loyal", "at_risk", "lapsed"]
SelectionMethod = Literal["all_fit", "exact", "greedy", "unlimited"]

_DRIVER_PATTERN = re.compile(r"[A-Za-z0-9_*?]+")


def _as_list(value: object) -> object:
    """Let a single value stand for a one-element list (``churn_type: involuntary``)."""
    return [value] if isinstance(value, str | int | float) else value


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Name = Annotated[str, BeforeValidator(_strip), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Strict):
    """What to do for a customer, through which channel, at what assumed cost and effect."""

    name: Name
    description: Name
    channel: Channel
    unit_cost: float = Field(ge=0, allow_inf_nan=False)
    success_rate: float = Field(ge=0, le=1)
    lever: Lever | None = None
    strategy: Strategy | None = None


class Conditions(_Strict):
    """All given conditions must hold; a list condition holds when the customer's value
    is one of the listed ones (a missing value, e.g. no segment yet, never matches)."""

    churn_type: Annotated[
        list[ChurnType] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    drivers_any: Annotated[list[str] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    segment: Annotated[list[Name] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    customer_type: Annotated[
        list[CustomerType] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    strategy: Annotated[list[Strategy] | None, BeforeValidator(_as_list), Field(min_length=1)] = (
        None
    )
    value_tier: Annotated[
        list[ValueTier] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    risk_tier: Annotated[list[Name] | None, BeforeValidator(_as_list), Field(min_length=1)] = None
    lifecycle_stage: Annotated[
        list[LifecycleStage] | None, BeforeValidator(_as_list), Field(min_length=1)
    ] = None
    min_value: float | None = Field(None, ge=0, allow_inf_nan=False)
    min_p_churn: float | None = Field(None, ge=0, le=1)

    @field_validator("drivers_any")
    @classmethod
    def _feature_names(cls, value: list[str] | None) -> list[str] | None:
        for term in value or []:
            if not _DRIVER_PATTERN.fullmatch(term):
                raise ValueError(
                    f"{term!r} is not a feature name or a glob pattern such as 'usage_*'"
                )
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Conditions:
        if not self.model_fields_set:
            raise ValueError(
                "a rule needs at least one condition; "
                "put the action for everyone else under `fallback`"
            )
        return self


class Rule(_Strict):
    name: Name
    when: Conditions
    action: Action


class Playbook(_Strict):
    """Rules evaluated in order (the first whose conditions all hold wins), then
    ``fallback`` for every customer no rule fits."""

    rules: tuple[Rule, ...] = ()
    fallback: Action

    def features(self) -> list[str]:
        """Every feature name or glob pattern the rules refer to."""
        return sorted({t for r in self.rules for t in r.when.drivers_any or []})


# --------------------------------------------------------------------------- loading


def load_playbook(path: Path, *, known_features: Collection[str]) -> Playbook:
    """Read and validate a playbook file.

    ``known_features`` lists the feature names rules may refer to in ``drivers_any``;
    entries may themselves be glob patterns (``usage_*_trend``) for feature families
    whose exact names depend on the data. Any mistake raises :class:`ConfigError` with
    one line naming the file and the rule.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"cannot read playbook {path}: {exc.strerror}",
            hint=f"pass an existing file; the shipped default is {DEFAULT_PLAYBOOK}",
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}:{where} {problem}") from None
    return parse_playbook(data, known_features=known_features, source=str(path))


def parse_playbook(
    data: object, *, known_features: Collection[str], source: str = "playbook"
) -> Playbook:
    """Validate an already-parsed playbook (a mapping with ``rules`` and ``fallback``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"{source}: the top level must be a mapping with `rules` (a list) and `fallback`"
        )
    try:
        playbook = Playbook.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_explain(exc, data)}") from None
    _check_names(playbook, source)
    _check_features(playbook, known_features, source)
    return playbook


def _check_names(playbook: Playbook, source: str) -> None:
    seen_rules: dict[str, int] = {}
    actions: dict[str, tuple[str, Action]] = {}
    for i, rule in enumerate(playbook.rules, start=1):
        if rule.name in seen_rules:
            raise ConfigError(
                f"{source}: rule '{rule.name}': duplicate rule name "
                f"(rule #{seen_rules[rule.name]} has it too); give each rule its own name"
            )
        seen_rules[rule.name] = i
    owners = [(f"rule '{r.name}'", r.action) for r in playbook.rules]
    for owner, action in [*owners, ("fallback", playbook.fallback)]:
        first = actions.setdefault(action.name, (owner, action))
        if first[1] != action:
            raise ConfigError(
                f"{source}: {owner}: action '{action.name}' differs from the action of the "
                f"same name in {first[0]}; rename one or make them identical"
            )


def _check_features(playbook: Playbook, known: Collection[str], source: str) -> None:
    known_list = sorted(set(known))
    for rule in playbook.rules:
        for term in rule.when.drivers_any or []:
            if _is_known(term, known_list):
                continue
            kind = "feature pattern" if _has_wildcard(term) else "feature"
            close = difflib.get_close_matches(term, known_list, n=1)
            suggestion = f" (did you mean '{close[0]}'?)" if close else ""
            listed = ", ".join(known_list) if known_list else "(none)"
            raise ConfigError(
                f"{source}: rule '{rule.name}': unknown {kind} '{term}'{suggestion}; "
                f"known: {listed}"
            )


def _has_wildcard(term: str) -> bool:
    return "*" in term or "?" in term


def _glob_regex(pattern: str) -> str:
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return f"^{body}$"


def _is_known(term: str, known: Sequence[str]) -> bool:
    """A term is known when it names a known feature, when it is a glob matching one,
    or when a known glob pattern (a feature family) matches it."""
    term_re = re.compile(_glob_regex(term))
    return any(
        term == k or term_re.match(k) or (_has_wildcard(k) and re.match(_glob_regex(k), term))
        for k in known
    )


_MODELS: dict[str, type[BaseModel]] = {
    "": Playbook,
    "rule": Rule,
    "rule.when": Conditions,
    "rule.action": Action,
    "fallback": Action,
}


def _explain(exc: ValidationError, data: Mapping[Any, Any]) -> str:
    """One line naming the rule, the key, what is allowed and what was found."""
    errors = exc.errors()
    err = errors[0]
    loc = list(err["loc"])
    where = ""
    scope = ""
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
        where = f"rule {_rule_label(data, loc[1])}: "
        scope = "rule"
        loc = loc[2:]
    elif len(loc) >= 2 and loc[0] == "fallback":
        where = "fallback: "
        scope = "fallback"
        loc = loc[1:]
    names = [str(p) for p in loc if not isinstance(p, int)]
    key = ".".join(names)
    kind = err["type"]
    got = err.get("input")
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        parent = ".".join(p for p in [scope, *names[:-1]] if p)
        model = _MODELS.get(parent)
        allowed = f"; allowed here: {', '.join(model.model_fields)}" if model else ""
        return f"{where}unknown key `{key}`{allowed}{more}"
    if kind == "missing":
        return f"{where}missing key `{key}`{more}"
    ctx = err.get("ctx") or {}
    label = f"`{key}`" if key else "this entry"
    if "expected" in ctx:
        return f"{where}{label} must be one of {ctx['expected']}; got {got!r}{more}"
    if kind == "value_error":
        message = str(ctx.get("error", err["msg"]))
        return f"{where}{label}: {message}{more}" if key else f"{where}{message}{more}"
    text = err["msg"].lower().replace("input should be ", "")
    if kind.startswith(("greater", "less")):
        text = f"a value {text}"
    return f"{where}{label} must be {text}; got {got!r}{more}"


def _rule_label(data: Mapping[Any, Any], index: int) -> str:
    rules = data.get("rules")
    if isinstance(rules, list) and index < len(rules):
        rule = rules[index]
        if isinstance(rule, Mapping) and isinstance(rule.get("name"), str):
            return f"'{rule['name']}'"
    return f"#{index + 1}"


# --------------------------------------------------------------------------- matching


def assign_actions(predictions: pl.DataFrame | pl.LazyFrame, playbook: Playbook) -> pl.DataFrame:
    """Give each customer the action of the first matching rule (else the fallback).

    Adds ``action``, ``action_description``, ``action_channel``, ``action_lever``,
    ``action_cost``, ``action_success_rate``, ``expected_saved_value`` and
    ``action_reason`` (the rule that fired and the facts that made it fire). The
    frame needs ``customer_id`` and ``value_at_risk`` plus every column a rule reads.
    """
    lf = predictions.lazy()
    needed = _needed_columns(playbook)
    require_columns(lf, needed, what="the predictions")
    if DRIVER_FEATURES in needed:
        dtype = lf.collect_schema()[DRIVER_FEATURES]
        if not isinstance(dtype, pl.List | pl.Null):
            raise DataError(
                f"the predictions' column {DRIVER_FEATURES!r} must be a list of feature names; "
                f"got {dtype}",
                hint="read the predictions from Parquet, which keeps list columns",
            )
    rules = playbook.rules
    conditions = [_condition(rule.when) for rule in rules]
    fallback_index = len(rules)
    if conditions:
        chain: Any = pl.when(conditions[0]).then(pl.lit(0))
        for i, cond in enumerate(conditions[1:], start=1):
            chain = chain.when(cond).then(pl.lit(i))
        rule_index: pl.Expr = chain.otherwise(pl.lit(fallback_index))
    else:
        rule_index = pl.lit(fallback_index)
    actions = [*(r.action for r in rules), playbook.fallback]

    def lookup(values: list[Any], dtype: pl.DataType) -> pl.Expr:
        return pl.col(_RULE).replace_strict(list(range(len(actions))), values, return_dtype=dtype)

    at_risk = pl.col(VALUE_AT_RISK).cast(pl.Float64).fill_nan(None).fill_null(0.0)
    matched = (
        lf.with_columns(rule_index.cast(pl.Int64).alias(_RULE))
        .with_columns(
            lookup([a.name for a in actions], pl.String()).alias(ACTION),
            lookup([a.description for a in actions], pl.String()).alias(ACTION_DESCRIPTION),
            lookup([a.channel for a in actions], pl.String()).alias(ACTION_CHANNEL),
            lookup([a.lever for a in actions], pl.String()).alias(ACTION_LEVER),
            lookup([a.unit_cost for a in actions], pl.Float64()).alias(ACTION_COST),
            lookup([a.success_rate for a in actions], pl.Float64()).alias(ACTION_SUCCESS_RATE),
        )
        .with_columns(
            (pl.col(ACTION_SUCCESS_RATE) * at_risk - pl.col(ACTION_COST)).alias(
                EXPECTED_SAVED_VALUE
            )
        )
        .collect()
    )
    # Each rule words its reason for its own customers only (wording every rule for
    # every customer costs several times more); row numbers restore the order.
    numbered = matched.lazy().with_row_index(_ROW)
    parts = [
        numbered.filter(pl.col(_RULE) == i).select(_ROW, _reason(rule).alias(ACTION_REASON))
        for i, rule in enumerate(rules)
    ]
    parts.append(
        numbered.filter(pl.col(_RULE) == fallback_index).select(
            _ROW, pl.lit(FALLBACK_REASON, dtype=pl.String).alias(ACTION_REASON)
        )
    )
    reasons = pl.concat(parts).sort(_ROW).collect().get_column(ACTION_REASON)
    return matched.drop(_RULE).with_columns(reasons)


_LIST_CONDITIONS: dict[str, tuple[str, str]] = {
    # condition key -> (predictions column, words for the reason)
    "churn_type": (CHURN_TYPE, ""),
    "segment": (SEGMENT, "segment "),
    "customer_type": (CUSTOMER_TYPE, "customer type "),
    "strategy": (STRATEGY, "strategy "),
    "value_tier": (VALUE_TIER, "value tier "),
    "risk_tier": (RISK_TIER, "risk tier "),
    "lifecycle_stage": (LIFECYCLE_STAGE, "lifecycle stage "),
}


def _needed_columns(playbook: Playbook) -> list[str]:
    needed = {CUSTOMER_ID, VALUE_AT_RISK}
    for rule in playbook.rules:
        when = rule.when
        for key, (column, _) in _LIST_CONDITIONS.items():
            if getattr(when, key) is not None:
                needed.add(column)
        if when.drivers_any is not None:
            needed.add(DRIVER_FEATURES)
        if when.min_value is not None:
            needed.add(VALUE)
        if when.min_p_churn is not None:
            needed.add(P_CHURN)
    return sorted(needed)


def _values(items: Sequence[object]) -> list[str]:
    return [i.value if isinstance(i, ChurnType) else str(i) for i in items]


def _drivers() -> pl.Expr:
    return pl.col(DRIVER_FEATURES).cast(pl.List(pl.String))


def _driver_match(terms: Sequence[str]) -> pl.Expr:
    """Whether a feature name (a list element) matches any of the rule's terms."""
    exact = [t for t in terms if not _has_wildcard(t)]
    globs = [t for t in terms if _has_wildcard(t)]
    parts: list[pl.Expr] = []
    if exact:
        parts.append(pl.element().is_in(exact))
    prefixes = [g[:-1] for g in globs if g.endswith("*") and not _has_wildcard(g[:-1])]
    patterns = [g for g in globs if not (g.endswith("*") and not _has_wildcard(g[:-1]))]
    parts.extend(pl.element().str.starts_with(p) for p in prefixes)
    if patterns:
        parts.append(pl.element().str.contains("|".join(f"(?:{_glob_regex(g)})" for g in patterns)))
    return reduce(lambda a, b: a | b, parts)


def _condition(when: Conditions) -> pl.Expr:
    parts: list[pl.Expr] = []
    for key, (column, _) in _LIST_CONDITIONS.items():
        listed = getattr(when, key)
        if listed is not None:
            parts.append(pl.col(column).cast(pl.String).is_in(_values(listed)))
    if when.drivers_any is not None:
        parts.append(_drivers().list.eval(_driver_match(when.drivers_any)).list.any())
    if when.min_value is not None:
        parts.append(pl.col(VALUE).cast(pl.Float64).fill_nan(None) >= when.min_value)
    if when.min_p_churn is not None:
        parts.append(pl.col(P_CHURN).cast(pl.Float64).fill_nan(None) >= when.min_p_churn)
    return reduce(lambda a, b: a & b, (p.fill_null(False) for p in parts))


def _reason(rule: Rule) -> pl.Expr:
    """``rule card-update: involuntary risk, driver days_to_card_expiry``."""
    when = rule.when
    pieces: list[pl.Expr] = []
    for key, (column, words) in _LIST_CONDITIONS.items():
        if getattr(when, key) is not None:
            suffix = " risk" if key == "churn_type" else ""
            pieces.append(
                pl.concat_str(pl.lit(words), pl.col(column).cast(pl.String), pl.lit(suffix))
            )
    if when.drivers_any is not None:
        first = _drivers().list.filter(_driver_match(when.drivers_any)).list.first()
        pieces.append(pl.concat_str(pl.lit("driver "), first))
    if when.min_value is not None:
        pieces.append(pl.lit(f"value at least {when.min_value:g}"))
    if when.min_p_churn is not None:
        pieces.append(pl.lit(f"churn probability at least {when.min_p_churn:g}"))
    return pl.concat_str(pl.lit(f"rule {rule.name}: "), pl.concat_str(pieces, separator=", "))


# --------------------------------------------------------------------------- selection


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
    the control group (a ``control`` column, see :func:`assign_control_group`), are never
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
    chosen = np.zeros(frame.height, dtype=bool)
    too_dear = np.zeros(frame.height, dtype=bool)
    shortfall = 0.0
    method: SelectionMethod
    if budget is None:
        chosen = worth
        method = "unlimited"
    else:
        cents = np.zeros(frame.height, dtype=np.int64)
        # Up to the cent; a billionth of a unit of float noise is not a cent more.
        cents[worth] = np.ceil(cost_np[worth] * 100 - 1e-7).astype(np.int64)
        budget_cents = _budget_cents(budget)
        too_dear = worth & (cents > budget_cents)
        idx = np.flatnonzero(worth & ~too_dear)
        picked, method, shortfall = _knapsack(saved_np[idx], cents[idx], budget_cents)
        chosen[idx[picked]] = True
    spent = round(math.fsum(cost_np[chosen].tolist()), 2)
    total = math.fsum(saved_np[chosen].tolist())
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        ratio = np.divide(saved_np, cost_np, out=np.full(frame.height, np.inf), where=cost_np > 0)
    worst_chosen = float(ratio[chosen].min()) if chosen.any() else math.inf
    outranked = worth & ~chosen & ~too_dear & (ratio <= worst_chosen)
    unknown = saved.is_null().to_numpy() | ~np.isfinite(cost_np)
    why = np.select([control, chosen, unknown, ~worth, too_dear, outranked], [0, 1, 6, 2, 3, 4], 5)
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
    """A non-negative amount as text with a fixed number of decimals (huge or
    non-finite amounts, which no real plan has, are shown as they are)."""
    scale = 10**decimals
    units = (expr * scale).round().cast(pl.Int64, strict=False)
    fixed = pl.format("{}.{}", units // scale, (units % scale).cast(pl.String).str.zfill(decimals))
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


def action_plan(frame: pl.DataFrame) -> pl.DataFrame:
    """Totals per action: ``action, action_channel, customers, cost,
    expected_saved_value, return_per_unit`` (saved value per unit spent; null for free
    actions), best first.

    Counts the customers with ``selected`` true when that column exists (after
    :func:`select_within_budget`), otherwise every customer outside the control group.
    """
    lf = frame.lazy()
    require_columns(
        lf, [ACTION, ACTION_CHANNEL, ACTION_COST, EXPECTED_SAVED_VALUE], what="the action frame"
    )
    if SELECTED in frame.columns:
        lf = lf.filter(pl.col(SELECTED).fill_null(False))
    elif CONTROL in frame.columns:
        lf = lf.filter(~pl.col(CONTROL).fill_null(False))
    return (
        lf.group_by(ACTION)
        .agg(
            pl.col(ACTION_CHANNEL).first(),
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col(ACTION_COST).sum().alias("cost"),
            pl.col(EXPECTED_SAVED_VALUE).fill_nan(None).sum().alias("expected_saved_value"),
        )
        .with_columns(
            pl.when(pl.col("cost") > 0)
            .then(pl.col("expected_saved_value") / pl.col("cost"))
            .otherwise(None)
            .alias("return_per_unit")
        )
        .sort(["expected_saved_value", ACTION], descending=[True, False])
        .collect()
    )


# --------------------------------------------------------------------------- control group


def assign_control_group(frame: pl.DataFrame, share: float, seed: int) -> pl.DataFrame:
    """Add a boolean ``control`` column holding out about ``share`` of the customers.

    Membership depends only on the customer id and the seed (a fixed 64-bit hash of
    the id's UTF-8 bytes, independent of library versions), so reordering rows or
    adding customers never moves anyone else in or out. Control customers get no
    action: if the frame already has ``selected``, it is set false for them with the
    reason "control group: ...".
    """
    if not (math.isfinite(share) and 0 <= share < 1):
        raise ConfigError(f"the control group share must be at least 0 and below 1; got {share}")
    require_columns(frame.lazy(), [CUSTOMER_ID], what="the action frame")
    unit = _unit_hash(frame.get_column(CUSTOMER_ID), seed)
    out = frame.with_columns(pl.Series(CONTROL, unit < share, dtype=pl.Boolean))
    if SELECTED in out.columns:
        out = out.with_columns(pl.col(SELECTED) & ~pl.col(CONTROL))
        if SELECTION_REASON in out.columns:
            out = out.with_columns(
                pl.when(pl.col(CONTROL))
                .then(pl.lit(CONTROL_REASON))
                .otherwise(pl.col(SELECTION_REASON))
                .alias(SELECTION_REASON)
            )
    return out


_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_CHUNK_BYTES = 1 << 24


def _mix(h: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64's finaliser: spreads every input bit over the output."""
    h = h ^ (h >> np.uint64(30))
    h = h * np.uint64(0xBF58476D1CE4E5B9)
    h = h ^ (h >> np.uint64(27))
    h = h * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def _unit_hash(ids: pl.Series, seed: int) -> npt.NDArray[np.float64]:
    """A number in [0, 1) per id: seeded FNV-1a over the id's bytes, then mixed.

    Vectorised over customers (the loop runs over byte positions), in chunks so that a
    few very long ids cannot blow up memory.
    """
    text = ids.cast(pl.String).fill_null("")
    lengths = text.str.len_bytes().cast(pl.Int64).to_numpy()
    raw = text.cast(pl.Binary).to_numpy()
    start = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    out = np.empty(len(raw), dtype=np.float64)
    width = max(int(lengths.max()) if len(lengths) else 1, 1)
    step = max(1, _CHUNK_BYTES // width)
    with np.errstate(over="ignore"):
        for lo in range(0, len(raw), step):
            part = raw[lo : lo + step]
            size = lengths[lo : lo + step]
            w = max(int(size.max()), 1)
            matrix = np.asarray(part, dtype=f"S{w}").view(np.uint8).reshape(len(part), w)
            h = np.full(len(part), _FNV_OFFSET ^ start, dtype=np.uint64)
            for j in range(w):
                stepped = (h ^ matrix[:, j].astype(np.uint64)) * _FNV_PRIME
                h = np.where(j < size, stepped, h)
            h = _mix(h ^ size.astype(np.uint64))
            out[lo : lo + step] = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return out
