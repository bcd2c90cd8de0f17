"""Bounded training rows: a stable, class-stratified customer sample with weights.

Snapshots of a large business hold millions of customer rows, and boosting time grows
with them while the model's quality stops improving long before. Above
``train.max_rows`` each class keeps a share of its rows, chosen by a seeded customer
hash (so the same customers are kept whichever order or bucket the rows come in, and
a customer kept in one snapshot is kept in the others while its class is the same).
The quotas fill like water: classes smaller than an equal share keep every row, the
larger ones share the rest, so the rare churn kinds lose nothing. Each kept row weighs
the inverse of its class's keep rate, so the weighted sample has the population's
class mix and the model's probabilities stay calibrated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID
from churnkit.engine.hashing import customer_hash, fmix64

_UNITS = 1 << 32


@dataclass(frozen=True)
class Sample:
    """The kept rows, their weights (None: every row kept) and what was done."""

    frame: pl.DataFrame
    weights: np.ndarray | None
    rates: dict[str, float]

    @property
    def sampled(self) -> bool:
        return self.weights is not None

    def describe(self, rows: int) -> str:
        kept = ", ".join(f"{c} {r:.0%}" for c, r in sorted(self.rates.items()))
        return (
            f"{rows:,} training rows exceed train.max_rows: trained on {self.frame.height:,} "
            f"(a seeded customer sample per class, weighted back: {kept})"
        )


def quotas(counts: dict[str, int], max_rows: int) -> dict[str, int]:
    """Rows each class keeps out of ``max_rows``: small classes whole, the rest equal."""
    out: dict[str, int] = {}
    left, classes = max_rows, sorted(counts, key=lambda c: (counts[c], c))
    for i, name in enumerate(classes):
        share = left // (len(classes) - i)
        out[name] = min(counts[name], share)
        left -= out[name]
    return out


def bounded_sample(frame: pl.DataFrame, max_rows: int | None, seed: int) -> Sample:
    """``frame`` itself when it fits in ``max_rows`` (None: no bound), else the sample."""
    if max_rows is None or frame.height <= max_rows:
        return Sample(frame, None, {})
    counts = dict(frame[CHURN_TYPE].value_counts().iter_rows())
    rates = {c: q / counts[c] for c, q in quotas(counts, max_rows).items()}
    unit = fmix64(customer_hash(frame[CUSTOMER_ID]).to_numpy() ^ np.uint64(seed % 2**64))
    draw = (unit % np.uint64(_UNITS)).astype(np.float64) / _UNITS
    rate = frame[CHURN_TYPE].replace_strict(rates, return_dtype=pl.Float64).to_numpy()
    keep = draw < rate
    weights = 1.0 / rate[keep]
    return Sample(frame.filter(pl.Series(keep)), weights, rates)


__all__ = ["Sample", "bounded_sample", "quotas"]
