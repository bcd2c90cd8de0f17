"""The shipped playbook's action follows the churn kind and the leading driver.

One case per (churn kind, leading driver family): the customer's second driver comes
from another family whose own rule would pick a different action, so the table
shows that the leading driver decides. Involuntary churners always get a payment
action, and so does anyone whose leading driver is a payment or the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from churnkit.core.errors import ConfigError
from churnkit.features.families import FAMILIES
from churnkit.retention.driver_families import PAYMENT_FAMILIES, family_of
from churnkit.retention.matching import assign_actions
from churnkit.retention.playbook import Playbook, load_playbook, parse_playbook

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "actions.yaml"

# A feature of each family, and a second driver from another family.
LEADING = {
    "recency": "recency_days",
    "gaps": "overdue_ratio",
    "failures": "failed_payments_30d",
    "failure_reasons": "failed_insufficient_funds",
    "refunds": "refunds_total",
    "complaints": "complaints_unresolved",
    "cancels": "cancels_total",
    "usage": "usage_login_trend",
    "plan": "price_increases",
    "card": "days_to_card_expiry",
    "extras": "channel_last",
    "network": "related_churned",
    "customer_base": "p_alive",
}
SECOND = dict.fromkeys(PAYMENT_FAMILIES, "usage_login_trend") | {"usage": "complaints_unresolved"}
DEFAULT_SECOND = "failed_payments_30d"

CARD = "card-update-and-retry"
DUNNING = "smart-dunning"
PAYDAY = "payday-retry"
SERVICE = "service-recovery-call"
TRAINING = "re-engagement-training"
OFFER = "targeted-offer"
COMMUNITY = "community-referral"
CHECK_IN = "check-in-email"
REMINDER = "repeat-purchase-reminder"

# What a voluntary (or binary "churned") churner gets, by leading family.
VOLUNTARY = {
    "recency": TRAINING,
    "gaps": TRAINING,
    "failures": DUNNING,
    "failure_reasons": DUNNING,
    "refunds": SERVICE,
    "complaints": SERVICE,
    "cancels": SERVICE,
    "usage": TRAINING,
    "plan": OFFER,
    "card": CARD,
    "extras": CHECK_IN,
    "network": COMMUNITY,
    "customer_base": REMINDER,
}
# Involuntary churners: a payment action whatever leads; which one, by the drivers.
INVOLUNTARY = dict.fromkeys(LEADING, DUNNING) | {"failure_reasons": PAYDAY, "card": CARD}
# Customers below the risk tiers: only payment drivers call for something specific.
RETAINED = dict.fromkeys(LEADING, CHECK_IN) | {
    "failures": DUNNING,
    "failure_reasons": DUNNING,
    "card": CARD,
}
EXPECTED = {
    "voluntary": VOLUNTARY,
    "churned": VOLUNTARY,
    "involuntary": INVOLUNTARY,
    "retained": RETAINED,
}
CASES = [(kind, family) for kind in EXPECTED for family in LEADING]

SCHEMA: dict[str, Any] = {
    "customer_id": pl.String,
    "p_churn": pl.Float64,
    "churn_type": pl.String,
    "risk_tier": pl.String,
    "value": pl.Float64,
    "value_at_risk": pl.Float64,
    "segment": pl.String,
    "customer_type": pl.String,
    "strategy": pl.String,
    "value_tier": pl.String,
    "lifecycle_stage": pl.String,
    "driver_features": pl.List(pl.String),
}


@pytest.fixture(scope="module")
def playbook() -> Playbook:
    return load_playbook(SHIPPED, known_features=[*LEADING.values(), "failed_card_expired"])


def customer(kind: str, drivers: list[str]) -> pl.DataFrame:
    row = dict.fromkeys(SCHEMA)
    row |= {
        "customer_id": "C1",
        "p_churn": 0.6,
        "churn_type": kind,
        "risk_tier": "high",
        "value": 900.0,
        "value_at_risk": 540.0,
        "driver_features": drivers,
    }
    return pl.DataFrame([row], schema=SCHEMA)


def test_the_table_covers_every_family_and_its_features_belong_to_it():
    assert set(LEADING) == {f.name for f in FAMILIES}
    for family, feature in LEADING.items():
        assert family_of(feature) == family


@pytest.mark.parametrize(("kind", "family"), CASES, ids=[f"{k}-{f}" for k, f in CASES])
def test_the_action_follows_the_churn_kind_and_the_leading_driver(playbook, kind, family):
    second = SECOND.get(family, DEFAULT_SECOND)
    assert family_of(second) != family
    out = assign_actions(customer(kind, [LEADING[family], second]), playbook)
    assert out.item(0, "action") == EXPECTED[kind][family]
    payment = out.item(0, "action_lever") == "payment_recovery"
    assert payment == (kind == "involuntary" or family in PAYMENT_FAMILIES)


def test_a_voluntary_churner_whose_card_leads_is_not_sent_usage_training(playbook):
    out = assign_actions(
        customer("voluntary", ["days_to_card_expiry", "usage_login_trend"]), playbook
    )
    assert out.item(0, "action") == CARD
    assert out.item(0, "action_reason") == (
        "rule card-first: leading driver days_to_card_expiry (card)"
    )


def _rule(**when: Any) -> dict[str, Any]:
    action = {"name": "a", "description": "d", "channel": "email", "unit_cost": 1.0}
    return {
        "rules": [{"name": "r", "when": when, "action": {**action, "success_rate": 0.1}}],
        "fallback": {**action, "name": "f", "success_rate": 0.0},
    }


KNOWN = ["days_to_card_expiry", "failed_card_expired", "usage_any_30d", "complaints_90d"]


@pytest.mark.parametrize(
    ("when", "fragment"),
    [
        (
            {"churn_type": "voluntary", "drivers_any": ["days_to_card_expiry"]},
            "driver 'days_to_card_expiry' (card) is a payment signal",
        ),
        (
            {"churn_type": ["voluntary", "retained"], "leading_driver_family": ["failures"]},
            "driver 'failures' (failures) is a payment signal",
        ),
        (
            {"churn_type": "involuntary", "drivers_any": ["usage_*"]},
            "driver 'usage_*' (usage) does not fit churn_type [involuntary]",
        ),
        (
            {"churn_type": "involuntary", "leading_driver_family": ["complaints"]},
            "does not fit churn_type [involuntary]",
        ),
        ({"leading_driver_family": ["usages"]}, "'usages' is not a feature family"),
    ],
)
def test_rules_whose_drivers_contradict_their_churn_kind_are_refused(when, fragment):
    with pytest.raises(ConfigError) as caught:
        parse_playbook(_rule(**when), known_features=KNOWN, source="book.yaml")
    assert "book.yaml: rule 'r'" in str(caught.value)
    assert fragment in str(caught.value)


@pytest.mark.parametrize(
    "when",
    [
        {"churn_type": ["voluntary", "involuntary"], "drivers_any": ["days_to_card_expiry"]},
        {"churn_type": "churned", "drivers_any": ["failed_card_expired", "usage_*"]},
        {"churn_type": "involuntary", "leading_driver_family": ["card", "failure_reasons"]},
        {"leading_driver_family": ["card"]},
    ],
)
def test_rules_whose_drivers_fit_their_churn_kind_load(when):
    parse_playbook(_rule(**when), known_features=KNOWN)


def test_a_discount_driven_customer_gets_the_action_of_the_leading_driver(playbook):
    row = customer("voluntary", ["usage_login_trend"]).with_columns(
        customer_type=pl.lit("discount_driven")
    )
    assert assign_actions(row, playbook).item(0, "action") == TRAINING
    plain = customer("voluntary", []).with_columns(customer_type=pl.lit("discount_driven"))
    assert assign_actions(plain, playbook).item(0, "action") == OFFER
