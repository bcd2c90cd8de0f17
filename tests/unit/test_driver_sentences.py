"""Driver sentences of every feature family, from case files; and what makes a reason.

A case file ``tests/fixtures/drivers/<module>.yml`` names the families it covers and
holds cases: a ``feature``, one customer's ``values``, the ``references`` training
recorded (per feature: ``typical``, ``quartiles``, ``constant``; for a categorical
feature ``categories`` as ``{category: [customers, churn rate]}`` and
``average_churn``) and the sentence the driver ``says`` (``null``: not a reason for
this customer). ``reason: false`` with a sentence checks the words of a feature that
is never offered as a reason. The wording comes from the families' own specs.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from churnkit.core.config import FeatureSettings
from churnkit.core.schema import (
    AMOUNT,
    CARD_EXPIRY,
    CUSTOMER_ID,
    EVENT,
    EVENT_SCHEMA,
    KIND,
    PLAN,
    QUANTITY,
    REASON,
    RELATED_CUSTOMER_ID,
    RELATION_KIND,
    RELATIONS_SCHEMA,
    SINCE,
    TRANSACTION_ID,
    TS,
    EventKind,
)
from churnkit.features import FAMILIES, FeatureSpec, compute_features
from churnkit.features.spec import Sentence, plural
from churnkit.model.card import CategoryChurn, FeatureNote
from churnkit.predict.sentences import Worded, voices

CASES = Path(__file__).parents[1] / "fixtures" / "drivers"
BY_NAME = {f.name: f for f in FAMILIES}


@pytest.fixture(scope="module")
def specs() -> dict[str, FeatureSpec]:
    """Every family's specs, from a tiny log that has every event kind and column."""
    day = datetime(2024, 1, 1)
    kinds = [k.value for k in EventKind]
    rows = 2 * len(kinds)
    events = pl.DataFrame(
        {
            CUSTOMER_ID: ["a", "b"] * len(kinds),
            TS: [day + timedelta(days=i) for i in range(rows)],
            AMOUNT: [10.0] * rows,
            KIND: [k for k in kinds for _ in range(2)],
            QUANTITY: [1.0] * rows,
            PLAN: ["basic", "pro"] * len(kinds),
            REASON: ["card_expired"] * rows,
            EVENT: ["login", "report_run"] * len(kinds),
            TRANSACTION_ID: [None] * rows,
            CARD_EXPIRY: [date(2025, 1, 1)] * rows,
            "Channel": ["web"] * rows,
            "Discount": ["1"] * rows,
        },
        schema_overrides=dict(EVENT_SCHEMA),
    ).lazy()
    relations = pl.DataFrame(
        {CUSTOMER_ID: ["a"], RELATED_CUSTOMER_ID: ["b"], RELATION_KIND: ["referral"], SINCE: [day]},
        schema=RELATIONS_SCHEMA,
    ).lazy()
    result = compute_features(
        events,
        day + timedelta(days=rows),
        settings=FeatureSettings(extra_numeric=["Discount"], extra_categorical=["Channel"]),
        relations=relations,
        active=events.select(CUSTOMER_ID).unique(),
    )
    return result.specs


def cases() -> list[Any]:
    params = []
    for path in sorted(CASES.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for name, case in doc["cases"].items():
            params.append(pytest.param(doc["families"], case, id=f"{path.stem}-{name}"))
    return params


def notes_for(specs: dict[str, FeatureSpec], references: dict[str, Any]) -> dict[str, FeatureNote]:
    notes = {n: FeatureNote.from_spec(s) for n, s in specs.items()}
    for name, ref in references.items():
        quartiles = ref.get("quartiles")
        categories = {
            c: CategoryChurn(customers=n, churn_rate=r)
            for c, (n, r) in (ref.get("categories") or {}).items()
        }
        notes[name] = replace(
            notes[name],
            typical=ref.get("typical"),
            quartiles=tuple(quartiles) if quartiles else None,
            constant=ref.get("constant", False),
            categories=categories,
            average_churn=ref.get("average_churn"),
        )
    return notes


def frame_of(values: dict[str, Any]) -> pl.DataFrame:
    schema = {k: pl.String if isinstance(v, str) else pl.Float64 for k, v in values.items()}
    return pl.DataFrame([values], schema=schema)


@pytest.mark.parametrize(("families", "case"), cases())
def test_driver_case(specs, families: list[str], case: dict[str, Any]) -> None:
    feature = case["feature"]
    owner = next(f.name for f in FAMILIES if f.declares(feature))
    assert owner in families, f"{feature} belongs to {owner}, not to this file's families"
    notes = notes_for(specs, case.get("references", {}))
    categorical = {n for n, s in specs.items() if s.kind == "categorical"}
    frame = frame_of(case["values"])
    voice = voices([feature], notes, {}, frame, categorical)[feature]
    assert isinstance(voice, Worded)
    expected = case["says"]
    reason = case.get("reason", expected is not None)
    assert voice.reasons(frame).tolist() == [reason]
    if expected is not None:
        assert voice.say(frame).to_list() == [expected]


def test_every_family_has_sentence_cases():
    covered = set()
    for path in CASES.glob("*.yml"):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        said = [c for c in doc["cases"].values() if c["says"] is not None]
        for family in doc["families"]:
            assert any(BY_NAME[family].declares(c["feature"]) for c in said), family
            covered.add(family)
    assert covered == set(BY_NAME)


def test_every_feature_says_what_it_counts(specs):
    for name, spec in specs.items():
        assert isinstance(spec.sentence, Sentence), name
        assert spec.description, name
        if spec.kind == "categorical":
            assert spec.sentence.reference == "category", name


def test_plurals_follow_the_regular_rules():
    words = ["login", "search", "box", "entry", "day", "report run", "refund"]
    assert [plural(w) for w in words] == [
        "logins",
        "searches",
        "boxes",
        "entries",
        "days",
        "report runs",
        "refunds",
    ]


def test_a_sentence_names_only_known_placeholders():
    with pytest.raises(ValueError, match="unknown placeholders"):
        Sentence("{value} of {customer}")
    with pytest.raises(ValueError, match="needs the column"):
        Sentence("{value}", reference="previous")
    with pytest.raises(ValueError, match="number format"):
        Sentence("{value}", number="g")


def test_sentences_round_trip_through_plain_data():
    sentence = Sentence("no {value}", noun="day", reference="usual", against="gap", alone="x")
    assert Sentence.from_dict(sentence.to_dict()) == sentence
    assert Sentence("a").to_dict() == {"text": "a"}


def test_many_rows_are_said_at_once(specs):
    """The same rules hold row by row in one vectorised pass."""
    notes = notes_for(specs, {"usage_login_30d": {"typical": 12, "quartiles": [5, 25]}})
    frame = pl.DataFrame(
        {
            "usage_login_trend": [-0.6, 0.0, 0.5, None],
            "usage_login_30d": [3.0, 0.0, 7.0, 1.0],
            "usage_login_prev_30d": [12.0, 0.0, 2.0, 2.0],
        }
    )
    voice = voices(["usage_login_trend"], notes, {}, frame, set())["usage_login_trend"]
    assert voice.reasons(frame).tolist() == [True, False, False, False]
    assert voice.say(frame).to_list()[:2] == [
        "3 logins in the last 30 days, down from 12 (typical customer: 12)",
        "0 logins in the last 30 days, down from 0 (typical customer: 12)",
    ]
