"""Encodings and dialects: nothing decoded lossily, every decision reported."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest

from churnkit.core import schema as s
from churnkit.core.io import scan_events
from churnkit.ingest.dialect import (
    Utf8Check,
    decimal_mark,
    legacy_encoding,
    sniff_delimiter,
    utf16_without_bom,
)
from churnkit.ingest.pipeline import ingest

TODAY = date(2025, 12, 31)


def ingest_bytes(tmp_path: Path, name: str, data: bytes, settings, workspace):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(data)
    return ingest([path], settings=settings, workspace=workspace, today=TODAY)


def customers(workspace) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(scan_events(workspace).collect()[s.CUSTOMER_ID].to_list())


def test_cp1252_names_that_differ_by_an_accent_stay_two_customers(tmp_path, settings, workspace):
    text = "customer_id,ts,amount\nMüller,2025-01-01,10\nMöller,2025-01-01,10\n"
    result = ingest_bytes(tmp_path, "latin.csv", text.encode("cp1252"), settings, workspace)
    assert (result.accepted, result.duplicates) == (2, 0)
    assert customers(workspace) == ["Möller", "Müller"]
    assert result.files[0].encoding == "cp1252"


def test_an_undecodable_value_is_a_reject_never_a_replacement(tmp_path, settings, workspace):
    data = "customer_id,ts,amount\nRenée,2025-01-01,1\n".encode() + b"Ren\xe9e,2025-01-02,2\n"
    result = ingest_bytes(tmp_path, "mixed.csv", data, settings, workspace)
    assert result.rejected_by_reason == {"invalid encoding": 1}
    assert customers(workspace) == ["Renée"]
    rejects = pl.read_csv(result.files[0].rejects_path or "", infer_schema=False)
    assert rejects["line"].to_list() == ["3"]


def test_an_explicit_encoding_wins(tmp_path, make_settings, workspace):
    data = "customer_id,ts\nZoë,2025-01-01\n".encode("cp1252")
    settings = make_settings(ingest={"encoding": "latin-1"})
    result = ingest_bytes(tmp_path, "x.csv", data, settings, workspace)
    assert customers(workspace) == ["Zoë"]
    assert result.files[0].encoding == "iso8859-1"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.csv", "\ufeffcustomer_id,ts\nJosé,2025-01-01\n".encode()),
        ("excel.txt", "customer_id\tts\nJosé\t2025-01-01\n".encode("utf-16")),
        ("big.txt", "\ufeffcustomer_id\tts\nJosé\t2025-01-01\n".encode("utf-16-be")),
        ("tabs.tsv", "customer_id\tts\nJosé\t2025-01-01\n".encode()),
        ("pipes.csv", "customer_id|ts\nJosé|2025-01-01\n".encode()),
    ],
)
def test_byte_order_marks_utf16_and_delimiters(tmp_path, settings, workspace, name, data):
    result = ingest_bytes(tmp_path, name, data, settings, workspace)
    assert result.accepted == 1, result.files[0].error
    assert customers(workspace) == ["José"]


def test_a_semicolon_excel_export_with_decimal_commas(tmp_path, settings, workspace):
    text = "Kunde;Datum;Betrag\nMüller;14.03.2025;12,50\nSchmidt;15.03.2025;1.234,50\n"
    result = ingest_bytes(tmp_path, "eu.csv", text.encode("cp1252"), settings, workspace)
    f = result.files[0]
    assert (f.delimiter, f.decimal, f.encoding) == (";", ",", "cp1252")
    assert any("decimal comma" in note for note in f.notes)
    amounts = scan_events(workspace).collect().sort(s.AMOUNT)[s.AMOUNT].to_list()
    assert amounts == [12.5, 1234.5]


def test_an_explicit_delimiter_and_decimal_win(tmp_path, make_settings, workspace):
    text = "customer_id;ts;amount\na;2025-01-01;12,50\n"
    settings = make_settings(ingest={"delimiter": "semicolon", "decimal": "."})
    result = ingest_bytes(tmp_path, "x.csv", text.encode(), settings, workspace)
    assert result.files[0].error is not None  # 12,50 is not a number under decimal "."
    assert result.rejected_by_reason == {"unparseable amount": 1}


# --- the decisions, one by one -------------------------------------------------------------


def test_strict_utf8_check_finds_the_first_bad_byte_across_blocks():
    check = Utf8Check()
    check.feed(b"ab\xc3")  # a character split across two blocks is fine
    check.feed(b"\xa9cd\xff")
    check.feed(b"", final=True)
    assert check.first_error == 6


def test_utf16_without_a_bom_is_recognised_by_its_nul_bytes():
    assert utf16_without_bom("customer_id,ts\n".encode("utf-16-le")) == "utf-16-le"
    assert utf16_without_bom("customer_id,ts\n".encode("utf-16-be")) == "utf-16-be"
    assert utf16_without_bom(b"customer_id,ts\n") is None


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("id,name\n1,Müller\n2,Möller\n", "cp1252"),
        ("id,name\n1,José Muñoz €12\n", "cp1252"),
        ("id,name\n1,Иванов Пётр\n2,Сергеев\n", "cp1251"),
        ("id,name\n1,Łukasz Żółć\n2,Świątek\n", "cp1250"),
    ],
)
def test_legacy_encodings_are_told_apart(text, codec):
    found = legacy_encoding(text.encode(codec))
    assert found is not None
    assert text.encode(codec).decode(found.codec) == text


def test_a_file_mostly_in_utf8_stays_utf8():
    found = legacy_encoding("a,Müller,Zoë,José\n".encode() + b"b,Ren\xe9e\n")
    assert found is not None and found.codec == "utf-8"


@pytest.mark.parametrize(
    ("lines", "delimiter"),
    [
        (["a,b,c", "1,2,3"], ","),
        (["a;b;c", "1;2,5;3"], ";"),
        (["a\tb", "1\t2"], "\t"),
        (['"a;x",b', '"1;2",3'], ","),
    ],
)
def test_delimiter_is_sniffed_from_header_and_sample(lines, delimiter):
    assert sniff_delimiter(lines, explicit=None, suffix=".csv").delimiter == delimiter


@pytest.mark.parametrize(
    ("values", "mark"),
    [
        (["12,50", "3"], ","),
        (["1.234,50"], ","),
        (["12.50", "1,234.00"], "."),
        (["1,234", "5"], None),  # a thousands group proves nothing
        (["12,50", "3.25"], None),  # contradictory
    ],
)
def test_decimal_mark_needs_proof(values, mark):
    assert decimal_mark(pl.Series(values)) == mark
