"""synth: seeded, realistic sample data whose churn signals and messy lines are real."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.errors import UsageError
from churnkit.ingest.pipeline import ingest
from churnkit.sample import (
    BUSINESSES,
    RELATION_COLUMNS,
    TRANSACTION_COLUMNS,
    USAGE_COLUMNS,
    SyntheticData,
    generate,
    make_sample,
    write_sample,
)

ROOT = Path(__file__).resolve().parents[2]
FAILED = ("failed", "declined", "card_declined")
PAID = ("paid", "succeeded", "completed")
ISO = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def clean() -> SyntheticData:
    return generate(1500, seed=3, messy_share=0.0)


@pytest.fixture(scope="module")
def messy() -> SyntheticData:
    return generate(800, seed=3)


def events(data: SyntheticData) -> pl.DataFrame:
    """The clean export with parsed dates and lower-case statuses."""
    return data.transactions.with_columns(
        pl.col("Invoice Date").str.strptime(pl.Datetime("us"), ISO).alias("ts"),
        pl.col("Status").str.to_lowercase().alias("status"),
    )


def test_same_seed_gives_identical_data() -> None:
    first, second = generate(200, seed=11), generate(200, seed=11)
    for name in ("transactions", "usage", "relations", "customers"):
        assert_frame_equal(getattr(first, name), getattr(second, name))


def test_another_seed_gives_other_data() -> None:
    first, second = generate(200, seed=11), generate(200, seed=12)
    assert not first.transactions.equals(second.transactions)


def test_frames_have_the_export_headers(messy: SyntheticData) -> None:
    assert messy.transactions.columns == list(TRANSACTION_COLUMNS)
    assert all(dtype == pl.String for dtype in messy.transactions.dtypes)
    assert messy.usage.columns == list(USAGE_COLUMNS)
    assert messy.relations.columns == list(RELATION_COLUMNS)


def test_customers_sign_up_over_the_period(clean: SyntheticData) -> None:
    signup = clean.customers["signup"]
    assert signup.min() >= date(2024, 11, 1)  # type: ignore[operator]
    assert signup.max() <= date(2026, 10, 31)  # type: ignore[operator]
    assert events(clean)["ts"].dt.date().max() <= date(2026, 10, 31)  # type: ignore[operator]


def test_no_event_precedes_its_customers_signup(clean: SyntheticData) -> None:
    first = events(clean).group_by("Customer ID").agg(pl.col("ts").min().dt.date().alias("first"))
    joined = first.join(
        clean.customers, left_on="Customer ID", right_on="customer_id", validate="1:1"
    )
    assert (joined["first"] >= joined["signup"]).all()


def test_every_churn_kind_occurs_with_its_own_trace(clean: SyntheticData) -> None:
    kinds = clean.customers["churn"].value_counts()
    counts = dict(zip(kinds["churn"], kinds["count"], strict=True))
    assert counts["voluntary"] > 50
    assert counts["involuntary"] > 20
    assert counts["lapse"] > 20
    # Involuntary churn is a real share of subscription churn.
    assert 0.2 < counts["involuntary"] / (counts["voluntary"] + counts["involuntary"]) < 0.5

    ev = events(clean)
    billing = ev.filter(pl.col("status").is_in([*PAID, *FAILED]) & pl.col("Card Exp").is_not_null())
    last_billing = billing.sort("ts").group_by("Customer ID").agg(pl.col("status").last())
    lost = clean.customers.filter(pl.col("churn") == "involuntary").select(
        pl.col("customer_id").alias("Customer ID")
    )
    ends = last_billing.join(lost, on="Customer ID", how="semi")["status"]
    # Involuntary churners end on failed retries, with no cancel row.
    assert ends.is_in(FAILED).all()
    cancels = ev.filter(pl.col("status").str.starts_with("cancel"))
    assert cancels.join(lost, on="Customer ID", how="semi").height == 0

    left = clean.customers.filter(pl.col("churn") == "voluntary").select(
        pl.col("customer_id").alias("Customer ID")
    )
    assert left.join(cancels, on="Customer ID", how="anti").height == 0
    assert cancels["Reason"].null_count() == 0

    lapsed = clean.customers.filter(pl.col("churn") == "lapse")
    after = ev.join(lapsed, left_on="Customer ID", right_on="customer_id").filter(
        pl.col("ts").dt.date() > pl.col("churn_date"), pl.col("status").is_in(PAID)
    )
    assert after.height == 0


def test_expired_cards_fail_and_nothing_on_a_row_is_from_the_future(clean: SyntheticData) -> None:
    ev = events(clean).with_columns(
        pl.date(
            2000 + pl.col("Card Exp").str.slice(3, 2).cast(pl.Int32),
            pl.col("Card Exp").str.slice(0, 2).cast(pl.Int32),
            1,
        )
        .dt.offset_by("1mo")
        .alias("expiry")
    )
    expired = ev.filter(pl.col("Reason") == "card_expired")
    assert expired.height > 0
    assert (expired["ts"].dt.date() >= expired["expiry"]).all()
    paid = ev.filter(pl.col("status").is_in(PAID) & pl.col("expiry").is_not_null())
    assert (paid["ts"].dt.date() < paid["expiry"]).all()
    # Card expiry appears on billing rows only.
    assert ev.filter(pl.col("Card Exp").is_not_null())["status"].is_in([*PAID, *FAILED]).all()


def test_usage_declines_before_voluntary_cancels(clean: SyntheticData) -> None:
    cancels = (
        events(clean)
        .filter(pl.col("status").str.starts_with("cancel"))
        .select(pl.col("Customer ID").alias("user_id"), pl.col("ts").dt.date().alias("cancel"))
    )
    weekly = (
        clean.usage.join(cancels, on="user_id")
        .with_columns(weeks=(pl.col("timestamp") - pl.col("cancel")).dt.total_days() // 7)
        .group_by("user_id", "weeks")
        .agg(pl.col("count").sum())
    )

    def mean_between(lo: int, hi: int) -> float:
        rows = weekly.filter(pl.col("weeks").is_between(lo, hi))
        return float(rows["count"].sum()) / rows.select("user_id", "weeks").n_unique()

    assert mean_between(-5, -2) < 0.85 * mean_between(-26, -16)


def test_a_price_rise_and_discounts_show_in_the_amounts(clean: SyntheticData) -> None:
    pro = events(clean).filter(
        pl.col("status").is_in(PAID), pl.col("Plan") == "pro", pl.col("Discount") == "0"
    )
    amounts = pro.group_by(pl.col("ts").dt.date() >= date(2026, 5, 1)).agg(
        pl.col("Amount").unique()
    )
    by_period = {row[0]: set(row[1]) for row in amounts.iter_rows()}
    assert by_period[False] == {"49.00"}
    assert "59.00" in by_period[True]
    assert events(clean).filter(pl.col("Discount").cast(pl.Int32) > 0).height > 0
    assert set(clean.transactions["Channel"].unique()) == {"web", "partner", "sales"}


def test_referrals_link_existing_customers(clean: SyntheticData) -> None:
    rel = clean.relations
    assert rel.height > 0
    assert set(rel["kind"]) == {"referral"}
    signup = clean.customers.select("customer_id", "signup")
    joined = rel.join(signup, on="customer_id").join(
        signup, left_on="related_customer_id", right_on="customer_id", suffix="_referred"
    )
    assert joined.height == rel.height
    assert (joined["signup"] < joined["signup_referred"]).all()
    assert (joined["since"] == joined["signup_referred"]).all()


def test_no_messy_rows_when_messy_share_is_zero(clean: SyntheticData) -> None:
    tx = clean.transactions
    assert tx.is_duplicated().sum() == 0
    assert tx["Customer ID"].null_count() == 0
    assert tx["Invoice Date"].str.strptime(pl.Datetime, ISO, strict=False).null_count() == 0
    amounts = tx["Amount"].drop_nulls()
    assert amounts.str.contains(r"^-?\d+\.\d{2}$").all()
    for name in tx.columns:
        values = tx[name].drop_nulls()
        assert (values == values.str.strip_chars()).all(), name


def test_messy_rows_of_every_kind_appear(messy: SyntheticData) -> None:
    tx = messy.transactions
    dates, amounts = tx["Invoice Date"], tx["Amount"].drop_nulls()
    assert tx["Customer ID"].null_count() > 0
    assert dates.is_in(["not a date"]).any()
    assert dates.str.starts_with("31/02/").any()
    assert amounts.str.contains(r"^[$€]|^USD ").any()
    assert amounts.str.contains(r"^\(\d+\.\d{2}\)$").any()
    assert amounts.is_in(["n/a", "12..5"]).any()
    assert tx.is_duplicated().any()
    assert (tx["Status"] != tx["Status"].str.strip_chars()).any()
    assert tx["Status"].str.to_lowercase().is_in(["pending"]).any()
    messy_lines = tx.height - generate(800, seed=3, messy_share=0.0).transactions.height
    assert messy_lines > 0


def test_slash_dates_are_all_day_first_and_provably_so(messy: SyntheticData) -> None:
    slash = messy.transactions.filter(pl.col("Invoice Date").str.contains("/"))["Invoice Date"]
    assert slash[0].startswith("31/02/")  # the first one cannot be month-first
    valid = slash.filter(~slash.str.starts_with("31/02/"))
    assert valid.str.strptime(pl.Datetime, "%d/%m/%Y %H:%M", strict=False).null_count() == 0
    assert (valid.str.slice(0, 2).cast(pl.Int32) > 12).any()


def test_written_files_match_the_frames(tmp_path: Path) -> None:
    paths = write_sample(tmp_path / "out", 300, seed=4)
    data = generate(300, seed=4)
    assert {p.name for p in paths.values()} == {
        "transactions.csv",
        "usage.csv.gz",
        "relations.csv",
    }
    header = paths["transactions"].read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(TRANSACTION_COLUMNS)
    read = pl.read_csv(paths["transactions"], infer_schema=False)
    assert_frame_equal(read, data.transactions)
    with gzip.open(paths["usage"], "rt") as handle:
        assert handle.readline().strip() == "user_id,timestamp,event,count"
    usage = pl.read_csv(paths["usage"], try_parse_dates=True)
    assert_frame_equal(usage, data.usage)
    relations = pl.read_csv(paths["relations"], try_parse_dates=True)
    assert_frame_equal(relations, data.relations)
    # Same seed, same bytes (no time stamp in the gzip header).
    again = write_sample(tmp_path / "again", 300, seed=4)
    for name, path in paths.items():
        assert path.read_bytes() == again[name].read_bytes()


def test_ingest_accounts_for_every_messy_line(
    tmp_path: Path, settings: Any, workspace: Any
) -> None:
    result = make_sample(tmp_path / "out", 600, seed=2)
    report = ingest(
        [result.paths["transactions"]],
        settings=settings,
        workspace=workspace,
        relations=result.paths["relations"],
    )
    messy = result.messy_rows
    assert report.rows_read == result.rows["transactions"]
    assert report.duplicates == messy["duplicate"]
    assert report.rejected == (
        messy["blank_customer_id"] + messy["unparseable_date"] + messy["unparseable_amount"]
    )
    assert report.unknown_statuses.keys() == {"pending"}


def test_bad_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="customers"):
        generate(0)
    with pytest.raises(UsageError, match="months"):
        generate(10, months=0)
    with pytest.raises(UsageError, match="messy_share"):
        generate(10, messy_share=0.9)
    with pytest.raises(UsageError, match="business 'bakery'") as raised:
        generate(10, business="bakery")
    assert raised.value.hint is not None
    assert all(name in raised.value.hint for name in BUSINESSES)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# What a seed gives, pinned: a change to the simulation or the export shows here first.
# When a change is meant, update the hashes and regenerate sample_data/ (see its README).
# Usage is hashed uncompressed, so another zlib cannot fail the test.
PINNED = {
    "default": (
        {"customers": 300, "seed": 4},
        {
            "transactions": "94da6f7d74effe9ad9f869c963f3166d183b7cfeb76fc7aa405e68f0676fde7e",
            "usage": "2521ea3a27b058ed995212d820cb6dc37980b3ac4286dbe251a8807b15f0e7b9",
            "relations": "a0397287ce53f91b7634279134518de2c0289c05d0711a51f51ecfb6828af59c",
            "truth": "80feb022195304fa61727dc35c2ace16a4d8090dd149eb52a43f30c0ee3384d8",
        },
    ),
    "messy": (
        {
            "customers": 120,
            "seed": 9,
            "months": 6,
            "end": date(2025, 6, 30),
            "messy_share": 0.3,
        },
        {
            "transactions": "09aa7cb82d8f90a895ea4afd96efe47840454db3b0a20f2a8119b1e04bcfb73d",
            "usage": "c2bf9edbd20e2421a3394ce18b30b20b16e2d3d5ffea88b75a25e0ce3f74a738",
            "relations": "44ce23fee229b483f8a5e2c75fb70c2d3a7ae231c51460a129629f001e7588d1",
            "truth": "a0ed34b1b816a916c64b34d4c343f292c878e057e28b77a6027408fbbab6b3b0",
        },
    ),
}


@pytest.mark.parametrize("name", PINNED)
def test_a_seed_gives_the_pinned_bytes(tmp_path: Path, name: str) -> None:
    arguments, expected = PINNED[name]
    paths = write_sample(tmp_path, **arguments)
    truth = generate(**arguments).customers
    got = {
        "transactions": sha256(paths["transactions"].read_bytes()),
        "usage": sha256(gzip.decompress(paths["usage"].read_bytes())),
        "relations": sha256(paths["relations"].read_bytes()),
        "truth": sha256(truth.write_csv().encode()),
    }
    assert got == expected


def test_the_shipped_sample_data_is_what_its_command_makes(tmp_path: Path) -> None:
    # sample_data/README.md: churnkit sample --customers 3000 --out sample_data --seed 7
    paths = write_sample(tmp_path, 3000, seed=7)
    shipped = ROOT / "sample_data"
    for name in ("transactions", "relations"):
        assert paths[name].read_bytes() == (shipped / paths[name].name).read_bytes(), name
    made = gzip.decompress(paths["usage"].read_bytes())
    assert made == gzip.decompress((shipped / "usage.csv.gz").read_bytes())


def test_sample_command_writes_the_files(run_cli: Callable[..., Any]) -> None:
    result = run_cli("sample", "--customers", "120", "--out", "data", "--json")
    payload = json.loads(result.stdout)
    assert payload["customers"] == 120
    assert set(payload["files"]) == {"transactions", "usage", "relations"}
    assert all(Path(f["path"]).is_file() for f in payload["files"].values())
    assert payload["files"]["transactions"]["rows"] > 120
