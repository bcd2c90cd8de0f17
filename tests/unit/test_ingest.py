"""ingest: exact row accounting, rejects a user can open, dedup, idempotence, append."""

from __future__ import annotations

import gzip
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl

from churnkit.core import schema as s
from churnkit.core.io import scan_events
from churnkit.ingest.pipeline import ingest

MESSY = """Customer ID,Invoice Date,Amount,Status,Plan,Card Exp,Channel
c1,2025-03-14 09:31:00,$1,234.50,paid,pro,03/27,web
c1,2025-03-14 09:31:00,"$1,234.50",paid,pro,03/27,web
c1,2025-03-14 09:31:00,"$1,234.50",paid,pro,03/27,web
c2,14/03/2025 10:00,(12.00),refunded,basic,,"=HYPERLINK(""x"")"
,2025-03-15,10,paid,basic,,web
c3,not a date,10,paid,basic,,web
c4,2025-03-16,n/a,paid,basic,,web
c5,2025-03-17, USD 19.00 ,PENDING,basic,12/27,web
c6,2025-03-18,19,Succeeded,basic,13/27,partner
c7,2025-03-19,19,FAILED,basic,01/25,web
"""


def events_of(workspace) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    return scan_events(workspace).collect().sort(s.CUSTOMER_ID, s.TS)


def test_messy_export_is_fully_accounted_for(write_csv, settings, workspace):
    result = ingest([write_csv("messy.csv", MESSY)], settings=settings, workspace=workspace)

    assert result.rows_read == 10
    assert (result.accepted, result.rejected, result.duplicates) == (4, 5, 1)
    assert result.rows_read == result.accepted + result.rejected + result.duplicates
    assert result.rejected_by_reason == {
        "missing customer_id": 1,
        "more fields than the header (unquoted separator?)": 1,
        "unparseable amount": 1,
        "unparseable card expiry": 1,
        "unparseable date": 1,
    }
    assert result.unknown_statuses == {"PENDING": 1}
    events = events_of(workspace)
    assert events[s.CUSTOMER_ID].to_list() == ["c1", "c2", "c5", "c7"]
    c1, c2, c5, c7 = events.to_dicts()
    assert c1[s.AMOUNT] == 1234.5 and c1[s.KIND] == "purchase"
    assert c1[s.CARD_EXPIRY] == date(2027, 4, 1)
    assert c2[s.AMOUNT] == -12.0 and c2[s.KIND] == "refund"
    assert c2[s.TS] == datetime(2025, 3, 14, 10, 0)  # day-first, proven by the 14
    assert c5[s.KIND] == "other" and c5[s.AMOUNT] == 19.0
    assert c7[s.KIND] == "payment_failed"
    assert c2["Channel"] == '=HYPERLINK("x")'  # kept as an attribute, as read


def test_rejects_file_names_line_reason_and_raw_values(write_csv, settings, workspace):
    result = ingest([write_csv("messy.csv", MESSY)], settings=settings, workspace=workspace)
    rejects_path = Path(result.files[0].rejects_path or "")
    rejects = pl.read_csv(rejects_path, infer_schema=False)

    assert rejects.columns[:3] == ["file", "line", "reason"]
    row = rejects.filter(pl.col("reason") == "unparseable date").row(0, named=True)
    assert row["line"] == "7"  # the header is line 1
    assert row["Invoice Date"] == "not a date" and row["Customer ID"] == "c3"
    assert rejects.filter(pl.col("reason") == "unparseable card expiry")["Card Exp"][0] == "13/27"


def test_reingesting_the_same_file_changes_nothing(write_csv, settings, workspace):
    path = write_csv("messy.csv", MESSY)
    ingest([path], settings=settings, workspace=workspace)
    before = events_of(workspace)
    manifest = workspace.read_manifest()

    again = ingest([path], settings=settings, workspace=workspace)

    assert again.files[0].already_ingested
    assert (again.rows_read, again.accepted) == (0, 0)
    assert workspace.read_manifest() == manifest
    assert events_of(workspace).equals(before)


def test_new_batch_appends_and_overlapping_rows_count_as_duplicates(write_csv, settings, workspace):
    first = "customer_id,date,amount,transaction_id\na,2025-01-01,10,t1\nb,2025-01-02,20,t2\n"
    second = "customer_id,date,amount,transaction_id\nb,2025-01-02,20,t2\nc,2025-01-03,30,t3\n"
    ingest([write_csv("jan.csv", first)], settings=settings, workspace=workspace)
    result = ingest([write_csv("feb.csv", second)], settings=settings, workspace=workspace)

    assert (result.accepted, result.duplicates) == (1, 1)
    assert events_of(workspace)[s.CUSTOMER_ID].to_list() == ["a", "b", "c"]
    assert result.dataset.customers == 3 and result.dataset.events == 3


def test_retried_invoice_keeps_failed_and_paid_attempts(write_csv, settings, workspace):
    text = (
        "customer,created,total,status,invoice id\n"
        "a,2025-01-01,10,failed,inv1\n"
        "a,2025-01-04,10,paid,inv1\n"
        "a,2025-01-04,10,paid,inv1\n"
    )
    result = ingest([write_csv("retry.csv", text)], settings=settings, workspace=workspace)
    assert (result.accepted, result.duplicates) == (2, 1)
    assert events_of(workspace)[s.KIND].to_list() == ["payment_failed", "purchase"]


def test_plain_purchase_log_without_status_is_all_purchases(write_csv, settings, workspace):
    text = "user id,order date,price\nu1,2024-12-01,5.5\nu2,2024-12-02,7\n"
    result = ingest([write_csv("shop.csv", text)], settings=settings, workspace=workspace)
    assert result.dataset.kinds == {"purchase": 2}


def test_usage_export_ingests_into_the_same_workspace(write_csv, settings, workspace):
    ingest(
        [write_csv("billing.csv", "customer_id,ts,amount\na,2025-01-01,10\n")],
        settings=settings,
        workspace=workspace,
    )
    usage = "user_id,timestamp,event,count\na,2025-01-06,login,12\na,2025-01-13,login,3\n"
    ingest(
        [write_csv("usage.csv", usage)],
        settings=settings,
        workspace=workspace,
        kind=s.EventKind.USAGE,
    )
    events = events_of(workspace)
    assert events[s.KIND].to_list() == ["purchase", "usage", "usage"]
    assert events[s.QUANTITY].to_list() == [None, 12.0, 3.0]
    assert events[s.EVENT].to_list() == [None, "login", "login"]


def test_card_expiry_assembled_from_month_and_year_columns(write_csv, settings, workspace):
    text = (
        "customer_id,ts,amount,exp_month,exp_year\na,2025-01-01,10,12,27\nb,2025-01-01,10,3,2026\n"
    )
    ingest([write_csv("cards.csv", text)], settings=settings, workspace=workspace)
    assert events_of(workspace)[s.CARD_EXPIRY].to_list() == [date(2028, 1, 1), date(2026, 4, 1)]


def test_parquet_gzip_directory_and_glob_sources(tmp_path, settings, workspace):
    folder = tmp_path / "exports"
    folder.mkdir()
    pl.DataFrame(
        {"customer_id": ["p"], "ts": [datetime(2025, 2, 1, 8)], "amount": [3.0]}
    ).write_parquet(folder / "a.parquet")
    with gzip.open(folder / "b.csv.gz", "wt") as handle:
        handle.write("customer_id,ts,amount\ng,2025-02-02,4\n")
    (folder / "notes.txt").write_text("not data")
    (tmp_path / "c.csv").write_text("customer_id,ts,amount\nx,2025-02-03,5\n")

    result = ingest([str(folder), str(tmp_path / "*.csv")], settings=settings, workspace=workspace)

    assert [Path(f.path).name for f in result.files] == ["a.parquet", "b.csv.gz", "c.csv"]
    assert events_of(workspace)[s.CUSTOMER_ID].to_list() == ["g", "p", "x"]


def test_source_time_zone_converts_to_utc(write_csv, make_settings, workspace):
    settings = make_settings(ingest={"timezone": "Europe/Berlin"})
    text = "customer_id,ts\na,2025-07-01 12:00:00\nb,2025-07-01T12:00:00+00:00\n"
    ingest([write_csv("tz.csv", text)], settings=settings, workspace=workspace)
    assert events_of(workspace)[s.TS].to_list() == [
        datetime(2025, 7, 1, 10, 0),
        datetime(2025, 7, 1, 12, 0),
    ]


def test_file_with_no_usable_rows_fails_naming_it_and_keeps_its_rejects(
    write_csv, settings, workspace
):
    path = write_csv("bad.csv", "customer_id,ts\n,2025-01-01\nx,nonsense\n")
    result = ingest([path], settings=settings, workspace=workspace)
    (failed,) = result.failed
    assert failed.error is not None and re.match(r".*bad\.csv: no usable rows", failed.error)
    assert (failed.rows_read, failed.rejected) == (2, 2)
    assert Path(failed.rejects_path or "").exists()
    assert result.exit_code == 3
    assert workspace.event_files() == []
    assert workspace.read_manifest()["failed"][0]["source"] == str(path)


def test_missing_required_column_names_the_file(write_csv, settings, workspace):
    path = write_csv("nocust.csv", "when,amount\n2025-01-01,3\n")
    (failed,) = ingest([path], settings=settings, workspace=workspace).failed
    assert failed.error is not None
    assert re.search(r"nocust\.csv: no column for customer_id", failed.error)
    assert failed.hint is not None and "--map" in failed.hint


def test_relations_are_stored_and_deduplicated(write_csv, settings, workspace):
    text = (
        "customer_id,related_customer_id,kind,since\n"
        "a,b,referral,2024-01-01\n"
        "a,b,referral,2024-01-01\n"
        ",c,referral,2024-01-01\n"
    )
    result = ingest(
        [], settings=settings, workspace=workspace, relations=write_csv("rel.csv", text)
    )
    assert result.relations is not None
    assert (result.relations.accepted, result.relations.duplicates) == (1, 1)
    assert result.relations.rejected == 1
    stored = pl.read_parquet(workspace.relations_path)
    assert stored[s.RELATED_CUSTOMER_ID].to_list() == ["b"]
