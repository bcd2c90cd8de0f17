"""Risk tiers, churn_type and the probability columns of the predictions.

- **risk_tier.** The highest tier (``predict.risk_tiers``) whose threshold ``p_churn``
  reaches, else ``low``.
- **churn_type.** For a customer in a risk tier (``p_churn`` at or above the lowest
  threshold), the likelier churn kind (``voluntary`` or ``involuntary``; ``churned``
  for binary models); below it, ``retained``. This keeps the type consistent with the
  tier: a customer 55% likely to leave is never called "retained" because staying is
  the single likeliest outcome. With no tiers configured everyone is ``low`` and
  churn_type uses a 0.5 cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from churnkit.core.errors import ConfigError
from churnkit.core.schema import (
    CHURN_TYPE,
    P_CHURN,
    P_INVOLUNTARY,
    P_VOLUNTARY,
    RISK_TIER,
    ChurnType,
)

LOW_TIER = "low"
# Used as the churn_type cut when no risk tier is configured.
DEFAULT_RISK_CUT = 0.5
_VOLUNTARY = ChurnType.VOLUNTARY.value
_INVOLUNTARY = ChurnType.INVOLUNTARY.value
_CHURNED = ChurnType.CHURNED.value
_RETAINED = ChurnType.RETAINED.value


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


def probability_frame(
    ids: pl.DataFrame,
    proba: np.ndarray[Any, Any],
    classes: Sequence[str],
    tiers: Mapping[str, float],
) -> tuple[pl.DataFrame, np.ndarray[Any, Any]]:
    """Probability columns, churn_type and risk_tier beside ``ids``; and per row the
    index of the class its drivers explain (the likelier churn kind)."""
    classes = list(classes)
    p_churn = 1.0 - proba[:, classes.index(_RETAINED)]
    cut = min(tiers.values()) if tiers else DEFAULT_RISK_CUT
    p_vol: np.ndarray[Any, Any] | None = None
    p_inv: np.ndarray[Any, Any] | None = None
    if len(classes) == 2:
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


def tier_counts(scored: pl.DataFrame, tiers: Mapping[str, float]) -> dict[str, int]:
    """Customers per risk tier, highest tier first and ``low`` last (zeros included)."""
    counts = dict.fromkeys([*sorted(tiers, key=lambda t: -tiers[t]), LOW_TIER], 0)
    counted = scored[RISK_TIER].value_counts()
    for tier, n in zip(counted[RISK_TIER].to_list(), counted["count"].to_list(), strict=True):
        counts[str(tier)] = int(n)
    return counts


def expected_churners(scored: pl.DataFrame, *, binary: bool) -> dict[str, float]:
    """The sum of the probabilities per churn kind (``churned`` for a binary model)."""
    if binary:
        return {_CHURNED: float(scored[P_CHURN].sum())}
    return {
        _VOLUNTARY: float(scored[P_VOLUNTARY].sum()),
        _INVOLUNTARY: float(scored[P_INVOLUNTARY].sum()),
    }
