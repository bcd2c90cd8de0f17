"""Active population and churn labels on tiny logs worked out by hand.

Cutoff: the end of 2024-06-30; horizon 30 days, so the window is July 1-30;
grace 7 days, so a failed payment may be recovered until the end of August 6.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.config import LabelSettings
from churnkit.core.schema import CHURN_TYPE, CUSTOMER_ID, EVENT_SCHEMA, KIND, TS, ChurnType
from churnkit.core.timeline import end_of_day
from churnkit.population.labels import (
    MIN_ACTIVE_WINDOW_DAYS,
    active_customers,
    active_window_days,
    has_failed_payments,
    label_window,
    labelled_population,
)

CUTOFF = end_of_day(date(2024, 6, 30))
HORIZON, GRACE = 30, 7

PURCHASE, FAILED, CANCEL = "purchase", "payment_failed", "cancel"


def at(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2024, month, day, hour)


def log(*rows: tuple[str, datetime, str]) -> pl.LazyFrame:
    """Events as (customer, time, kind); every other canonical column null."""
    records: list[dict[str, Any]] = [
        {CUSTOMER_ID: c, TS: t, KIND: k, "amount": 10.0 if k == PURCHASE else 0.0}
        for c, t, k in rows
    ]
    return pl.DataFrame(records, schema=EVENT_SCHEMA).lazy()


def history(customer: str) -> list[tuple[str, datetime, str]]:
    """Monthly purchases up to the cutoff: active under any window of 35+ days."""
    return [(customer, at(m, 5), PURCHASE) for m in (3, 4, 5, 6)]


def labels_of(events: pl.LazyFrame, **kwargs: Any) -> dict[str, str]:
    out = label_window(events, CUTOFF, horizon=HORIZON, grace=GRACE, **kwargs).collect()
    return dict(zip(out[CUSTOMER_ID].to_list(), out[CHURN_TYPE].cast(pl.String), strict=True))


CASES: dict[str, tuple[list[tuple[datetime, str]], ChurnType]] = {
    "buys through the window": ([(at(7, 5), PURCHASE)], ChurnType.RETAINED),
    "cancel then nothing": ([(at(7, 2), CANCEL)], ChurnType.VOLUNTARY),
    "buys then cancels": ([(at(7, 5), PURCHASE), (at(7, 10), CANCEL)], ChurnType.VOLUNTARY),
    "cancel undone by a purchase": ([(at(7, 3), CANCEL), (at(7, 9), PURCHASE)], ChurnType.RETAINED),
    "lapse: no purchase in the window": ([], ChurnType.VOLUNTARY),
    "failure never recovered": (
        [(at(7, 5), PURCHASE), (at(7, 20), FAILED), (at(7, 27), FAILED)],
        ChurnType.INVOLUNTARY,
    ),
    "failure recovered in the window": (
        [(at(7, 5), FAILED), (at(7, 6), PURCHASE)],
        ChurnType.RETAINED,
    ),
    "failure recovered at the same moment": (
        [(at(7, 5), FAILED), (at(7, 5), PURCHASE)],
        ChurnType.RETAINED,
    ),
    "failure recovered within grace, after the window": (
        [(at(7, 5), PURCHASE), (at(7, 28), FAILED), (at(8, 4), PURCHASE)],
        ChurnType.RETAINED,
    ),
    "only purchase is the grace-period recovery": (
        [(at(7, 28), FAILED), (at(8, 4), PURCHASE)],
        ChurnType.RETAINED,
    ),
    "recovered only after grace": (
        [(at(7, 5), PURCHASE), (at(7, 28), FAILED), (at(8, 9), PURCHASE)],
        ChurnType.INVOLUNTARY,
    ),
    "cancel before the failure": (
        [(at(7, 3), CANCEL), (at(7, 10), FAILED)],
        ChurnType.VOLUNTARY,
    ),
    "failure before the cancel": (
        [(at(7, 3), FAILED), (at(7, 10), CANCEL)],
        ChurnType.INVOLUNTARY,
    ),
    "failure after the window": (
        [(at(7, 5), PURCHASE), (at(8, 2), FAILED)],
        ChurnType.RETAINED,
    ),
}


def test_each_kind_of_outcome() -> None:
    rows = []
    for name, (window_events, _) in CASES.items():
        rows += history(name) + [(name, t, k) for t, k in window_events]
    got = labels_of(log(*rows))
    assert got == {name: expected.value for name, (_, expected) in CASES.items()}


def test_events_after_window_and_grace_are_never_read() -> None:
    base = [*history("a"), ("a", at(7, 5), PURCHASE), ("a", at(7, 20), FAILED)]
    late = [("a", at(8, 7, 1), PURCHASE), ("a", at(12, 1), CANCEL)]
    assert labels_of(log(*base)) == labels_of(log(*base, *late)) == {"a": "involuntary"}


def test_labels_cover_the_given_population_only() -> None:
    rows = history("a") + history("b") + [("c", at(7, 1), PURCHASE)]
    active = pl.DataFrame({CUSTOMER_ID: ["a"]}).lazy()
    assert labels_of(log(*rows), active=active) == {"a": "voluntary"}
    # Without a population: everyone seen at or before the cutoff ("c" joined later).
    assert labels_of(log(*rows)) == {"a": "voluntary", "b": "voluntary"}


def test_churn_type_is_an_enum_of_the_schema_values() -> None:
    out = label_window(log(*history("a")), CUTOFF, horizon=HORIZON, grace=GRACE)
    dtype = out.collect_schema()[CHURN_TYPE]
    assert isinstance(dtype, pl.Enum)
    assert set(dtype.categories.to_list()) == {t.value for t in ChurnType}


def active_ids(events: pl.LazyFrame, window: int = 60) -> set[str]:
    frame = active_customers(events, CUTOFF, active_window=window, grace=GRACE).collect()
    assert frame.columns == [CUSTOMER_ID]
    return set(frame[CUSTOMER_ID].to_list())


def test_active_population_excludes_ended_and_lapsed_customers() -> None:
    rows = [
        *history("buyer"),
        *history("cancelled"),
        ("cancelled", at(6, 10), CANCEL),
        *history("cancelled then back"),
        ("cancelled then back", at(6, 1), CANCEL),
        ("cancelled then back", at(6, 20), PURCHASE),
        *history("renewed and cancelled at once"),
        ("renewed and cancelled at once", at(6, 5), CANCEL),
        *history("failed long ago"),
        ("failed long ago", at(6, 15), FAILED),
        ("failed long ago", at(6, 28), FAILED),
        *history("failed recently"),
        ("failed recently", at(6, 26), FAILED),
        *history("failed then recovered"),
        ("failed then recovered", at(6, 10), FAILED),
        ("failed then recovered", at(6, 11), PURCHASE),
        ("lapsed", at(3, 1), PURCHASE),
        ("never bought", at(6, 29), "signup"),
        ("joins later", at(7, 2), PURCHASE),
    ]
    assert active_ids(log(*rows)) == {
        "buyer",
        "cancelled then back",
        "failed recently",
        "failed then recovered",
    }


def test_the_active_window_decides_who_still_counts() -> None:
    events = log(("x", at(5, 15), PURCHASE))
    assert active_ids(events, window=50) == {"x"}
    assert active_ids(events, window=40) == set()


def test_active_window_from_settings_wins() -> None:
    events = log(*history("a"))
    assert active_window_days(events, CUTOFF, LabelSettings(active_window=12)) == 12


def test_active_window_is_a_quantile_of_median_gaps_with_a_floor() -> None:
    weekly = [("w", at(6, 1) + timedelta(days=7 * i), PURCHASE) for i in range(4)]
    assert active_window_days(log(*weekly), CUTOFF, LabelSettings()) == MIN_ACTIVE_WINDOW_DAYS
    rows = [
        (f"q{i}", at(1, 1) + timedelta(days=g * k), PURCHASE)
        for i, g in enumerate((40, 50, 60, 70, 80))
        for k in range(3)
    ]
    # Median gaps 40..80 days; the 0.5 quantile is 60.
    settings = LabelSettings(active_window_quantile=0.5)
    assert active_window_days(log(*rows), CUTOFF, settings) == 60


def test_active_window_without_repeat_buyers_falls_back_to_the_horizon() -> None:
    events = log(("a", at(5, 1), PURCHASE), ("b", at(6, 1), PURCHASE))
    assert active_window_days(events, CUTOFF, LabelSettings(horizon=90)) == 90
    assert active_window_days(events, CUTOFF, LabelSettings(horizon=10)) == MIN_ACTIVE_WINDOW_DAYS


def test_line_items_of_one_order_are_not_gaps() -> None:
    rows = [("a", at(1, 5) + timedelta(days=d), PURCHASE) for d in (0, 0, 0, 60, 60, 120)]
    settings = LabelSettings(active_window_quantile=0.5)
    assert active_window_days(log(*rows), CUTOFF, settings) == 60


def test_has_failed_payments() -> None:
    assert not has_failed_payments(log(*history("a")))
    assert has_failed_payments(log(*history("a"), ("a", at(6, 6), FAILED)))


def test_labelled_population_is_active_customers_with_their_labels() -> None:
    rows = [
        *history("stays"),
        ("stays", at(7, 5), PURCHASE),
        *history("leaves"),
        ("leaves", at(7, 8), CANCEL),
        *history("gone"),
        ("gone", at(6, 20), CANCEL),
    ]
    got = labelled_population(
        log(*rows), CUTOFF, LabelSettings(horizon=HORIZON, grace_period=GRACE)
    )
    expected = pl.DataFrame(
        {CUSTOMER_ID: ["leaves", "stays"], CHURN_TYPE: ["voluntary", "retained"]},
        schema={CUSTOMER_ID: pl.String, CHURN_TYPE: got.collect_schema()[CHURN_TYPE]},
    )
    assert_frame_equal(got.collect().sort(CUSTOMER_ID), expected)


@pytest.mark.parametrize("kind", [PURCHASE, FAILED])
def test_an_event_exactly_at_the_window_end_is_inside(kind: str) -> None:
    end = CUTOFF + timedelta(days=HORIZON)
    rows = [*history("a"), ("a", at(7, 5), PURCHASE), ("a", end, kind)]
    expected = "retained" if kind == PURCHASE else "involuntary"
    assert labels_of(log(*rows)) == {"a": expected}
