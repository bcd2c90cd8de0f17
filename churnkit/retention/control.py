"""The control group: a reproducible share of customers who get no action.

Their churn, compared with the treated customers', measures what the actions save.
Membership is a seeded hash of the customer id, so it never depends on row order or on
who else is in the data.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.errors import ConfigError
from churnkit.core.schema import CUSTOMER_ID, require_columns
from churnkit.retention.columns import CONTROL, SELECTED, SELECTION_REASON

CONTROL_REASON = "control group: no action, to measure the actions' effect"


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
