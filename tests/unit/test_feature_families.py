"""Each feature family on tiny logs, from case files; and the registry's contract.

A case file ``tests/fixtures/features/<module>.yml`` names the families it covers
(``families``) and holds cases, each with an event log (``events``: rows of
canonical columns; other keys become string source columns), a ``cutoff`` date
(its end of day), optional ``settings`` (``features`` section), ``relations``,
``active`` customers and ``without`` (canonical columns the log lacks), and the
``expected`` features of those families per customer, worked out by hand, and
``customer_base`` (BG/NBD parameters; fitted on the log when absent). Every
customer in the frame is listed, with every feature the families produced (an
empty mapping when the families are off).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from churnkit.core.config import FeatureSettings
from churnkit.core.schema import (
    CARD_EXPIRY,
    CUSTOMER_ID,
    EVENT_SCHEMA,
    KIND,
    RELATED_CUSTOMER_ID,
    RELATION_KIND,
    RELATIONS_SCHEMA,
    SINCE,
    TS,
    EventKind,
)
from churnkit.core.timeline import end_of_day
from churnkit.features import (
    FAMILIES,
    Family,
    FeatureLayout,
    FeatureQuery,
    FeatureSet,
    Needs,
    build_families,
    compute_features,
    feature_layout,
)
from churnkit.population.customer_base import CustomerBaseParams

CASES = Path(__file__).parents[1] / "fixtures" / "features"
BY_NAME = {f.name: f for f in FAMILIES}


def moment(value: Any) -> datetime:
    """A YAML timestamp, date (midnight) or ISO string (``2024-06-01 12:00``)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return datetime.fromisoformat(str(value))


def day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def event_log(rows: list[dict[str, Any]], without: list[str]) -> pl.LazyFrame:
    """Canonical events (unset columns null, ``without`` dropped) plus any other
    keys as string source columns."""
    extras = sorted({k for r in rows for k in r} - set(EVENT_SCHEMA))
    schema = {**EVENT_SCHEMA, **{name: pl.String() for name in extras}}
    records = []
    for r in rows:
        record = {c: r.get(c) for c in schema}
        record[TS] = moment(r[TS])
        record[KIND] = r.get(KIND, EventKind.PURCHASE.value)
        record["amount"] = float(r.get("amount", 0.0))
        if record[CARD_EXPIRY] is not None:
            record[CARD_EXPIRY] = day(record[CARD_EXPIRY])
        for name in extras:
            record[name] = None if r.get(name) is None else str(r[name])
        records.append(record)
    return pl.DataFrame(records, schema=schema).drop(without).lazy()


def relations_table(ties: list[dict[str, Any]]) -> pl.LazyFrame:
    rows = [
        {
            CUSTOMER_ID: t[CUSTOMER_ID],
            RELATED_CUSTOMER_ID: t[RELATED_CUSTOMER_ID],
            RELATION_KIND: t.get(RELATION_KIND, "referral"),
            SINCE: None if t.get(SINCE) is None else moment(t[SINCE]),
        }
        for t in ties
    ]
    return pl.DataFrame(rows, schema=RELATIONS_SCHEMA).lazy()


def run(case: dict[str, Any]) -> tuple[FeatureSet, dict[str, dict[str, Any]]]:
    events = event_log(case["events"], case.get("without", []))
    kwargs: dict[str, Any] = {}
    if "relations" in case:
        kwargs["relations"] = relations_table(case["relations"])
    if "active" in case:
        kwargs["active"] = pl.DataFrame(
            {CUSTOMER_ID: case["active"]}, schema={CUSTOMER_ID: pl.String}
        ).lazy()
    if "customer_base" in case:
        fitted = {"customers": 0, "log_likelihood": 0.0, "converged": True}
        kwargs["customer_base"] = CustomerBaseParams(**fitted, **case["customer_base"])
    settings = FeatureSettings(**case.get("settings", {}))
    result = compute_features(events, end_of_day(day(case["cutoff"])), settings=settings, **kwargs)
    rows = result.frame.collect().iter_rows(named=True)
    return result, {r[CUSTOMER_ID]: r for r in rows}


def cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, case in doc["cases"].items():
            params.append(pytest.param(doc["families"], case, id=f"{path.stem}-{name}"))
    return params


def same(got: Any, want: Any) -> bool:
    if want is None or isinstance(want, str):
        return bool(got == want)
    return got is not None and got == pytest.approx(float(want), abs=1e-6, nan_ok=True)


@pytest.mark.parametrize(("families", "case"), cases())
def test_family_case(families: list[str], case: dict[str, Any]) -> None:
    assert set(families) <= set(BY_NAME), "a case file names an unknown family"
    result, got = run(case)
    produced = [n for f in families for n in result.families.get(f, ())]
    expected: dict[str, dict[str, Any]] = case["expected"]
    assert sorted(got) == sorted(expected), "customers in the frame"
    for customer, want in expected.items():
        assert sorted(want) == sorted(produced), f"features listed for {customer}"
        wrong = {n: (got[customer][n], v) for n, v in want.items() if not same(got[customer][n], v)}
        assert not wrong, f"{customer}: (got, expected) {wrong}"


def test_every_family_has_at_least_two_cases() -> None:
    counted = dict.fromkeys(BY_NAME, 0)
    for param in cases():
        families, case = param.values
        result, _ = run(case)
        for name in families:
            counted[name] += name in result.families
    assert {n: c for n, c in counted.items() if c < 2} == {}


# --- the registry's contract ---------------------------------------------------------

CUTOFF = end_of_day(date(2024, 6, 30))


def ev(customer: str, month: int, day_: int, kind: str = "purchase", **cols: Any) -> dict[str, Any]:
    """An event at noon in 2024."""
    return {CUSTOMER_ID: customer, TS: datetime(2024, month, day_, 12), KIND: kind, **cols}


# Every kind and optional column, two extra columns and a relations table: every
# family has what it needs.
FULL_LOG = event_log(
    [
        ev("a", 1, 5, "signup"),
        ev("a", 1, 6, amount=10, plan="basic", Discount="5", Channel="web"),
        ev("a", 2, 6, amount=30, plan="pro", card_expiry=date(2025, 1, 1)),
        ev("a", 3, 1, "plan_change", plan="basic"),
        ev("a", 3, 6, amount=12, plan="basic"),
        ev("a", 4, 1, "payment_failed", reason="card expired"),
        ev("a", 4, 2, "complaint"),
        ev("a", 4, 3, "refund", amount=-5),
        ev("a", 5, 1, "usage", event="login", quantity=2),
        ev("b", 5, 2, amount=10, plan="basic"),
        ev("b", 6, 2, "cancel"),
        ev("b", 6, 3, "other"),
    ],
    without=[],
)
FULL_RELATIONS = relations_table([{CUSTOMER_ID: "a", RELATED_CUSTOMER_ID: "b"}])
FULL_SETTINGS = FeatureSettings(extra_numeric=["Discount"], extra_categorical=["Channel"])
FULL_LAYOUT = feature_layout(FULL_LOG, CUTOFF, FULL_SETTINGS)


def full(layout: FeatureLayout = FULL_LAYOUT, *, relations: bool = True) -> FeatureSet:
    return compute_features(
        FULL_LOG,
        CUTOFF,
        settings=FULL_SETTINGS,
        layout=layout,
        relations=FULL_RELATIONS if relations else None,
    )


def test_families_have_distinct_names_and_declare_what_they_need_and_make() -> None:
    names = [f.name for f in FAMILIES]
    assert len(set(names)) == len(names)
    assert all(isinstance(f.needs, Needs) and f.produces for f in FAMILIES)
    templates = [t for f in FAMILIES for t in f.produces]
    assert len(set(templates)) == len(templates)


def test_with_everything_each_family_runs_and_adds_only_names_it_declares() -> None:
    result = full()
    assert list(result.families) == [f.name for f in FAMILIES]
    assert all(result.families.values())
    undeclared = [
        (name, n)
        for name, added in result.families.items()
        for n in added
        if not BY_NAME[name].declares(n)
    ]
    assert undeclared == []
    # Registry order is column order.
    in_order = [n for added in result.families.values() for n in added]
    assert in_order == list(result.specs)
    assert result.frame.collect().columns == [CUSTOMER_ID, *in_order]


def test_no_two_families_add_the_same_feature_name() -> None:
    active = FULL_LOG.select(CUSTOMER_ID).unique()
    q = FeatureQuery(
        CUTOFF,
        FULL_LAYOUT,
        FULL_SETTINGS,
        FULL_LOG.collect_schema(),
        relations=FULL_RELATIONS,
        active=active,
    )
    added = build_families(q)
    features = [n for names in added.values() for n in names]
    assert len(set(features)) == len(features)
    # A name added twice would replace the first spec and leave two expressions.
    assert len(q.features) + len(q.derived) + len(q.late) == len(q.specs)


def needs_of(family: Family) -> list[tuple[str, str]]:
    needs = family.needs
    return [
        *(("kind", k.value) for k in needs.kinds),
        *(("column", c) for c in needs.columns),
        *([("plan_ranks", "")] if needs.plan_ranks else []),
        *([("relations", "")] if needs.relations else []),
    ]


def without(layout: FeatureLayout, what: str, value: str) -> FeatureLayout:
    if what == "kind":
        return replace(layout, kinds=tuple(k for k in layout.kinds if k != value))
    if what == "column":
        return replace(layout, columns=tuple(c for c in layout.columns if c != value))
    if what == "plan_ranks":
        return replace(layout, plan_ranks=())
    return layout


@pytest.mark.parametrize(
    ("family", "need"),
    [pytest.param(f, n, id=f"{f.name}-{n[0]}-{n[1]}") for f in FAMILIES for n in needs_of(f)],
)
def test_a_family_is_off_when_any_one_of_its_needs_is_missing(
    family: Family, need: tuple[str, str]
) -> None:
    result = full(without(FULL_LAYOUT, *need), relations=need[0] != "relations")
    assert family.name not in result.families
    assert result.frame.collect().height == 2  # the other families still compute


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_a_family_runs_on_just_what_it_needs(family: Family) -> None:
    needs = family.needs
    layout = replace(
        FULL_LAYOUT,
        kinds=tuple(k.value for k in needs.kinds),
        columns=needs.columns,
        plan_ranks=FULL_LAYOUT.plan_ranks if needs.plan_ranks else (),
    )
    result = full(layout, relations=needs.relations)
    assert family.name in result.families
    assert set(result.families[family.name]) <= set(result.frame.collect().columns)


def implied(weaker: Needs, stronger: Needs) -> bool:
    """Whether every layout meeting ``stronger`` also meets ``weaker``."""
    return (
        set(weaker.kinds) <= set(stronger.kinds)
        and set(weaker.columns) <= set(stronger.columns)
        and (stronger.plan_ranks or not weaker.plan_ranks)
        and (stronger.relations or not weaker.relations)
    )


def test_features_a_family_reads_come_from_an_earlier_family_that_runs_with_it() -> None:
    for i, family in enumerate(FAMILIES):
        for name in family.reads:
            makers = [f for f in FAMILIES[:i] if f.declares(name)]
            assert makers, (family.name, name)
            assert all(implied(m.needs, family.needs) for m in makers), (family.name, name)
