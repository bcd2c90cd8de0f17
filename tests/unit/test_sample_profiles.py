"""The other sample profiles: a shop (Pareto/NBD orders, nothing that says a customer
left) and a usage-heavy SaaS; both seeded like the default one."""

from __future__ import annotations

import polars as pl
import pytest

from churnkit.core.errors import UsageError
from churnkit.sample import BUSINESSES, generate
from churnkit.sample.retail_business import ALPHA, BETA, R, S


@pytest.fixture(scope="module")
def shop():  # type: ignore[no-untyped-def]
    return generate(3000, seed=4, business="retail", messy_share=0.0)


def test_every_profile_is_registered():
    assert set(BUSINESSES) == {"subscription", "retail", "saas"}
    with pytest.raises(UsageError, match="unknown business 'bakery'") as raised:
        generate(10, business="bakery")
    assert raised.value.hint is not None and "retail" in raised.value.hint


def test_a_shop_export_says_nothing_about_leaving(shop):
    statuses = set(shop.transactions["Status"].str.to_lowercase().unique().to_list())
    assert statuses <= {"paid", "completed", "pending", "refunded", "chargeback"}
    assert shop.usage.height == 0 and shop.relations.height == 0
    assert shop.transactions["Customer ID"].n_unique() == 3000  # everyone ordered


def test_the_shop_truth_holds_the_process_and_its_parameters(shop):
    truth = shop.customers
    assert truth.select("r", "alpha", "s", "beta").unique().row(0) == (R, ALPHA, S, BETA)
    # Gamma(R, ALPHA) rates: mean R / ALPHA per week.
    assert truth["purchase_rate_weekly"].mean() == pytest.approx(R / ALPHA, rel=0.1)
    assert truth["dropout_rate_weekly"].mean() == pytest.approx(S / BETA, rel=0.1)
    gone = truth.filter(pl.col("churn") == "lapse")
    assert gone.height > 0 and gone["churn_date"].null_count() == 0
    assert truth.filter(pl.col("churn").is_null())["churn_date"].null_count() == (
        truth.height - gone.height
    )


def test_shop_orders_stop_when_the_customer_is_gone(shop):
    orders = shop.transactions.select(
        pl.col("Customer ID").alias("customer_id"),
        pl.col("Invoice Date").str.slice(0, 10).str.to_date().alias("day"),
    )
    last = orders.group_by("customer_id").agg(pl.col("day").max())
    joined = last.join(shop.customers, on="customer_id").filter(pl.col("churn_date").is_not_null())
    # Refunds may come up to two weeks after the last order.
    late = joined.filter(pl.col("day") > pl.col("churn_date").cast(pl.Date) + pl.duration(days=15))
    assert late.height == 0


def test_a_seed_gives_the_same_shop():
    a = generate(300, seed=9, business="retail")
    b = generate(300, seed=9, business="retail")
    assert a.transactions.equals(b.transactions) and a.customers.equals(b.customers)


def test_the_saas_profile_subscribes_nearly_everyone_and_uses_more():
    saas = generate(800, seed=4, business="saas", messy_share=0.0)
    subscription = generate(800, seed=4, messy_share=0.0)
    subscribed = (saas.customers["segment"] == "subscription").mean()
    assert subscribed is not None and subscribed > 0.9
    per_customer = [
        d.usage["count"].sum() / d.usage["user_id"].n_unique() for d in (saas, subscription)
    ]
    assert per_customer[0] > 2.5 * per_customer[1]
