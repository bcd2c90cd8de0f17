"""Product usage: days since the last use, and for each of the top usage events
(``features.usage_top_events``) its quantity per 30-day window, the trend and
days since it was last used. A missing quantity counts one use."""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from churnkit.core.schema import EVENT, QUANTITY, TS, EventKind
from churnkit.features.family import Family, Needs
from churnkit.features.names import slug
from churnkit.features.query import LAST_USAGE, FeatureQuery, trend
from churnkit.features.spec import Sentence

_ts = pl.col(TS)


def build(q: FeatureQuery) -> None:
    q.add(
        q.days_since(LAST_USAGE),
        "days_since_last_usage",
        "days since the last product usage event",
        Sentence("no product use for {value}", noun="day"),
        "high",
        unit="days",
    )
    events = q.layout.usage_events
    for i, (event, base) in enumerate(zip(events, _bases(events), strict=True)):
        _event(q, i, event, base)


def _bases(events: tuple[str, ...]) -> list[str]:
    """``usage_<slug>`` per event, made unique where two events share a slug."""
    taken: list[str] = []
    for i, event in enumerate(events):
        base = f"usage_{slug(event)}"
        while base in taken:
            base = f"{base}_{i}"
        taken.append(base)
    return taken


def _event(q: FeatureQuery, i: int, event: str, base: str) -> None:
    qty = pl.col(QUANTITY).fill_null(1.0) if q.quantity else pl.lit(1.0)
    is_event = pl.col(EVENT) == event
    q.recent_usage_aggs += [
        pl.when(is_event & q.after(30)).then(qty).otherwise(0.0).sum().alias(f"_u{i}_30"),
        pl.when(is_event & q.band(30, 60)).then(qty).otherwise(0.0).sum().alias(f"_u{i}_p30"),
        pl.when(is_event).then(qty).otherwise(0.0).sum().alias(f"_u{i}_90"),
    ]
    q.usage_aggs.append(pl.when(is_event).then(_ts).max().alias(f"_u{i}_last"))
    cur = pl.col(f"_u{i}_30").fill_null(0.0)
    prev = pl.col(f"_u{i}_p30").fill_null(0.0)
    noun = _noun(event)
    window = Sentence(
        "{value} in the last 30 days",
        noun=noun,
        reference="previous",
        against=f"{base}_prev_30d",
    )
    q.add(cur, f"{base}_30d", f"{event} (usage) in the last 30 days", window, "low")
    q.add(
        prev,
        f"{base}_prev_30d",
        f"{event} (usage) 30 to 60 days ago",
        Sentence("{value} 30 to 60 days ago", noun=noun),
    )
    q.add(
        pl.col(f"_u{i}_90").fill_null(0.0),
        f"{base}_90d",
        f"{event} (usage) in the last 90 days",
        Sentence("{value} in the last 90 days", noun=noun),
        "low",
    )
    q.add(
        trend(cur, prev),
        f"{base}_trend",
        f"change in {event} usage, last 30 days vs the 30 before (-1 stopped, +1 new)",
        replace(window, value=f"{base}_30d"),
        "low",
    )
    q.add(
        q.days_since(f"_u{i}_last"),
        f"{base}_days_since",
        f"days since the last {event} (usage)",
        Sentence(f"no {_literal(noun)} for {{value}}", noun="day"),
        "high",
        unit="days",
    )


def _noun(event: str) -> str:
    """A usage event as the noun a sentence counts: ``report_run`` → "report run"."""
    return " ".join(event.replace("_", " ").split()) or event


def _literal(text: str) -> str:
    """Text from the data, safe inside a sentence template."""
    return text.replace("{", "{{").replace("}", "}}")


FAMILY = Family(
    name="usage",
    needs=Needs(kinds=(EventKind.USAGE,)),
    produces=(
        "days_since_last_usage",
        "usage_{event}_30d",
        "usage_{event}_prev_30d",
        "usage_{event}_90d",
        "usage_{event}_trend",
        "usage_{event}_days_since",
    ),
    build=build,
)
