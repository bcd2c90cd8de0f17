"""What a feature means, how to say it to a retention manager, and which way is risky.

Specs travel with the feature frame (and the model card), so drivers can be put
into words long after the frame was computed.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]
RiskDirection = Literal["high", "low"]
# What a number measures, when drift checks must know: "days" (a duration, binned on
# whole days that never split a calendar period) or "ratio" (a dimensionless ratio of
# such durations, judged in steps of 0.2). See ``model.drift``.
Unit = Literal["days", "ratio"]


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature means and how to say it to a retention manager.

    ``sentence`` is a ``str.format`` template whose placeholders name columns of the
    same frame; clauses are separated by ``"; "`` so that a clause whose value is
    missing can be dropped (see ``render``). ``risk_when`` says which direction
    raises churn risk ("high": higher values are riskier), for sanity checks.
    ``unit`` tells drift checks how finely a difference matters (``Unit``).
    """

    name: str
    kind: FeatureKind
    description: str
    sentence: str
    risk_when: RiskDirection | None = None
    unit: Unit | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns the sentence reads."""
        names = (f for _, f, _, _ in string.Formatter().parse(self.sentence) if f)
        return tuple(dict.fromkeys(names))

    def render(self, values: Mapping[str, Any]) -> str | None:
        """The sentence with a customer's values; clauses with a missing value are
        dropped, and ``None`` is returned when nothing is left to say."""
        said = []
        for clause in self.sentence.split("; "):
            needed = [f for _, f, _, _ in string.Formatter().parse(clause) if f]
            if any(_missing(values.get(f)) for f in needed):
                continue
            said.append(clause.format_map(values))
        return "; ".join(said) or None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
