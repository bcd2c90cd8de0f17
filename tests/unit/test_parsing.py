"""parsing: messy export strings become canonical dates, amounts, kinds and card expiries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from churnkit.core.errors import DataError
from churnkit.core.schema import EventKind
from churnkit.ingest.parsing import (
    card_expiry_from_parts,
    card_expiry_from_text,
    parse_amount,
    parse_datetime,
    parse_kind,
    plan_dates,
    status_lookup,
)

COLUMN = "Invoice Date"
SOURCE = "exports/march.csv"


def parse_dates(
    values: Sequence[str | None],
    *,
    order: str = "auto",
    tz: str = "UTC",
    formats: Sequence[str] = (),
) -> list[datetime | None]:
    """Plan the column from its own values (as ingest does with a sample), then parse."""
    plan = plan_dates(COLUMN, values, order=order, extra_formats=formats, source=SOURCE)
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    expr = parse_datetime(pl.col("v"), pl.String(), plan, timezone=tz)
    return frame.select(expr).to_series().to_list()


def parse_typed(series: pl.Series, *, tz: str = "UTC") -> list[datetime | None]:
    """Columns that arrive typed (Parquet, numbers) need no plan."""
    expr = parse_datetime(pl.col(series.name), series.dtype, None, timezone=tz)
    return series.to_frame().select(expr).to_series().to_list()


def parse_amounts(values: Sequence[str | None], *, decimal: str = ".") -> list[float | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return (
        frame.select(parse_amount(pl.col("v"), pl.String(), decimal=decimal)).to_series().to_list()
    )


def kinds_of(values: Sequence[str | None], status_map: dict[str, EventKind] | None = None) -> list:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    lookup = status_lookup(status_map or {})
    return frame.select(parse_kind(pl.col("v"), lookup)).to_series().to_list()


def expiries_of(values: Sequence[str | None]) -> list[date | None]:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    return frame.select(card_expiry_from_text(pl.col("v"))).to_series().to_list()


# --- dates -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-14", datetime(2025, 3, 14)),
        ("2025-03-14 09:31:00", datetime(2025, 3, 14, 9, 31)),
        ("2025-03-14T09:31:00", datetime(2025, 3, 14, 9, 31)),
        ("2025-03-14 09:31", datetime(2025, 3, 14, 9, 31)),
        ("2025-03-14T09:31:00.123456", datetime(2025, 3, 14, 9, 31, 0, 123456)),
        ("2025-03-14 09:31:00.5", datetime(2025, 3, 14, 9, 31, 0, 500000)),
        ("2025/03/14", datetime(2025, 3, 14)),
        ("  2025-03-14  ", datetime(2025, 3, 14)),
    ],
)
def test_iso_dates_with_and_without_time(text, expected):
    assert parse_dates([text]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-14T09:31:00+02:00", datetime(2025, 3, 14, 7, 31)),
        ("2025-03-14T09:31:00-05:00", datetime(2025, 3, 14, 14, 31)),
        ("2025-03-14 09:31:00+02:00", datetime(2025, 3, 14, 7, 31)),
        ("2025-03-14T09:31:00.250+02:00", datetime(2025, 3, 14, 7, 31, 0, 250000)),
        ("2025-03-14T00:30:00+02:00", datetime(2025, 3, 13, 22, 30)),  # crosses midnight
    ],
)
def test_offsets_are_converted_to_naive_utc(text, expected):
    assert parse_dates([text]) == [expected]


def test_zulu_suffix_means_utc():
    assert parse_dates(["2025-03-14T09:31:00Z"]) == [datetime(2025, 3, 14, 9, 31)]


def test_naive_times_are_read_in_the_configured_time_zone():
    winter, summer = "2025-01-15 12:00:00", "2025-07-15 12:00:00"
    assert parse_dates([winter, summer], tz="Europe/Berlin") == [
        datetime(2025, 1, 15, 11, 0),  # CET, UTC+1
        datetime(2025, 7, 15, 10, 0),  # CEST, UTC+2
    ]


def test_configured_time_zone_does_not_shift_values_that_carry_an_offset():
    values = ["2025-07-15 12:00:00+02:00", "2025-07-15 12:00:00"]
    assert parse_dates(values, tz="Europe/Berlin") == [
        datetime(2025, 7, 15, 10, 0),
        datetime(2025, 7, 15, 10, 0),
    ]


def test_dst_fall_back_hour_takes_the_first_occurrence():
    # 02:30 happens twice in Berlin on 2025-10-26; the first one is still CEST (UTC+2).
    assert parse_dates(["2025-10-26 02:30:00"], tz="Europe/Berlin") == [
        datetime(2025, 10, 26, 0, 30)
    ]


def test_dst_spring_forward_gap_is_not_invented():
    # 02:30 never happened in Berlin on 2025-03-30: the row must be rejected, not guessed.
    assert parse_dates(["2025-03-30 02:30:00"], tz="Europe/Berlin") == [None]


def test_unix_seconds_and_milliseconds():
    assert parse_dates(["1741944660"]) == [datetime(2025, 3, 14, 9, 31)]
    assert parse_dates(["1741944660123"]) == [datetime(2025, 3, 14, 9, 31, 0, 123000)]
    assert parse_dates(["1741944660.5"]) == [datetime(2025, 3, 14, 9, 31, 0, 500000)]


def test_column_mixing_iso_and_unix_parses_both():
    assert parse_dates(["2025-03-14", "1741944660"]) == [
        datetime(2025, 3, 14),
        datetime(2025, 3, 14, 9, 31),
    ]


def test_day_first_evidence_decides_the_whole_column():
    # "14/03" can only be day-first, so "01/02" is the 1st of February.
    assert parse_dates(["14/03/2025", "01/02/2025"]) == [
        datetime(2025, 3, 14),
        datetime(2025, 2, 1),
    ]


def test_month_first_evidence_decides_the_whole_column():
    assert parse_dates(["03/14/2025", "01/02/2025"]) == [
        datetime(2025, 3, 14),
        datetime(2025, 1, 2),
    ]


@pytest.mark.parametrize("text", ["14.03.2025", "14-03-2025", "14/03/2025 10:00"])
def test_day_first_with_other_separators_and_times(text):
    assert parse_dates([text])[0].date() == date(2025, 3, 14)


@pytest.mark.parametrize("text", ["14/03/25", "14-03-25"])
def test_day_first_with_two_digit_year(text):
    assert parse_dates([text]) == [datetime(2025, 3, 14)]


def test_ambiguous_slash_dates_with_auto_order_are_an_error_naming_the_column():
    with pytest.raises(DataError) as info:
        parse_dates(["01/02/2025", "03/04/2025"])
    err = info.value
    assert COLUMN in err.message
    assert SOURCE in err.message
    assert "ingest.date_order" in f"{err.message} {err.hint}"


def test_mixed_day_first_and_month_first_evidence_is_an_error():
    with pytest.raises(DataError) as info:
        parse_dates(["14/03/2025", "03/14/2025"])
    assert COLUMN in info.value.message
    assert "ingest.date_order" in f"{info.value.message} {info.value.hint}"


@pytest.mark.parametrize(
    ("order", "expected"),
    [("dmy", datetime(2025, 2, 1)), ("mdy", datetime(2025, 1, 2))],
)
def test_explicit_date_order_resolves_ambiguous_dates(order, expected):
    assert parse_dates(["01/02/2025"], order=order) == [expected]


def test_explicit_date_order_is_never_second_guessed():
    # Under mdy "14/03/2025" is impossible; it is rejected rather than silently swapped.
    assert parse_dates(["14/03/2025", "03/14/2025"], order="mdy") == [
        None,
        datetime(2025, 3, 14),
    ]


@pytest.mark.parametrize("values", [["31/02/2025", "14/03/2025"], ["2025-02-30", "2025-03-14"]])
def test_impossible_dates_become_null(values):
    assert parse_dates(values)[0] is None


@pytest.mark.parametrize("text", ["not a date", "2025-13-01", "yesterday", ""])
def test_unparseable_dates_become_null(text):
    assert parse_dates(["2025-03-14", text])[1] is None


def test_configured_formats_are_tried():
    assert parse_dates(["14 Mar 2025"], formats=["%d %b %Y"]) == [datetime(2025, 3, 14)]


def test_typed_columns_are_converted_without_a_plan():
    aware = pl.Series("ts", [datetime(2025, 3, 14, 9, 31, tzinfo=UTC)]).dt.convert_time_zone(
        "Europe/Berlin"
    )
    assert parse_typed(aware) == [datetime(2025, 3, 14, 9, 31)]
    assert parse_typed(pl.Series("ts", [date(2025, 3, 14)])) == [datetime(2025, 3, 14)]
    assert parse_typed(pl.Series("ts", [1741944660])) == [datetime(2025, 3, 14, 9, 31)]
    naive = pl.Series("ts", [datetime(2025, 7, 15, 12, 0)])
    assert parse_typed(naive, tz="Europe/Berlin") == [datetime(2025, 7, 15, 10, 0)]


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)),
    offset_quarters=st.integers(min_value=-12 * 4, max_value=14 * 4),
)
def test_any_iso_timestamp_with_offset_round_trips_to_utc(moment, offset_quarters):
    moment = moment.replace(microsecond=0)
    offset = timedelta(minutes=15 * offset_quarters)
    text = moment.replace(tzinfo=timezone(offset)).isoformat()
    assert parse_dates([text]) == [moment - offset]


@given(day=st.dates(min_value=date(1971, 1, 1), max_value=date(2099, 12, 31)))
def test_any_date_round_trips_under_an_explicit_order(day):
    assert parse_dates([day.strftime("%d/%m/%Y")], order="dmy") == [
        datetime(day.year, day.month, day.day)
    ]
    assert parse_dates([day.strftime("%m/%d/%Y")], order="mdy") == [
        datetime(day.year, day.month, day.day)
    ]


# --- amounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.50", 1234.5),
        ("€49.00", 49.0),
        ("£7", 7.0),
        ("USD 19.00", 19.0),
        ("49.00 EUR", 49.0),
        (" USD 19.00 ", 19.0),
        ("(12.00)", -12.0),
        ("($12.00)", -12.0),
        ("-5", -5.0),
        ("-$5.00", -5.0),
        ("1 234.50", 1234.5),
        ("1234.5", 1234.5),
        ("0", 0.0),
    ],
)
def test_money_strings(text, expected):
    assert parse_amounts([text]) == [expected]


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_blank_amount_is_zero(blank):
    assert parse_amounts([blank]) == [0.0]


@pytest.mark.parametrize("text", ["n/a", "12..5", "abc12", "12-5", "1,2,3", "$"])
def test_garbage_amounts_become_null(text):
    assert parse_amounts([text]) == [None]


def test_decimal_comma_only_under_decimal_comma():
    assert parse_amounts(["1.234,50", "12,5", "€ 1.234,50"], decimal=",") == [
        1234.5,
        12.5,
        1234.5,
    ]
    # Under the default "." a European number is rejected, not read as another number.
    assert parse_amounts(["1.234,50"]) == [None]
    # ... and under "," an English-style number is rejected too.
    assert parse_amounts(["1,234.50"], decimal=",") == [None]


def test_numeric_amount_columns_pass_through():
    frame = pl.DataFrame({"v": [12, -3]})
    result = frame.select(parse_amount(pl.col("v"), pl.Int64(), decimal="."))
    assert result.to_series().to_list() == [12.0, -3.0]


@given(
    cents=st.integers(min_value=-(10**11), max_value=10**11),
    symbol=st.sampled_from(["$", "€", "£", "USD ", "EUR "]),
    suffix=st.sampled_from(["", " EUR"]),
    accounting=st.booleans(),
)
def test_formatted_amounts_parse_back(cents, symbol, suffix, accounting):
    body = f"{symbol}{abs(cents) / 100:,.2f}{suffix if symbol == '$' else ''}"
    if cents < 0:
        body = f"({body})" if accounting else f"-{body}"
    assert parse_amounts([body]) == [pytest.approx(cents / 100, abs=0.005)]


@given(cents=st.integers(min_value=-(10**11), max_value=10**11))
def test_decimal_comma_amounts_parse_back(cents):
    english = f"{abs(cents) / 100:,.2f}"
    european = english.replace(",", " ").replace(".", ",").replace(" ", ".")
    text = f"{'-' if cents < 0 else ''}{european} €"
    assert parse_amounts([text], decimal=",") == [pytest.approx(cents / 100, abs=0.005)]


# --- statuses --------------------------------------------------------------------------

CONTRACT_SYNONYMS = {
    "purchase": ["paid", "succeeded", "success", "completed", "settled"],
    "payment_failed": ["failed", "declined", "card_declined", "expired_card", "insufficient_funds"],
    "refund": ["refunded", "chargeback"],
    "cancel": ["canceled", "cancelled", "churned", "unsubscribed"],
}


@pytest.mark.parametrize(
    ("status", "kind"),
    [(status, kind) for kind, statuses in CONTRACT_SYNONYMS.items() for status in statuses],
)
def test_default_status_synonyms_any_case(status, kind):
    assert kinds_of([status, status.upper(), status.title(), f"  {status} "]) == [kind] * 4


def test_status_spelling_variants_are_normalised():
    assert (
        kinds_of(["Card Declined", "card-declined", "Insufficient Funds"]) == ["payment_failed"] * 3
    )


@pytest.mark.parametrize("status", ["pending", "on hold", "", None, "???"])
def test_unknown_or_blank_status_is_other(status):
    assert kinds_of([status]) == ["other"]


def test_status_map_overrides_and_extends_defaults():
    status_map = {"paid": EventKind.OTHER, "Pending": EventKind.PAYMENT_FAILED}
    assert kinds_of(["paid", "PENDING", "settled"], status_map) == [
        "other",
        "payment_failed",
        "purchase",
    ]


def test_status_map_keys_written_as_they_appear_in_the_export():
    status_map = {"Card Refused": EventKind.PAYMENT_FAILED, "past-due": EventKind.PAYMENT_FAILED}
    assert kinds_of(["Card Refused", "past-due"], status_map) == ["payment_failed"] * 2


# --- card expiry -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12/27", date(2028, 1, 1)),
        ("03/27", date(2027, 4, 1)),
        ("3/27", date(2027, 4, 1)),
        ("03/2027", date(2027, 4, 1)),
        ("12/2027", date(2028, 1, 1)),
        ("2027-03", date(2027, 4, 1)),
        ("2027-12", date(2028, 1, 1)),
        (" 03 / 27 ", date(2027, 4, 1)),
    ],
)
def test_card_expiry_is_first_day_of_following_month(text, expected):
    assert expiries_of([text]) == [expected]


@pytest.mark.parametrize("text", ["13/27", "00/27", "2027-13", "2027-00", "garbage", "", None])
def test_invalid_card_expiry_is_null(text):
    assert expiries_of([text]) == [None]


def test_card_expiry_from_month_and_year_columns():
    frame = pl.DataFrame(
        {"m": ["12", "3", " 03 ", "13", None], "y": ["27", "2027", "2027", "2027", "2027"]}
    )
    result = frame.select(card_expiry_from_parts(pl.col("m"), pl.col("y"))).to_series()
    assert result.to_list() == [date(2028, 1, 1), date(2027, 4, 1), date(2027, 4, 1), None, None]


def test_card_expiry_from_integer_parts():
    frame = pl.DataFrame({"m": [12, 3], "y": [2027, 27]})
    result = frame.select(card_expiry_from_parts(pl.col("m"), pl.col("y"))).to_series()
    assert result.to_list() == [date(2028, 1, 1), date(2027, 4, 1)]
