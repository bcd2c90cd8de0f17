"""segment: RFM scores, named segments, lifecycle, type, value tier and strategy on
hand-built customers whose answers are worked out in the comments."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import polars as pl
import pytest

from churnkit.core.config import load_settings
from churnkit.core.errors import DataError, ModelError
from churnkit.core.schema import KIND_DTYPE
from churnkit.segment.rules import STRATEGIES, rfm_score, rfm_segment_expr
from churnkit.segment.segments import segment

AS_OF = datetime(2025, 6, 30, 23, 59, 59, 999_999)


def log(rows: list[tuple[Any, ...]], **columns: list[Any]) -> pl.LazyFrame:
    """Events from (customer, 'YYYY-MM-DD[ HH:MM]', kind, amount) tuples."""
    return (
        pl.DataFrame(
            {
                "customer_id": [r[0] for r in rows],
                "ts": [datetime.fromisoformat(r[1]) for r in rows],
                "kind": [r[2] for r in rows],
                "amount": [float(r[3]) for r in rows],
                **columns,
            }
        )
        .with_columns(pl.col("kind").cast(KIND_DTYPE), pl.col("ts").cast(pl.Datetime("us")))
        .lazy()
    )


def buys(customer: str, dates: list[str], amount: float) -> list[tuple[Any, ...]]:
    return [(customer, d, "purchase", amount) for d in dates]


def monthly(day: int, start: tuple[int, int], end: tuple[int, int]) -> list[str]:
    (y, m), out = start, []
    while (y, m) <= end:
        out.append(f"{y}-{m:02d}-{day:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def settings(grace: int = 0, population: str = "active", **segments: Any) -> Any:
    # A fixed active window keeps the population independent of gap quantiles (and of
    # the business model these small logs would show); a lifetime RFM window keeps
    # frequency = purchases and monetary = revenue.
    return load_settings(
        None,
        env={},
        overrides={
            "labels": {
                "active_window": 120,
                "horizon": 30,
                "grace_period": grace,
                "population": population,
            },
            "segments": {"rfm_window": None, **segments},
        },
    )


# Five customers at 2025-06-30 (active window 120 days):
#   need:   20 on the 15th of every month 2024-07..2025-06 (12 buys, gaps 28-31 days)
#   big:    500 on the 10th of every month 2024-01..2025-06 (18 buys, 537 days' tenure)
#   impulse: 50 on 2024-09-01, 09-03, 2025-01-20, 06-25 (gaps 2, 139, 156: cv 0.85)
#   newbie: one purchase of 30 on 2025-06-28
#   lapsed: 100 on 2025-03-01, 03-11, 03-21, 03-31 (gap 10, silent for 91 days)
FIVE = [
    *buys("need", monthly(15, (2024, 7), (2025, 6)), 20),
    *buys("big", monthly(10, (2024, 1), (2025, 6)), 500),
    *buys("impulse", ["2024-09-01", "2024-09-03", "2025-01-20", "2025-06-25"], 50),
    *buys("newbie", ["2025-06-28"], 30),
    *buys("lapsed", ["2025-03-01", "2025-03-11", "2025-03-21", "2025-03-31"], 100),
]


def by_customer(result: Any, *columns: str) -> dict[str, tuple[Any, ...]]:
    frame = result.customers.select("customer_id", *columns)
    return {row[0]: tuple(row[1:]) for row in frame.iter_rows()}


@pytest.fixture(scope="module")
def five() -> Any:
    return segment(log(FIVE), settings=settings(), as_of=AS_OF)


def test_rfm_scores_and_named_segments_on_five_customers(five):
    # Recency in whole days: newbie 2, impulse 5, need 15, big 20, lapsed 91 -> R 5..1.
    # Purchases: newbie 1, impulse 4, lapsed 4 (tied), need 12, big 18 -> F 1, 3, 3, 4, 5.
    # Revenue: newbie 30, impulse 200, need 240, lapsed 400, big 9000 -> M 1..5.
    got = by_customer(five, "r_score", "f_score", "m_score", "rfm_segment")
    assert got == {
        "big": (2, 5, 5, "cant_lose_them"),
        "impulse": (4, 3, 2, "potential_loyalists"),
        "lapsed": (1, 3, 4, "at_risk"),
        "need": (3, 4, 3, "loyal"),
        "newbie": (5, 1, 1, "new"),
    }
    assert five.customers["frequency"].to_list() == [18.0, 4.0, 4.0, 12.0, 1.0]
    assert five.customers["monetary"].to_list() == [9000.0, 200.0, 400.0, 240.0, 30.0]


def test_lifecycle_type_tier_and_strategy_on_five_customers(five):
    # Value percentiles (rank - 0.5) / 5: newbie .1, impulse .3 (low), need .5, lapsed
    # .7 (medium), big .9 (high). The newbie's rhythm is the population's median gap, 31.
    got = by_customer(five, "lifecycle_stage", "customer_type", "value_tier", "strategy")
    assert got == {
        # loyal stage: 537 days, 18 buys; loyal type: F 5, M 5; steady and not at risk.
        "big": ("loyal", "loyal", "high", "harvest"),
        # 4 buys in 302 days; irregular gaps; low value but F 3: low-cost channels.
        "impulse": ("retained", "impulse", "low", "reshape"),
        # 91 days against a usual gap of 10: 9.2x, lapsed; medium value: win back.
        "lapsed": ("lapsed", "need_based", "medium", "win_back"),
        # 350 days (< 365 for loyal); regular monthly gaps; medium value at low risk.
        "need": ("retained", "need_based", "medium", "enhance"),
        # one purchase: new; too few buys and low value: wanderer; young: build.
        "newbie": ("new", "wanderer", "low", "build"),
    }
    reasons = by_customer(five, "strategy_reason", "type_reason")
    assert "9.2x the usual gap" in reasons["lapsed"][0]
    assert "irregular gaps (variation 0.85 > 0.5) over 4 purchases" in reasons["impulse"][1]
    assert "F 5, M 5 >= 4" in reasons["big"][1]
    assert set(five.customers["risk_source"]) == {"rules"}


def test_rule_risk_follows_the_overdue_ratio(five):
    risk = dict(zip(five.customers["customer_id"], five.customers["risk"], strict=True))
    assert risk["lapsed"] == 1.0  # 9.2x the gap, capped at 1
    assert risk["need"] == pytest.approx((15 + 86399.999999 / 86400) / 31 / 3, abs=1e-6)


def test_model_risk_replaces_the_rules_and_names_the_model():
    risk = pl.DataFrame({"customer_id": ["big", "newbie"], "p_churn": [0.9, 0.1]})
    result = segment(log(FIVE), settings=settings(), as_of=AS_OF, risk=risk, model="m1")
    got = by_customer(result, "risk", "risk_source", "strategy")
    # big: high value at 0.9 >= 0.5 -> protect.
    assert got["big"] == (0.9, "model", "protect")
    assert got["newbie"] == (0.1, "model", "build")
    assert got["need"][1] == "rules"
    assert result.model == "m1"
    assert any("3 customers have no model score" in n for n in result.notes)


def test_a_risk_table_without_p_churn_is_a_data_error():
    with pytest.raises(DataError, match="p_churn"):
        segment(log(FIVE), settings=settings(), as_of=AS_OF, risk=pl.DataFrame({"x": [1]}))


def test_outcomes_are_summarised_when_the_window_is_in_the_data(five):
    # After 2025-06-30 (horizon 30, no grace): need buys on 07-15 (retained), big
    # cancels on 07-05 (voluntary), impulse and lapsed buy nothing (voluntary lapses),
    # newbie buys on 07-10 and 07-31 (retained; 07-31 also proves the window is known).
    future = [
        ("need", "2025-07-15", "purchase", 20),
        ("big", "2025-07-05", "cancel", 0),
        ("newbie", "2025-07-10", "purchase", 30),
        ("newbie", "2025-07-31", "purchase", 30),
    ]
    result = segment(log(FIVE + future), settings=settings(), as_of=AS_OF)
    assert result.outcomes_known
    observed = by_customer(result, "observed_churn")
    assert {k: v[0] for k, v in observed.items()} == {
        "big": "voluntary",
        "impulse": "voluntary",
        "lapsed": "voluntary",
        "need": "retained",
        "newbie": "retained",
    }
    tiers = result.summary.filter(pl.col("dimension") == "value_tier")
    rates = dict(zip(tiers["segment"], tiers["churn_rate"], strict=True))
    assert rates == {"high": 1.0, "medium": 0.5, "low": 0.5}
    # Later events never change who is in which segment.
    same = ["customer_id", "rfm_segment", "lifecycle_stage", "customer_type", "strategy"]
    assert result.customers.select(same).equals(five.customers.select(same))
    assert not five.outcomes_known
    assert five.summary["churn_rate"].null_count() == five.summary.height


def test_summary_shares_add_up(five):
    for dim, part in five.summary.group_by("dimension"):
        assert part["customers"].sum() == 5, dim
        assert part["revenue_share"].sum() == pytest.approx(1.0)
    strategies = five.summary.filter(pl.col("dimension") == "strategy")["segment"].to_list()
    assert strategies == [s for s in STRATEGIES if s in strategies]  # in the documented order


# --- scores: ties and tiny populations ----------------------------------------------------


def scores(values: list[float]) -> list[int]:
    frame = pl.DataFrame({"v": values}).select(rfm_score(pl.col("v")))
    return frame.to_series().to_list()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([10, 20, 30, 40, 50], [1, 2, 3, 4, 5]),
        ([10, 10, 30, 40, 50], [2, 2, 3, 4, 5]),  # tied ranks 1.5 share a score
        ([7, 7, 7, 7, 7, 7], [3, 3, 3, 3, 3, 3]),  # everyone tied: the middle
        ([42], [3]),  # one customer: the middle
        ([1, 2], [2, 4]),
        ([1, 2, 3], [1, 3, 5]),
        ([1, 2, 3, 4], [1, 2, 4, 5]),
        (list(range(10)), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    ],
)
def test_quintile_scores_handle_ties_and_tiny_populations(values, expected):
    assert scores([float(v) for v in values]) == expected


def test_a_single_customer_scores_three_everywhere():
    result = segment(log(buys("solo", ["2025-06-01", "2025-06-20"], 40)), settings=settings())
    assert by_customer(result, "r_score", "f_score", "m_score", "value_tier")["solo"] == (
        3,
        3,
        3,
        "medium",
    )


def test_purchases_on_the_same_day_share_a_recency_score():
    rows = [
        *buys("early", ["2025-06-29 08:00"], 10),
        *buys("late", ["2025-06-29 22:00"], 10),
        *buys("old", ["2025-05-01"], 10),
    ]
    got = by_customer(segment(log(rows), settings=settings(), as_of=AS_OF), "r_score")
    assert got["early"] == got["late"] == (4,)  # ranks 2.5 of 3
    assert got["old"] == (1,)


def test_default_rfm_rules_name_every_score_combination():
    combos = pl.DataFrame(
        list(itertools.product(range(1, 6), repeat=3)),
        schema=["r_score", "f_score", "m_score"],
        orient="row",
    )
    rules = load_settings(None, env={}).segments.rfm_segments
    named = combos.select(rfm_segment_expr(rules)).to_series()
    assert "other" not in named.to_list()
    assert set(named) == set(rules)


def test_custom_rfm_rules_apply_in_order_and_the_rest_is_other():
    rules = {"vip": {"m": [5, 5]}, "recent": {"r": [4, 5]}}
    result = segment(log(FIVE), settings=settings(rfm_segments=rules), as_of=AS_OF)
    got = {k: v[0] for k, v in by_customer(result, "rfm_segment").items()}
    # big has M 5 (and R 2); newbie and impulse are recent; need and lapsed match nothing.
    assert got == {
        "big": "vip",
        "newbie": "recent",
        "impulse": "recent",
        "need": "other",
        "lapsed": "other",
    }


# --- lifecycle, discount-driven, failed payments ------------------------------------------


def test_converting_and_at_risk_stages():
    rows = [
        # two buys 30 days apart, 11 days ago, first seen 41 days ago: converting.
        *buys("two", ["2025-05-20", "2025-06-19"], 60),
        # every 20 days, silent for 50 days: 2.5x the gap, at risk (1.5 <= x < 3).
        *buys("late", ["2025-04-01", "2025-04-21", "2025-05-11"], 60),
    ]
    got = by_customer(segment(log(rows), settings=settings(), as_of=AS_OF), "lifecycle_stage")
    assert got == {"two": ("converting",), "late": ("at_risk",)}


def discount_log() -> pl.LazyFrame:
    # promo: 3 of 4 purchases with a discount; full: none of 4; both monthly.
    dates = ["2025-03-05", "2025-04-05", "2025-05-05", "2025-06-05"]
    rows = [*buys("promo", dates, 30), *buys("full", dates, 30)]
    discount = ["10", "20", "0", "15", "0", "0", "0", "0"]
    return log(rows, Discount=discount)


def test_discount_driven_needs_a_configured_discount_column():
    result = segment(discount_log(), settings=settings(discount_column="Discount"), as_of=AS_OF)
    got = by_customer(result, "customer_type", "discount_share", "type_reason")
    assert got["promo"][:2] == ("discount_driven", 0.75)
    assert "75% of 4 purchases on discount (>= 50%)" in got["promo"][2]
    assert got["full"][:2] == ("need_based", 0.0)
    assert result.discount_column == "Discount"


def test_without_a_discount_column_the_output_says_why():
    result = segment(discount_log(), settings=settings(), as_of=AS_OF)
    assert "discount_driven" not in result.customers["customer_type"].to_list()
    assert "discount_share" not in result.customers.columns
    assert any("no `segments.discount_column`" in n for n in result.notes)
    missing = segment(discount_log(), settings=settings(discount_column="Promo"), as_of=AS_OF)
    assert any("'Promo' is not a column" in n for n in missing.notes)


def test_an_unrecovered_failed_payment_raises_the_rule_risk():
    # The failure is 5 days old: within the 14-day grace the customer is still active.
    rows = [
        *buys("ok", monthly(3, (2025, 1), (2025, 6)), 100),
        *buys("failing", monthly(3, (2025, 1), (2025, 6)), 100),
        ("failing", "2025-06-25", "payment_failed", 100),
    ]
    got = by_customer(
        segment(log(rows), settings=settings(grace=14), as_of=AS_OF),
        "risk",
        "value_tier",
        "strategy",
    )
    assert got["failing"][0] == 0.8
    assert got["failing"][2] == "protect"  # tied value: both medium; risk 0.8 >= 0.5
    assert got["ok"][0] < 0.5


def test_no_active_customer_is_a_data_error():
    rows = buys("gone", ["2024-01-01"], 10)
    with pytest.raises(DataError, match="no customer is active"):
        segment(log(rows), settings=settings(), as_of=AS_OF)


def test_a_shop_segments_every_past_buyer_and_wins_back_the_lapsed_valuable_ones():
    # No cancels, no failed payments, no regular billing: a shop, so the customer who
    # last bought long ago is segmented too, lapsed, and worth winning back.
    rows = [
        *buys("gone", ["2024-01-01", "2024-02-11", "2024-03-01"], 500),
        *buys("here", ["2025-04-03", "2025-05-20", "2025-06-21"], 10),
    ]
    result = segment(log(rows), settings=settings(population="auto"), as_of=AS_OF)
    got = {r["customer_id"]: r for r in result.customers.iter_rows(named=True)}
    assert set(got) == {"gone", "here"}
    assert got["gone"]["lifecycle_stage"] == "lapsed"
    assert got["gone"]["strategy"] == "win_back"
    assert "chance of buying again in the horizon" in got["gone"]["strategy_reason"]


def test_risk_source_model_without_a_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError):
        segment(log(FIVE), settings=settings(risk_source="model"), as_of=AS_OF)
    with pytest.raises(ModelError, match="no model"):
        segment(
            log(FIVE),
            settings=settings(risk_source="model"),
            as_of=AS_OF,
            model_dir=tmp_path / "missing",
        )
    auto = segment(log(FIVE), settings=settings(), as_of=AS_OF, model_dir=tmp_path / "missing")
    assert set(auto.customers["risk_source"]) == {"rules"}
    assert any("rule-based" in n and "no model" in n for n in auto.notes)
