"""What a feature means, how to say it to a retention manager, and which way is risky.

Specs travel with the feature frame (and the model card), so drivers can be put
into words long after the frame was computed.

A driver must say what is unusual about a customer against a reference, so each
feature declares, besides its description, a :class:`Sentence`: the words around
its number, what the number counts (a noun with its plural, or a unit), and which
reference makes the number mean something:

- ``typical``: the typical customer, the training median ("2 failed payments in the
  last 30 days (typical customer: 0)");
- ``previous``: the customer's own previous window ("3 logins in the last 30 days,
  down from 14 (typical customer: 12)");
- ``usual``: another of the customer's own numbers, such as the usual gap between
  purchases ("no purchase for 74 days, 3.5x the usual gap of 21 days"); without it,
  the typical customer;
- ``category``: for a categorical feature, the churn rate of the customer's category
  against the average ("on the pro plan, where churn is 2.1x the average").

A signed number of days (days to the card's expiry) has its own words for the past
and for today ("card expired 30 days ago", "card expires today"). The renderer and
the rules that decide when a feature is a reason live in ``churnkit.predict.sentences``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

FeatureKind = Literal["numeric", "categorical"]
RiskDirection = Literal["high", "low"]
# What a number measures, when drift checks must know: "days" (a duration, binned on
# whole days that never split a calendar period) or "ratio" (a dimensionless ratio of
# such durations, judged in steps of 0.2). See ``model.drift``.
Unit = Literal["days", "ratio"]

Reference = Literal["typical", "previous", "usual", "category"]
REFERENCES: tuple[Reference, ...] = ("typical", "previous", "usual", "category")

# Placeholders a sentence's texts may hold.
PLACEHOLDERS = frozenset({"value", "reference", "times"})
_NUMBER = re.compile(r"^,?(?:\.\d+)?[f%]$")


def plural(noun: str) -> str:
    """A noun's plural by the regular English rules: "login" → "logins", "search" →
    "searches", "entry" → "entries". Irregular nouns name their plural themselves."""
    if re.search(r"(s|x|z|ch|sh)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


@dataclass(frozen=True)
class Sentence:
    """How a driver sentence speaks of a feature (see the module docstring).

    ``text`` holds ``{value}`` (the number with its noun, e.g. "3 logins"), and for a
    ``usual`` reference ``{reference}`` (the customer's own reference, with its noun)
    and ``{times}`` (value / reference, "3.5"). ``noun`` is what the number counts
    (singular; ``plural`` when not regular), ``number`` its format (``.0f`` whole
    numbers, ``,.2f`` money, ``.0%`` a share). ``against`` names the column of the
    customer's own reference; ``value`` the column spoken of when it is not the feature
    itself (a trend speaks of its window's count). ``alone`` is said when a ``usual``
    reference is missing; ``past`` and ``today`` make the number a signed count of
    days (negative: in the past).
    """

    text: str
    noun: str | None = None
    plural: str | None = None
    number: str = ".0f"
    reference: Reference = "typical"
    against: str | None = None
    value: str | None = None
    alone: str | None = None
    past: str | None = None
    today: str | None = None

    def __post_init__(self) -> None:
        if self.reference not in REFERENCES:
            raise ValueError(f"reference {self.reference!r} is not one of {list(REFERENCES)}")
        if self.reference in ("previous", "usual") and not self.against:
            raise ValueError(f"a {self.reference!r} reference needs the column it is against")
        if not _NUMBER.match(self.number):
            raise ValueError(f"number format {self.number!r} is not like '.0f', ',.2f' or '.0%'")
        for text in (self.text, self.alone, self.past, self.today):
            unknown = set(_fields(text or "")) - PLACEHOLDERS
            if unknown:
                raise ValueError(f"sentence {text!r} names unknown placeholders {sorted(unknown)}")

    @property
    def nouns(self) -> tuple[str, str]:
        """The noun's singular and plural forms ("" when the number stands alone)."""
        if self.noun is None:
            return "", ""
        return self.noun, self.plural or plural(self.noun)

    def to_dict(self) -> dict[str, Any]:
        """The sentence as plain data, without the fields left at their defaults."""
        defaults = Sentence(text="")
        return {k: v for k, v in asdict(self).items() if k == "text" or v != getattr(defaults, k)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sentence:
        """A sentence from ``to_dict``'s form; ValueError on unknown or mistyped keys."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown sentence keys {sorted(unknown)}")
        for key, value in data.items():
            if not isinstance(value, str):
                raise TypeError(f"sentence key {key!r} must be text, got {value!r}")
        return cls(**data)


@dataclass(frozen=True)
class FeatureSpec:
    """What a feature means and how to say it to a retention manager.

    ``sentence`` says how a driver speaks of it (see :class:`Sentence`); ``risk_when``
    says which direction raises churn risk ("high": higher values are riskier). A
    numeric feature without a direction is never offered as a reason: a level with
    no risky side ("average purchase 219.58") explains nothing. ``unit`` tells drift
    checks how finely a difference matters (``Unit``).
    """

    name: str
    kind: FeatureKind
    description: str
    sentence: Sentence
    risk_when: RiskDirection | None = None
    unit: Unit | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        """Columns the sentence reads."""
        said = [self.sentence.value or self.name, self.sentence.against]
        return tuple(dict.fromkeys(c for c in said if c))


def _fields(text: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
