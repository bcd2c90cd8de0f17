"""Per-customer features at a cutoff, on tiny logs with answers worked out by hand.

The cutoff is the end of 2024-06-30; events sit at noon unless said otherwise, so
"days since" values end in .5.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.config import FeatureSettings
from churnkit.core.errors import ConfigError, MissingColumnError
from churnkit.core.schema import (
    CARD_EXPIRY,
    CUSTOMER_ID,
    EVENT,
    EVENT_SCHEMA,
    KIND,
    PLAN,
    QUANTITY,
    REASON,
    RELATED_CUSTOMER_ID,
    RELATIONS_SCHEMA,
    SINCE,
    TS,
)
from churnkit.core.timeline import end_of_day
from churnkit.features import (
    FeatureLayout,
    FeatureSet,
    FeatureSpec,
    compute_features,
    feature_layout,
    slug,
)
from churnkit.features.spec import Sentence

CUTOFF = end_of_day(date(2024, 6, 30))
DEFAULT = FeatureSettings()


def at(month: int, day: int, hour: int = 12, year: int = 2024) -> datetime:
    return datetime(year, month, day, hour)


def row(
    customer: str,
    t: datetime,
    kind: str = "purchase",
    amount: float = 0.0,
    cols: dict[str, Any] | None = None,
    **extra: str | None,
) -> dict[str, Any]:
    """One event; ``cols`` sets canonical columns, ``extra`` source columns."""
    return {CUSTOMER_ID: customer, TS: t, KIND: kind, "amount": amount, **(cols or {}), **extra}


def log(*rows: dict[str, Any], extras: tuple[str, ...] = ()) -> pl.LazyFrame:
    """Canonical events (unset columns null); ``extras`` are string source columns."""
    schema = {**EVENT_SCHEMA, **{name: pl.String() for name in extras}}
    return pl.DataFrame([{c: r.get(c) for c in schema} for r in rows], schema=schema).lazy()


def features(
    events: pl.LazyFrame, settings: FeatureSettings = DEFAULT, **kwargs: Any
) -> tuple[dict[str, dict[str, Any]], FeatureSet]:
    result = compute_features(events, CUTOFF, settings=settings, **kwargs)
    frame = result.frame.collect()
    return {r[CUSTOMER_ID]: r for r in frame.iter_rows(named=True)}, result


def near(value: float) -> Any:
    return pytest.approx(value, abs=1e-6)


def test_recency_tenure_counts_windows_and_trends() -> None:
    events = log(
        row("a", at(1, 1, 0), "signup"),
        row("a", at(1, 10), amount=5.0),
        row("a", at(4, 10), amount=10.0),
        row("a", at(5, 15), amount=20.0),
        row("a", at(6, 20), amount=30.0),
        row("a", at(6, 25), "other"),
    )
    got, _ = features(events)
    a = got["a"]
    assert a["recency_days"] == near(10.5)
    assert a["days_since_last_event"] == near(5.5)
    assert a["tenure_days"] == near(182.0)
    assert (a["purchases_total"], a["revenue_total"], a["avg_purchase_amount"]) == (4, 65, 16.25)
    # Last 30 days: June 20; the 30 before: May 15.
    assert (a["purchases_30d"], a["purchases_prev_30d"], a["purchases_trend_30d"]) == (1, 1, 0)
    # Last 90 days: Apr 10, May 15, Jun 20; the 90 before (Jan 2 - Apr 1]: Jan 10.
    assert (a["purchases_90d"], a["purchases_prev_90d"]) == (3, 1)
    assert a["purchases_trend_90d"] == near((3 - 1) / (3 + 1))
    assert (a["revenue_90d"], a["revenue_prev_90d"]) == (60, 5)
    assert a["revenue_trend_90d"] == near(55 / 65)
    assert a["purchases_180d"] == 4


def test_trend_is_defined_when_either_window_is_empty() -> None:
    events = log(row("new", at(6, 20), amount=5.0), row("old", at(1, 20), amount=5.0))
    got, _ = features(events, FeatureSettings(windows=[30]))
    assert got["new"]["purchases_trend_30d"] == 1.0
    assert got["old"]["purchases_trend_30d"] == 0.0
    assert got["old"]["revenue_trend_30d"] == 0.0


def test_gap_features_are_null_for_a_single_purchase() -> None:
    events = log(
        row("one", at(6, 1), amount=9.0),
        *(row("regular", at(6, d), amount=9.0) for d in (1, 11, 21)),
        # Three line items of one order, then one more order two weeks later.
        *(row("lines", at(6, 1), amount=3.0) for _ in range(3)),
        row("lines", at(6, 15), amount=3.0),
    )
    got, _ = features(events)
    gap_columns = ["gap_median_days", "gap_mean_days", "gap_std_days", "gap_cv", "gap_last_days"]
    assert all(got["one"][c] is None for c in [*gap_columns, "overdue_ratio"])
    reg = got["regular"]
    assert (reg["gap_median_days"], reg["gap_mean_days"], reg["gap_last_days"]) == (10, 10, 10)
    assert (reg["gap_std_days"], reg["gap_cv"]) == (0, 0)
    assert reg["overdue_ratio"] == near(9.5 / 10)
    lines = got["lines"]
    assert (lines["gap_median_days"], lines["gap_std_days"]) == (14, None)
    assert lines["overdue_ratio"] == near(15.5 / 14)


def test_failed_payments_by_window_reason_and_recovery() -> None:
    events = log(
        row("f", at(4, 1), amount=10.0),
        row("f", at(4, 20), "payment_failed", cols={REASON: "card_expired"}),
        row("f", at(5, 1), amount=10.0),
        row("f", at(6, 10), "payment_failed", cols={REASON: "Insufficient_Funds"}),
        row("f", at(6, 20), "payment_failed", cols={REASON: "do_not_honor"}),
        row("ok", at(6, 1), amount=10.0),
    )
    got, _ = features(events)
    f = got["f"]
    assert (f["failed_payments_30d"], f["failed_payments_90d"], f["failed_payments_total"]) == (
        2,
        3,
        3,
    )
    assert f["failed_payments_unrecovered"] == 2
    assert f["failed_recovered_share"] == near(1 / 3)
    assert f["days_since_last_failure"] == near(10.5)
    assert (f["failed_card_expired"], f["failed_insufficient_funds"], f["failed_other"]) == (
        1,
        1,
        1,
    )
    ok = got["ok"]
    assert (ok["failed_payments_total"], ok["failed_recovered_share"]) == (0, None)
    assert ok["days_since_last_failure"] is None


def test_complaints_unresolved_and_refunds() -> None:
    events = log(
        row("c", at(3, 1), amount=20.0),
        row("c", at(4, 5), "complaint"),
        row("c", at(5, 1), amount=20.0),
        row("c", at(5, 2), "refund", amount=-15.0),
        row("c", at(6, 5), "complaint"),
    )
    got, _ = features(events)
    c = got["c"]
    assert (c["complaints_total"], c["complaints_90d"], c["complaints_unresolved"]) == (2, 2, 1)
    assert (c["refunds_total"], c["refund_amount_total"]) == (1, 15)


def usage(customer: str, t: datetime, name: str, quantity: float | None) -> dict[str, Any]:
    return row(customer, t, "usage", cols={EVENT: name, QUANTITY: quantity})


USAGE_LOG = log(
    row("u", at(1, 5), amount=10.0),
    usage("u", at(6, 25), "login", 3.0),
    usage("u", at(6, 10), "login", 2.0),
    usage("u", at(5, 20), "login", 4.0),
    usage("u", at(6, 28), "Report Run", None),
    usage("u", at(6, 29), "Report Run", None),
    usage("v", at(2, 1), "login", 1.0),
)


def test_usage_sums_trend_and_days_since_for_the_top_events() -> None:
    got, result = features(USAGE_LOG)
    u = got["u"]
    assert result.layout.usage_events == ("login", "Report Run")
    assert (u["usage_login_30d"], u["usage_login_prev_30d"], u["usage_login_90d"]) == (5, 4, 9)
    assert u["usage_login_trend"] == near(1 / 9)
    assert u["usage_login_days_since"] == near(5.5)
    # A missing quantity counts one use.
    assert u["usage_report_run_30d"] == 2
    assert u["days_since_last_usage"] == near(1.5)
    v = got["v"]
    assert (v["usage_login_30d"], v["usage_report_run_days_since"]) == (0, None)


def test_only_the_most_frequent_usage_events_get_columns() -> None:
    _, result = features(USAGE_LOG, FeatureSettings(usage_top_events=1))
    assert [n for n in result.specs if n.startswith("usage_")] == [
        "usage_login_30d",
        "usage_login_prev_30d",
        "usage_login_90d",
        "usage_login_trend",
        "usage_login_days_since",
    ]


def test_days_to_card_expiry_from_the_latest_card() -> None:
    events = log(
        row("a", at(3, 1), amount=5.0, cols={CARD_EXPIRY: date(2024, 5, 1)}),
        row("a", at(6, 1), amount=5.0, cols={CARD_EXPIRY: date(2024, 9, 1)}),
        row("a", at(6, 15), amount=5.0),
        row("expired", at(6, 1), amount=5.0, cols={CARD_EXPIRY: date(2024, 6, 1)}),
        row("none", at(6, 1), amount=5.0),
    )
    got, _ = features(events)
    assert got["a"]["days_to_card_expiry"] == 63
    assert got["expired"]["days_to_card_expiry"] == -29
    assert got["none"]["days_to_card_expiry"] is None


def plan_row(t: datetime, plan: str, amount: float | None = None) -> dict[str, Any]:
    if amount is None:
        return row("p", t, "plan_change", cols={PLAN: plan})
    return row("p", t, amount=amount, cols={PLAN: plan})


def test_plan_downgrades_and_price_increases() -> None:
    events = log(
        plan_row(at(1, 5), "basic", 10.0),
        plan_row(at(2, 5), "basic", 12.0),  # +20 %
        plan_row(at(3, 1), "pro"),  # upgrade
        plan_row(at(3, 5), "pro", 30.0),
        plan_row(at(4, 1), "basic"),  # downgrade
        plan_row(at(4, 5), "basic", 12.0),
        plan_row(at(5, 5), "basic", 12.0),
        plan_row(at(6, 5), "basic", 15.0),  # +25 %
    )
    got, result = features(events)
    assert result.layout.plan_ranks == (("basic", 1), ("pro", 2))
    p = got["p"]
    assert p["plan"] == "basic"
    assert (p["plan_changes_total"], p["downgrades_total"], p["upgrades_total"]) == (2, 1, 1)
    assert p["price_increases"] == 2
    assert p["last_price_increase_pct"] == near(25.0)
    assert result.specs["plan"].kind == "categorical"
    # Plan changes are not purchases: gaps run Jan 5 - Feb 5 - Mar 5 - Apr 5 - May 5 - Jun 5.
    assert p["purchases_total"] == 6
    assert p["gap_median_days"] == 31


def test_a_plan_change_and_a_purchase_at_the_same_moment() -> None:
    events = log(
        plan_row(at(5, 5), "basic", 10.0),
        plan_row(at(6, 5), "pro", 30.0),
        plan_row(at(6, 5), "pro"),
    )
    got, _ = features(events)
    assert (got["p"]["upgrades_total"], got["p"]["price_increases"]) == (1, 0)


def test_extra_columns_last_value_and_share() -> None:
    settings = FeatureSettings(extra_numeric=["Discount"], extra_categorical=["Channel"])
    events = log(
        row("x", at(1, 5), amount=10.0, Discount="0", Channel="web"),
        row("x", at(2, 5), amount=9.0, Discount=" 10% ", Channel="app"),
        row("x", at(3, 5), amount=10.0, Discount="0"),
        row("y", at(3, 5), amount=10.0, Channel="store"),
        extras=("Discount", "Channel"),
    )
    got, result = features(events, settings)
    assert (got["x"]["discount_last"], got["x"]["discount_share"]) == (0, near(1 / 3))
    assert got["x"]["channel_last"] == "app"
    assert (got["y"]["discount_last"], got["y"]["discount_share"]) == (None, 0)
    assert result.specs["channel_last"].kind == "categorical"


def test_features_needing_absent_or_empty_columns_are_absent() -> None:
    settings = FeatureSettings(extra_numeric=["Missing"], extra_categorical=["Empty"])
    events = log(row("a", at(6, 1), amount=5.0), extras=("Empty",))
    got, result = features(events, settings)
    absent = ("plan", "days_to_card_expiry", "missing_last", "empty_last", "failed_payments_total")
    assert not [n for n in result.specs if n.startswith(absent)]
    assert not [n for n in result.specs if n.startswith("usage")]
    assert got["a"]["purchases_total"] == 1


def test_a_log_with_only_the_required_columns_works() -> None:
    events = pl.DataFrame(
        {CUSTOMER_ID: ["a", "a"], TS: [at(5, 1), at(6, 1)], KIND: ["purchase"] * 2},
        schema={CUSTOMER_ID: pl.String, TS: pl.Datetime("us"), KIND: EVENT_SCHEMA[KIND]},
    ).with_columns(amount=pl.lit(4.0))
    got, _ = features(events.lazy())
    assert got["a"]["gap_median_days"] == 31


def test_a_fixed_layout_gives_the_same_columns_at_every_cutoff() -> None:
    events = USAGE_LOG
    layout = feature_layout(events, CUTOFF, DEFAULT)
    early = compute_features(events, at(1, 31), settings=DEFAULT, layout=layout)
    late = compute_features(events, CUTOFF, settings=DEFAULT, layout=layout)
    assert early.frame.collect_schema() == late.frame.collect_schema()
    assert list(early.specs) == list(late.specs)
    assert FeatureLayout.from_dict(layout.to_dict()) == layout


def test_a_layout_naming_a_column_the_data_lacks_is_a_missing_column_error() -> None:
    layout = FeatureLayout(kinds=("purchase",), columns=(PLAN,), plan_ranks=(("a", 1),))
    events = pl.DataFrame(
        {CUSTOMER_ID: ["a"], TS: [at(5, 1)], KIND: ["purchase"], "amount": [1.0]},
        schema={
            CUSTOMER_ID: pl.String,
            TS: pl.Datetime("us"),
            KIND: EVENT_SCHEMA[KIND],
            "amount": pl.Float64,
        },
    ).lazy()
    with pytest.raises(MissingColumnError, match="plan"):
        compute_features(events, CUTOFF, settings=DEFAULT, layout=layout)


def relations(*ties: tuple[str, str, datetime | None]) -> pl.LazyFrame:
    return pl.DataFrame(
        [
            {CUSTOMER_ID: a, RELATED_CUSTOMER_ID: b, "relation_kind": "referral", SINCE: s}
            for a, b, s in ties
        ],
        schema=RELATIONS_SCHEMA,
    ).lazy()


NETWORK_LOG = log(
    # a and b: customers for over a year, active in each of the last three months.
    *(
        row(c, at(m, 3, year=y), amount=10.0)
        for c in "ab"
        for y, m in ((2023, 5), (2024, 4), (2024, 5), (2024, 6))
    ),
    # c: cancelled in March.
    row("c", at(5, 3, year=2023), amount=10.0),
    row("c", at(3, 3), "cancel"),
    row("d", at(6, 3), amount=10.0),
)
TIES = relations(
    ("a", "b", datetime(2024, 1, 1)),
    ("b", "a", None),
    ("a", "c", None),
    ("a", "d", datetime(2024, 7, 1)),  # tied after the cutoff: not yet a tie
    ("c", "zz", None),  # a customer with no events
)


def test_network_counts_and_stickiness() -> None:
    active = pl.DataFrame({CUSTOMER_ID: ["a", "b", "d"]}).lazy()
    settings = FeatureSettings(network_coupling=0.5)
    got, result = features(NETWORK_LOG, settings, relations=TIES, active=active)
    counts = {
        c: (got[c]["related_customers"], got[c]["related_active"], got[c]["related_churned"])
        for c in "abcd"
    }
    assert counts == {"a": (2, 1, 1), "b": (1, 1, 0), "c": (2, 1, 0), "d": (0, 0, 0)}
    # Own stickiness: 0.5·min(1, tenure/365) + 0.5·(active months of the last 3)/3.
    assert got["a"]["network_stickiness"] == near(1.0 + 0.5 * 1.0)
    assert got["c"]["network_stickiness"] == near(0.5 + 0.5 * 1.0)
    d_own = 0.5 * (27.5 / 365) + 0.5 * (1 / 3)
    assert got["d"]["network_stickiness"] == near(d_own)
    assert result.specs["related_churned"].risk_when == "high"


def test_network_active_set_defaults_to_the_labels_definition() -> None:
    explicit = pl.DataFrame({CUSTOMER_ID: ["a", "b", "d"]}).lazy()
    _, with_active = features(NETWORK_LOG, relations=TIES, active=explicit)
    _, derived = features(NETWORK_LOG, relations=TIES)
    assert_frame_equal(
        with_active.frame.collect().sort(CUSTOMER_ID), derived.frame.collect().sort(CUSTOMER_ID)
    )


def test_specs_describe_exactly_the_frame_columns() -> None:
    settings = FeatureSettings(extra_numeric=["Discount"], extra_categorical=["Channel"])
    events = pl.concat(
        [
            USAGE_LOG.with_columns(Discount=pl.lit("5"), Channel=pl.lit("web")),
            log(plan_row(at(6, 1), "basic", 3.0), extras=("Discount", "Channel")),
        ]
    )
    _, result = features(events, settings, relations=TIES)
    columns = result.frame.collect_schema().names()
    assert columns == [CUSTOMER_ID, *result.specs]
    for name, spec in result.specs.items():
        assert spec.name == name
        assert spec.kind in ("numeric", "categorical")
        assert spec.risk_when in ("high", "low", None)
        assert spec.description and spec.sentence
        assert set(spec.inputs) <= set(columns), name
    dtypes = result.frame.collect_schema()
    assert all(dtypes[n] == pl.String for n in result.categorical)
    assert all(dtypes[n] == pl.Float64 for n in result.numeric)


def test_streaming_and_in_memory_engines_agree() -> None:
    _, result = features(USAGE_LOG, relations=TIES)
    streaming = result.frame.collect(engine="streaming").sort(CUSTOMER_ID)
    assert_frame_equal(streaming, result.frame.collect(engine="in-memory").sort(CUSTOMER_ID))


def test_a_spec_reads_the_columns_its_sentence_speaks_of() -> None:
    spec = FeatureSpec(
        "overdue_ratio",
        "numeric",
        "days since the last purchase over the usual gap",
        Sentence(
            "no purchase for {value}, {times}x the usual gap of {reference}",
            noun="day",
            reference="usual",
            against="gap_median_days",
            value="recency_days",
        ),
        "high",
    )
    assert spec.inputs == ("recency_days", "gap_median_days")


def test_slug_makes_column_fragments() -> None:
    assert slug("Report Run") == "report_run"
    assert slug("  ") == "x"
    assert slug("Café-Visits/Day") == "caf_visits_day"


def test_window_edges_follow_the_cutoff_to_the_microsecond() -> None:
    edge = datetime(2024, 5, 31, 23, 59, 59, 999_999)  # exactly 30 days before the cutoff
    events = log(
        row("edge", edge, amount=1.0),
        row("edge", datetime(2024, 6, 1), amount=2.0),
        row("edge", CUTOFF, amount=4.0),
    )
    got, _ = features(events, FeatureSettings(windows=[30]))
    e = got["edge"]
    assert (e["purchases_30d"], e["revenue_30d"]) == (2, 6)
    assert (e["purchases_prev_30d"], e["revenue_prev_30d"]) == (1, 1)
    assert e["recency_days"] == 0


def test_ties_between_purchases_failures_and_complaints() -> None:
    moment = at(6, 10)
    events = log(
        row("t", at(5, 1), amount=10.0),
        row("t", moment, "payment_failed"),
        row("t", moment, "complaint"),
        row("t", moment, amount=10.0),
    )
    got, _ = features(events)
    # A purchase at the failure's moment recovers it; a complaint is resolved only
    # by a purchase strictly after it.
    assert (got["t"]["failed_payments_unrecovered"], got["t"]["failed_recovered_share"]) == (0, 1)
    assert got["t"]["complaints_unresolved"] == 1


def test_a_customer_who_never_bought_has_counts_but_no_recency() -> None:
    got, _ = features(USAGE_LOG)
    v = got["v"]
    assert (v["recency_days"], v["gap_median_days"], v["avg_purchase_amount"]) == (None, None, None)
    assert (v["purchases_total"], v["revenue_365d"], v["purchases_trend_90d"]) == (0, 0, 0)
    assert v["tenure_days"] == near(150.5)


def test_a_window_of_zero_days_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"features\.windows"):
        compute_features(USAGE_LOG, CUTOFF, settings=FeatureSettings(windows=[30, 0]))


def test_plans_named_only_by_plan_changes_give_no_plan_features() -> None:
    events = log(
        row("a", at(5, 1), amount=5.0),
        row("a", at(5, 2), "plan_change", cols={PLAN: "pro"}),
    )
    _, result = features(events)
    assert result.layout.plan_ranks == ()
    assert "plan" not in result.specs


def test_without_any_purchase_every_failure_and_complaint_is_open() -> None:
    events = log(
        row("n", at(6, 1), "signup"),
        row("n", at(6, 2), "payment_failed"),
        row("n", at(6, 3), "payment_failed"),
        row("n", at(6, 4), "complaint"),
    )
    got, _ = features(events)
    n = got["n"]
    assert (n["failed_payments_unrecovered"], n["failed_recovered_share"]) == (2, 0)
    assert n["complaints_unresolved"] == 1
