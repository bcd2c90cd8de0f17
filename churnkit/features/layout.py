"""What the data offers at a cutoff: the event kinds, optional columns and usage
events that decide which feature families exist.

Training derives the layout once and passes it to every snapshot, and the model
keeps it, so training and scoring frames have the same columns.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from churnkit.core.config import FeatureSettings
from churnkit.core.schema import AMOUNT, CARD_EXPIRY, EVENT, KIND, PLAN, REASON, EventKind
from churnkit.core.timeline import events_until

logger = logging.getLogger(__name__)

# Optional canonical columns whose presence switches feature families on (a
# missing usage quantity counts one use, so quantity switches nothing).
OPTIONAL_COLUMNS = (PLAN, REASON, EVENT, CARD_EXPIRY)

_kind = pl.col(KIND)
_is_purchase = _kind == EventKind.PURCHASE.value
_is_usage = _kind == EventKind.USAGE.value


@dataclass(frozen=True)
class FeatureLayout:
    """What the data offers, decided from events up to a cutoff.

    Fixing it for every snapshot of a training run (and for scoring) keeps the
    feature columns identical across frames. ``plan_ranks`` orders plans by their
    average purchase amount (1 = cheapest) to tell downgrades from upgrades.
    """

    kinds: tuple[str, ...]
    columns: tuple[str, ...]
    usage_events: tuple[str, ...] = ()
    plan_ranks: tuple[tuple[str, int], ...] = ()
    extra_numeric: tuple[str, ...] = ()
    extra_categorical: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the model card."""
        return {
            "kinds": list(self.kinds),
            "columns": list(self.columns),
            "usage_events": list(self.usage_events),
            "plan_ranks": dict(self.plan_ranks),
            "extra_numeric": list(self.extra_numeric),
            "extra_categorical": list(self.extra_categorical),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureLayout:
        return cls(
            kinds=tuple(data["kinds"]),
            columns=tuple(data["columns"]),
            usage_events=tuple(data.get("usage_events", ())),
            plan_ranks=tuple((str(p), int(r)) for p, r in dict(data.get("plan_ranks", {})).items()),
            extra_numeric=tuple(data.get("extra_numeric", ())),
            extra_categorical=tuple(data.get("extra_categorical", ())),
        )


def feature_layout(
    events: pl.LazyFrame, cutoff: datetime, settings: FeatureSettings
) -> FeatureLayout:
    """Inspect the events up to ``cutoff``: kinds present, optional columns that hold
    any value, the most frequent usage events and the plans' price ranks.

    ``plan`` counts as present when purchases carry one (plans are ranked by their
    average purchase amount), ``event`` when usage rows name one.
    """
    ev = events_until(events, cutoff)
    names = set(ev.collect_schema().names())
    # A column may be read both as a number and as a category: look at it once.
    extras = list(dict.fromkeys([*settings.extra_numeric, *settings.extra_categorical]))
    for col in extras:
        if col not in names:
            logger.warning("configured extra column %r is not in the data; skipped", col)
    candidates = [c for c in (REASON, CARD_EXPIRY, *extras) if c in names]
    with_events = EVENT in names and settings.usage_top_events > 0
    queries = _queries(
        ev, candidates, settings.usage_top_events if with_events else 0, PLAN in names
    )
    first, *rest = pl.collect_all(queries, engine="streaming")
    kind_seen = set(first["kind"].explode().drop_nulls().to_list())
    kinds = tuple(k.value for k in EventKind if k.value in kind_seen)
    filled = {c for c in candidates if first[c].item()}
    usage_events = tuple(rest.pop(0)[EVENT].to_list()) if with_events else ()
    if EventKind.USAGE.value not in kinds:
        usage_events = ()
    plans = rest.pop(0)[PLAN].to_list() if PLAN in names else []
    filled |= {PLAN} if plans else set()
    filled |= {EVENT} if usage_events else set()
    return FeatureLayout(
        kinds=kinds,
        columns=tuple(c for c in OPTIONAL_COLUMNS if c in filled),
        usage_events=usage_events,
        plan_ranks=tuple((p, i + 1) for i, p in enumerate(plans)),
        extra_numeric=tuple(c for c in dict.fromkeys(settings.extra_numeric) if c in filled),
        extra_categorical=tuple(
            c for c in dict.fromkeys(settings.extra_categorical) if c in filled
        ),
    )


def _queries(
    ev: pl.LazyFrame, candidates: list[str], top_events: int, with_plan: bool
) -> list[pl.LazyFrame]:
    """The kinds seen and which ``candidates`` hold a value; the ``top_events`` most
    frequent usage events (when positive); the plans by average purchase amount."""
    presence = [pl.col(c).is_not_null().any().alias(c) for c in candidates]
    queries = [ev.select(_kind.unique().cast(pl.String).implode().alias("kind"), *presence)]
    if top_events:
        queries.append(
            ev.filter(_is_usage & pl.col(EVENT).is_not_null())
            .group_by(EVENT)
            .agg(pl.len().alias("n"))
            .sort(["n", EVENT], descending=[True, False])
            .head(top_events)
        )
    if with_plan:
        queries.append(
            ev.filter(_is_purchase & pl.col(PLAN).is_not_null())
            .group_by(PLAN)
            .agg(pl.col(AMOUNT).mean().alias("price"))
            .sort(["price", PLAN])
        )
    return queries
