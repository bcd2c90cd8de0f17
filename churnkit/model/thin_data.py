"""Short or thin data: train what the data allows, refuse what it cannot support.

- **Short history.** Cutoffs need ``train.min_history_days`` of data before them.
  When none does, the longest history the data has is used instead, down to
  ``train.min_history_floor_days`` (said in the output); below that, an
  ``InsufficientHistoryError`` names the history needed and what would make it fit.
- **One snapshot.** Validation then uses a seeded customer-hash split of it
  (``train.holdout_share`` of its customers), which is not out of time: said so.
- **Thin data.** A class with fewer than ``train.min_churners`` customers in the
  training or validation part cannot be learned from: the model is refused (or, when
  only involuntary churners are few, made binary).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl

from churnkit.core.config import Settings
from churnkit.core.errors import InsufficientHistoryError
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID
from churnkit.core.timeline import cutoffs, label_gap_days
from churnkit.engine.hashing import customer_hash, fmix64

OUT_OF_TIME = "out_of_time"
HASH_SPLIT = "customer_hash_split"
_SPLIT_UNITS = 10_000


@dataclass(frozen=True)
class Schedule:
    """The snapshot cutoffs and the history each has at least (``note`` when shortened)."""

    cutoffs: list[datetime]
    min_history_days: int
    note: str | None = None


def schedule(as_of: datetime, first_event: datetime, settings: Settings) -> Schedule:
    """The cutoffs for ``train`` (see the module docstring)."""
    lab, tr = settings.labels, settings.train

    def fit(history: int) -> list[datetime]:
        return cutoffs(
            as_of,
            horizon=lab.horizon,
            grace=lab.grace_period,
            count=tr.snapshots,
            step_days=tr.step_days,
            first_event=first_event,
            min_history_days=history,
        )

    try:
        return Schedule(fit(tr.min_history_days), tr.min_history_days)
    except InsufficientHistoryError:
        available = (as_of - first_event).days - label_gap_days(
            lab.horizon, lab.grace_period, tr.step_days
        )
        floor = min(tr.min_history_floor_days, tr.min_history_days)
        if available < floor:
            # Raised again with the floor, so the message gives the least that works.
            fit(floor)
            raise
    note = (
        f"the data holds only {available} days of history before the latest cutoff "
        f"(train.min_history_days is {tr.min_history_days}): snapshots use {available} days"
    )
    return Schedule(fit(available), available, note)


def holdout_mask(ids: pl.Series, share: float, seed: int) -> np.ndarray:
    """True for the customers held out for validation: a seeded customer hash below
    ``share``, the same whichever rows or buckets the customers come in."""
    mixed = fmix64(customer_hash(ids).to_numpy() ^ np.uint64(seed % 2**64))
    return np.asarray(mixed % np.uint64(_SPLIT_UNITS) < round(share * _SPLIT_UNITS))


def split_one_snapshot(
    frame: pl.DataFrame, share: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(train, validation)`` customers of a single snapshot."""
    held = pl.Series(holdout_mask(frame[CUSTOMER_ID], share, seed))
    return frame.filter(~held), frame.filter(held)


def class_counts(frame: pl.DataFrame, classes: tuple[str, ...]) -> dict[str, int]:
    counts = frame[CHURN_TYPE].value_counts()
    found = dict(zip(counts[CHURN_TYPE].to_list(), counts["count"].to_list(), strict=True))
    return {c: int(found.get(c, 0)) for c in classes}


def too_few(parts: dict[str, pl.DataFrame], classes: tuple[str, ...], minimum: int) -> list[str]:
    """One reason per part whose class counts fall short of ``minimum``."""
    reasons = []
    for name, frame in parts.items():
        counts = class_counts(frame, classes)
        short = {c: n for c, n in counts.items() if n < minimum}
        if short:
            said = ", ".join(f"{n:,} {c}" for c, n in counts.items())
            reasons.append(
                f"the {name} data holds {frame.height:,} customers ({said}): fewer than "
                f"{minimum} in {', '.join(short)} (train.min_churners)"
            )
    return reasons


def short_classes(
    parts: dict[str, pl.DataFrame], classes: tuple[str, ...], minimum: int
) -> list[str]:
    """The classes with fewer than ``minimum`` customers in some part."""
    return [
        c
        for c in classes
        if any(class_counts(frame, (c,))[c] < minimum for frame in parts.values())
    ]


def empty_class(parts: dict[str, pl.DataFrame], classes: tuple[str, ...]) -> bool:
    """Whether some part lacks a class altogether (nothing to fit, even with --force)."""
    return any(
        frame.height == 0 or min(class_counts(frame, classes).values()) == 0
        for frame in parts.values()
    )
