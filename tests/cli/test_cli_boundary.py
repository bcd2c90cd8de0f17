"""The CLI boundary: --json always yields one verdict, data never reaches the terminal
raw, a waiting run says whom it waits for, and `sample` does not overwrite files."""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import pytest

from churnkit.core.workspace import Workspace

GOOD = "customer_id,ts,amount\nc1,2025-03-14,10\n"


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["ingest", "missing.csv", "--json"], 3),
        (["segment", "--json"], 3),
        (["train", "--json"], 3),
        (["predict", "--json"], 3),
        (["report", "--format", "json"], 3),
        (["segment", "--format", "json"], 3),
    ],
)
def test_json_on_error_prints_one_object_with_error_and_exit_code(run_cli, argv, code):
    result = run_cli(*argv, expect=code)
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == code
    assert payload["error"]
    assert "error:" in result.stderr  # the human line is still on stderr


def test_ingest_with_a_failed_file_prints_one_json_object(run_cli, tmp_path):
    (tmp_path / "ok.csv").write_text(GOOD)
    (tmp_path / "bad.csv").write_text("customer_id,ts\nc1,garbage\n")
    result = run_cli("ingest", "ok.csv", "bad.csv", "--json", expect=3)
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == 3 and "bad.csv" in payload["error"]
    statuses = {f["path"]: f["status"] for f in payload["files"]}
    assert statuses == {"ok.csv": "ingested", "bad.csv": "failed"}
    ok = next(f for f in payload["files"] if f["path"] == "ok.csv")
    assert (ok["encoding"], ok["delimiter"], ok["source"]) == ("utf-8", ",", "generic")
    for key in ("rows_read", "accepted", "rejected", "duplicates", "rejected_by_reason"):
        assert key in payload
    for key in ("customers", "first_ts", "last_ts", "kinds", "files"):
        assert key in payload


def test_control_characters_from_data_never_reach_the_terminal(run_cli, tmp_path):
    evil = "\x1b[31mred\x1b[0m"
    (tmp_path / "x.csv").write_text(
        f"customer_id,ts,amount,{evil}\nc1,2025-03-14,10,a\n\x07bell,not a date,1,b\n"
    )
    result = run_cli("ingest", "x.csv")
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    (tmp_path / "y.csv").write_text(f"{evil},ts\nc1,2025-03-14\n")
    failed = run_cli("ingest", "y.csv", expect=3)
    assert "\x1b" not in failed.stderr
    assert "\\x1b[31mred" in failed.stderr  # shown, escaped


def test_a_waiting_run_names_the_lock_holder(tmp_path, caplog):
    workspace = Workspace(tmp_path / "ws")
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with workspace.lock():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    assert held.wait(10)
    try:
        with caplog.at_level(logging.WARNING, logger="churnkit"):
            waiter = threading.Thread(target=lambda: workspace.lock(5).__enter__(), daemon=True)
            waiter.start()
            waiter.join(0.5)
    finally:
        release.set()
        thread.join(10)
    messages = [r.getMessage() for r in caplog.records]
    assert any("waiting for the workspace lock held by pid" in m for m in messages), messages
    assert any(" on " in m and " since " in m for m in messages)


def test_sample_refuses_a_directory_that_holds_files(run_cli, tmp_path):
    target = tmp_path / "sample_data"
    target.mkdir()
    (target / "mine.csv").write_text("precious")
    result = run_cli("sample", "--customers", "50", expect=2)
    assert "--force" in result.stderr
    assert (target / "mine.csv").read_text() == "precious"
    run_cli("sample", "--customers", "50", "--force", "--months", "3")
    assert (target / "transactions.csv").exists()


def test_sample_writes_into_a_new_directory(run_cli, tmp_path):
    run_cli("sample", "--customers", "50", "--months", "3", "--out", "fresh")
    assert (Path(tmp_path) / "fresh" / "transactions.csv").exists()
