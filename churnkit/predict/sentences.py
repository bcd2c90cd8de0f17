"""When a feature is a reason to leave, and how to say it: one ``Voice`` per feature.

A driver says what is unusual about a customer against a reference (the model card's
``FeatureNote``: the family's ``Sentence`` and the references measured in training,
see ``churnkit.model.references``). A feature is a reason for a customer only when
its value is unusual on the risky side of that reference:

- ``previous`` (a window against the one before): strictly worse than before, so
  "0 logins vs 0 before" or "7 logins now vs 2 before" (for a feature where fewer is
  riskier) is never a reason;
- ``usual`` (against another of the customer's own numbers, such as the usual gap
  between purchases): at least ``RATIO_MIN`` times beyond it;
- ``typical`` (and ``usual`` without the customer's own number): beyond the training
  quartile on the risky side (the 75th percentile where more is riskier, the 25th
  where less is), since being on the wrong side of the median describes half of all
  customers;
- ``category``: the category's training churn rate is at least ``RATIO_MIN`` times
  the average.

A feature that was constant in training, a numeric feature without a risky direction
("average purchase 219.58"), and a missing value are never reasons. Numbers are
compared as they are shown (rounded to the sentence's format), so a sentence never
reads "5, down from 5".

Sentences use correct plurals and signs ("1 complaint", "card expired 30 days ago").
Everything is vectorised over the rows of a frame; the callers loop over features.

Cards written before sentences existed keep their ``str.format`` templates
(:class:`Templated`): a directed feature is a reason when the customer's value is
on the risky side of today's population median, and undirected ones never are.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import polars as pl

from churnkit.features.spec import Sentence
from churnkit.model.card import FeatureNote
from churnkit.predict.drivers import format_series, render_template

BoolArray = npt.NDArray[np.bool_]
FloatArray = npt.NDArray[np.float64]

# A ratio (own reference, category churn) counts from this far beyond 1.
RATIO_MIN = 1.1
TYPICAL = " (typical customer: {})"
CATEGORY = ", where churn is {}x the average"
_DIGITS = re.compile(r"\.(\d+)")


class Voice(Protocol):
    """How one feature is judged and said."""

    @property
    def inputs(self) -> tuple[str, ...]:
        """The frame's columns ``reasons`` and ``say`` read."""
        ...

    def reasons(self, frame: pl.DataFrame) -> BoolArray:
        """Per row, whether the feature may be offered as a reason to leave."""
        ...

    def say(self, frame: pl.DataFrame) -> pl.Series:
        """Per row, the driver sentence (null where there is nothing to say)."""
        ...


@dataclass(frozen=True)
class Worded:
    """A feature with a ``Sentence`` and training references (see the module docstring).

    ``spoken`` is the note of the column the sentence speaks of (a trend speaks of its
    window's count), whose typical value and quartiles apply.
    """

    feature: str
    note: FeatureNote
    spoken: FeatureNote

    @property
    def sentence(self) -> Sentence:
        assert self.note.wording is not None
        return self.note.wording

    @property
    def value_column(self) -> str:
        return self.sentence.value or self.feature

    @property
    def inputs(self) -> tuple[str, ...]:
        said = (self.feature, self.value_column, self.sentence.against)
        return tuple(dict.fromkeys(c for c in said if c))

    # --- when it is a reason -------------------------------------------------------------

    def reasons(self, frame: pl.DataFrame) -> BoolArray:
        n = frame.height
        if self.note.constant:
            return np.zeros(n, dtype=np.bool_)
        if self.sentence.reference == "category" or self.note.kind == "categorical":
            ratios = self._ratios()
            if not ratios or self.feature not in frame.columns:
                return np.zeros(n, dtype=np.bool_)
            values = frame.get_column(self.feature).cast(pl.String)
            return np.asarray(values.is_in(list(ratios)).fill_null(False).to_numpy(), np.bool_)
        direction = self.note.risk_when
        if direction is None:
            return np.zeros(n, dtype=np.bool_)
        digits = _precision(self.sentence.number)
        own = _floats(frame, self.feature)
        v = np.round(_floats(frame, self.value_column), digits)
        sign = 1.0 if direction == "high" else -1.0
        beyond = _beyond_quartile(v, self.spoken, direction)
        reference = self.sentence.reference
        if reference in ("previous", "usual") and self.sentence.against:
            r = np.round(_floats(frame, self.sentence.against), digits)
            with np.errstate(invalid="ignore", divide="ignore"):
                if reference == "previous":
                    known = np.isfinite(r)
                    own_side = sign * (v - r) > 0
                else:
                    known = np.isfinite(r) & (r > 0)
                    ratio = v / np.where(known, r, np.nan)
                    own_side = (ratio >= RATIO_MIN) if sign > 0 else (ratio <= 1 / RATIO_MIN)
            beyond = np.where(known, own_side, beyond)
        return np.asarray(beyond & np.isfinite(v) & np.isfinite(own), dtype=np.bool_)

    def _ratios(self) -> dict[str, float]:
        """Category → churn rate over the average, for the categories that count."""
        average = self.note.average_churn
        if not average or average <= 0:
            return {}
        ratios = {c: k.churn_rate / average for c, k in self.note.categories.items()}
        return {c: r for c, r in ratios.items() if r >= RATIO_MIN}

    # --- what to say ---------------------------------------------------------------------

    def say(self, frame: pl.DataFrame) -> pl.Series:
        s = self.sentence
        if s.reference == "category" or self.note.kind == "categorical":
            return self._say_category(frame)
        v = _float_series(frame, self.value_column)
        value = _quantity(v.abs() if s.past else v, s)
        typical = _typical(self.spoken, s)
        main = _fill(s.text, {"value": value}, frame.height)
        if s.reference == "previous" and s.against:
            word = "down" if self.note.risk_when != "high" else "up"
            before = format_series(_float_series(frame, s.against), s.number)
            main = _concat(main, pl.lit(f", {word} from "), before, pl.lit(typical))
        elif s.reference == "usual" and s.against:
            r = _float_series(frame, s.against)
            known = (r > 0).fill_null(False)
            times = format_series(
                v / _pick(known, r, pl.Series([None] * len(r), dtype=pl.Float64)), ".1f"
            )
            with_own = _fill(
                s.text, {"value": value, "reference": _quantity(r, s), "times": times}, frame.height
            )
            alone = _concat(_fill(s.alone or s.text, {"value": value}, frame.height), typical)
            main = _pick(known, with_own, alone)
        else:
            main = _concat(main, pl.lit(typical))
        if s.past is None:
            return main.alias("sentence")
        shown = format_series(v.abs(), s.number)
        past = _fill(s.past, {"value": value}, frame.height)
        today = pl.Series([s.today] * frame.height, dtype=pl.String) if s.today else main
        out = _pick((shown == "0").fill_null(False), today, _pick(v < 0, past, main))
        return out.alias("sentence")

    def _say_category(self, frame: pl.DataFrame) -> pl.Series:
        ratios = self._ratios()
        values = frame.get_column(self.feature).cast(pl.String)
        ratio = values.replace_strict(ratios, default=None, return_dtype=pl.Float64)
        times = format_series(ratio, ".1f")
        said = _fill(self.sentence.text, {"value": values}, frame.height)
        return _concat(said, pl.lit(", where churn is "), times, pl.lit("x the average")).alias(
            "sentence"
        )


@dataclass(frozen=True)
class Templated:
    """A feature of a card written before sentences: its ``str.format`` template, a
    reason when its value is on the risky side of ``median`` (today's population)."""

    feature: str
    template: str
    risk_when: str | None
    median: float | None = None
    categorical: bool = False

    @property
    def inputs(self) -> tuple[str, ...]:
        names = [f for _, f, _, _ in string.Formatter().parse(self.template) if f]
        return tuple(dict.fromkeys([self.feature, *names]))

    def reasons(self, frame: pl.DataFrame) -> BoolArray:
        n = frame.height
        if self.categorical or self.risk_when is None or self.median is None:
            return np.zeros(n, dtype=np.bool_)
        v = _floats(frame, self.feature)
        with np.errstate(invalid="ignore"):
            risky = v > self.median if self.risk_when == "high" else v < self.median
        return np.asarray(risky, dtype=np.bool_)

    def say(self, frame: pl.DataFrame) -> pl.Series:
        return render_template(frame, self.template)


def voices(
    features: list[str],
    notes: Mapping[str, FeatureNote],
    descriptions: Mapping[str, str],
    population: pl.DataFrame,
    categorical: set[str],
) -> dict[str, Voice]:
    """How each of the model's ``features`` is judged and said, from the card's notes.

    Features with a ``Sentence`` speak as :class:`Worded`; the others (cards written
    before sentences) as :class:`Templated`, with their template (or their
    description and value) and the median of ``population`` (today's customers).
    """
    out: dict[str, Voice] = {}
    legacy: list[str] = []
    for name in features:
        note = notes.get(name)
        if note is not None and note.wording is not None:
            spoken = notes.get(note.wording.value or name) or note
            out[name] = Worded(name, note, spoken)
        else:
            legacy.append(name)
    directed = [
        n
        for n in legacy
        if n in notes and notes[n].risk_when and n not in categorical and n in population.columns
    ]
    medians = (
        population.select(pl.col(n).cast(pl.Float64).fill_nan(None).median() for n in directed).row(
            0, named=True
        )
        if directed
        else {}
    )
    for name in legacy:
        note = notes.get(name)
        template = (
            note.sentence if note is not None and note.sentence else _plain(name, descriptions)
        )
        median = medians.get(name)
        out[name] = Templated(
            name,
            template,
            note.risk_when if note is not None else None,
            median=None if median is None else float(median),
            categorical=name in categorical,
        )
    return out


# --- helpers --------------------------------------------------------------------------------


def _plain(name: str, descriptions: Mapping[str, str]) -> str:
    """A card without a sentence for the feature: its description and value."""
    text = descriptions.get(name, name).replace("{", "{{").replace("}", "}}")
    return f"{text}: {{{name}}}"


def _precision(number: str) -> int:
    """Decimals a number format shows, as decimals of the value (``.0%``: 2)."""
    match = _DIGITS.search(number)
    digits = int(match.group(1)) if match else 0
    return digits + 2 if number.endswith("%") else digits


def _floats(frame: pl.DataFrame, column: str | None) -> FloatArray:
    if column is None or column not in frame.columns:
        return np.full(frame.height, np.nan)
    values = frame.get_column(column).cast(pl.Float64, strict=False).fill_null(np.nan)
    return np.asarray(values.to_numpy(), dtype=np.float64)


def _float_series(frame: pl.DataFrame, column: str) -> pl.Series:
    if column not in frame.columns:
        return pl.Series(column, [None] * frame.height, dtype=pl.Float64)
    values = frame.get_column(column).cast(pl.Float64, strict=False)
    return values.fill_nan(None)


def _beyond_quartile(v: FloatArray, note: FeatureNote, direction: str) -> BoolArray:
    """Whether each value lies beyond the training quartile on the risky side."""
    if note.quartiles is None:
        return np.zeros(v.shape, dtype=np.bool_)
    low, high = note.quartiles
    with np.errstate(invalid="ignore"):
        return np.asarray(v > high if direction == "high" else v < low, dtype=np.bool_)


def _quantity(values: pl.Series, sentence: Sentence) -> pl.Series:
    """Numbers as shown with what they count: "1 day", "3 logins", "12%"."""
    shown = format_series(values, sentence.number)
    one, many = sentence.nouns
    if not one:
        return shown
    noun = pl.select(
        pl.when(pl.lit(shown).is_in(["1", "-1"]))
        .then(pl.lit(f" {one}"))
        .otherwise(pl.lit(f" {many}"))
    ).to_series()
    return _concat(shown, noun)


def _typical(note: FeatureNote, sentence: Sentence) -> str:
    """`` (typical customer: 12)``, or nothing when training recorded no typical value."""
    if note.typical is None or not math.isfinite(note.typical):
        return ""
    shown = format_series(pl.Series([note.typical], dtype=pl.Float64), sentence.number)[0]
    return TYPICAL.format(shown) if shown is not None else ""


def _fill(template: str, parts: Mapping[str, pl.Series], n: int) -> pl.Series:
    """``template`` with its placeholders taken from ``parts``, row by row (null where a
    part is null)."""
    pieces: list[pl.Series | pl.Expr] = []
    for literal, name, _, _ in string.Formatter().parse(template):
        if literal:
            pieces.append(pl.lit(literal, dtype=pl.String))
        if name is not None:
            part = parts.get(name)
            pieces.append(part if part is not None else pl.lit(None, dtype=pl.String))
    if not pieces:
        return pl.Series([""] * n, dtype=pl.String)
    return _concat(*pieces, height=n)


def _concat(*pieces: pl.Series | pl.Expr | str, height: int | None = None) -> pl.Series:
    """Text pieces joined row by row; a null piece makes the row null. The rows are
    the Series pieces' (or ``height`` when there is none)."""
    lengths = [len(p) for p in pieces if isinstance(p, pl.Series)]
    n = lengths[0] if lengths else (height or 0)
    exprs = [
        pl.lit(p, dtype=pl.String)
        if isinstance(p, str)
        else p
        if isinstance(p, pl.Expr)
        else pl.lit(p)
        for p in pieces
    ]
    frame = pl.DataFrame({"_n": np.zeros(n)})
    return frame.select(pl.concat_str(exprs).alias("s")).get_column("s")


def _pick(condition: pl.Series, yes: pl.Series, no: pl.Series) -> pl.Series:
    """``yes`` where ``condition`` holds (null: no), else ``no``."""
    return pl.select(
        pl.when(pl.lit(condition.fill_null(False))).then(pl.lit(yes)).otherwise(pl.lit(no))
    ).to_series()


__all__ = ["RATIO_MIN", "Templated", "Voice", "Worded", "voices"]
