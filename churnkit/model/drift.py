"""Feature profiles and drift: how a feature was spread at training, and how far today's
population has moved from it (population stability index, PSI).

A profile is kept in the model card for every feature. PSI compares shares of customers
in the profile's bins, so the bins decide what counts as drift; they are drawn so that
noise of the calendar and of clocks does not:

- **Day-valued features** (a spec's ``unit="days"``) are binned on whole days, and a
  bin never splits a calendar period: 28 to 31 days are one month, 59 to 62 two, 365
  and 366 a year (``day_edges``). A monthly subscriber's last gap is 30 days in
  December and 28 in March; both lie in one bin. Below a week bins are two days wide,
  since months that differ by up to three days spread monthly gaps by up to two.
- **Ratios of durations** (``unit="ratio"``, such as the variation of gaps) are judged
  in steps of ``RATIO_STEP``: the calendar alone moves them by less than half a step.
- **Other numbers** are rounded to three significant digits of their scale
  (``SIGNIFICANT``) before their quantiles are taken.
- **Edges cannot collapse**: candidate edges are distinct rounded values, each bin holds
  at least ``MIN_BIN_SHARE`` of the training rows (a sparse tail joins its neighbour),
  and a feature with one dominant value gets categorical-style bins (below, at and
  above it).
- **Empty bins do not explode**: shares are floored at ``PSI_FLOOR`` before PSI takes
  their logarithm.

Profiles written before this scheme (no ``binning`` key) are still read and judged as
they were binned, on raw values; ``psi_table`` says which profiles those are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

FloatArray = npt.NDArray[np.float64]
Binning = Literal["days", "rounded", "raw"]

PROFILE_BINS = 10
# Every bin of a numeric profile holds at least this share of the training rows.
MIN_BIN_SHARE = 0.05
# Categories beyond the most frequent ones share one "other" bucket in a profile.
MAX_PROFILE_CATEGORIES = 100
# Shares below this are raised to it before PSI takes a logarithm.
PSI_FLOOR = 0.02
# Significant digits a continuous feature keeps before its quantiles are taken.
SIGNIFICANT = 3
RATIO_STEP = 0.2
DAYS = "days"
RATIO = "ratio"

NAN = float("nan")

# Spans of k calendar months (k = 1..11) in days, shortest and longest; k years span
# 365k + floor(k/4) to 365k + ceil(k/4) days.
MONTH_SPANS = (
    (28, 31),
    (59, 62),
    (89, 92),
    (120, 123),
    (150, 153),
    (181, 184),
    (212, 215),
    (242, 245),
    (273, 276),
    (303, 306),
    (334, 337),
)
_LONGEST_DAYS = 36_600
_DAY_STEP = 1.17


@cache
def day_edges() -> tuple[int, ...]:
    """Upper edges (inclusive, whole days) of the candidate bins of a day-valued feature.

    Two days up to a week, then bins about a sixth wider each, except that no edge
    falls inside a calendar period (``MONTH_SPANS``, whole years): a period is one bin.
    Negative values mirror the positive bins.
    """
    periods = [*MONTH_SPANS]
    periods += [(365 * k + k // 4, 365 * k + -(-k // 4)) for k in range(1, 100)]
    points = {0, 2, 4, 7}
    x = 7.0
    while x < _LONGEST_DAYS:
        x *= _DAY_STEP
        points.add(round(x))
    for lo, hi in periods:
        points = {p for p in points if not lo <= p < hi}
        points |= {lo - 1, hi}
    positive = sorted(p for p in points if p <= _LONGEST_DAYS)
    return tuple(sorted({-p - 1 for p in positive} | set(positive)))


def feature_profile(
    X: pl.DataFrame,
    categorical: Iterable[str] = (),
    units: Mapping[str, str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """The distribution of each feature, kept in the model card for drift checks (PSI).

    Numeric: ``binning`` (``days`` for features whose ``units`` entry is ``"days"``,
    else ``rounded``), the rounding ``step`` (``RATIO_STEP`` for a ``"ratio"``),
    ``edges`` (bins are ``(-inf, e1], (e1, e2], ..., (em, inf)`` on values rounded to
    the step) and ``proportions`` per bin.
    Categorical: the most frequent ``categories`` with their ``proportions`` and the
    ``other`` share of the rest. Both hold the ``missing`` share (null or NaN) and
    ``count``; shares sum to 1. Text columns are categorical even when not listed.
    """
    cat = set(categorical) | {c for c, d in X.schema.items() if is_categorical_dtype(d)}
    units = units or {}
    profiles: dict[str, dict[str, Any]] = {}
    for c in X.columns:
        if c in cat:
            profiles[c] = _categorical_profile(X.get_column(c))
        else:
            profiles[c] = _numeric_bins(X.get_column(c), units.get(c))
    numeric = {c: p for c, p in profiles.items() if p["type"] == "numeric"}
    shares = bucket_shares(numeric, X)
    for c in numeric:
        *bins, missing = shares[c]
        profiles[c].update(proportions=bins, missing=missing, count=X.height)
    return profiles


def psi(expected_profile: Mapping[str, Any], actual_values: pl.Series | npt.ArrayLike) -> float:
    """Population stability index of one feature against its stored training profile.

    ``PSI = sum_b (a_b - e_b) * ln(a_b / e_b)`` over the profile's buckets plus missing
    (and, for categories, unseen ones), each share floored at ``PSI_FLOOR``. Rules of
    thumb: < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 a shift worth acting on.
    """
    if isinstance(actual_values, pl.Series):
        series = actual_values
    else:
        series = pl.Series(np.asarray(actual_values))
    table = psi_table({"x": dict(expected_profile)}, series.alias("x").to_frame())
    value = table.get_column("psi").item()
    return NAN if value is None else float(value)


def psi_table(card_profiles: Mapping[str, Mapping[str, Any]], X: pl.DataFrame) -> pl.DataFrame:
    """PSI per profiled feature (``feature``, ``psi``, ``binning``) in profile order, in
    one Polars pass. ``binning`` is ``raw`` for a profile written before whole-day and
    rounded bins (judged on raw values, as it was binned).

    Features absent from ``X`` get a null PSI; an empty ``X`` gives nan.
    """
    present = {f: p for f, p in card_profiles.items() if f in X.columns}
    actual = bucket_shares(present, X)
    rows: list[float | None] = []
    for feature, profile in card_profiles.items():
        if feature not in actual:
            rows.append(None)
            continue
        rows.append(_psi(_expected_shares(profile), actual[feature]))
    return pl.DataFrame(
        {
            "feature": list(card_profiles),
            "psi": rows,
            "binning": [binning_of(p) for p in card_profiles.values()],
        },
        schema={"feature": pl.String, "psi": pl.Float64, "binning": pl.String},
    )


def binning_of(profile: Mapping[str, Any]) -> str:
    """How a profile's values were binned: ``days``, ``rounded``, ``raw`` (a profile from
    before whole-day bins) or ``categorical``."""
    if profile.get("type") == "categorical":
        return "categorical"
    return str(profile.get("binning", "raw"))


def is_categorical_dtype(dtype: pl.DataType) -> bool:
    """Text-like columns are categorical features whatever the caller declared."""
    return dtype == pl.String or isinstance(dtype, pl.Categorical | pl.Enum)


def is_numeric_dtype(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() or dtype == pl.Boolean or dtype == pl.Null


# --- numeric bins ---------------------------------------------------------------------


def _numeric_bins(column: pl.Series, unit: str | None) -> dict[str, Any]:
    """Binning, step and edges of one numeric feature (see the module docstring)."""
    values = as_numeric(column).drop_nulls().alias("value")
    days = unit == DAYS
    if days:
        binning, step = "days", 1.0
    else:
        binning, step = "rounded", RATIO_STEP if unit == RATIO else _step(values)
    counts = (values / step).round().value_counts(sort=False, name="rows").sort("value")
    levels = counts.get_column("value").to_numpy().astype(np.float64)
    n = counts.get_column("rows").to_numpy().astype(np.float64)
    if days and len(levels):
        # Candidate edges are the upper edges of the calendar bins that hold values.
        grid = np.asarray(day_edges(), dtype=np.float64)
        at = np.minimum(np.searchsorted(grid, levels), len(grid) - 1)
        cells = np.where(levels <= grid[at], grid[at], levels)
        unique, where = np.unique(cells, return_inverse=True)
        levels, n = unique.astype(np.float64), np.bincount(where, weights=n).astype(np.float64)
    edges = _edges(levels, n)
    return {
        "type": "numeric",
        "binning": binning,
        "step": step,
        "edges": [float(e * step) for e in edges],
    }


def _step(values: pl.Series) -> float:
    """The rounding step that keeps ``SIGNIFICANT`` digits of the feature's scale."""
    if values.len() == 0:
        return 1.0
    low, high = values.quantile(0.01, "nearest"), values.quantile(0.99, "nearest")
    scale = max(abs(float(low or 0.0)), abs(float(high or 0.0)))
    if scale == 0 or not math.isfinite(scale):
        return 1.0
    return float(10.0 ** (math.floor(math.log10(scale)) - (SIGNIFICANT - 1)))


def _edges(levels: FloatArray, counts: FloatArray) -> list[float]:
    """Bin edges among the distinct ``levels`` (sorted, with their row ``counts``):
    cut at the deciles, never leaving a bin with less than ``MIN_BIN_SHARE`` of the
    rows; one dominant level gets a bin of its own between the levels below and above."""
    total = counts.sum()
    if total == 0:
        return []
    share = counts / total
    cum = np.cumsum(share)
    edges: list[float] = []
    opened, target = 0.0, 1.0 / PROFILE_BINS
    for i in range(len(levels) - 1):
        if cum[i] + 1e-12 < target:
            continue
        if cum[i] - opened >= MIN_BIN_SHARE and 1.0 - cum[i] >= MIN_BIN_SHARE:
            edges.append(float(levels[i]))
            opened = float(cum[i])
            target = (math.floor(cum[i] * PROFILE_BINS + 1e-9) + 1) / PROFILE_BINS
    if edges:
        return edges
    mode = int(np.argmax(share))
    around = [float(levels[mode - 1])] if mode > 0 else []
    return [*around, float(levels[mode])]


# --- shares ---------------------------------------------------------------------------


def bucket_shares(
    profiles: Mapping[str, Mapping[str, Any]], X: pl.DataFrame
) -> dict[str, FloatArray]:
    """Shares of ``X`` in each profile's buckets (then other, then missing), one select."""
    exprs: list[pl.Expr] = [pl.len().alias("_n")]
    for i, (name, profile) in enumerate(profiles.items()):
        if profile["type"] == "categorical":
            col = pl.col(name).cast(pl.String)
            exprs += [
                (col == v).sum().alias(f"_{i}_{j}") for j, v in enumerate(profile["categories"])
            ]
        else:
            col = _numeric_expr(name, X.schema[name])
            step = profile.get("step")
            if step:
                col = (col / step).round()
                edges = [round(e / step) for e in profile["edges"]]
            else:
                edges = list(profile["edges"])
            exprs += [(col <= e).sum().alias(f"_{i}_{j}") for j, e in enumerate(edges)]
        exprs.append(col.is_null().sum().alias(f"_{i}_missing"))
    row = X.select(exprs).row(0, named=True)
    n = int(row["_n"])
    out: dict[str, FloatArray] = {}
    for i, (name, profile) in enumerate(profiles.items()):
        k = len(profile["categories"] if profile["type"] == "categorical" else profile["edges"])
        counts = np.asarray([row[f"_{i}_{j}"] for j in range(k)], dtype=np.float64)
        missing = float(row[f"_{i}_missing"])
        rest = n - missing - (counts.sum() if profile["type"] == "categorical" else 0.0)
        if profile["type"] == "numeric":
            # cumulative "<= edge" counts become per-bin counts
            counts = np.diff(np.concatenate([[0.0], counts, [n - missing]]))
            buckets = np.concatenate([counts, [missing]])
        else:
            buckets = np.concatenate([counts, [rest, missing]])
        out[name] = buckets / n if n else np.full(len(buckets), NAN)
    return out


def _psi(expected: FloatArray, actual: FloatArray) -> float:
    if np.isnan(actual).any():
        return NAN
    e = np.maximum(expected, PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def _expected_shares(profile: Mapping[str, Any]) -> FloatArray:
    parts = list(profile["proportions"])
    if profile["type"] == "categorical":
        parts.append(profile["other"])
    parts.append(profile["missing"])
    return np.asarray(parts, dtype=np.float64)


def _categorical_profile(column: pl.Series) -> dict[str, Any]:
    n = len(column)
    counts = (
        column.cast(pl.String)
        .alias("value")
        .drop_nulls()
        .value_counts(name="rows")
        .sort(["rows", "value"], descending=[True, False])
    )
    kept = counts.head(MAX_PROFILE_CATEGORIES)
    missing = column.null_count()
    other = int(counts.get_column("rows").sum()) - int(kept.get_column("rows").sum())
    return {
        "type": "categorical",
        "categories": kept.get_column("value").to_list(),
        "proportions": [c / n for c in kept.get_column("rows").to_list()] if n else [],
        "other": other / n if n else 0.0,
        "missing": missing / n if n else 0.0,
        "count": n,
    }


def _numeric_expr(name: str, dtype: pl.DataType) -> pl.Expr:
    """The column as Float64 with NaN as missing (Polars orders NaN above every number)."""
    col = pl.col(name).cast(pl.Float64)
    return col.fill_nan(None) if dtype.is_float() else col


def as_numeric(series: pl.Series) -> pl.Series:
    """The series as Float64 with NaN as missing."""
    return series.to_frame().select(_numeric_expr(series.name, series.dtype)).to_series()
