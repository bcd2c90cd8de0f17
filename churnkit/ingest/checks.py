"""Doubts about a source that are not row errors: said out loud, never fatal.

- Two columns with the same header, when ingest would use that name, are an error (a
  silent pick would corrupt every later step); unused repeated headers are kept.
- A column that looks like a status (a few distinct words) but is not mapped is counted
  and reported: an ignored status would count refunds as purchases.
- A last day with far fewer events than usual suggests an export cut mid-day.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import polars as pl

from churnkit.core import schema as s
from churnkit.core.errors import DataError
from churnkit.ingest.columns import SYNONYMS, normalise
from churnkit.ingest.parsing import DEFAULT_STATUS_MAP, normalised_status

STATUS_WORDS = frozenset(DEFAULT_STATUS_MAP) | {
    "pending", "voided", "void", "authorized", "partially_refunded", "refunded", "active",
    "trialing", "past_due", "unpaid", "open", "draft", "processing", "on_hold", "fulfilled",
    "unfulfilled", "partial", "in_trial", "non_renewing", "paused", "declined", "expired",
}  # fmt: skip
_STATUS_HEADER = ("status", "state", "outcome", "result", "type", "stage")
MAX_STATUS_VALUES = 20
THIN_DAY_SHARE = 0.25
THIN_DAY_MIN_USUAL = 20


def repeated_headers(headers: Sequence[str], used: Iterable[str], *, source: str) -> list[str]:
    """Headers written more than once; an error when ingest would read that name."""
    counts = Counter(headers)
    repeated = [h for h, n in counts.items() if n > 1]
    wanted = set(used) | {h for h in repeated if _could_be_canonical(h)}
    for header in repeated:
        if header in wanted:
            positions = [str(i + 1) for i, h in enumerate(headers) if h == header]
            raise DataError(
                f"{source}: columns {' and '.join(positions)} are both named {header!r}",
                hint="rename one of them in the export, or map the canonical column to "
                "another one with --map",
            )
    return repeated


def _could_be_canonical(header: str) -> bool:
    name = normalise(header)
    return any(name == normalise(c) or name in names for c, names in SYNONYMS.items())


def status_like(sample: pl.DataFrame, candidates: Sequence[str]) -> list[str]:
    """Unmapped text columns with a few distinct words, named like a status or holding
    status words (paid, refunded, pending, ...)."""
    found = []
    for column in candidates:
        if column not in sample.columns or sample[column].dtype != pl.String:
            continue
        values = sample[column].drop_nulls().str.strip_chars()
        values = values.filter(values != "")
        distinct = values.unique()
        if not 2 <= distinct.len() <= MAX_STATUS_VALUES or values.len() < 3:
            continue
        words = int(distinct.str.contains(r"^[A-Za-z][A-Za-z _\-]{1,30}$").sum())
        if words < 0.9 * distinct.len():
            continue
        named = any(w in column.lower() for w in _STATUS_HEADER)
        vocabulary = (
            distinct.to_frame("v")
            .select(normalised_status(pl.col("v")).is_in(list(STATUS_WORDS)).any())
            .item()
        )
        if named or vocabulary:
            found.append(column)
    return found


def thin_last_day(events: pl.LazyFrame) -> str | None:
    """A warning when the last day holds far fewer events than the usual day of the four
    weeks before it (an export cut mid-day would bias every recency)."""
    daily = (
        events.group_by(pl.col(s.TS).dt.date().alias("day"))
        .len()
        .sort("day")
        .tail(29)
        .collect(engine="streaming")
    )
    if daily.height < 8:
        return None
    last_day, last = daily.row(-1)
    usual = float(daily.head(daily.height - 1).select(pl.col("len").median()).item() or 0.0)
    if usual < THIN_DAY_MIN_USUAL or last >= THIN_DAY_SHARE * usual:
        return None
    return (
        f"the last day in the data ({last_day}) holds {last:,} events against a usual "
        f"{usual:,.0f} a day: the export may have been cut mid-day; analyse up to the day "
        f"before with --as-of"
    )
