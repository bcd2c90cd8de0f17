"""Drivers: which features push a customer towards leaving, said in plain sentences.

Two pure steps, both vectorised over customers:

1. :func:`risk_contributions` and :func:`top_drivers` turn LightGBM's per-row
   contributions (``ChurnModel.contributions``, shape ``(n, k, n_features + 1)``) into
   the indices of the features that raise each customer's risk the most. Only
   positive contributions count: a feature that lowers the risk is never a reason to
   leave (and ``predict.sentences`` zeroes the ones that are no reason either).
2. :func:`driver_sentences` has each candidate feature's ``Sayer`` (see
   ``predict.sentences``) say it for the rows whose driver slot names it, all at once,
   so the only Python loop runs over features.

:func:`render_template` renders the ``str.format`` templates of model cards written
before sentences (clauses separated by ``"; "``, a clause with a missing value is
dropped), and :func:`format_series` formats numbers column-wise like ``str.format``:
``.0f`` gives whole days, ``,.2f`` money with thousands separators, ``.0%`` a
percentage, ``g`` a short general form. Two deliberate differences from
``str.format``: a negative number that rounds to zero prints ``0`` (not ``-0``), and an
infinite value counts as missing.
"""

from __future__ import annotations

import logging
import re
import string
from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.core.schema import DRIVER_FEATURES

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

CLAUSE_SEPARATOR = "; "
DRIVER_PREFIX = "driver_"
NO_DRIVER = -1
# Candidates looked at per customer, per shown driver: a driver whose sentence is
# missing or repeats what a stronger one said gives its place to the next.
CANDIDATES_PER_DRIVER = 3
_ROW = "_row"
_SLOT = "_slot"
_FEATURE = "_feature"
_SENTENCE = "_sentence"
_CLAUSE = "_clause"
_SPEC = re.compile(r"^(?P<comma>,)?(?:\.(?P<precision>\d+))?(?P<type>[f%g])?$")
_G_PRECISION = 6
# Veltkamp split constant 2**27 + 1, for the error-free product in round_scaled.
_SPLITTER = 134217729.0
# Scaled values beyond this cannot be held exactly as integers; they count as missing.
_MAX_EXACT = 2.0**53


class Sayer(Protocol):
    """What says one feature as a driver: the columns it reads, and its sentences."""

    @property
    def inputs(self) -> tuple[str, ...]: ...

    def say(self, frame: pl.DataFrame) -> pl.Series: ...


# --- which features ----------------------------------------------------------------------


def risk_contributions(
    contributions: FloatArray, class_index: IntArray, *, reference: int | None = 0
) -> FloatArray:
    """Per row, each feature's push towards the row's class ``class_index[i]``.

    With ``reference`` (the retained class), the push is on the log-odds of that class
    against the reference, ``C[i, c, j] - C[i, ref, j]``: in a softmax model only the
    difference of raw scores moves ``p_c / p_retained``, so a feature that raises both
    scores alike is no reason to leave. With ``reference=None`` it is ``C[i, c, j]``
    (for a binary model's churned row this is the log-odds contribution itself).
    The baseline slot (last) is dropped: shape ``(n, n_features)``.
    """
    if contributions.ndim != 3:
        raise ValueError(f"contributions must be (n, k, f + 1); got shape {contributions.shape}")
    n = contributions.shape[0]
    if class_index.shape != (n,):
        raise ValueError(f"class_index must have shape ({n},); got {class_index.shape}")
    rows = np.arange(n)
    chosen = contributions[rows, class_index, :-1]
    if reference is None:
        return np.asarray(chosen, dtype=np.float64)
    return np.asarray(chosen - contributions[:, reference, :-1], dtype=np.float64)


def top_drivers(risk: FloatArray, k: int) -> IntArray:
    """The ``k`` features with the largest positive push per row, strongest first.

    Shape ``(n, k)``; slots beyond a row's positive contributions hold ``NO_DRIVER``
    (-1). Ties keep the model's feature order, so the result is deterministic.
    """
    n, f = risk.shape
    width = min(k, f)
    if n == 0 or width <= 0:
        return np.full((n, max(k, 0)), NO_DRIVER, dtype=np.intp)
    order = np.argsort(-risk, axis=1, kind="stable")[:, :width]
    values = np.take_along_axis(risk, order, axis=1)
    picked = np.where(values > 0, order, NO_DRIVER).astype(np.intp)
    if width < k:
        pad = np.full((n, k - width), NO_DRIVER, dtype=np.intp)
        picked = np.concatenate([picked, pad], axis=1)
    return picked


# --- how to say them ---------------------------------------------------------------------


def render_template(frame: pl.DataFrame, template: str) -> pl.Series:
    """``template`` rendered for every row of ``frame``: ``FeatureSpec.render``
    semantics, null where nothing is left to say.

    Each placeholder's column is formatted once for all rows (:func:`format_series`);
    the clauses are then joined with one small string expression. Placeholders that
    name no column of the frame count as missing values.
    """
    formatted: dict[tuple[str, str], str] = {}
    columns: dict[str, pl.Series] = {}
    clauses: list[pl.Expr] = []
    for clause in template.split(CLAUSE_SEPARATOR):
        parts: list[pl.Expr] = []
        for literal, field, spec, conversion in string.Formatter().parse(clause):
            if literal:
                parts.append(pl.lit(literal, dtype=pl.String))
            if field is None:
                continue
            if field not in frame.columns or conversion is not None:
                # An unknown column (or a !r/!s conversion we do not render) is "missing".
                parts.append(pl.lit(None, dtype=pl.String))
                continue
            key = (field, spec or "")
            if key not in formatted:
                formatted[key] = f"_v{len(formatted)}"
                columns[formatted[key]] = format_series(frame.get_column(field), spec or "")
            parts.append(pl.col(formatted[key]))
        # Without ignore_nulls, one missing value makes the whole clause null: dropped.
        clauses.append(pl.concat_str(parts) if parts else pl.lit("", dtype=pl.String))
    joined = pl.concat_str(clauses, separator=CLAUSE_SEPARATOR, ignore_nulls=True)
    values = pl.DataFrame(columns) if columns else pl.DataFrame({"_n": np.zeros(frame.height)})
    # with_columns broadcasts a template without placeholders to every row
    sentence = pl.when(joined != "").then(joined).alias("_sentence")
    return values.with_columns(sentence).get_column("_sentence").alias("sentence")


def format_series(values: pl.Series, spec: str) -> pl.Series:
    """``format(value, spec)`` for each value, as text (null for null, NaN and inf).

    Supports ``[,][.N][f|%|g]``, what feature templates use; any other spec, and
    non-numeric columns, show the value as text. Rounding is half to even on the exact
    binary value, like ``str.format`` (see :func:`round_scaled`).
    """
    if not values.dtype.is_numeric():
        return values.cast(pl.String)
    match = _SPEC.match(spec)
    plain_integer = match is not None and match["type"] is None and match["precision"] is None
    if values.dtype.is_integer() and plain_integer:
        ints = values.cast(pl.Int64)
        return _digits(ints.abs(), ints < 0, comma=match is not None and bool(match["comma"]))
    x = values.cast(pl.Float64).to_numpy().astype(np.float64)
    finite = np.isfinite(x)
    if match is None:
        log.debug("format spec %r is not supported; the value is shown as is", spec)
        return _masked(values.cast(pl.Float64).cast(pl.String), finite)
    comma = match["comma"] is not None
    precision = match["precision"]
    kind = match["type"]
    if kind is None and precision is None and not comma:
        return _masked(values.cast(pl.Float64).cast(pl.String), finite)
    if kind == "f" or (kind is None and precision is None):
        return _fixed(x, int(precision) if precision is not None else 6, comma=comma)
    if kind == "%":
        digits = int(precision) if precision is not None else 6
        text = _fixed(x * 100.0, digits, comma=comma)
        return pl.select(pl.concat_str([pl.lit(text), pl.lit("%")])).to_series()
    return _general(values, finite, int(precision) if precision else _G_PRECISION)


def round_scaled(x: FloatArray, scale: int) -> FloatArray:
    """``x * scale`` rounded half to even as if computed exactly, as ``str.format`` does.

    The float product ``p`` can land exactly on ``k + 0.5`` when the true product lies
    just above or below it (114.895 is really 114.89499999...). Dekker's error-free
    product gives the rounding error ``e`` of ``p`` (``x * scale = p + e`` exactly),
    whose sign breaks such false ties.
    """
    s = float(scale)
    with np.errstate(invalid="ignore", over="ignore"):
        p = x * s
        if scale == 1:
            return np.asarray(np.round(p), dtype=np.float64)
        c = x * _SPLITTER
        hi = c - (c - x)
        lo = x - hi
        cs = s * _SPLITTER
        s_hi = cs - (cs - s)
        s_lo = s - s_hi
        err = ((hi * s_hi - p) + hi * s_lo + lo * s_hi) + lo * s_lo
        floor = np.floor(p)
        tie = (p - floor) == 0.5
    rounded = np.round(p)  # numpy rounds half to even
    rounded = np.where(tie & (err > 0), floor + 1.0, rounded)
    return np.asarray(np.where(tie & (err < 0), floor, rounded), dtype=np.float64)


def _fixed(x: FloatArray, digits: int, *, comma: bool) -> pl.Series:
    """``format(x, ",.Nf")`` (or without the comma) for an array; null where not finite."""
    scale = 10**digits
    scaled = round_scaled(x, scale)
    ok = np.isfinite(scaled) & (np.abs(np.nan_to_num(scaled)) < _MAX_EXACT)
    ints = np.where(ok, scaled, 0.0).astype(np.int64)
    magnitude = np.abs(ints)
    whole = _digits(pl.Series(magnitude // scale), pl.Series(ints < 0), comma=comma)
    if digits > 0:
        fraction = pl.Series(magnitude % scale).cast(pl.String).str.zfill(digits)
        whole = pl.select(pl.concat_str([pl.lit(whole), pl.lit("."), pl.lit(fraction)])).to_series()
    return _masked(whole, ok)


def _digits(magnitude: pl.Series, negative: pl.Series, *, comma: bool) -> pl.Series:
    """Digits of non-negative integers, with thousands separators when asked, signed."""
    text = magnitude.cast(pl.String)
    if comma:
        text = text.str.reverse().str.replace_all(r"(\d{3})", "$1,")
        text = text.str.strip_chars_end(",").str.reverse()
    sign = pl.when(pl.lit(negative)).then(pl.lit("-")).otherwise(pl.lit(""))
    return pl.select(pl.concat_str([sign, pl.lit(text)])).to_series()


def _general(values: pl.Series, finite: npt.NDArray[np.bool_], precision: int) -> pl.Series:
    """``format(x, "g")``: ``precision`` significant digits, no trailing zeros."""
    text = values.cast(pl.Float64).round_sig_figs(max(precision, 1)).cast(pl.String)
    trimmed = text.str.replace(r"(\.\d*?)0+$", "$1").str.strip_chars_end(".")
    exponent = text.str.contains("e")
    general = pl.select(pl.when(pl.lit(exponent)).then(pl.lit(text)).otherwise(pl.lit(trimmed)))
    return _masked(general.to_series(), finite)


def _masked(text: pl.Series, ok: npt.NDArray[np.bool_]) -> pl.Series:
    if ok.all():
        return text
    return pl.select(pl.when(pl.lit(pl.Series(ok))).then(pl.lit(text))).to_series()


# --- drivers for a frame -----------------------------------------------------------------


def driver_columns(top: int) -> list[str]:
    return [f"{DRIVER_PREFIX}{i + 1}" for i in range(top)]


def driver_sentences(
    frame: pl.DataFrame,
    candidates: IntArray,
    features: Sequence[str],
    sayers: Mapping[str, Sayer],
    *,
    top: int = 3,
) -> pl.DataFrame:
    """``driver_1..driver_{top}`` (text) and ``driver_features`` (list of names), one
    row per row of ``frame``, in its order.

    ``candidates[i]`` lists feature indices (into ``features``) for row ``i``,
    strongest first, ``NO_DRIVER`` for none (see :func:`top_drivers`). Each is said
    by its sayer with the row's values; a sentence with nothing to say is skipped,
    and one a stronger driver already said is not repeated (a trend and its window,
    or the overdue ratio and the days since the last purchase, say the same thing),
    so a candidate that adds nothing gives its place to the next. Rows with no
    usable driver get nulls and an empty list.
    """
    n = frame.height
    if candidates.shape[0] != n:
        raise ValueError(f"{candidates.shape[0]} candidate rows for a frame of {n} rows")
    width = candidates.shape[1] if candidates.ndim == 2 else 0
    long = pl.DataFrame(
        {
            _ROW: np.repeat(np.arange(n, dtype=np.int64), width),
            _SLOT: np.tile(np.arange(width, dtype=np.int64), n),
            _FEATURE: candidates.reshape(-1).astype(np.int64),
        }
    ).filter(pl.col(_FEATURE) != NO_DRIVER)
    rendered: list[pl.DataFrame] = []
    for (index,), part in long.partition_by(_FEATURE, as_dict=True, maintain_order=True).items():
        name = features[int(index)]
        sayer = sayers.get(name)
        if sayer is None:
            log.debug("feature %r has no sentence; it cannot be shown as a driver", name)
            continue
        inputs = [c for c in sayer.inputs if c in frame.columns]
        # A sayer reading no column still needs the rows' count: keep a column.
        values = (frame.select(inputs) if inputs else frame.select(pl.first()))[
            part[_ROW].to_numpy()
        ]
        rendered.append(
            part.select(_ROW, _SLOT)
            .with_columns(
                pl.lit(name, dtype=pl.String).alias(_FEATURE),
                sayer.say(values).alias(_SENTENCE),
            )
            .drop_nulls(_SENTENCE)
        )
    said = _dedupe(rendered, top)
    columns = driver_columns(top)
    wide = said.group_by(_ROW).agg(pl.col(_SENTENCE), pl.col(_FEATURE).alias(DRIVER_FEATURES))
    return (
        pl.DataFrame({_ROW: np.arange(n, dtype=np.int64)})
        .join(wide, on=_ROW, how="left")
        .sort(_ROW)
        .select(
            *[
                pl.col(_SENTENCE).list.get(i, null_on_oob=True).alias(c)
                for i, c in enumerate(columns)
            ],
            pl.col(DRIVER_FEATURES).fill_null(pl.lit([], dtype=pl.List(pl.String))),
        )
    )


def _dedupe(rendered: list[pl.DataFrame], top: int) -> pl.DataFrame:
    """Drop clauses a stronger driver of the same row already said, then keep the
    first ``top`` drivers with something left to say, strongest first."""
    empty = pl.DataFrame(
        schema={_ROW: pl.Int64, _SLOT: pl.Int64, _FEATURE: pl.String, _SENTENCE: pl.String}
    )
    if not rendered:
        return empty
    long = pl.concat(rendered, how="vertical").sort(_ROW, _SLOT)
    # Explode keeps each sentence's clauses in order, and so do ``unique`` and the
    # ordered group-by, so clauses are re-joined in the order the template says them.
    clauses = (
        long.with_columns(pl.col(_SENTENCE).str.split(CLAUSE_SEPARATOR).alias(_CLAUSE))
        .explode(_CLAUSE)
        .unique(subset=[_ROW, _CLAUSE], keep="first", maintain_order=True)
    )
    return (
        clauses.group_by(_ROW, _SLOT, maintain_order=True)
        .agg(pl.col(_FEATURE).first(), pl.col(_CLAUSE).str.join(CLAUSE_SEPARATOR).alias(_SENTENCE))
        .filter(pl.int_range(pl.len()).over(_ROW) < top)
    )


__all__ = [
    "CANDIDATES_PER_DRIVER",
    "NO_DRIVER",
    "Sayer",
    "driver_columns",
    "driver_sentences",
    "format_series",
    "render_template",
    "risk_contributions",
    "round_scaled",
    "top_drivers",
]
