"""Business model detection and the population it implies: a shop scores every past
buyer, a subscription business its active customers; labels.population overrides."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from churnkit.core.config import LabelSettings
from churnkit.core.schema import CUSTOMER_ID, KIND, TS
from churnkit.core.timeline import end_of_day
from churnkit.population import labels
from churnkit.population.business import (
    CONTRACTUAL,
    NON_CONTRACTUAL,
    BusinessEvidence,
    detect_business,
)

START = datetime(2024, 1, 1, 12)
CUTOFF = end_of_day(datetime(2024, 12, 31).date())


def log(rows: list[tuple[str, int, str]]) -> pl.LazyFrame:
    """Events: (customer, day offset from START, kind)."""
    return pl.DataFrame(
        [(c, START + timedelta(days=d), k) for c, d, k in rows],
        schema=[CUSTOMER_ID, TS, KIND],
        orient="row",
    ).lazy()


def monthly(customer: str, months: int, first: int = 0) -> list[tuple[str, int, str]]:
    return [(customer, first + round(30.44 * m), "purchase") for m in range(months)]


SHOP = log(
    [
        *[("s1", d, "purchase") for d in (0, 3, 40, 41, 150)],
        *[("s2", d, "purchase") for d in (10, 90, 95, 200)],
        *[("s3", d, "purchase") for d in (5, 100, 101, 300)],
        ("gone", 20, "purchase"),  # bought once, long ago: lapsed
    ]
)


def test_a_shop_is_non_contractual_and_scores_every_past_buyer():
    settings = LabelSettings()
    business = detect_business(SHOP, CUTOFF, settings)
    assert business.business_model == NON_CONTRACTUAL
    assert business.evidence.startswith("non-contractual: no cancels, no failed payments")
    params = labels.population_params(SHOP, CUTOFF, settings, business)
    assert params.population == "all"
    everyone = labels.population_at(SHOP, CUTOFF, params, settings.grace_period).collect()
    assert sorted(everyone[CUSTOMER_ID]) == ["gone", "s1", "s2", "s3"]
    active = labels.active_customers(
        SHOP, CUTOFF, active_window=params.active_window, grace=settings.grace_period
    ).collect()
    assert "gone" not in active[CUSTOMER_ID].to_list()


def test_regular_billing_alone_makes_a_business_contractual():
    events = log([*monthly("a", 10), *monthly("b", 8, 20), *monthly("c", 6, 40)])
    business = detect_business(events, CUTOFF, LabelSettings())
    assert business.business_model == CONTRACTUAL
    assert business.period == "monthly"
    assert business.regular_share == 1.0
    assert "regular monthly interval" in business.evidence
    params = labels.population_params(events, CUTOFF, LabelSettings(), business)
    assert params.population == "active"


@pytest.mark.parametrize("kind", ["cancel", "payment_failed"])
def test_one_cancel_or_failed_payment_is_evidence_of_a_contract(kind: str):
    events = pl.concat([SHOP, log([("s1", 160, kind)])])
    business = detect_business(events, CUTOFF, LabelSettings())
    assert business.business_model == CONTRACTUAL
    assert business.evidence.startswith("contractual: ")


def test_the_setting_overrides_the_detected_population():
    business = detect_business(SHOP, CUTOFF, LabelSettings())
    active = labels.population_params(SHOP, CUTOFF, LabelSettings(population="active"), business)
    assert active.population == "active"
    events = log([*monthly("a", 10), ("b", 10, "purchase")])
    settings = LabelSettings(population="all")
    params = labels.population_params(events, CUTOFF, settings)
    assert params.business_model == CONTRACTUAL
    assert params.population == "all"
    got = labels.population_at(events, CUTOFF, params, settings.grace_period).collect()
    assert sorted(got[CUSTOMER_ID]) == ["a", "b"]


def test_a_cancelled_customer_is_not_in_the_population_even_when_all():
    events = log([*monthly("a", 3), ("a", 100, "cancel"), *monthly("b", 3)])
    params = labels.population_params(events, CUTOFF, LabelSettings(population="all"))
    got = labels.population_at(events, CUTOFF, params, 14).collect()
    assert got[CUSTOMER_ID].to_list() == ["b"]


def test_a_usage_log_counts_usage_as_activity_and_scores_active_users():
    rows = [("u1", d, "usage") for d in range(0, 360, 7)] + [("u2", d, "usage") for d in (0, 7)]
    events = log(rows)
    business = detect_business(events, CUTOFF, LabelSettings())
    assert business.activity == ("usage",)
    assert business.business_model == NON_CONTRACTUAL
    assert "usage only" in business.evidence
    params = labels.population_params(events, CUTOFF, LabelSettings(), business)
    assert params.population == "active"
    got = labels.population_at(events, CUTOFF, params, 14).collect()
    assert got[CUSTOMER_ID].to_list() == ["u1"]
    lab = labels.label_window(
        log([*rows, ("u1", 380, "usage")]),
        datetime(2024, 12, 20),
        horizon=30,
        grace=0,
        active=got.lazy(),
        activity=params.activity,
    ).collect()
    assert lab.row(0) == ("u1", "retained")


def test_evidence_round_trips_through_json():
    business = detect_business(SHOP, CUTOFF, LabelSettings())
    assert BusinessEvidence.from_dict(business.to_dict()) == business
