"""Who gets drivers, and which: the model's contributions turned into sentences.

Drivers cost ~165x a prediction, so they are computed for a bounded set: the top
``predict.drivers_top_n`` by value at risk, plus any customer asked for by id
(``predict --explain ID``); ``--drivers all`` explains everyone, and says first what
that will cost (from the time the first chunk took). Contributions are computed in
chunks of ``CHUNK_ROWS`` customers (memory stays bounded) on every core; the result
does not depend on the chunk size or the number of threads.

Each driver is a feature that pushes the customer's likelier churn kind up against
staying (binary: the churned log-odds), strongest first, and that is a reason in the
sense of ``predict.sentences``: unusual on its risky side against its reference
(the customer's previous window, their usual gap, the typical customer of training,
the churn rate of their category). It is said as a sentence with the customer's
values. Customers outside the set have null drivers and a null ``driver_features``;
customers inside it with no such feature get an empty list.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, cast

import numpy as np
import polars as pl

from churnkit.core.progress import Progress, silent
from churnkit.core.schema import CUSTOMER_ID, DRIVERS, VALUE_AT_RISK, ChurnType
from churnkit.model.base import Estimator
from churnkit.predict.drivers import (
    CANDIDATES_PER_DRIVER,
    driver_sentences,
    risk_contributions,
    top_drivers,
)
from churnkit.predict.sentences import Voice, voices

log = logging.getLogger(__name__)

TOP_DRIVERS = len(DRIVERS)
CHUNK_ROWS = 20_000
# With --drivers all the first chunk is small, so the cost estimate comes quickly.
FIRST_CHUNK_ROWS = 2_000

IntArray = np.ndarray[Any, np.dtype[np.intp]]
# Called once after the first chunk: (rows done, seconds they took, rows in all).
Timing = Callable[[int, float, int], None]


def driver_rows(
    scored: pl.DataFrame,
    top_n: int,
    ids: Sequence[str] = (),
    *,
    everyone: bool = False,
) -> IntArray:
    """Row positions of the customers who get drivers, in row order: the top ``top_n``
    by value at risk (ties by id) and the customers ``ids``; with ``everyone``, all."""
    if everyone:
        return np.arange(scored.height, dtype=np.intp)
    ranked = (
        scored.select(CUSTOMER_ID, VALUE_AT_RISK)
        .with_row_index("_pos")
        .sort([VALUE_AT_RISK, CUSTOMER_ID], descending=[True, False])
    )
    picked = ranked.head(top_n).get_column("_pos")
    if ids:
        asked = ranked.filter(pl.col(CUSTOMER_ID).is_in(list(ids))).get_column("_pos")
        picked = pl.concat([picked, asked])
    return np.unique(picked.to_numpy()).astype(np.intp)


def unknown_ids(scored: pl.DataFrame, ids: Sequence[str]) -> list[str]:
    """The ``ids`` that name no scored customer, in the order given, once each."""
    if not ids:
        return []
    found = scored.filter(pl.col(CUSTOMER_ID).is_in(list(ids))).get_column(CUSTOMER_ID)
    known = set(found.to_list())
    return [i for i in dict.fromkeys(ids) if i not in known]


def explain(
    model: Estimator,
    frame: pl.DataFrame,
    rows: IntArray,
    kind_index: np.ndarray[Any, Any],
    *,
    chunk_rows: int = CHUNK_ROWS,
    first_chunk_rows: int | None = None,
    threads: int | None = None,
    on_first_chunk: Timing | None = None,
    progress: Progress = silent,
) -> pl.DataFrame:
    """``customer_id, driver_1..3, driver_features`` for the chosen ``rows`` of
    ``frame`` (the scored population); ``kind_index`` is each row's explained class.

    Contributions are computed ``chunk_rows`` customers at a time (the first chunk
    ``first_chunk_rows``, when given) on every core (``threads``: that many);
    ``on_first_chunk`` hears how long the first chunk took.
    """
    card = model.card_
    names = model.feature_names_
    categorical = {f.name for f in card.features if f.type == "categorical"}
    said = voices(names, card.feature_specs, card.descriptions, frame, categorical)
    chosen = frame[rows]
    reference = None if model.mode == "binary" else model.classes_.index(ChurnType.RETAINED.value)
    width = TOP_DRIVERS * CANDIDATES_PER_DRIVER
    candidates = np.full((chosen.height, width), -1, dtype=np.intp)
    bounds = _chunks(chosen.height, chunk_rows, first_chunk_rows)
    what = f"explaining {chosen.height:,} customers"
    progress(what, 0, chosen.height)
    for i, (start, stop) in enumerate(bounds):
        began = time.perf_counter()
        part = chosen[start:stop]
        contributions = _contributions(model, part.select(names), threads)
        risk = risk_contributions(contributions, kind_index[rows[start:stop]], reference=reference)
        risk = np.where(_reasons(part, names, said), risk, 0.0)
        candidates[start:stop] = top_drivers(risk, width)
        if i == 0 and on_first_chunk is not None:
            on_first_chunk(stop, time.perf_counter() - began, chosen.height)
        progress(what, stop, chosen.height)
    sentences = driver_sentences(chosen, candidates, names, said, top=TOP_DRIVERS)
    return pl.concat([chosen.select(CUSTOMER_ID), sentences], how="horizontal")


def _contributions(model: Estimator, X: pl.DataFrame, threads: int | None) -> np.ndarray:
    """The model's contributions on every core (LightGBM's default), or on ``threads``
    for a family that takes ``num_threads`` (LightGBM does)."""
    if threads is None:
        return model.contributions(X)
    return cast(Any, model).contributions(X, num_threads=threads)  # type: ignore[no-any-return]


def _chunks(n: int, size: int, first: int | None) -> list[tuple[int, int]]:
    """``[start, stop)`` bounds covering ``n`` rows: ``first`` rows, then ``size`` each."""
    size = max(size, 1)
    edges = [0]
    if first is not None and 0 < first < n:
        edges.append(first)
    edges += list(range(edges[-1] + size, n, size))
    edges.append(n)
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _reasons(part: pl.DataFrame, names: Sequence[str], said: dict[str, Voice]) -> np.ndarray:
    """``(rows, features)``: whether each feature may be offered as a reason."""
    mask = np.zeros((part.height, len(names)), dtype=np.bool_)
    for j, name in enumerate(names):
        voice = said.get(name)
        if voice is not None:
            mask[:, j] = voice.reasons(part)
    return mask


def estimate_line(done: int, seconds: float, total: int) -> str:
    """What explaining everyone costs, from the first chunk's time."""
    rest = seconds / max(done, 1) * max(total - done, 0)
    left = "under a second" if rest < 1 else f"about {_duration(rest)}"
    return (
        f"--drivers all: explaining {total:,} customers; the first {done:,} took "
        f"{_duration(seconds)}, the other {total - done:,} should take {left}"
    )


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["CHUNK_ROWS", "driver_rows", "estimate_line", "explain", "unknown_ids"]
