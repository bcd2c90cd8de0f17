"""explain: drivers are the features that raise risk, said as plain sentences."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from churnkit.core.config import FeatureSettings
from churnkit.core.schema import AMOUNT, CUSTOMER_ID, KIND, KIND_DTYPE, REASON, TS
from churnkit.features import FeatureSpec, compute_features
from churnkit.predict.drivers import (
    NO_DRIVER,
    driver_sentences,
    drop_implausible,
    format_series,
    render_template,
    risk_contributions,
    top_drivers,
)

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


@pytest.fixture(scope="module")
def features() -> tuple[pl.DataFrame, dict[str, FeatureSpec]]:
    result = compute_features(_events(), CUTOFF, settings=FeatureSettings())
    return result.frame.collect().sort(CUSTOMER_ID), result.specs


def _drivers(
    features: tuple[pl.DataFrame, dict[str, FeatureSpec]], customer: str, names: list[str]
) -> dict[str, object]:
    frame, specs = features
    row = frame.filter(pl.col(CUSTOMER_ID) == customer)
    order = list(specs)
    candidates = np.array([[order.index(n) for n in names]], dtype=np.intp)
    templates = {n: s.sentence for n, s in specs.items()}
    return driver_sentences(row, candidates, order, templates).row(0, named=True)


def test_an_overdue_customer_is_told_how_long_and_what_is_usual(features):
    said = _drivers(features, "overdue", ["recency_days"])
    assert said["driver_1"] == "no purchase for 74 days; usual gap 21 days"
    assert said["driver_2"] is None
    assert said["driver_features"] == ["recency_days"]


def test_failed_payments_and_an_expired_card_are_counted(features):
    said = _drivers(features, "failing", ["failed_payments_30d", "failed_card_expired"])
    assert said["driver_1"] == "2 failed payments in the last 30 days"
    assert said["driver_2"] == "2 failed payments due to an expired card"
    assert said["driver_features"] == ["failed_payments_30d", "failed_card_expired"]


def test_a_driver_repeating_a_stronger_one_gives_its_place_to_the_next(features):
    said = _drivers(features, "overdue", ["overdue_ratio", "recency_days", "purchases_30d"])
    assert said["driver_1"] == (
        "3.5× the usual gap since the last purchase; no purchase for 74 days; usual gap 21 days"
    )
    assert said["driver_2"] == "0 purchases in the last 30 days"
    assert said["driver_features"] == ["overdue_ratio", "purchases_30d"]


def test_clauses_with_missing_values_are_dropped_and_empty_drivers_skipped(features):
    # One purchase: no usual gap to compare with.
    said = _drivers(features, "newcomer", ["gap_median_days", "recency_days"])
    assert said["driver_1"] == "no purchase for 10 days"
    assert said["driver_2"] is None
    assert said["driver_features"] == ["recency_days"]


def test_money_is_shown_with_two_decimals_and_thousands(features):
    said = _drivers(features, "newcomer", ["revenue_total"])
    assert said["driver_1"] == "1,234.50 spent in total"


def test_rows_without_candidates_get_no_drivers(features):
    frame, specs = features
    candidates = np.full((frame.height, 3), NO_DRIVER, dtype=np.intp)
    out = driver_sentences(
        frame, candidates, list(specs), {n: s.sentence for n, s in specs.items()}
    )
    assert out.height == frame.height
    assert out["driver_1"].null_count() == frame.height
    assert out["driver_features"].to_list() == [[]] * frame.height


def test_every_template_renders_like_the_single_row_reference(features):
    """FeatureSpec.render is the reference semantics; the vectorised version agrees on
    every feature of every customer (including the missing values)."""
    frame, specs = features
    rows = frame.to_dicts()
    for name, spec in specs.items():
        got = render_template(frame, spec.sentence).to_list()
        assert got == [spec.render(r) for r in rows], name


def test_number_formats_agree_with_str_format_on_random_values():
    rng = np.random.default_rng(11)
    values = np.concatenate(
        [rng.uniform(-5000, 5000, 4000).round(3), rng.uniform(0, 1, 1000), [0.125, 2.5, 114.895]]
    )
    frame = pl.DataFrame({"x": values})
    for spec in (".0f", ".1f", ".2f", ",.2f", ".0%", ",.0f"):
        template = f"x is {{x:{spec}}}"
        reference = FeatureSpec("x", "numeric", "", template)
        got = render_template(frame, template).to_list()
        want = [_no_negative_zero(reference.render({"x": v})) for v in values]
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


def test_values_on_the_safe_side_of_the_median_are_not_reasons():
    risk = np.ones((2, 3))
    values = np.array([[1200.0, 0.0, 5.0], [10.0, 3.0, np.nan]])
    directions = ["low", "high", None]  # card expiry: low is risky; failures: high is risky
    median = np.array([300.0, 0.0, 1.0])
    kept = drop_implausible(risk, values, directions, median)
    assert kept.tolist() == [[0.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
