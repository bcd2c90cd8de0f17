"""Calendar arithmetic on day and month numbers since 1970, vectorised over numpy arrays.

The simulation counts in whole days (and months) so that a week of a million customers
is a handful of integer array operations; dates are spelled only in the export.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["Array", "day_number", "first_of_month", "month_of", "to_date", "uniform_days"]

Array = npt.NDArray[Any]

_EPOCH = date(1970, 1, 1)


def day_number(value: date) -> int:
    return (value - _EPOCH).days


def to_date(day: int) -> date:
    return date.fromordinal(_EPOCH.toordinal() + day)


def month_of(days: Array) -> Array:
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def first_of_month(months: Array) -> Array:
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def uniform_days(rng: np.random.Generator, first: Array, stop: int) -> Array:
    """A day drawn uniformly from ``[first, stop)`` per customer (events never precede
    the signup they belong to)."""
    days: Array = (first + rng.random(len(first)) * (stop - first)).astype(np.int32)
    return days
