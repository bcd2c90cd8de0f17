"""The as-of date, the time filters and the snapshot schedule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from churnkit.core.errors import DataError, ExitCode, InsufficientHistoryError, UsageError
from churnkit.core.schema import CUSTOMER_ID, TS
from churnkit.core.timeline import (
    MIN_HISTORY_DAYS,
    cutoffs,
    end_of_day,
    events_between,
    events_until,
    resolve_as_of,
)


def _log(*stamps: datetime) -> pl.LazyFrame:
    return pl.DataFrame(
        {CUSTOMER_ID: [f"c{i}" for i in range(len(stamps))], TS: list(stamps)},
        schema={CUSTOMER_ID: pl.String, TS: pl.Datetime("us")},
    ).lazy()


def test_end_of_day_is_the_last_microsecond() -> None:
    assert end_of_day(date(2024, 2, 29)) == datetime(2024, 2, 29, 23, 59, 59, 999_999)


def test_as_of_defaults_to_the_end_of_the_last_event_day() -> None:
    log = _log(datetime(2024, 1, 3, 8), datetime(2024, 3, 9, 14, 30))
    assert resolve_as_of(log, None) == datetime(2024, 3, 9, 23, 59, 59, 999_999)


def test_default_as_of_never_lies_past_today() -> None:
    log = _log(datetime(2025, 3, 1, 8), datetime(2099, 12, 31, 9))  # a typo'd year
    assert resolve_as_of(log, None, today=date(2025, 3, 10)) == end_of_day(date(2025, 3, 10))
    assert resolve_as_of(log, None, today=date(2100, 1, 5)) == end_of_day(date(2099, 12, 31))


def test_an_explicit_as_of_after_today_is_kept() -> None:
    log = _log(datetime(2025, 3, 1, 8))
    later = resolve_as_of(log, date(2025, 6, 1), today=date(2025, 3, 10))
    assert later == end_of_day(date(2025, 6, 1))


def test_a_bare_date_means_the_whole_day_and_a_datetime_is_kept() -> None:
    log = _log(datetime(2024, 1, 3, 8))
    assert resolve_as_of(log, date(2024, 2, 1)) == end_of_day(date(2024, 2, 1))
    assert resolve_as_of(log, datetime(2024, 2, 1, 6)) == datetime(2024, 2, 1, 6)


def test_an_aware_as_of_is_converted_to_naive_utc() -> None:
    log = _log(datetime(2024, 1, 3, 8))
    paris = timezone(timedelta(hours=1))
    assert resolve_as_of(log, datetime(2024, 2, 1, 6, tzinfo=paris)) == datetime(2024, 2, 1, 5)
    assert resolve_as_of(log, datetime(2024, 2, 1, 6, tzinfo=UTC)) == datetime(2024, 2, 1, 6)


def test_no_events_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no events") as info:
        resolve_as_of(_log(), None)
    assert info.value.exit_code == ExitCode.DATA


def test_as_of_before_the_first_event_is_a_data_error() -> None:
    with pytest.raises(DataError, match="data starts 2024-01-03"):
        resolve_as_of(_log(datetime(2024, 1, 3, 8)), date(2023, 12, 31))


def test_events_until_includes_the_cutoff_and_nothing_after() -> None:
    t = datetime(2024, 1, 2, 12)
    log = _log(t - timedelta(microseconds=1), t, t + timedelta(microseconds=1))
    kept = events_until(log, t).collect()
    assert kept[CUSTOMER_ID].to_list() == ["c0", "c1"]


def test_events_between_excludes_the_start_and_includes_the_end() -> None:
    start, end = (
        datetime(2024, 1, 1, 23, 59, 59, 999_999),
        datetime(2024, 1, 31, 23, 59, 59, 999_999),
    )
    log = _log(start, start + timedelta(microseconds=1), end, end + timedelta(microseconds=1))
    assert_frame_equal(events_between(log, start, end).collect(), log.collect()[1:3])


AS_OF = end_of_day(date(2024, 12, 31))
FIRST = datetime(2022, 1, 1)


def test_the_latest_cutoff_leaves_room_for_horizon_and_grace() -> None:
    schedule = cutoffs(AS_OF, horizon=90, grace=14, count=3, step_days=30, first_event=FIRST)
    latest = AS_OF - timedelta(days=104)
    assert schedule == [latest - timedelta(days=60), latest - timedelta(days=30), latest]
    assert all(c == end_of_day(c.date()) for c in schedule)


def test_weekly_steps_keep_every_cutoff_on_the_as_of_weekday() -> None:
    """Weekly usage rows dated at week ends are then seen at the same point of their
    week in training as at scoring (a 104-day gap once made "days since the last
    usage" drift by the weekday alone)."""
    schedule = cutoffs(AS_OF, horizon=90, grace=14, count=3, step_days=28, first_event=FIRST)
    assert schedule[-1] == AS_OF - timedelta(days=105)
    assert {c.weekday() for c in schedule} == {AS_OF.weekday()}


def test_cutoffs_with_too_little_history_are_dropped() -> None:
    first = AS_OF - timedelta(days=104 + MIN_HISTORY_DAYS + 45)
    schedule = cutoffs(AS_OF, horizon=90, grace=14, count=6, step_days=30, first_event=first)
    assert len(schedule) == 2
    assert all(c - first >= timedelta(days=MIN_HISTORY_DAYS) for c in schedule)


def test_too_short_data_raises_insufficient_history_with_exit_3() -> None:
    first = AS_OF - timedelta(days=100)
    with pytest.raises(InsufficientHistoryError) as info:
        cutoffs(AS_OF, horizon=90, grace=14, count=6, step_days=30, first_event=first)
    error = info.value
    assert error.exit_code == ExitCode.DATA
    assert "spans 100 days" in error.message
    assert "90-day horizon needs at least 164 days" in error.message
    assert error.hint is not None and "--horizon" in error.hint


def test_nonsense_schedule_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="count"):
        cutoffs(AS_OF, horizon=90, grace=14, count=0, step_days=30, first_event=FIRST)


@given(
    horizon=st.integers(1, 400),
    grace=st.integers(0, 60),
    count=st.integers(1, 12),
    step=st.integers(1, 90),
    history=st.integers(0, 2000),
)
def test_every_cutoff_leaves_the_label_window_inside_the_data(
    horizon: int, grace: int, count: int, step: int, history: int
) -> None:
    first = AS_OF - timedelta(days=history)
    try:
        schedule = cutoffs(
            AS_OF, horizon=horizon, grace=grace, count=count, step_days=step, first_event=first
        )
    except InsufficientHistoryError:
        assert history < horizon + grace + MIN_HISTORY_DAYS
        return
    assert 1 <= len(schedule) <= count
    assert schedule == sorted(set(schedule))
    assert all(c <= AS_OF - timedelta(days=horizon + grace) for c in schedule)
    assert all(c >= first + timedelta(days=MIN_HISTORY_DAYS) for c in schedule)
