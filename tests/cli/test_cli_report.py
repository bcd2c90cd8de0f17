"""`churnkit report` end to end: every format, default locations, exit codes, and the
real pipeline (train → predict → report) on the generated sample."""

from __future__ import annotations

import csv
import io
import json
import shutil
import warnings
from pathlib import Path

import polars as pl
import pytest
import yaml
from test_golden import CARD, HYPERLINK, PLAYBOOK, SCRIPT, fixed_predictions

from churnkit.core.config import load_settings
from churnkit.core.io import scan_events, scan_relations
from churnkit.core.workspace import Workspace
from churnkit.model.training import train


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    """A workspace holding the fixed predictions as `predict` leaves them, a model card
    and a playbook."""
    root = tmp_path / "ws"
    (root / "predictions").mkdir(parents=True)
    fixed_predictions().write_parquet(root / "predictions" / "latest.parquet")
    (root / "models" / "default").mkdir(parents=True)
    CARD.write(root / "models" / "default")
    (tmp_path / "playbook.yaml").write_text(yaml.safe_dump(PLAYBOOK))
    return root


def report(run_cli, ws: Path, *args: str, expect: int | None = 0):
    playbook = str(ws.parent / "playbook.yaml")
    return run_cli("--workspace", str(ws), "report", "--playbook", playbook, *args, expect=expect)


def test_table_tells_who_to_save_why_and_what_to_do(run_cli, ws):
    out = report(run_cli, ws, "--top", "5").stdout
    for fragment in (
        "Retention report as of 2026-06-30",
        "expected churners",
        "value at risk",
        "Top 5 of 10 customers by value at risk",
        "1 complaint unresolved",
        "service-recovery-call",
        "Action plan",
        "validation AUC 0.812",
    ):
        assert fragment in out, fragment


def test_json_budget_and_control_group(run_cli, ws):
    out = report(run_cli, ws, "--json", "--budget", "52", "--control-share", "0.2").stdout
    payload = json.loads(out)
    budget = payload["budget"]
    chosen = [c for c in payload["customers"] if c["selected"]]
    assert budget["spent"] <= 52
    assert budget["spent"] == pytest.approx(sum(c["action_cost"] for c in chosen))
    assert payload["control_group"]["customers"] == 5
    assert not any(c["selected"] for c in payload["customers"] if c["control"])
    assert payload["summary"]["active_customers"] == 10


def test_json_flag_and_format_json_agree_and_conflict_with_other_formats(run_cli, ws):
    a = json.loads(report(run_cli, ws, "--json").stdout)
    b = json.loads(report(run_cli, ws, "--format", "json").stdout)
    assert a == b
    result = report(run_cli, ws, "--json", "--format", "csv", expect=2)
    assert "--json" in result.stderr


def test_csv_to_stdout_escapes_formulas(run_cli, ws):
    out = report(run_cli, ws, "--format", "csv").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 10
    assert "'" + HYPERLINK in [r["customer_id"] for r in rows]


def test_html_defaults_to_the_workspace_reports_folder(run_cli, ws):
    out = report(run_cli, ws, "--format", "html", "--budget", "1000").stdout.strip()
    path = ws / "reports" / "report-2026-06-30.html"
    assert out == str(path)
    page = path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 5
    assert SCRIPT not in page and "&lt;script&gt;" in page
    assert "<link" not in page and 'src="http' not in page  # self-contained
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left nothing behind


def test_markdown_writes_charts_beside_it(run_cli, ws, tmp_path):
    target = tmp_path / "out" / "weekly.md"
    out = report(run_cli, ws, "--format", "markdown", "--out", str(target)).stdout.strip()
    assert out == str(target)
    text = target.read_text(encoding="utf-8")
    images = sorted((tmp_path / "out" / "weekly_files").glob("*.png"))
    assert len(images) == 5
    for image in images:
        assert f"(weekly_files/{image.name})" in text


def test_out_files_for_table_json_and_csv(run_cli, ws, tmp_path):
    for fmt, name in (("table", "r.txt"), ("json", "r.json"), ("csv", "r.csv")):
        target = tmp_path / name
        result = report(run_cli, ws, "--format", fmt, "--out", str(target))
        assert result.stdout.strip() == str(target)
        assert target.stat().st_size > 0
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["active_customers"] == 10
    assert "Top 10 of 10" in (tmp_path / "r.txt").read_text()


def test_predictions_flag_reads_csv_written_by_predict(run_cli, ws, tmp_path):
    path = tmp_path / "p.csv"
    fixed_predictions().with_columns(pl.col("driver_features").list.join("; ")).write_csv(path)
    payload = json.loads(report(run_cli, ws, "--predictions", str(path), "--json").stdout)
    assert payload["customers"][0]["driver_features"] == ["complaints_unresolved", "recency_days"]


def test_filters(run_cli, ws):
    payload = json.loads(report(run_cli, ws, "--json", "--kind", "involuntary").stdout)
    assert {c["customer_id"] for c in payload["customers"]} == {"C002", "C005"}
    payload = json.loads(report(run_cli, ws, "--json", "--segment", "at_risk").stdout)
    assert payload["summary"]["active_customers"] == 2
    payload = json.loads(report(run_cli, ws, "--json", "--min-value", "1000").stdout)
    assert payload["filters"] == {"min_value": "1000"}


def test_binary_predictions_say_binary(run_cli, ws):
    fixed_predictions(binary=True).write_parquet(ws / "predictions" / "latest.parquet")
    assert "binary model" in report(run_cli, ws).stdout
    result = report(run_cli, ws, "--kind", "voluntary", expect=2)
    assert "binary" in result.stderr


def test_outside_the_repository_the_shipped_playbook_suggests_actions(run_cli, ws):
    # run_cli works in an empty directory: no configs/ there
    assert not Path("configs").exists()
    payload = json.loads(
        run_cli("--workspace", str(ws), "report", "--json", "--budget", "2000").stdout
    )
    assert payload["budget"]["customers"] > 0
    assert all(c["action"] for c in payload["customers"])
    assert not any("playbook" in note for note in payload["notes"])


def test_a_playbook_in_configs_overrides_the_shipped_one(run_cli, ws):
    book = yaml.safe_load(yaml.safe_dump(PLAYBOOK))
    book["fallback"]["name"] = "our-own-check-in"
    Path("configs").mkdir()
    Path("configs/actions.yaml").write_text(yaml.safe_dump(book))
    payload = json.loads(run_cli("--workspace", str(ws), "report", "--json").stdout)
    assert "our-own-check-in" in {c["action"] for c in payload["customers"]}


def test_with_a_budget_the_csv_holds_every_customer_of_the_plan(run_cli, ws, tmp_path):
    out = tmp_path / "plan.csv"
    report(run_cli, ws, "--budget", "1000", "--control-share", "0.2", "--top", "2",
           "--format", "csv", "--out", str(out))  # fmt: skip
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    treated = [r for r in rows if r["control"] == "false"]
    assert len(rows) > 2 and all(r["selected"] == "true" for r in treated)
    assert any(r["control"] == "true" for r in rows)
    terminal = report(run_cli, ws, "--budget", "1000", "--control-share", "0.2", "--top", "2")
    assert "Top 2 of 10" in terminal.stdout
    assert "What to do" in terminal.stdout


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--predictions", "missing.parquet"], 3, "does not exist"),
        (["--model", "nope"], 5, "nope"),
        (["--segment", "nobody"], 2, "known segments"),
        (["--top", "0"], 2, "--top"),
        (["--control-share", "1.5"], 2, "--control-share"),
    ],
)
def test_mistakes_exit_with_their_code(run_cli, ws, args, code, fragment):
    result = report(run_cli, ws, *args, expect=code)
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_no_predictions_is_a_data_error_with_a_hint(run_cli, tmp_path):
    result = run_cli("--workspace", str(tmp_path / "empty"), "report", expect=3)
    assert "no predictions" in result.stderr
    assert "churnkit predict" in result.stderr


def test_a_missing_playbook_file_is_a_config_error(run_cli, ws):
    result = run_cli("--workspace", str(ws), "report", "--playbook", "nowhere.yaml", expect=4)
    assert "nowhere.yaml" in result.stderr


# --- the real pipeline --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained(sample_workspace: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli-report") / "ws"
    shutil.copytree(sample_workspace.root, root)
    copy = Workspace(root)
    settings = load_settings(
        None, env={}, overrides={"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        train(scan_events(copy), settings=settings, workspace=copy, relations=scan_relations(copy))
    (root.parent / "playbook.yaml").write_text(yaml.safe_dump(PLAYBOOK))
    return root


def test_train_predict_report_in_every_format(run_cli, trained, tmp_path):
    env = {"CHURNKIT_PREDICT__DRIVERS_TOP_N": "25"}
    run_cli("--workspace", str(trained), "-q", "predict", env=env)
    base = (
        "--workspace",
        str(trained),
        "report",
        "--playbook",
        str(trained.parent / "playbook.yaml"),
    )

    table = run_cli(*base, "--top", "10", "--budget", "200", "--control-share", "0.1").stdout
    assert "Top 10 of" in table and "budget of 200.00" in table

    payload = json.loads(run_cli(*base, "--json", "--budget", "200").stdout)
    assert payload["model_type"] == "multiclass"
    assert payload["model"]["calibration"]
    # with a budget the list is the whole plan: every chosen customer, not the top 20
    chosen = {c["customer_id"] for c in payload["budget"]["chosen"]}
    assert chosen == {c["customer_id"] for c in payload["customers"] if c["selected"]}
    assert payload["budget"]["spent"] <= 200
    assert any(c["driver_1"] for c in payload["customers"])

    rows = list(csv.DictReader(io.StringIO(run_cli(*base, "--format", "csv").stdout)))
    assert len(rows) == 20

    for fmt, suffix in (("html", ".html"), ("markdown", ".md")):
        path = Path(run_cli(*base, "--format", fmt).stdout.strip())
        assert path.parent == trained / "reports" and path.suffix == suffix
        assert "Calibration" in path.read_text(encoding="utf-8")
