"""From frames to numbers: feature types, the float matrix, categories and labels.

Any model family that learns from the per-customer feature frame needs the same
choices, so they live here rather than in one estimator:

- **Feature types.** Numeric columns are numeric; text columns, and any listed as
  categorical, are categorical. Dates or other types are refused.
- **Categories.** A categorical feature keeps its ``MAX_CATEGORIES`` most frequent
  values (alphabetical order, code = position); rarer, unseen or missing ones are NaN,
  which tree models treat as missing.
- **Classes.** Multiclass (retained / voluntary / involuntary) when the labels hold
  both churn kinds, binary (retained / churned) otherwise: a model must not pretend to
  split churn it never saw split.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.errors import DataError, ModelError
from churnkit.core.schema import ChurnType
from churnkit.model.card import BINARY, MULTICLASS, RETRAIN_HINT, FeatureType
from churnkit.model.metrics import is_categorical_dtype, is_numeric_dtype

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

# Rarer categories of a categorical feature are treated as missing.
MAX_CATEGORIES = 1000
LABELS = frozenset({*MULTICLASS, ChurnType.CHURNED.value})


def feature_types(X: pl.DataFrame, categorical: Sequence[str] = ()) -> dict[str, FeatureType]:
    """``"numeric"`` or ``"categorical"`` per column of ``X``, in column order."""
    declared = set(categorical)
    types: dict[str, FeatureType] = {}
    for name, dtype in X.schema.items():
        if name in declared or is_categorical_dtype(dtype):
            types[name] = "categorical"
        elif is_numeric_dtype(dtype):
            types[name] = "numeric"
        else:
            raise DataError(
                f"feature {name!r} has type {dtype}; features must be numeric or text",
                hint="convert it to a number or declare it categorical",
            )
    unknown = declared - set(types)
    if unknown:
        raise DataError(f"categorical features {sorted(unknown)} are not in the frame")
    return types


def category_list(column: pl.Series) -> list[str]:
    """Known categories: the most frequent ``MAX_CATEGORIES``, in alphabetical order."""
    counts = column.cast(pl.String).drop_nulls().value_counts(name="n")
    top = counts.sort(["n", column.name], descending=[True, False]).head(MAX_CATEGORIES)
    return sorted(top.get_column(column.name).to_list())


def feature_matrix(
    X: pl.DataFrame, features: Sequence[str], categories: Mapping[str, Sequence[str]]
) -> FloatArray:
    """Features as a float matrix in ``features`` order; categories become their
    position in the stored list, unseen or missing ones NaN."""
    exprs: list[pl.Expr] = []
    for name in features:
        dtype = X.schema[name]
        if name in categories:
            cats = list(categories[name])
            exprs.append(
                pl.col(name)
                .cast(pl.String)
                .replace_strict(cats, list(range(len(cats))), default=None, return_dtype=pl.Float64)
            )
        elif is_numeric_dtype(dtype):
            exprs.append(pl.col(name).cast(pl.Float64))
        else:
            raise ModelError(
                f"feature {name!r} is numeric in the model but {dtype} in the data",
                hint="score with the feature settings used in training",
            )
    return X.select(exprs).to_numpy(order="c").astype(np.float64, copy=False)


def require_features(features: Sequence[str], columns: Sequence[str], *, what: str) -> None:
    """Refuse data that lacks a feature the model was trained on, naming it."""
    present = set(columns)
    missing = [f for f in features if f not in present]
    if not missing:
        return
    known = set(features)
    extra = [c for c in columns if c not in known]
    note = f" (it has {len(extra)} the model does not use: {few(extra)})" if extra else ""
    raise ModelError(
        f"{what} lacks {len(missing)} feature(s) the model was trained on: {few(missing)}{note}",
        hint="use the feature settings of training, or " + RETRAIN_HINT,
    )


def choose_classes(present: set[str], forced: Sequence[str] | None = None) -> tuple[str, ...]:
    """The model's classes for labels holding ``present`` (see the module docstring)."""
    unknown = present - LABELS
    if unknown:
        raise DataError(
            f"labels hold unknown churn types {sorted(unknown)}; expected {sorted(LABELS)}"
        )
    if forced is not None:
        given = tuple(forced)
        if given not in (MULTICLASS, BINARY):
            raise ModelError(
                f"classes must be {list(MULTICLASS)} or {list(BINARY)}; got {list(given)}"
            )
        if given == MULTICLASS and ChurnType.CHURNED.value in present:
            raise DataError("labels say `churned` but the model splits voluntary/involuntary")
        return given
    kinds = present & {ChurnType.VOLUNTARY.value, ChurnType.INVOLUNTARY.value}
    if ChurnType.CHURNED.value in present or len(kinds) < 2:
        log.info("only one churn kind in the labels: training a binary model")
        return BINARY
    return MULTICLASS


def label_values(y: pl.Series, *, what: str) -> pl.Series:
    """Labels as text; missing labels are a data error."""
    labels = y.cast(pl.String)
    if labels.null_count():
        raise DataError(f"{what} hold {labels.null_count()} missing value(s)")
    return labels


def encode_labels(labels: pl.Series, classes: Sequence[str]) -> IndexArray:
    """Index of each label in ``classes``; a binary model folds every churn kind into 1."""
    if len(classes) == 2:
        return (labels != ChurnType.RETAINED.value).to_numpy().astype(np.intp)
    unknown = set(labels.unique().to_list()) - set(classes)
    if unknown:
        raise DataError(f"labels hold {sorted(unknown)}, not among the classes {list(classes)}")
    codes = labels.replace_strict(list(classes), list(range(len(classes))), return_dtype=pl.Int64)
    return codes.to_numpy().astype(np.intp)


def few(names: Sequence[str], limit: int = 8) -> str:
    """The first ``limit`` names, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")
