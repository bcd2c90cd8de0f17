"""Any mix of encodings, delimiters and empty files: every row accounted for, and
customers whose ids differ only outside ASCII are never merged."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events
from churnkit.core.workspace import Workspace
from churnkit.ingest.pipeline import ingest
from churnkit.ingest.results import FileStatus

# Every one of these is written in every encoding below (cp1252 included).
IDS = st.sampled_from(["Müller", "Möller", "Muller", "Zoë", "Zoe", "José", "c1", "=cmd()"])
DAYS = st.integers(min_value=0, max_value=300)
CENTS = st.integers(min_value=0, max_value=500_000)
ROWS = st.lists(st.tuples(IDS, DAYS, CENTS, st.integers(0, 5)), max_size=15)
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"])
DELIMITERS = st.sampled_from([",", ";", "\t"])
FILES = st.lists(
    st.tuples(ROWS, ENCODINGS, DELIMITERS, st.booleans(), st.booleans()), min_size=1, max_size=4
)
TODAY = date(2026, 1, 31)


def to_bytes(rows, encoding: str, delimiter: str, *, zero_bytes: bool) -> bytes:  # type: ignore[no-untyped-def]
    if zero_bytes:
        return b""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Customer ID", "Invoice Date", "Amount", "Transaction ID"])
    for customer, day, cents, tx in rows:
        amount = f"{cents / 100:.2f}"
        if delimiter != ",":
            amount = amount.replace(".", ",")  # European files write decimal commas
        writer.writerow(
            [
                customer,
                date.fromordinal(date(2025, 1, 1).toordinal() + day),
                amount,
                f"t{tx}-{customer}-{day}",
            ]
        )
    return buffer.getvalue().encode(encoding)


@hyp_settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=FILES)
def test_accounting_holds_and_distinct_ids_stay_distinct(tmp_path_factory, files):
    root: Path = tmp_path_factory.mktemp("prop")
    paths, written = [], []
    for i, (rows, encoding, delimiter, zero_bytes, repeat) in enumerate(files):
        rows = rows + rows[:2] if repeat else rows
        path = root / f"{i}.{'tsv' if delimiter == chr(9) else 'csv'}"
        path.write_bytes(to_bytes(rows, encoding, delimiter, zero_bytes=zero_bytes))
        paths.append(path)
        written.append([] if zero_bytes else rows)
    workspace = Workspace(root / "ws")

    result = ingest(paths, settings=load_settings(None, env={}), workspace=workspace, today=TODAY)

    for f, rows in zip(result.files, written, strict=True):
        assert f.status is not FileStatus.FAILED, f.error
        if f.status is FileStatus.SKIPPED:
            continue
        assert f.rows_read == len(rows)
        assert f.rows_read == f.accepted + f.rejected + f.duplicates
        assert f.rejected == 0
    kept = [
        r
        for rows, f in zip(written, result.files, strict=True)
        if f.status is not FileStatus.SKIPPED
        for r in rows
    ]
    expected_ids = {customer for customer, *_ in kept}
    if expected_ids:
        stored = set(scan_events(workspace).collect()["customer_id"].to_list())
        assert stored == expected_ids
        assert result.dataset.customers == len(expected_ids)
