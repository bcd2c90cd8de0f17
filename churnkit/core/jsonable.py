"""Plain JSON from what the core computes: one rule for every ``--json`` and card.

NaN and infinities become ``null`` (JSON has no spelling for them), numpy scalars
and arrays are unwrapped, dates and datetimes become ISO text and paths plain
strings. Floats may be rounded to a fixed number of decimals for stable output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np


def jsonable(value: Any, *, digits: int | None = None) -> Any:
    """``value`` with every nested part made JSON-safe (see the module docstring)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, digits=digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, digits=digits) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v, digits=digits) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, digits) if digits is not None else value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def finite(value: Any) -> float | None:
    """A number as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def jsonable_rows(frame: Any, *, digits: int | None = None) -> list[dict[str, Any]]:
    """A Polars frame's rows as JSON-safe objects."""
    rows: list[dict[str, Any]] = jsonable(frame.to_dicts(), digits=digits)
    return rows
