"""The references a driver is judged against, measured on the training population.

A driver must say what is unusual about a customer. For that the model card keeps,
per feature (``FeatureNote``):

- the typical customer: the median, and the 25th and 75th percentiles (a value is
  unusual on its risky side only beyond the quartile: being below the median
  describes half of all customers);
- whether the feature was constant in training (then it never explains anything);
- for a categorical feature, the churn rate of each category with at least
  ``MIN_CATEGORY_CUSTOMERS`` customers, and the average churn rate, so a driver can
  say "on the pro plan, where churn is 2.1x the average".

Measured on every training snapshot (the rows the model learned from), with churn
meaning any churn kind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import polars as pl

from churnkit.core.schema import CHURN_TYPE, ChurnType
from churnkit.features.spec import FeatureSpec
from churnkit.model.card import CategoryChurn, FeatureNote

# A category's churn rate is kept (and may be a reason) from this many customers on.
MIN_CATEGORY_CUSTOMERS = 30
# At most this many categories per feature, the most frequent.
MAX_CATEGORIES = 200
DIGITS = 6
_CHURNED = "_churned"


def feature_notes(
    specs: Mapping[str, FeatureSpec], frames: Sequence[pl.DataFrame]
) -> dict[str, FeatureNote]:
    """Each feature's note: its family's wording and the references measured on
    ``frames`` (the training snapshots, with ``churn_type``; a frame passed twice
    counts once)."""
    unique = list({id(f): f for f in frames}.values())
    data = pl.concat(
        [f.select(*[n for n in specs if n in f.columns], CHURN_TYPE) for f in unique],
        how="vertical_relaxed",
        rechunk=False,
    )
    data = data.with_columns((pl.col(CHURN_TYPE) != ChurnType.RETAINED.value).alias(_CHURNED))
    numeric = [n for n, s in specs.items() if s.kind == "numeric" and n in data.columns]
    categorical = [n for n, s in specs.items() if s.kind == "categorical" and n in data.columns]
    levels = _levels(data, numeric)
    average = _number(data.get_column(_CHURNED).mean()) if data.height else None
    notes: dict[str, FeatureNote] = {}
    for name, spec in specs.items():
        note = FeatureNote.from_spec(spec)
        if name in levels:
            typical, low, high, constant = levels[name]
            quartiles = None if low is None or high is None else (low, high)
            note = replace(note, typical=typical, quartiles=quartiles, constant=constant)
        elif name in categorical:
            note = replace(
                note,
                categories=_categories(data, name),
                constant=data.get_column(name).drop_nulls().n_unique() <= 1,
                average_churn=_rounded(average),
            )
        notes[name] = note
    return notes


def _levels(
    data: pl.DataFrame, names: Sequence[str]
) -> dict[str, tuple[float | None, float | None, float | None, bool]]:
    """Median, quartiles and constancy of each numeric feature, in one pass."""
    if not names:
        return {}
    exprs = []
    for i, name in enumerate(names):
        x = pl.col(name).cast(pl.Float64).fill_nan(None)
        exprs += [
            x.median().alias(f"m{i}"),
            x.quantile(0.25, "nearest").alias(f"l{i}"),
            x.quantile(0.75, "nearest").alias(f"h{i}"),
            x.min().alias(f"a{i}"),
            x.max().alias(f"b{i}"),
        ]
    row = data.select(exprs).row(0, named=True)
    out = {}
    for i, name in enumerate(names):
        lo, hi = row[f"a{i}"], row[f"b{i}"]
        out[name] = (
            _rounded(row[f"m{i}"]),
            _rounded(row[f"l{i}"]),
            _rounded(row[f"h{i}"]),
            lo is None or lo == hi,
        )
    return out


def _categories(data: pl.DataFrame, name: str) -> dict[str, CategoryChurn]:
    """Customers and churn rate per category with enough customers, most frequent first."""
    table = (
        data.select(pl.col(name).cast(pl.String).alias("c"), _CHURNED)
        .drop_nulls("c")
        .group_by("c")
        .agg(pl.len().alias("n"), pl.col(_CHURNED).mean().alias("rate"))
        .filter(pl.col("n") >= MIN_CATEGORY_CUSTOMERS)
        .sort(["n", "c"], descending=[True, False])
        .head(MAX_CATEGORIES)
    )
    return {
        str(c): CategoryChurn(customers=int(n), churn_rate=round(float(r), DIGITS))
        for c, n, r in table.iter_rows()
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


__all__ = ["MIN_CATEGORY_CUSTOMERS", "feature_notes"]
