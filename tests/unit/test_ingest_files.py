"""ingest file by file: empty files, failed files, future dates, corrupt Parquet,
repeated headers and a thin last day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from churnkit.core import schema as s
from churnkit.core.errors import ChurnkitWarning, DataError, ExitCode
from churnkit.core.io import scan_events
from churnkit.ingest.pipeline import ingest
from churnkit.ingest.results import FileStatus

TODAY = date(2025, 6, 30)
HEADER = "customer_id,ts,amount\n"


def run(paths, settings, workspace, **kwargs):  # type: ignore[no-untyped-def]
    return ingest(
        [str(p) for p in paths], settings=settings, workspace=workspace, today=TODAY, **kwargs
    )


@pytest.fixture
def day_files(tmp_path: Path) -> Path:
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "1.csv").write_text(HEADER + "a,2025-06-01,10\n")
    (folder / "2.csv").write_text(HEADER)  # a day with no sales
    (folder / "3.csv").write_text(HEADER + "b,2025-06-03,12\n")
    return folder


def test_a_header_only_file_is_a_zero_row_batch_and_does_not_block_the_others(
    day_files, settings, workspace
):
    result = run([day_files], settings, workspace)

    assert [f.status for f in result.files] == [
        FileStatus.INGESTED,
        FileStatus.EMPTY,
        FileStatus.INGESTED,
    ]
    assert result.exit_code == ExitCode.OK
    assert sorted(scan_events(workspace).collect()[s.CUSTOMER_ID]) == ["a", "b"]
    batches = workspace.read_manifest()["batches"]
    assert [b["status"] for b in batches] == ["ingested", "empty", "ingested"]
    assert batches[1]["rows_read"] == 0 and batches[1]["data"] is None


def test_rerunning_the_directory_skips_what_is_in_and_fails_nothing(day_files, settings, workspace):
    run([day_files], settings, workspace)
    again = run([day_files], settings, workspace)
    assert [f.status for f in again.files] == [
        FileStatus.SKIPPED,
        FileStatus.EMPTY,
        FileStatus.SKIPPED,
    ]
    assert again.exit_code == ExitCode.OK
    assert scan_events(workspace).collect().height == 2


def test_a_zero_byte_file_is_a_zero_row_batch(tmp_path, settings, workspace):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    (result,) = run([empty], settings, workspace).files
    assert (result.status, result.rows_read) == (FileStatus.EMPTY, 0)


def test_a_failed_file_does_not_stop_the_others_and_is_retried_alone(
    day_files, settings, workspace
):
    bad = day_files / "4.csv"
    bad.write_text(HEADER + "c,not a date,1\n")
    (day_files / "5.csv").write_text(HEADER + "d,2025-06-05,7\n")

    first = run([day_files], settings, workspace)

    assert first.exit_code == ExitCode.DATA
    assert [f.path for f in first.failed] == [str(bad)]
    assert "no usable rows" in (first.failed[0].error or "")
    assert sorted(scan_events(workspace).collect()[s.CUSTOMER_ID]) == ["a", "b", "d"]
    assert workspace.read_manifest()["failed"][0]["source"] == str(bad)

    bad.write_text(HEADER + "c,2025-06-04,1\n")  # the export is fixed
    second = run([day_files], settings, workspace)

    assert second.exit_code == ExitCode.OK
    statuses = {Path(f.path).name: f.status for f in second.files}
    assert statuses["4.csv"] is FileStatus.INGESTED
    assert {statuses[n] for n in ("1.csv", "3.csv", "5.csv")} == {FileStatus.SKIPPED}
    assert workspace.read_manifest()["failed"] == []


def test_an_unreadable_gzip_file_fails_alone(day_files, settings, workspace):
    (day_files / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    result = run([day_files], settings, workspace)
    (failed,) = result.failed
    assert "broken.csv.gz" in (failed.error or "")
    assert result.accepted == 2


# --- dates in the future -----------------------------------------------------------------


def test_a_row_dated_in_the_future_is_rejected_and_tomorrow_is_not(write_csv, settings, workspace):
    text = HEADER + "a,2025-06-29,1\nb,2025-07-01 23:00:00,1\nc,2099-12-31,1\nd,2025-07-02,1\n"
    result = run([write_csv("typo.csv", text)], settings, workspace)
    assert result.rejected_by_reason == {"date in the future": 2}
    assert sorted(scan_events(workspace).collect()[s.CUSTOMER_ID]) == ["a", "b"]
    assert result.dataset.last_ts is not None and result.dataset.last_ts.year == 2025


def test_an_explicit_latest_date_still_bounds_the_data(write_csv, make_settings, workspace):
    settings = make_settings(ingest={"latest_date": "2025-06-01"})
    text = HEADER + "a,2025-05-31,1\nb,2025-06-01,1\n"
    result = run([write_csv("cut.csv", text)], settings, workspace)
    assert result.rejected_by_reason == {"date out of range": 1}


def test_a_last_day_far_below_the_usual_is_warned_about(tmp_path, settings, workspace):
    days = pl.date_range(date(2025, 5, 1), date(2025, 5, 28), eager=True)
    frame = pl.DataFrame({"ts": days}).join(pl.DataFrame({"n": range(40)}), how="cross")
    frame = pl.concat(
        [frame, pl.DataFrame({"ts": [date(2025, 5, 29)] * 3, "n": [1, 2, 3]})], how="vertical"
    ).with_columns(
        ("c" + pl.col("n").cast(pl.String)).alias("customer_id"), pl.lit("5").alias("amount")
    )
    path = tmp_path / "cut.csv"
    frame.select("customer_id", "ts", "amount").write_csv(path)

    with pytest.warns(ChurnkitWarning, match=r"2025-05-29.*cut mid-day"):
        result = run([path], settings, workspace)
    assert any("cut mid-day" in w for w in result.warnings)


# --- corrupt Parquet, repeated headers -----------------------------------------------------


def test_a_truncated_parquet_source_fails_naming_it(tmp_path, settings, workspace):
    good = tmp_path / "good.parquet"
    pl.DataFrame({"customer_id": ["a"] * 500, "ts": [date(2025, 1, 1)] * 500}).write_parquet(good)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good.read_bytes()[:200])
    result = run([bad, good], settings, workspace)
    (failed,) = result.failed
    assert "bad.parquet" in (failed.error or "") and "Parquet" in (failed.error or "")
    assert result.exit_code == ExitCode.DATA
    assert result.accepted == 1  # 500 identical rows: one event, 499 duplicates


def test_a_corrupt_parquet_file_in_the_workspace_is_a_data_error_naming_it(
    write_csv, settings, workspace
):
    run([write_csv("a.csv", HEADER + "a,2025-06-01,1\n")], settings, workspace)
    (batch,) = workspace.event_files()
    batch.write_bytes(batch.read_bytes()[:50])
    with pytest.raises(DataError) as info:
        scan_events(workspace)
    assert str(batch) in info.value.message
    assert info.value.exit_code == ExitCode.DATA


def test_two_headers_ingest_would_read_are_an_error(write_csv, settings, workspace):
    path = write_csv("twice.csv", "customer_id,ts,amount,amount\na,2025-06-01,1,2\n")
    (failed,) = run([path], settings, workspace).failed
    assert "columns 3 and 4 are both named 'amount'" in (failed.error or "")


def test_repeated_headers_ingest_does_not_read_are_kept(write_csv, settings, workspace):
    path = write_csv("notes.csv", "customer_id,ts,Note,Note\na,2025-06-01,x,y\n")
    result = run([path], settings, workspace)
    assert result.accepted == 1
    events = scan_events(workspace).collect()
    assert events["Note"].to_list() == ["x"]
    assert events["Note_duplicated_0"].to_list() == ["y"]
