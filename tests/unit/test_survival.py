"""Retention curves: the estimators against lifelines' results on the same data, and
lifetimes read off an event log by the label rules."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from churnkit.segment.survival import kaplan_meier, lifetimes, median_lifetime, retention_curves

# Lifetimes (days) and how they ended (0 censored, 1 voluntary, 2 involuntary); the
# expected values were computed with lifelines 0.30 (KaplanMeierFitter with its default
# exponential Greenwood bands, median_survival_times, AalenJohansenFitter).
DURATIONS = [390, 388, 33, 181, 243, 390, 388, 33, 181, 243, 113, 151, 251, 320, 232, 70, 270,
             348, 88, 218, 135, 360, 25, 191, 359, 172, 56, 315, 385, 393, 372, 148, 293, 387,
             229, 371, 236, 71, 186, 243, 122, 282, 163, 377, 83, 266, 37, 54, 208, 199, 199,
             197, 342, 200, 146, 383, 353, 140, 81, 90]  # fmt: skip
KINDS = [1, 1, 2, 1, 0, 2, 1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 0, 2, 2, 0, 1, 0, 2, 1, 2, 0, 0, 0, 2,
         1, 1, 2, 2, 0, 0, 2, 0, 0, 2, 2, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1,
         0, 0]  # fmt: skip
LIFELINES = {
    50: (0.95, 0.8529467641474251, 0.9835949194742633),
    100: (0.9143750000000002, 0.8061381528409696, 0.9635002231169402),
    200: (0.6530228724908285, 0.505591283537717, 0.7662381502647885),
    300: (0.5495030820020593, 0.39427873573140004, 0.6803247117700891),
}


@pytest.mark.parametrize("day", sorted(LIFELINES))
def test_kaplan_meier_and_greenwood_bands_match_lifelines(day):
    curve = kaplan_meier(DURATIONS, KINDS)
    survival, low, high = LIFELINES[day]
    assert curve.at(day) == pytest.approx(survival)
    assert curve.at(day, curve.lower) == pytest.approx(low)
    assert curve.at(day, curve.upper) == pytest.approx(high)


def test_median_lifetime_and_its_interval_match_lifelines():
    assert median_lifetime(kaplan_meier(DURATIONS, KINDS)) == (348.0, 208.0, 372.0)


def test_competing_risks_match_aalen_johansen_and_add_up():
    curve = kaplan_meier(DURATIONS, KINDS)
    assert curve.at(100, curve.voluntary) == pytest.approx(0.0336309523809524)
    assert curve.at(300, curve.voluntary) == pytest.approx(0.30332570610534226)
    total = curve.voluntary + curve.involuntary + curve.survival
    assert total == pytest.approx([1.0] * len(total))


def test_no_ends_means_flat_survival_and_no_median():
    curve = kaplan_meier([10, 20, 30], [0, 0, 0])
    assert curve.at(25) == 1.0 and curve.at(25, curve.lower) == 1.0
    assert median_lifetime(curve) == (None, None, None)


def _events() -> pl.LazyFrame:
    rows = [
        # a: signs up, pays, cancels -> voluntary after 40 days
        ("a", "2026-01-01", "signup", "basic", "web"),
        ("a", "2026-01-01", "purchase", "basic", "web"),
        ("a", "2026-02-10", "cancel", None, None),
        # b: pays monthly, still active -> censored at as_of (150 days)
        *[("b", f"2026-0{m}-01", "purchase", "pro", "partner") for m in range(1, 6)],
        # c: payment fails and is never recovered -> involuntary on the failure
        ("c", "2026-01-01", "purchase", "basic", "web"),
        ("c", "2026-02-01", "payment_failed", None, None),
        # d: buys once and lapses -> voluntary, ending at the last purchase (day 0)
        ("d", "2026-01-05", "purchase", "basic", "web"),
    ]
    return pl.LazyFrame(
        rows, schema=["customer_id", "ts", "kind", "plan", "Channel"], orient="row"
    ).with_columns(pl.col("ts").str.to_datetime("%Y-%m-%d"), pl.lit(0.0).alias("amount"))


def test_lifetimes_follow_the_label_rules():
    life = lifetimes(
        _events(),
        datetime(2026, 5, 31, 23, 59),
        active_window=35,
        grace=14,
        channel_column="Channel",
    ).sort("customer_id")
    assert life["kind"].to_list() == [1, 0, 2, 1]
    assert life["days"].to_list() == [40, 150, 31, 0]
    assert life["plan"].to_list() == ["basic", "pro", "basic", "basic"]
    assert life["channel"].to_list() == ["web", "partner", "web", "web"]


def test_retention_curves_by_dimension(monkeypatch):
    import churnkit.segment.survival as survival

    monkeypatch.setattr(survival, "MIN_GROUP", 1)
    report = retention_curves(
        _events(), datetime(2026, 5, 31, 23, 59), active_window=35, grace=14,
        channel_column="Channel",
    )  # fmt: skip
    assert set(report.dimensions) == {"overall", "cohort", "plan", "channel"}
    overall = report.dimensions["overall"][0]
    assert (overall.customers, overall.voluntary, overall.involuntary) == (4, 2, 1)
    assert report.dimensions["cohort"][0].group == "2026-Q1"
    payload = report.to_json()
    assert payload["dimensions"]["plan"][0]["group"] == "basic"
