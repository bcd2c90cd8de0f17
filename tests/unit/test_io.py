"""io: which files a SOURCE names, and outputs a spreadsheet or a pipeline can open safely."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from churnkit.core.errors import DataError
from churnkit.core.io import escape_formulas, expand_sources, write_table


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A drop folder as cron jobs see it: exports mixed with other files."""
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in ("2025-02.csv", "2025-01.csv", "2025-03.csv.gz", "archive.parquet", "README.txt"):
        (folder / name).write_text("x")
    (folder / "notes.docx").write_text("x")
    (folder / "2025-04.tsv").write_text("customer_id\tts\n")
    (folder / "2025-05.txt").write_text("customer_id;ts;amount\n")
    (folder / "old").mkdir()
    (folder / "old" / "2024-12.csv").write_text("x")
    return folder


# --- expand_sources --------------------------------------------------------------------


def test_a_file_is_itself(exports):
    assert expand_sources([exports / "2025-02.csv"]) == [exports / "2025-02.csv"]


def test_a_directory_gives_its_supported_files_sorted(exports):
    assert expand_sources([exports]) == [
        exports / "2025-01.csv",
        exports / "2025-02.csv",
        exports / "2025-03.csv.gz",
        exports / "2025-04.tsv",
        exports / "2025-05.txt",  # a table; README.txt beside it is not
        exports / "archive.parquet",
    ]


def test_a_glob_gives_matching_supported_files_sorted(exports):
    assert expand_sources([str(exports / "2025-*")]) == [
        exports / "2025-01.csv",
        exports / "2025-02.csv",
        exports / "2025-03.csv.gz",
        exports / "2025-04.tsv",
        exports / "2025-05.txt",
    ]
    assert expand_sources([str(exports / "**" / "*.csv")]) == [
        exports / "2025-01.csv",
        exports / "2025-02.csv",
        exports / "old" / "2024-12.csv",
    ]


def test_a_file_named_twice_is_read_once(exports):
    sources = [exports / "2025-01.csv", exports, str(exports / "*.csv")]
    files = expand_sources(sources)
    assert files.count(exports / "2025-01.csv") == 1
    assert files[0] == exports / "2025-01.csv"


def test_suffixes_are_case_insensitive(tmp_path):
    (tmp_path / "EXPORT.CSV").write_text("x")
    assert expand_sources([tmp_path]) == [tmp_path / "EXPORT.CSV"]


def test_missing_path_is_a_data_error_naming_it(tmp_path):
    missing = tmp_path / "missing.csv"
    with pytest.raises(DataError) as info:
        expand_sources([missing])
    assert str(missing) in info.value.message


def test_a_text_file_named_explicitly_is_taken(exports):
    assert expand_sources([exports / "README.txt"]) == [exports / "README.txt"]


def test_unsupported_file_is_a_data_error(exports):
    with pytest.raises(DataError) as info:
        expand_sources([exports / "notes.docx"])
    assert "notes.docx" in info.value.message
    assert ".csv" in info.value.hint


def test_glob_matching_nothing_supported_is_a_data_error(exports):
    with pytest.raises(DataError, match=r"\*\.docx"):
        expand_sources([str(exports / "*.docx")])


def test_directory_without_supported_files_is_a_data_error(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError) as info:
        expand_sources([tmp_path])
    assert str(tmp_path) in info.value.message


# --- formula escaping ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    ['=HYPERLINK("http://evil.example","click")', "=1+1", "+1", "-1", "@SUM(A1)", "\tx"],
)
def test_cells_a_spreadsheet_would_run_become_text(cell):
    escaped = escape_formulas(pl.DataFrame({"note": [cell]}))["note"][0]
    assert escaped == "'" + cell


@pytest.mark.parametrize("cell", ["normal", "a=b", "x+1", "c-1", "user@example.com", "", None])
def test_ordinary_text_is_left_alone(cell):
    frame = pl.DataFrame({"note": [cell]}, schema={"note": pl.String})
    assert_frame_equal(escape_formulas(frame), frame)


def test_numbers_are_not_escaped():
    frame = pl.DataFrame({"amount": [-12.5, 3.0], "count": [-1, 2]})
    assert_frame_equal(escape_formulas(frame), frame)


# --- write_table -----------------------------------------------------------------------


@pytest.fixture
def predictions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "customer_id": ["c1", "=cmd|'/c calc'!A1", "c3"],
            "p_churn": [0.81, 0.42, 0.05],
            "value_at_risk": [-1.5, 0.0, 12.25],
            "as_of": [date(2025, 3, 31)] * 3,
        }
    )


def test_csv_output_escapes_formulas_and_keeps_numbers(tmp_path, predictions):
    path = tmp_path / "out" / "predictions.csv"
    write_table(predictions, path)
    back = pl.read_csv(path, try_parse_dates=True)
    assert back["customer_id"].to_list() == ["c1", "'=cmd|'/c calc'!A1", "c3"]
    assert back["value_at_risk"].to_list() == [-1.5, 0.0, 12.25]
    assert back["as_of"].to_list() == [date(2025, 3, 31)] * 3


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet_output_round_trips(tmp_path, predictions, suffix):
    path = tmp_path / f"predictions{suffix}"
    write_table(predictions, path)
    assert_frame_equal(pl.read_parquet(path), predictions)


def test_json_output_is_a_list_of_records(tmp_path, predictions):
    path = tmp_path / "predictions.json"
    write_table(predictions, path)
    records = json.loads(path.read_text())
    assert records[0] == {
        "customer_id": "c1",
        "p_churn": 0.81,
        "value_at_risk": -1.5,
        "as_of": "2025-03-31",
    }
    assert len(records) == 3


def test_output_extension_is_case_insensitive(tmp_path, predictions):
    write_table(predictions, tmp_path / "PREDICTIONS.CSV")
    assert pl.read_csv(tmp_path / "PREDICTIONS.CSV").height == 3


def test_unknown_output_extension_is_a_data_error_and_writes_nothing(tmp_path, predictions):
    path = tmp_path / "predictions.xlsx"
    with pytest.raises(DataError) as info:
        write_table(predictions, path)
    assert str(path) in info.value.message
    assert ".parquet" in info.value.hint
    assert list(tmp_path.iterdir()) == []


def test_rewriting_an_output_replaces_it(tmp_path, predictions):
    path = tmp_path / "predictions.csv"
    write_table(predictions, path)
    write_table(predictions.head(1), path)
    assert pl.read_csv(path).height == 1
