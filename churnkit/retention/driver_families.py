"""Which feature family a driver comes from, and which churn kind such a driver speaks of.

A playbook rule may ask for the family of a customer's leading driver
(``leading_driver_family``), so the action follows the strongest reason. Families
are the registered feature families (``churnkit.features.families.FAMILIES``); a
feature belongs to the first family that declares its name.

Payment families (failed payments and their reasons, the card) speak of involuntary
churn: the customer did not decide to leave, a payment failed. A rule for
involuntary churners only must answer with payment drivers, and a rule for voluntary
churners only must not name them: a voluntary churner whose leading driver is the
card is not sent usage training (see ``playbook._check_fit``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable

from churnkit.features.families import FAMILIES

FAMILY_NAMES: tuple[str, ...] = tuple(f.name for f in FAMILIES)
PAYMENT_FAMILIES = frozenset({"failures", "failure_reasons", "card"})


def family_of(feature: str) -> str | None:
    """The family that declares ``feature`` (the first, in registry order), if any."""
    for family in FAMILIES:
        if family.declares(feature):
            return family.name
    return None


def families_of(features: Iterable[str]) -> dict[str, str | None]:
    """Each feature name's family (once per distinct name)."""
    return {name: family_of(name) for name in dict.fromkeys(features)}


def term_families(term: str, known: Collection[str]) -> set[str]:
    """The families a playbook term (a feature name or a glob such as ``usage_*``)
    can match, judged by the ``known`` feature names (which may be globs too)."""
    if not has_wildcard(term):
        found = family_of(term)
        return {found} if found else set()
    pattern = re.compile(glob_regex(term))
    out = set()
    for name in known:
        if pattern.match(name) or (has_wildcard(name) and re.match(glob_regex(name), term)):
            found = family_of(re.sub(r"[*?]", "x", name))
            if found:
                out.add(found)
    return out


def has_wildcard(term: str) -> bool:
    """Whether a feature term is a glob pattern (``usage_*``) rather than a name."""
    return "*" in term or "?" in term


def glob_regex(pattern: str) -> str:
    """A glob pattern as an anchored regular expression (``*``: any run, ``?``: one)."""
    body = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return f"^{body}$"


__all__ = [
    "FAMILY_NAMES",
    "PAYMENT_FAMILIES",
    "families_of",
    "family_of",
    "glob_regex",
    "has_wildcard",
    "term_families",
]
