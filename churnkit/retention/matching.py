"""Matching customers to the playbook's actions: first matching rule wins.

:func:`assign_actions` gives every customer the action of the **first** rule whose
conditions all hold (put specific rules before general ones), else the fallback, and
its expected saved value::

    value_at_risk        = p_churn × value          (computed by predict)
    expected_saved_value = success_rate × value_at_risk − unit_cost

i.e. the share of the value at risk the action is assumed to keep, minus what the
action costs. A customer with no known value at risk counts as worth nothing to save.
Each rule becomes one Polars expression, so matching is vectorised over customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce
from typing import Any

import polars as pl

from churnkit.core.errors import DataError
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
from churnkit.retention.columns import (
    ACTION_CHANNEL,
    ACTION_COST,
    ACTION_DESCRIPTION,
    ACTION_LEVER,
    ACTION_SUCCESS_RATE,
    EXPECTED_SAVED_VALUE,
)
from churnkit.retention.driver_families import families_of, glob_regex, has_wildcard
from churnkit.retention.playbook import Conditions, Playbook, Rule

FALLBACK_REASON = "fallback: no playbook rule matched"

_RULE = "_rule"
_ROW = "_row"
_LEADING = "_leading_family"


def assign_actions(predictions: pl.DataFrame | pl.LazyFrame, playbook: Playbook) -> pl.DataFrame:
    """Give each customer the action of the first matching rule (else the fallback).

    Adds ``action``, ``action_description``, ``action_channel``, ``action_lever``,
    ``action_cost``, ``action_success_rate``, ``expected_saved_value`` and
    ``action_reason`` (the rule that fired and the facts that made it fire). The
    frame needs ``customer_id`` and ``value_at_risk`` plus every column a rule reads.
    """
    lf = predictions.lazy()
    _check_columns(lf, playbook)
    if any(r.when.leading_driver_family for r in playbook.rules):
        lf = _with_leading_family(lf)
    actions = [*(r.action for r in playbook.rules), playbook.fallback]

    def lookup(values: list[Any], dtype: pl.DataType) -> pl.Expr:
        return pl.col(_RULE).replace_strict(list(range(len(actions))), values, return_dtype=dtype)

    at_risk = pl.col(VALUE_AT_RISK).cast(pl.Float64).fill_nan(None).fill_null(0.0)
    matched = (
        lf.with_columns(_rule_index(playbook.rules).cast(pl.Int64).alias(_RULE))
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
    reasons = _reasons(matched, playbook.rules)
    return matched.drop(_RULE, _LEADING, strict=False).with_columns(reasons)


def _with_leading_family(lf: pl.LazyFrame) -> pl.LazyFrame:
    """The family of each customer's leading driver (null without drivers), looked up
    once per distinct feature name."""
    leading = _drivers().list.first()
    names = lf.select(leading.unique().alias("n")).collect().get_column("n").drop_nulls()
    mapping = {k: v for k, v in families_of(names.to_list()).items() if v is not None}
    family = leading.replace_strict(mapping, default=None, return_dtype=pl.String)
    return lf.with_columns(family.alias(_LEADING))


def _check_columns(lf: pl.LazyFrame, playbook: Playbook) -> None:
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


def _rule_index(rules: Sequence[Rule]) -> pl.Expr:
    """The index of the first rule whose conditions hold; ``len(rules)``: the fallback."""
    fallback = pl.lit(len(rules))
    if not rules:
        return fallback
    chain: Any = pl.when(_condition(rules[0].when)).then(pl.lit(0))
    for i, rule in enumerate(rules[1:], start=1):
        chain = chain.when(_condition(rule.when)).then(pl.lit(i))
    result: pl.Expr = chain.otherwise(fallback)
    return result


def _reasons(matched: pl.DataFrame, rules: Sequence[Rule]) -> pl.Series:
    """Each rule words its reason for its own customers only (wording every rule for
    every customer costs several times more); row numbers restore the order."""
    numbered = matched.lazy().with_row_index(_ROW)
    parts = [
        numbered.filter(pl.col(_RULE) == i).select(_ROW, _reason(rule).alias(ACTION_REASON))
        for i, rule in enumerate(rules)
    ]
    parts.append(
        numbered.filter(pl.col(_RULE) == len(rules)).select(
            _ROW, pl.lit(FALLBACK_REASON, dtype=pl.String).alias(ACTION_REASON)
        )
    )
    return pl.concat(parts).sort(_ROW).collect().get_column(ACTION_REASON)


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
        if when.drivers_any is not None or when.leading_driver_family is not None:
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
    exact = [t for t in terms if not has_wildcard(t)]
    globs = [t for t in terms if has_wildcard(t)]
    parts: list[pl.Expr] = []
    if exact:
        parts.append(pl.element().is_in(exact))
    prefixes = [g[:-1] for g in globs if g.endswith("*") and not has_wildcard(g[:-1])]
    patterns = [g for g in globs if not (g.endswith("*") and not has_wildcard(g[:-1]))]
    parts.extend(pl.element().str.starts_with(p) for p in prefixes)
    if patterns:
        parts.append(pl.element().str.contains("|".join(f"(?:{glob_regex(g)})" for g in patterns)))
    return reduce(lambda a, b: a | b, parts)


def _condition(when: Conditions) -> pl.Expr:
    parts: list[pl.Expr] = []
    for key, (column, _) in _LIST_CONDITIONS.items():
        listed = getattr(when, key)
        if listed is not None:
            parts.append(pl.col(column).cast(pl.String).is_in(_values(listed)))
    if when.drivers_any is not None:
        parts.append(_drivers().list.eval(_driver_match(when.drivers_any)).list.any())
    if when.leading_driver_family is not None:
        parts.append(pl.col(_LEADING).is_in(when.leading_driver_family))
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
    if when.leading_driver_family is not None:
        lead = _drivers().list.first()
        pieces.append(
            pl.concat_str(
                pl.lit("leading driver "), lead, pl.lit(" ("), pl.col(_LEADING), pl.lit(")")
            )
        )
    if when.min_value is not None:
        pieces.append(pl.lit(f"value at least {when.min_value:g}"))
    if when.min_p_churn is not None:
        pieces.append(pl.lit(f"churn probability at least {when.min_p_churn:g}"))
    return pl.concat_str(pl.lit(f"rule {rule.name}: "), pl.concat_str(pieces, separator=", "))
