"""No leakage: what is computed at a cutoff never depends on what happens later.

Features, the layout and the active population at a cutoff are unchanged when
events after the cutoff are appended; labels are unchanged when events after
``cutoff + horizon + grace`` are appended.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from churnkit.core.config import FeatureSettings, LabelSettings
from churnkit.core.schema import (
    CARD_EXPIRY,
    CUSTOMER_ID,
    EVENT,
    EVENT_SCHEMA,
    KIND,
    PLAN,
    QUANTITY,
    REASON,
    RELATED_CUSTOMER_ID,
    RELATIONS_SCHEMA,
    SINCE,
    TS,
    EventKind,
)
from churnkit.core.timeline import end_of_day
from churnkit.features import compute_features
from churnkit.population.labels import active_customers, label_window, labelled_population

START = datetime(2024, 1, 1)
CUTOFF = end_of_day(date(2024, 6, 30))
CUTOFF_DAY = (CUTOFF - START).days  # events on days <= this are known at the cutoff
HORIZON, GRACE = 30, 7
FEATURES = FeatureSettings(windows=[30, 90], extra_numeric=["Discount"])
LABELS = LabelSettings(horizon=HORIZON, grace_period=GRACE)

customers = st.sampled_from(["a", "b", "c", "d", "e"])
kinds = st.sampled_from([k.value for k in EventKind])


@st.composite
def event(draw: st.DrawFn, first_day: int, last_day: int) -> dict[str, Any]:
    kind = draw(kinds)
    return {
        CUSTOMER_ID: draw(customers),
        TS: START
        + timedelta(days=draw(st.integers(first_day, last_day)), hours=draw(st.integers(0, 23))),
        KIND: kind,
        "amount": draw(st.sampled_from([0.0, 9.0, 12.5, 30.0, -5.0])),
        QUANTITY: draw(st.none() | st.sampled_from([1.0, 4.0])),
        PLAN: draw(st.none() | st.sampled_from(["basic", "pro", "team"])),
        REASON: draw(st.none() | st.sampled_from(["card_expired", "insufficient_funds", "x"])),
        EVENT: draw(st.sampled_from(["login", "export", "Report Run"]))
        if kind == EventKind.USAGE.value
        else None,
        CARD_EXPIRY: draw(st.none() | st.dates(date(2024, 1, 1), date(2026, 1, 1))),
        "Discount": draw(st.none() | st.sampled_from(["0", "10%", "5"])),
    }


def frame(rows: list[dict[str, Any]]) -> pl.LazyFrame:
    schema = {**EVENT_SCHEMA, "Discount": pl.String()}
    return pl.DataFrame(rows, schema=schema).lazy()


def ties(rows: list[tuple[str, str, int | None]]) -> pl.LazyFrame:
    return pl.DataFrame(
        [
            {
                CUSTOMER_ID: a,
                RELATED_CUSTOMER_ID: b,
                "relation_kind": "referral",
                SINCE: None if d is None else START + timedelta(days=d),
            }
            for a, b, d in rows
        ],
        schema=RELATIONS_SCHEMA,
    ).lazy()


past_events = st.lists(event(0, CUTOFF_DAY), min_size=1, max_size=40)
later_events = st.lists(event(CUTOFF_DAY + 1, CUTOFF_DAY + 120), min_size=1, max_size=20)
relations = st.lists(
    st.tuples(customers, customers, st.none() | st.integers(0, CUTOFF_DAY + 60)), max_size=8
)


def features_at_cutoff(events: pl.LazyFrame, rel: pl.LazyFrame) -> pl.DataFrame:
    result = compute_features(
        events, CUTOFF, settings=FEATURES, relations=rel, label_settings=LABELS
    )
    return result.frame.collect(engine="streaming").sort(CUSTOMER_ID)


@settings(max_examples=25)
@given(past=past_events, later=later_events, rel=relations)
def test_features_ignore_events_after_the_cutoff(
    past: list[dict[str, Any]], later: list[dict[str, Any]], rel: list[tuple[str, str, int | None]]
) -> None:
    before = features_at_cutoff(frame(past), ties(rel))
    after = features_at_cutoff(frame(past + later), ties(rel))
    assert_frame_equal(before, after)


@settings(max_examples=25)
@given(past=past_events, later=later_events)
def test_the_active_population_ignores_events_after_the_cutoff(
    past: list[dict[str, Any]], later: list[dict[str, Any]]
) -> None:
    def active(rows: list[dict[str, Any]]) -> pl.DataFrame:
        lf = active_customers(frame(rows), CUTOFF, active_window=45, grace=GRACE)
        return lf.collect().sort(CUSTOMER_ID)

    assert_frame_equal(active(past), active(past + later))


window_and_grace = st.lists(event(0, CUTOFF_DAY + HORIZON + GRACE), min_size=1, max_size=50)
# The label window ends at CUTOFF + HORIZON and grace at CUTOFF + HORIZON + GRACE; the
# first day after that is CUTOFF_DAY + HORIZON + GRACE + 1.
beyond = st.lists(
    event(CUTOFF_DAY + HORIZON + GRACE + 1, CUTOFF_DAY + 200), min_size=1, max_size=20
)


@settings(max_examples=25)
@given(known=window_and_grace, later=beyond)
def test_labels_ignore_events_after_window_and_grace(
    known: list[dict[str, Any]], later: list[dict[str, Any]]
) -> None:
    def labels(rows: list[dict[str, Any]]) -> tuple[pl.DataFrame, pl.DataFrame]:
        events = frame(rows)
        every = label_window(events, CUTOFF, horizon=HORIZON, grace=GRACE)
        active = labelled_population(events, CUTOFF, LABELS)
        return every.collect().sort(CUSTOMER_ID), active.collect().sort(CUSTOMER_ID)

    for before, after in zip(labels(known), labels(known + later), strict=True):
        assert_frame_equal(before, after)
