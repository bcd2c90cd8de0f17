"""explain: drivers are the features that raise risk and are unusual, said as plain
sentences; computed in chunks on every core with the same result."""

from __future__ import annotations

import math
import re
import string
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import FeatureSettings, LightGBMParams
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, KIND_DTYPE, REASON, TS
from churnkit.features import FeatureSpec, compute_features
from churnkit.features.spec import Sentence
from churnkit.model.card import CategoryChurn, FeatureNote, TrainingRecord
from churnkit.model.lightgbm import ChurnModel
from churnkit.predict.drivers import (
    NO_DRIVER,
    driver_sentences,
    format_series,
    render_template,
    risk_contributions,
    top_drivers,
)
from churnkit.predict.explain import driver_rows, estimate_line, explain, unknown_ids
from churnkit.predict.sentences import Templated, voices

CUTOFF = datetime(2026, 6, 30, 23, 59, 59, 999999)


def _events() -> pl.LazyFrame:
    """Three customers a retention manager could describe by hand:

    - ``overdue`` bought every 21 days until 74 days (and 6 hours) before the cutoff;
    - ``failing`` pays monthly and had two payments fail on an expired card this month;
    - ``newcomer`` bought once, 10 days ago.
    """
    rows: list[tuple[str, datetime, float, str, str | None]] = []
    last = CUTOFF - timedelta(days=74, hours=6)
    rows += [("overdue", last - timedelta(days=21 * i), 30.0, "purchase", None) for i in range(6)]
    rows += [
        ("failing", CUTOFF - timedelta(days=35 + 30 * i), 49.0, "purchase", None) for i in range(6)
    ]
    rows += [
        ("failing", CUTOFF - timedelta(days=d), 0.0, "payment_failed", "card_expired")
        for d in (6, 2)
    ]
    rows.append(("newcomer", CUTOFF - timedelta(days=10), 1234.5, "purchase", None))
    return (
        pl.DataFrame(
            rows,
            schema={
                CUSTOMER_ID: pl.String,
                TS: pl.Datetime("us"),
                AMOUNT: pl.Float64,
                KIND: pl.String,
                REASON: pl.String,
            },
            orient="row",
        )
        .with_columns(pl.col(KIND).cast(KIND_DTYPE))
        .lazy()
    )


# What training would have recorded about the typical customer.
TYPICAL = {
    "recency_days": (20.0, (8.0, 40.0)),
    "tenure_days": (400.0, (120.0, 700.0)),
    "revenue_total": (480.0, (150.0, 1200.0)),
    "failed_payments_30d": (0.0, (0.0, 0.0)),
    "failed_card_expired": (0.0, (0.0, 0.0)),
    "purchases_30d": (1.0, (0.0, 2.0)),
}


@pytest.fixture(scope="module")
def features() -> tuple[pl.DataFrame, dict[str, FeatureSpec]]:
    result = compute_features(_events(), CUTOFF, settings=FeatureSettings())
    return result.frame.collect().sort(CUSTOMER_ID), result.specs


def _notes(specs: dict[str, FeatureSpec]) -> dict[str, FeatureNote]:
    notes = {n: FeatureNote.from_spec(s) for n, s in specs.items()}
    for name, (typical, quartiles) in TYPICAL.items():
        notes[name] = replace(notes[name], typical=typical, quartiles=quartiles)
    return notes


def _drivers(
    features: tuple[pl.DataFrame, dict[str, FeatureSpec]], customer: str, names: list[str]
) -> dict[str, object]:
    frame, specs = features
    row = frame.filter(pl.col(CUSTOMER_ID) == customer)
    order = list(specs)
    candidates = np.array([[order.index(n) for n in names]], dtype=np.intp)
    said = voices(order, _notes(specs), {}, frame, set())
    return driver_sentences(row, candidates, order, said).row(0, named=True)


def test_an_overdue_customer_is_told_how_long_and_what_is_usual(features):
    said = _drivers(features, "overdue", ["recency_days"])
    assert said["driver_1"] == "no purchase for 74 days, 3.5x the usual gap of 21 days"
    assert said["driver_2"] is None
    assert said["driver_features"] == ["recency_days"]


def test_failed_payments_and_an_expired_card_are_counted(features):
    said = _drivers(features, "failing", ["failed_payments_30d", "failed_card_expired"])
    assert said["driver_1"] == "2 failed payments in the last 30 days (typical customer: 0)"
    assert said["driver_2"] == "2 failed payments due to an expired card (typical customer: 0)"
    assert said["driver_features"] == ["failed_payments_30d", "failed_card_expired"]


def test_a_driver_repeating_a_stronger_one_gives_its_place_to_the_next(features):
    said = _drivers(features, "overdue", ["overdue_ratio", "recency_days", "tenure_days"])
    assert said["driver_1"] == "no purchase for 74 days, 3.5x the usual gap of 21 days"
    assert said["driver_2"] == "a customer for 179 days (typical customer: 400)"
    assert said["driver_features"] == ["overdue_ratio", "tenure_days"]


def test_without_a_usual_gap_the_typical_customer_is_the_reference(features):
    said = _drivers(features, "newcomer", ["recency_days"])
    assert said["driver_1"] == "no purchase for 10 days (typical customer: 20)"


def test_money_is_shown_with_two_decimals_and_thousands(features):
    said = _drivers(features, "newcomer", ["revenue_total"])
    assert said["driver_1"] == "spent 1,234.50 in total (typical customer: 480.00)"


def test_rows_without_candidates_get_no_drivers(features):
    frame, specs = features
    candidates = np.full((frame.height, 3), NO_DRIVER, dtype=np.intp)
    out = driver_sentences(
        frame, candidates, list(specs), voices(list(specs), {}, {}, frame, set())
    )
    assert out.height == frame.height
    assert out["driver_1"].null_count() == frame.height
    assert out["driver_features"].to_list() == [[]] * frame.height


# --- cards written before sentences -------------------------------------------------------

# Templates such cards hold (the families' words of the time).
LEGACY = {
    "recency_days": "no purchase for {recency_days:.0f} days; usual gap {gap_median_days:.0f} days",
    "overdue_ratio": "{overdue_ratio:.1f}× the usual gap since the last purchase; "
    "no purchase for {recency_days:.0f} days; usual gap {gap_median_days:.0f} days",
    "revenue_total": "{revenue_total:,.2f} spent in total",
    "failed_recovered_share": "{failed_recovered_share:.0%} of failed payments were recovered",
    "purchases_30d": "{purchases_30d:.0f} purchases in the last 30 days",
}


def _render_one(template: str, values: dict[str, Any]) -> str | None:
    """The single-row reference: clauses with a missing value are dropped."""
    said = []
    for clause in template.split("; "):
        needed = [f for _, f, _, _ in string.Formatter().parse(clause) if f]
        if any(_missing(values.get(f)) for f in needed):
            continue
        said.append(clause.format_map(values))
    return "; ".join(said) or None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def test_old_templates_render_like_the_single_row_reference(features):
    frame, _ = features
    rows = frame.to_dicts()
    for name, template in LEGACY.items():
        got = render_template(frame, template).to_list()
        assert got == [_render_one(template, r) for r in rows], name


def test_an_old_card_speaks_with_its_templates_and_repeats_nothing(features):
    frame, specs = features
    old = {
        n: FeatureNote(description=s.description, sentence=LEGACY.get(n), risk_when=s.risk_when)
        for n, s in specs.items()
    }
    said = voices(list(specs), old, {}, frame, set())
    assert isinstance(said["recency_days"], Templated)
    row = frame.filter(pl.col(CUSTOMER_ID) == "overdue")
    order = list(specs)
    candidates = np.array([[order.index("overdue_ratio"), order.index("recency_days")]])
    out = driver_sentences(row, candidates, order, said).row(0, named=True)
    assert out["driver_1"] == (
        "3.5× the usual gap since the last purchase; no purchase for 74 days; usual gap 21 days"
    )
    assert out["driver_2"] is None


def test_an_old_card_offers_only_directed_features_on_their_risky_side():
    frame = pl.DataFrame({"x": [1.0, 5.0, None], "y": [1.0, 5.0, 3.0]})
    high = Templated("x", "x {x:.0f}", "high", median=3.0)
    assert high.reasons(frame).tolist() == [False, True, False]
    assert Templated("y", "y {y:.0f}", None, median=3.0).reasons(frame).tolist() == [False] * 3
    low = Templated("y", "y {y:.0f}", "low", median=3.0)
    assert low.reasons(frame).tolist() == [True, False, False]


def test_number_formats_agree_with_str_format_on_random_values():
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [rng.uniform(-5000, 5000, 4000).round(3), rng.uniform(0, 1, 1000), [0.125, 2.5, 114.895]]
    )
    frame = pl.DataFrame({"x": values})
    for spec in (".0f", ".1f", ".2f", ",.2f", ".0%", ",.0f"):
        template = f"x is {{x:{spec}}}"
        got = render_template(frame, template).to_list()
        want = [_no_negative_zero(_render_one(template, {"x": v})) for v in values]
        assert got == want, spec


def _no_negative_zero(text: str | None) -> str:
    """The one deliberate difference: no "-0" for negatives that round to zero."""
    assert text is not None
    digits = text.removeprefix("x is ").rstrip("%").replace(",", "")
    return text.replace("is -0", "is 0") if float(digits) == 0 else text


@pytest.mark.parametrize(
    ("values", "spec", "expected"),
    [
        ([74.4, 74.6, None, float("nan")], ".0f", ["74", "75", None, None]),
        ([1234.5, -1234567.891], ",.2f", ["1,234.50", "-1,234,567.89"]),
        ([0.125, 0.5], ".0%", ["12%", "50%"]),
        ([0.1, 10.0, 1234.5678], "g", ["0.1", "10", "1234.57"]),
        ([-0.2], ".0f", ["0"]),
        ([float("inf")], ".0f", [None]),
    ],
)
def test_format_series(values, spec, expected):
    assert format_series(pl.Series(values, dtype=pl.Float64), spec).to_list() == expected


def test_categorical_values_are_shown_as_they_are():
    frame = pl.DataFrame({"plan": ["pro", None]})
    assert render_template(frame, "on plan {plan}").to_list() == ["on plan pro", None]
    assert render_template(frame, "on a plan; {unknown} days").to_list() == ["on a plan"] * 2


# --- which features -----------------------------------------------------------------------


def test_only_positive_contributions_become_drivers_strongest_first():
    risk = np.array(
        [
            [0.5, -2.0, 0.9, 0.0, 0.1],
            [-0.1, -0.2, -0.3, 0.0, -5.0],
            [0.2, 0.2, -1.0, 0.3, 0.2],
        ]
    )
    picked = top_drivers(risk, 3)
    assert picked.tolist() == [
        [2, 0, 4],
        [NO_DRIVER, NO_DRIVER, NO_DRIVER],
        [3, 0, 1],  # ties keep the model's feature order
    ]
    assert top_drivers(risk[:, :2], 3).tolist()[0] == [0, NO_DRIVER, NO_DRIVER]


def test_risk_is_the_push_on_the_churn_kind_against_staying():
    # 2 rows, 3 classes (retained, voluntary, involuntary), 2 features + baseline.
    contributions = np.array(
        [
            [[0.5, 0.0, 9.0], [0.2, 0.3, 9.0], [1.0, -1.0, 9.0]],
            [[-0.5, 0.1, 9.0], [0.0, 0.0, 9.0], [0.4, 0.1, 9.0]],
        ]
    )
    kind = np.array([1, 2], dtype=np.intp)
    np.testing.assert_allclose(
        risk_contributions(contributions, kind, reference=0), [[-0.3, 0.3], [0.9, 0.0]]
    )
    np.testing.assert_allclose(
        risk_contributions(contributions, kind, reference=None), [[0.2, 0.3], [0.4, 0.1]]
    )


# --- who gets drivers, and the same drivers however they are computed ---------------------


def _scored(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            CUSTOMER_ID: [f"c{i:03d}" for i in range(n)],
            "value_at_risk": [float(i % 7) for i in range(n)],
        }
    )


def test_the_top_by_value_at_risk_and_the_ids_asked_for_get_drivers():
    scored = _scored(20)
    rows = driver_rows(scored, 3, ["c000", "c001"])
    top = {"c006", "c013", "c005"}  # value at risk 6, 6, then 5 (ties by id)
    assert set(scored[CUSTOMER_ID].gather(rows).to_list()) == top | {"c000", "c001"}
    assert rows.tolist() == sorted(rows.tolist())
    assert driver_rows(scored, 0, everyone=True).tolist() == list(range(20))


def test_unknown_ids_are_named_once_in_the_order_given():
    assert unknown_ids(_scored(5), ["c001", "x@y.com", "c009", "x@y.com"]) == ["x@y.com", "c009"]
    assert unknown_ids(_scored(5), []) == []


def test_the_cost_of_explaining_everyone_is_said_in_plain_units():
    line = estimate_line(2_000, 12.0, 1_002_000)
    assert line == (
        "--drivers all: explaining 1,002,000 customers; the first 2,000 took 12 s, "
        "the other 1,000,000 should take about 1.7 h"
    )
    assert estimate_line(2_000, 7.0, 2_114).endswith("the other 114 should take under a second")


@pytest.fixture(scope="module")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[ChurnModel, pl.DataFrame]:
    """A small multiclass model with wording and references on its card."""
    rng = np.random.default_rng(5)
    n = 600
    frame = pl.DataFrame(
        {
            CUSTOMER_ID: [f"id-{i:04d}@example.com" for i in range(n)],
            "complaints": rng.poisson(0.4, n).astype(float),
            "logins": rng.poisson(10, n).astype(float),
            "logins_before": rng.poisson(10, n).astype(float),
            "plan": rng.choice(["basic", "pro"], n),
        }
    )
    p = 0.1 + 0.2 * (frame["complaints"].to_numpy() > 0) + 0.2 * (frame["plan"] == "pro").to_numpy()
    u = rng.random(n)
    y = np.where(u < p / 2, "voluntary", np.where(u < p, "involuntary", "retained"))
    features = ["complaints", "logins", "logins_before", "plan"]
    notes = {
        "complaints": FeatureNote(
            description="complaints",
            risk_when="high",
            wording=Sentence("{value} lately", noun="complaint"),
            typical=0.0,
            quartiles=(0.0, 0.0),
        ),
        "logins": FeatureNote(
            description="logins",
            risk_when="low",
            wording=Sentence(
                "{value}", noun="login", reference="previous", against="logins_before"
            ),
            typical=10.0,
            quartiles=(8.0, 12.0),
        ),
        "logins_before": FeatureNote(
            description="before", wording=Sentence("{value} before", noun="login")
        ),
        "plan": FeatureNote(
            kind="categorical",
            description="plan",
            wording=Sentence("on the {value} plan", reference="category"),
            categories={"pro": CategoryChurn(300, 0.4), "basic": CategoryChurn(300, 0.1)},
            average_churn=0.25,
        ),
    }
    model = ChurnModel(
        params=LightGBMParams(num_boost_round=30, num_leaves=7, min_child_samples=10), seed=1
    ).fit(frame.select(features), pl.Series(y), categorical=["plan"])
    directory: Path = tmp_path_factory.mktemp("explain") / "m"
    model.save(directory, TrainingRecord(feature_specs=notes))
    return model, frame


def test_drivers_do_not_depend_on_chunks_or_threads(small_model):
    model, frame = small_model
    rows = np.arange(frame.height, dtype=np.intp)
    kinds = np.argmax(model.predict_proba(frame), axis=1)
    kinds = np.where(kinds == 0, 1, kinds)
    one = explain(model, frame, rows, kinds, chunk_rows=frame.height, threads=1)
    many = explain(model, frame, rows, kinds, chunk_rows=7, first_chunk_rows=3, threads=2)
    assert one.equals(many)
    said = [s for s in one["driver_1"].to_list() if s]
    assert said, "some customers have drivers"
    allowed = re.compile(
        r"on the pro plan, where churn is 1\.6x the average"
        r"|1 complaint lately \(typical customer: 0\)"
        r"|[2-9] complaints lately \(typical customer: 0\)"
        r"|\d+ logins?, down from \d+ \(typical customer: 10\)"
    )
    for sentence in said:
        assert allowed.fullmatch(sentence), sentence


def test_the_first_chunk_is_timed_for_the_estimate(small_model):
    model, frame = small_model
    heard: list[tuple[int, int]] = []
    rows = np.arange(50, dtype=np.intp)
    explain(
        model,
        frame,
        rows,
        np.ones(frame.height, dtype=np.intp),
        chunk_rows=20,
        first_chunk_rows=5,
        on_first_chunk=lambda done, seconds, total: heard.append((done, total)),
    )
    assert heard == [(5, 50)]
