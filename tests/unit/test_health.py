"""churn health: monthly churn by kind, revenue retention, failed-payment outcomes and
cohorts, checked against a hand count on a small log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl
import pytest

from churnkit.core.config import load_settings
from churnkit.core.schema import KIND_DTYPE
from churnkit.segment.health import churn_health

AS_OF = datetime(2025, 4, 30, 23, 59, 59, 999_999)

# Active window 45 days, grace 5 days, recovery within 10 days; months Feb, Mar, Apr 2025.
ROWS: list[tuple[str, str, str, float, str | None, str | None]] = [
    # A: monthly, pays 20 from March (expansion); a failure on 04-28 is still open.
    ("A", "2025-01-05", "purchase", 10, "basic", None),
    ("A", "2025-02-05", "purchase", 10, "basic", None),
    ("A", "2025-03-05", "purchase", 20, "basic", None),
    ("A", "2025-04-05", "purchase", 20, "basic", None),
    ("A", "2025-04-28", "payment_failed", 20, "basic", "card_expired"),
    # B: cancels on 02-20: voluntary churn in February.
    ("B", "2025-01-10", "purchase", 10, "basic", None),
    ("B", "2025-02-10", "purchase", 10, "basic", None),
    ("B", "2025-02-20", "cancel", 0, None, "too_expensive"),
    # C: three failed retries from 03-15, never recovered: involuntary churn in March.
    ("C", "2025-01-15", "purchase", 10, "basic", None),
    ("C", "2025-02-15", "purchase", 10, "basic", None),
    ("C", "2025-03-15", "payment_failed", 10, "basic", "card_expired"),
    ("C", "2025-03-18", "payment_failed", 10, "basic", "card_expired"),
    ("C", "2025-03-25", "payment_failed", 10, "basic", "card_expired"),
    # D: a failure on 03-20 recovered by a purchase 3 days later; stays.
    ("D", "2025-01-20", "purchase", 10, "pro", None),
    ("D", "2025-02-20", "purchase", 10, "pro", None),
    ("D", "2025-03-20", "payment_failed", 10, "pro", "insufficient_funds"),
    ("D", "2025-03-23", "purchase", 10, "pro", None),
    ("D", "2025-04-20", "purchase", 10, "pro", None),
    # E: one purchase, then silence: lapses in March (65 days > 45 by 03-31).
    ("E", "2025-01-25", "purchase", 10, "pro", None),
    # I: silent from 02-08, inactive at 03-31, but back on 04-03 within the grace.
    ("I", "2025-01-08", "purchase", 10, "pro", None),
    ("I", "2025-02-08", "purchase", 10, "pro", None),
    ("I", "2025-04-03", "purchase", 10, "pro", None),
    # G (February cohort): a failure on 03-27 (in grace at 03-31) recovered on 04-02.
    ("G", "2025-02-01", "purchase", 10, "pro", None),
    ("G", "2025-02-27", "purchase", 10, "pro", None),
    ("G", "2025-03-27", "payment_failed", 10, "pro", "insufficient_funds"),
    ("G", "2025-04-02", "purchase", 10, "pro", None),
    # H (February cohort): a failure on 03-12, then cancels during the retries on 03-14.
    ("H", "2025-02-12", "purchase", 10, "pro", None),
    ("H", "2025-03-12", "payment_failed", 10, "pro", "insufficient_funds"),
    ("H", "2025-03-14", "cancel", 0, None, None),
    # F (March cohort): signs up and buys monthly.
    ("F", "2025-03-02", "signup", 0, None, None),
    ("F", "2025-03-03", "purchase", 10, "pro", None),
    ("F", "2025-04-03", "purchase", 10, "pro", None),
    # J (April cohort): signs up and never buys.
    ("J", "2025-04-10", "signup", 0, None, None),
]


def log(rows: list[tuple[Any, ...]], *, with_plan: bool = True) -> pl.LazyFrame:
    frame = pl.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "ts": [datetime.fromisoformat(r[1]) for r in rows],
            "kind": [r[2] for r in rows],
            "amount": [float(r[3]) for r in rows],
            "plan": [r[4] for r in rows],
            "reason": [r[5] for r in rows],
        },
        schema_overrides={"plan": pl.String, "reason": pl.String},
    ).with_columns(pl.col("kind").cast(KIND_DTYPE), pl.col("ts").cast(pl.Datetime("us")))
    return (frame if with_plan else frame.drop("plan")).lazy()


SETTINGS = load_settings(
    None,
    env={},
    overrides={
        "labels": {"active_window": 45, "grace_period": 5},
        "segments": {"health_months": 3, "recovery_days": 10},
    },
)


@pytest.fixture(scope="module")
def report() -> Any:
    return churn_health(log(ROWS), settings=SETTINGS, as_of=AS_OF)


def test_monthly_churn_by_kind_matches_a_hand_count(report):
    # Active at 01-31: A B C D E I. February: B cancels.
    # Active at 02-28: A C D E I G H. March: C (failed out) and H (failure, then a
    # cancel: involuntary, as in the labels) involuntary; E lapses; I is back on 04-03.
    # Active at 03-31: A D F G. April: nobody leaves (provisional: 04-30 + 5 days).
    months = report.months.select(
        "month", "active_start", "churned", "voluntary", "involuntary", "provisional"
    )
    assert months.rows() == [
        (date(2025, 2, 1), 6, 1, 1, 0, False),
        (date(2025, 3, 1), 7, 3, 1, 2, False),
        (date(2025, 4, 1), 4, 0, 0, 0, True),
    ]
    assert report.months["churn_rate"].to_list()[:2] == pytest.approx([1 / 6, 3 / 7])
    assert report.months["involuntary_share"].to_list() == pytest.approx([0.0, 2 / 3, None])
    summary = report.summary
    assert summary["complete_months"] == 2
    assert summary["monthly_churn_rate"] == pytest.approx(4 / 13)
    assert summary["involuntary_share"] == pytest.approx(0.5)
    assert summary["annualised_churn_rate"] == pytest.approx(1 - (9 / 13) ** 12)


def test_revenue_churn_and_net_revenue_retention(report):
    # February: January revenue of A B C D E I = 60; B's 10 churned; February revenue
    # of the same customers 50 (E bought nothing).
    # March: February revenue of A C D E I G H = 10+10+10+0+10+20+10 = 70; churned C and
    # H (E had none) = 20; March revenue A 20 + D 10 = 30.
    # April: March revenue of A D F G = 20+10+10+0 = 40; April 20+10+10+10 = 50.
    got = report.months.select("revenue_start", "revenue_churned", "revenue_retained").rows()
    assert got == [(60.0, 10.0, 50.0), (70.0, 20.0, 30.0), (40.0, 0.0, 50.0)]
    assert report.months["net_revenue_retention"].to_list() == pytest.approx(
        [50 / 60, 30 / 70, 1.25]
    )


def test_failed_payment_outcomes_by_hand(report):
    # March: C lapsed (3 failures), D recovered in 3 days, G recovered in 6, H cancelled.
    # April: A's failure on 04-28 is open until 05-08.
    rows = report.failed_payments.select(
        "month", "episodes", "failures", "recovered", "cancelled", "lapsed", "open"
    ).rows()
    assert rows == [(date(2025, 3, 1), 4, 6, 2, 1, 1, 0), (date(2025, 4, 1), 1, 1, 0, 0, 0, 1)]
    assert report.failed_payments["recovery_rate"].to_list() == [0.5, None]
    assert report.failed_payments["median_days_to_recover"][0] == pytest.approx(4.5)
    assert report.summary["recovery_rate"] == pytest.approx(0.5)
    by_reason = report.failed_by_reason.select("reason", "episodes", "recovered", "lapsed")
    assert by_reason.rows() == [("card_expired", 2, 0, 1), ("insufficient_funds", 3, 2, 0)]


def test_cohort_retention_matrix_by_hand(report):
    # February cohort G H: both active at 02-28, only G at 03-31 and 04-30.
    # March cohort F: active at 03-31 and 04-30. April cohort J never bought.
    matrix = report.cohort_matrix()
    assert matrix.rows() == [
        (date(2025, 2, 1), 2, 1.0, 0.5, 0.5),
        (date(2025, 3, 1), 1, 1.0, 1.0, None),
        (date(2025, 4, 1), 1, 0.0, None, None),
    ]


def test_churn_by_plan_over_complete_months(report):
    # basic: A B C in February, A C in March (5 customer-months); B and C left.
    # pro: D E I in February, D E I G H in March (8); E and H left.
    rows = report.by_plan.select(
        "plan", "customer_months", "churned", "voluntary", "involuntary"
    ).rows()
    assert rows == [("pro", 8, 2, 1, 1), ("basic", 5, 2, 1, 1)]
    assert churn_health(log(ROWS, with_plan=False), settings=SETTINGS, as_of=AS_OF).by_plan is None


def test_only_events_up_to_the_as_of_count(report):
    later = [("B", "2025-05-02", "purchase", 10, "basic", None)]
    again = churn_health(log(ROWS + later), settings=SETTINGS, as_of=AS_OF)
    assert again.months.equals(report.months)
    assert again.cohorts.equals(report.cohorts)


def test_a_log_without_failed_payments_says_so():
    rows = [r for r in ROWS if r[2] != "payment_failed"]
    health = churn_health(log(rows), settings=SETTINGS, as_of=AS_OF)
    assert not health.has_failed_payments
    assert health.months["involuntary"].sum() == 0
    assert health.failed_payments.height == 0
    assert any("no failed payments" in n for n in health.notes)


def test_json_is_plain_data(report):
    payload = report.to_json()
    assert payload["period"] == "calendar month"
    assert payload["months"][0]["month"] == "2025-02-01"
    assert payload["cohorts"][0] == {
        "cohort": "2025-02-01",
        "customers": 2,
        "retention": [1.0, 0.5, 0.5],
    }
    assert payload["summary"]["complete_months"] == 2


def test_no_complete_month_gives_empty_tables():
    rows = [("A", "2025-04-03", "purchase", 10, "basic", None)]
    health = churn_health(log(rows), settings=SETTINGS, as_of=AS_OF)
    assert health.months.height == 0
    assert health.cohort_matrix().height == 0
    assert health.summary["monthly_churn_rate"] is None
    assert any("no complete calendar month" in n for n in health.notes)
