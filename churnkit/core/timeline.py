"""The analysis date, the snapshot schedule and the one no-leakage gate.

Every feature and label function sees the event log only through
:func:`events_until` (what was known at a moment) and :func:`events_between`
(what happened in a label window). Keeping the time filter in one place is what
lets one property test protect the whole "training never sees the future" promise
of docs/contract.md.

All times are naive UTC ``datetime`` values at microsecond precision, like the
``ts`` column. A bare date stands for its whole day (``end_of_day``), so a cutoff
or an ``as_of`` is always the last microsecond of a day and windows such as
``(c, c + horizon]`` cover whole days.
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta

import polars as pl

from churnkit.core.errors import DataError, InsufficientHistoryError, UsageError
from churnkit.core.schema import TS

logger = logging.getLogger(__name__)

# A cutoff needs this much history before it to say anything about gaps, trends
# and tenure; earlier cutoffs would train the model on customers with no past.
MIN_HISTORY_DAYS = 60


def end_of_day(d: date) -> datetime:
    """The last microsecond of ``d``: a bare date means the whole day."""
    return datetime.combine(d, time(23, 59, 59, 999_999))


def naive_utc(t: datetime) -> datetime:
    """Compare like with like: ``ts`` is naive UTC, so aware datetimes are converted."""
    if t.tzinfo is None:
        return t
    return t.astimezone(UTC).replace(tzinfo=None)


def resolve_as_of(
    events: pl.LazyFrame, as_of: date | datetime | None, *, today: date | None = None
) -> datetime:
    """The analysis moment: an explicit datetime, the end of a given day, or the
    end of the last event's day when none is given.

    The default never lies past ``today`` (the UTC date unless given): a typo'd row
    dated 2099 must not make every customer look lapsed. An explicit later ``as_of``
    is the user's choice and is kept, with a warning. Raises ``DataError`` when there
    are no events at all, or none at or before ``as_of`` (every later step would be
    empty).
    """
    bounds = events.select(pl.col(TS).min().alias("first"), pl.col(TS).max().alias("last")).collect(
        engine="streaming"
    )
    first, last = bounds.row(0)
    if last is None:
        raise DataError(
            "the event log holds no events", hint="ingest a source with `churnkit ingest` first"
        )
    today = today or datetime.now(UTC).date()
    if as_of is None:
        resolved = end_of_day(min(last.date(), today))
        if last.date() > today:
            logger.warning(
                "events run to %s, after today; the default as-of is today (%s)",
                f"{last:%Y-%m-%d}",
                today,
            )
    elif isinstance(as_of, datetime):
        resolved = naive_utc(as_of)
    else:
        resolved = end_of_day(as_of)
    if as_of is not None and resolved.date() > today:
        logger.warning("as-of %s is after today (%s)", f"{resolved:%Y-%m-%d}", today)
    if resolved < first:
        raise DataError(
            f"no events at or before as-of {resolved:%Y-%m-%d}; the data starts {first:%Y-%m-%d}",
            hint="choose a later --as-of",
        )
    return resolved


def events_until(events: pl.LazyFrame, t: datetime) -> pl.LazyFrame:
    """Events known at ``t`` (``ts <= t``): the only view features and labels get of the past."""
    return events.filter(pl.col(TS) <= naive_utc(t))


def events_between(events: pl.LazyFrame, start: datetime, end: datetime) -> pl.LazyFrame:
    """Events in ``(start, end]``: the label window after a cutoff."""
    return events.filter((pl.col(TS) > naive_utc(start)) & (pl.col(TS) <= naive_utc(end)))


def label_gap_days(horizon: int, grace: int, step_days: int) -> int:
    """Days between the latest training cutoff and ``as_of``: ``horizon + grace``,
    rounded up to whole weeks when the snapshots step by whole weeks (see ``cutoffs``)."""
    gap = horizon + grace
    return -(-gap // 7) * 7 if step_days % 7 == 0 else gap


def cutoffs(
    as_of: datetime,
    *,
    horizon: int,
    grace: int,
    count: int,
    step_days: int,
    first_event: datetime,
    min_history_days: int = MIN_HISTORY_DAYS,
) -> list[datetime]:
    """The training snapshot schedule, in ascending order (the last one is the latest,
    used for out-of-time validation).

    The latest cutoff lies at least ``horizon + grace`` days before ``as_of``: a label
    may wait ``grace`` days after its window for a failed payment to be recovered, so
    every label stays computable from events at or before ``as_of``. When
    ``step_days`` is whole weeks, that distance is rounded up to whole weeks, so every
    cutoff falls on ``as_of``'s weekday: weekly exports (usage counts dated at the end
    of their week, weekly billing) are then seen at the same point of their week in
    training as at scoring, and features such as "days since the last usage" do not
    drift by the weekday alone. Earlier cutoffs follow every ``step_days``.
    Cutoffs with less than ``min_history_days`` of data before them are dropped.
    Raises ``InsufficientHistoryError`` (exit 3) when no cutoff remains.
    """
    for name, value, low in (
        ("horizon", horizon, 1),
        ("grace", grace, 0),
        ("count", count, 1),
        ("step_days", step_days, 1),
        ("min_history_days", min_history_days, 0),
    ):
        if value < low:
            raise UsageError(f"{name} must be at least {low}; got {value}")
    as_of = naive_utc(as_of)
    first_event = naive_utc(first_event)
    latest = as_of - timedelta(days=label_gap_days(horizon, grace, step_days))
    earliest = first_event + timedelta(days=min_history_days)
    schedule = [latest - timedelta(days=step_days * i) for i in range(count)]
    kept = sorted(c for c in schedule if c >= earliest)
    if not kept:
        span = (as_of - first_event).days
        gap = label_gap_days(horizon, grace, step_days)
        parts = f"{horizon} horizon + {grace} grace"
        if gap != horizon + grace:
            parts = f"{parts}, rounded up to {gap} (whole weeks)"
        raise InsufficientHistoryError(
            f"the data spans {span} days ({first_event:%Y-%m-%d} to {as_of:%Y-%m-%d}) but a "
            f"{horizon}-day horizon needs at least {gap + min_history_days} days "
            f"({parts} + {min_history_days} history)",
            hint=_history_hint(span, horizon, grace, step_days, min_history_days),
        )
    if len(kept) < count:
        logger.info(
            "%d of %d snapshot cutoffs kept; earlier ones have under %d days of history",
            len(kept),
            count,
            min_history_days,
        )
    return kept


def _history_hint(
    span: int, horizon: int, grace: int, step_days: int, min_history_days: int
) -> str:
    """What would make a schedule fit: a shorter horizon only when one would."""
    room = span - min_history_days
    longest = (room // 7 * 7 if step_days % 7 == 0 else room) - grace
    more = label_gap_days(horizon, grace, step_days) + min_history_days - span
    if longest >= 1:
        return f"use --horizon {longest} or shorter, or ingest at least {more} more days"
    least = label_gap_days(1, grace, step_days) + min_history_days
    weeks = ", in whole weeks," if step_days % 7 == 0 else ""
    return (
        f"ingest at least {more} more days of history (even a 1-day horizon needs {least} "
        f"days: 1 + {grace} grace{weeks} + {min_history_days} history)"
    )
