"""A feature family: a unit of features that share inputs, switched on by its needs.

The registry (``churnkit.features.families.FAMILIES``) lists the families in
column order; ``compute_features`` runs each one whose needs the layout meets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from churnkit.core.schema import EventKind
from churnkit.features.layout import FeatureLayout
from churnkit.features.query import FeatureQuery


@dataclass(frozen=True)
class Needs:
    """What a family needs beyond the required columns: every one of ``kinds`` and
    ``columns`` in the layout, a plan ranking (``plan_ranks``), a relations table."""

    kinds: tuple[EventKind, ...] = ()
    columns: tuple[str, ...] = ()
    plan_ranks: bool = False
    relations: bool = False

    def met(self, layout: FeatureLayout, *, relations: bool) -> bool:
        return (
            all(k.value in layout.kinds for k in self.kinds)
            and all(c in layout.columns for c in self.columns)
            and (bool(layout.plan_ranks) or not self.plan_ranks)
            and (relations or not self.relations)
        )


@dataclass(frozen=True)
class Family:
    """A registered unit of features.

    ``build`` adds the family's aggregations and features to the query.
    ``produces`` lists the names it may add: ``{w}`` and ``{n}`` stand for a
    number (a window in days, a suffix that keeps a name unique), any other
    ``{...}`` for a lower-case name fragment (a usage event, a source column).
    ``reads`` names features of earlier families its expressions use.
    """

    name: str
    needs: Needs
    produces: tuple[str, ...]
    build: Callable[[FeatureQuery], None]
    reads: tuple[str, ...] = ()

    def declares(self, feature: str) -> bool:
        """Whether ``feature`` is one of the names this family may add."""
        return any(p.fullmatch(feature) for p in _patterns(self.produces))


def _patterns(templates: tuple[str, ...]) -> list[re.Pattern[str]]:
    return [re.compile("".join(_part(p) for p in re.split(r"(\{[a-z]+\})", t))) for t in templates]


def _part(piece: str) -> str:
    if piece in ("{w}", "{n}"):
        return "[0-9]+"
    return "[0-9a-z_]+" if piece.startswith("{") else re.escape(piece)
