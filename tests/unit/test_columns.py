"""columns: source headers are placed on canonical columns, or the user is told how to."""

from __future__ import annotations

import pytest

from churnkit.core import schema as s
from churnkit.core.errors import DataError, MissingColumnError
from churnkit.ingest.columns import STATUS, map_columns

SOURCE = "exports/billing.csv"


def detect(headers: list[str], explicit: dict[str, str] | None = None) -> dict[str, str]:
    return map_columns(headers, explicit=explicit or {}, source=SOURCE)


@pytest.mark.parametrize(
    ("customer", "ts"),
    [
        ("customer_id", "ts"),
        ("Customer ID", "Invoice Date"),
        ("CUSTOMER-ID", "invoice_date"),
        ("USER-ID", "Timestamp"),
        ("user id", "Created At"),
        ("Account", "Order Date"),
        ("customer.id", "Transaction Date"),
        ("Client ID", "date"),
        ("Subscriber", "Payment Date"),
    ],
)
def test_common_customer_and_date_headers(customer, ts):
    mapping = detect([customer, ts, "Amount"])
    assert mapping[s.CUSTOMER_ID] == customer
    assert mapping[s.TS] == ts


def test_a_typical_billing_export_is_mapped_whole():
    headers = [
        "Customer ID",
        "Invoice Date",
        "Total",
        "Status",
        "Qty",
        "Product",
        "Invoice No",
        "Card Exp",
        "Decline Reason",
        "Channel",
    ]
    assert detect(headers) == {
        s.CUSTOMER_ID: "Customer ID",
        s.TS: "Invoice Date",
        s.AMOUNT: "Total",
        STATUS: "Status",
        s.QUANTITY: "Qty",
        s.PLAN: "Product",
        s.TRANSACTION_ID: "Invoice No",
        s.CARD_EXPIRY: "Card Exp",
        s.REASON: "Decline Reason",
    }


@pytest.mark.parametrize("amount", ["Total", "Price", "Revenue", "amount_paid", "Net Amount"])
def test_common_amount_headers(amount):
    assert detect(["Customer ID", "Date", amount])[s.AMOUNT] == amount


def test_card_expiry_month_and_year_columns_are_found():
    mapping = detect(["Account", "Date", "Exp Month", "exp_year"])
    assert mapping[s.CARD_EXP_MONTH] == "Exp Month"
    assert mapping[s.CARD_EXP_YEAR] == "exp_year"


def test_optional_columns_are_left_out_when_absent():
    assert detect(["Customer", "Date"]) == {s.CUSTOMER_ID: "Customer", s.TS: "Date"}


def test_exact_canonical_name_beats_a_synonym():
    # "ts" is the canonical name, so "Date" is not a competing candidate.
    mapping = detect(["customer_id", "Customer", "ts", "Date"])
    assert mapping[s.CUSTOMER_ID] == "customer_id"
    assert mapping[s.TS] == "ts"


def test_explicit_mapping_wins_over_detection():
    mapping = detect(["Customer ID", "Buyer", "Date"], {s.CUSTOMER_ID: "Buyer"})
    assert mapping[s.CUSTOMER_ID] == "Buyer"


def test_explicit_mapping_resolves_an_ambiguity():
    mapping = detect(["Customer", "User ID", "Date"], {s.CUSTOMER_ID: "User ID"})
    assert mapping == {s.CUSTOMER_ID: "User ID", s.TS: "Date"}


def test_explicit_mapping_for_unusual_headers():
    mapping = detect(["cust", "when", "eur"], {s.CUSTOMER_ID: "cust", s.TS: "when"})
    assert mapping == {s.CUSTOMER_ID: "cust", s.TS: "when"}


def test_a_column_mapped_explicitly_is_not_reused_by_detection():
    # "Date" is explicitly the plan; it must not also be detected as the timestamp.
    mapping = detect(["Customer", "Date", "Created"], {s.PLAN: "Date"})
    assert mapping[s.PLAN] == "Date"
    assert mapping[s.TS] == "Created"


def test_mapped_column_absent_names_the_file_and_the_column():
    with pytest.raises(MissingColumnError) as info:
        detect(["Customer", "Date"], {s.CUSTOMER_ID: "Client Ref"})
    message = info.value.message
    assert SOURCE in message
    assert "Client Ref" in message
    assert "Customer" in message  # the columns that do exist
    assert "--map" in info.value.hint


def test_two_candidates_for_one_column_is_an_error_listing_both():
    with pytest.raises(DataError) as info:
        detect(["Customer", "User ID", "Date"])
    message = info.value.message
    assert SOURCE in message
    assert s.CUSTOMER_ID in message
    assert "'Customer'" in message
    assert "'User ID'" in message
    assert f"--map {s.CUSTOMER_ID}=" in info.value.hint


def test_two_candidate_date_columns_is_an_error():
    with pytest.raises(DataError) as info:
        detect(["Customer", "Date", "Created"])
    assert "'Date'" in info.value.message
    assert "'Created'" in info.value.message


@pytest.mark.parametrize(
    ("headers", "missing"),
    [
        (["Foo", "Date", "Amount"], s.CUSTOMER_ID),
        (["Customer", "Bar", "Amount"], s.TS),
    ],
)
def test_missing_required_column_says_how_to_map_it(headers, missing):
    with pytest.raises(MissingColumnError) as info:
        detect(headers)
    assert SOURCE in info.value.message
    assert missing in info.value.message
    assert "Foo" in info.value.message or "Bar" in info.value.message
    assert f"--map {missing}=" in info.value.hint
