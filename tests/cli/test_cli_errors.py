"""User mistakes exit with the documented codes and one line naming the file, column or key."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from churnkit.core.errors import ExitCode

GOOD_CSV = "customer_id,ts,amount\nc1,2025-03-14,10.00\nc2,2025-03-15,12.50\n"


@dataclass(frozen=True)
class Case:
    argv: list[str]
    code: ExitCode
    fragments: list[str]
    files: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    per_file: bool = False  # the file failed, the run went on: the summary is on stdout


CASES = {
    # 2: usage
    "bad-map-syntax": Case(
        ["ingest", "tx.csv", "--map", "customer_id"],
        ExitCode.USAGE,
        ["--map"],
        files={"tx.csv": GOOD_CSV},
    ),
    "bad-kind": Case(
        ["ingest", "tx.csv", "--kind", "sale"],
        ExitCode.USAGE,
        ["--kind", "purchase"],
        files={"tx.csv": GOOD_CSV},
    ),
    "unknown-source": Case(
        ["ingest", "tx.csv", "--source", "quickbooks"],
        ExitCode.USAGE,
        ["--source", "shopify-orders"],
        files={"tx.csv": GOOD_CSV},
    ),
    # 3: data
    "missing-source": Case(["ingest", "missing.csv"], ExitCode.DATA, ["missing.csv"]),
    "unsupported-source": Case(
        ["ingest", "notes.docx"], ExitCode.DATA, ["notes.docx"], files={"notes.docx": "hello"}
    ),
    "text-file-without-columns": Case(
        ["ingest", "notes.txt"],
        ExitCode.DATA,
        ["notes.txt", "customer_id"],
        files={"notes.txt": "hello"},
        per_file=True,
    ),
    "nothing-to-ingest": Case(["ingest"], ExitCode.DATA, ["nothing to ingest"]),
    "no-customer-column": Case(
        ["ingest", "orders.csv"],
        ExitCode.DATA,
        ["orders.csv", "customer_id", "--map"],
        files={"orders.csv": "order,ts,amount\no1,2025-03-14,10\n"},
        per_file=True,
    ),
    "mapped-column-absent": Case(
        ["ingest", "tx.csv", "--map", "customer_id=client_ref"],
        ExitCode.DATA,
        ["tx.csv", "client_ref"],
        files={"tx.csv": GOOD_CSV},
        per_file=True,
    ),
    "ambiguous-headers": Case(
        ["ingest", "users.csv"],
        ExitCode.DATA,
        ["users.csv", "'Customer'", "'User ID'", "--map"],
        files={"users.csv": "Customer,User ID,Date\na,1,2025-03-14\n"},
        per_file=True,
    ),
    "ambiguous-dates": Case(
        ["ingest", "eu.csv"],
        ExitCode.DATA,
        ["eu.csv", "'ts'", "ingest.date_order"],
        files={"eu.csv": "customer_id,ts\nc1,01/02/2025\nc2,03/04/2025\n"},
        per_file=True,
    ),
    "no-usable-rows": Case(
        ["ingest", "junk.csv"],
        ExitCode.DATA,
        ["junk.csv", "no usable rows"],
        files={"junk.csv": "customer_id,ts,amount\nc1,not a date,10\n,2025-03-14,1\n"},
        per_file=True,
    ),
    # 4: config
    "unknown-key-in-config-file": Case(
        ["--config", "churnkit.yaml", "ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["labels.horizn", "churnkit.yaml", "horizon"],
        files={"tx.csv": GOOD_CSV, "churnkit.yaml": "labels:\n  horizn: 60\n"},
    ),
    "config-file-from-env": Case(
        ["ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["ingest.date_order", "ymd"],
        files={"tx.csv": GOOD_CSV, "cron.yaml": "ingest:\n  date_order: ymd\n"},
        env={"CHURNKIT_CONFIG": "cron.yaml"},
    ),
    "default-config-file": Case(
        ["ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["configs/churnkit.yaml", "line 3"],
        files={"tx.csv": GOOD_CSV, "configs/churnkit.yaml": "labels:\n  horizon: [60\n"},
    ),
    "missing-config-file": Case(
        ["--config", "nope.yaml", "ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["nope.yaml"],
        files={"tx.csv": GOOD_CSV},
    ),
    "bad-env-value": Case(
        ["ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["labels.horizon", "ninety"],
        files={"tx.csv": GOOD_CSV},
        env={"CHURNKIT_LABELS__HORIZON": "ninety"},
    ),
    "unknown-env-key": Case(
        ["ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["labels.horizn"],
        files={"tx.csv": GOOD_CSV},
        env={"CHURNKIT_LABELS__HORIZN": "60"},
    ),
    "map-to-unknown-canonical": Case(
        ["ingest", "tx.csv", "--map", "custmer_id=customer_id"],
        ExitCode.CONFIG,
        ["ingest.mapping.custmer_id"],
        files={"tx.csv": GOOD_CSV},
    ),
    "unknown-encoding": Case(
        ["ingest", "tx.csv", "--encoding", "klingon"],
        ExitCode.CONFIG,
        ["ingest.encoding", "klingon"],
        files={"tx.csv": GOOD_CSV},
    ),
    "unknown-time-zone": Case(
        ["ingest", "tx.csv"],
        ExitCode.CONFIG,
        ["ingest.timezone", "Mars/Olympus"],
        files={"tx.csv": GOOD_CSV},
        env={"CHURNKIT_INGEST__TIMEZONE": "Mars/Olympus"},
    ),
}


def write_files(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_user_mistakes_exit_with_their_code_and_say_what_to_fix(run_cli, tmp_path, case):
    write_files(tmp_path, case.files)

    result = run_cli(*case.argv, env=case.env, expect=None)

    assert result.exit_code == case.code, result.stderr
    for fragment in case.fragments:
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    if case.per_file:
        assert "FAILED" in result.stdout  # the others went on; the summary says which failed
    else:
        assert result.stdout == ""  # stdout is for answers; cron jobs pipe it


CORE_ERRORS = {
    name: case
    for name, case in CASES.items()
    if isinstance(case, Case) and case.code != ExitCode.USAGE
}


@pytest.mark.parametrize("case", list(CORE_ERRORS.values()), ids=list(CORE_ERRORS))
def test_errors_are_one_line_plus_a_hint(run_cli, tmp_path, case):
    write_files(tmp_path, case.files)

    result = run_cli("--quiet", *case.argv, env=case.env, expect=case.code)

    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    assert all(line.startswith("hint: ") for line in lines[1:])
    assert len(lines) <= 2


def test_successful_ingest_exits_0(run_cli, tmp_path):
    write_files(tmp_path, {"tx.csv": GOOD_CSV})
    result = run_cli("ingest", "tx.csv")
    assert "Traceback" not in result.stderr
