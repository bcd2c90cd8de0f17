"""The campaign loop through the command line: save a plan, ingest what happened next,
measure it; with an effect planted in generated data, and with none."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml
from campaign_world import (
    World,
    build_world,
    cli,
    copy_world,
    ingest_after,
    planted_effect,
    planted_rows,
)

from churnkit.retention.campaign import load_campaign
from churnkit.retention.playbook import load_playbook


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def null_world(world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    """The events after the plan as generated: the actions did nothing."""
    out = copy_world(world, tmp_path_factory.mktemp("null"))
    ingest_after(out, world.after)
    return out


@pytest.fixture(scope="module")
def planted_world(world: World, tmp_path_factory: pytest.TempPathFactory) -> World:
    out = copy_world(world, tmp_path_factory.mktemp("planted"))
    ingest_after(out, planted_rows(out))
    return out


def measure_json(w: World, *args: str) -> dict:
    return json.loads(cli(w.workspace.root.parent, "measure", "c1", "--json", *args))


def test_saved_plan_holds_treated_and_control_with_what_measure_needs(world):
    campaign = load_campaign(world.workspace, "c1")
    plan = campaign.plan
    assert {"customer_id", "control", "action", "action_cost", "expected_saved_value"} <= set(
        plan.columns
    )
    assert {"p_churn", "value_at_risk"} <= set(plan.columns)
    assert campaign.treated > 0 and campaign.control > 0
    # about 30% of the chosen customers are held out
    assert 0.2 < campaign.control / plan.height < 0.4
    assert plan.filter(~pl.col("control"))["action_cost"].sum() <= 1200
    meta = json.loads((world.workspace.root / "campaigns/c1/campaign.json").read_text())
    assert meta["as_of"].startswith("2026-07-15")
    assert meta["horizon"] == 90 and meta["grace"] == 14 and meta["model"] == "default"
    assert meta["control_share"] == 0.3 and meta["budget"] == 1200
    assert meta["actions"]["card-update"] == {
        "success_rate": 0.6,
        "unit_cost": 0.5,
        "channel": "email",
    }


def test_no_effect_interval_contains_zero(null_world):
    result = measure_json(null_world)
    assert set(result) >= {"campaign", "as_of", "window_end", "window_complete", "overall"}
    overall = result["overall"]
    assert overall["ci_low"] <= 0 <= overall["ci_high"]
    assert overall["p_value"] > 0.05
    assert result["window_complete"] is True
    assert result["window_end"] == "2026-10-13"
    for group in ("treated", "control"):
        assert set(overall[group]) >= {"customers", "churned", "churn_rate"}
    for action in result["actions"]:
        assert {"action", "uplift", "ci_low", "ci_high", "p_value", "treated", "control"} <= set(
            action
        )


def test_planted_effect_is_recovered_within_its_interval(planted_world, null_world):
    planted = planted_effect(planted_world)
    overall = measure_json(planted_world)["overall"]
    assert overall["ci_low"] <= planted <= overall["ci_high"]
    assert overall["ci_low"] > 0
    assert overall["p_value"] < 0.001
    # the kept customers' purchases show as revenue the actions brought in
    baseline = measure_json(null_world)["overall"]
    assert overall["incremental_revenue"] > baseline["incremental_revenue"]
    assert overall["net_return"] == pytest.approx(overall["incremental_revenue"] - overall["cost"])
    assert overall["uplift"] == pytest.approx(
        overall["control"]["churn_rate"] - overall["treated"]["churn_rate"]
    )


def test_measure_feeds_back_a_suggested_playbook_and_never_overwrites(planted_world):
    folder = planted_world.workspace.root / "campaigns" / "c1"
    first = measure_json(planted_world)
    changed = [a for a in first["actions"] if a["feedback"] in ("lower", "higher")]
    if not changed:
        assert first["suggested_playbook"] is None
        return
    path = Path(first["suggested_playbook"])
    assert path.parent == folder and path.name.startswith("playbook-suggested-2026-10-13")
    text = path.read_text()
    assert text.startswith("# Suggested playbook update")
    suggested = load_playbook(path, known_features=[])
    rates = {r.action.name: r.action.success_rate for r in suggested.rules}
    rates[suggested.fallback.name] = suggested.fallback.success_rate
    for action in changed:
        assert rates[action["action"]] == pytest.approx(
            min(max(action["observed_success_rate"], 0), 1), abs=1e-3
        )
    # the same measurement again does not write another file, and a file edited by
    # a person is never replaced: the next suggestion gets a new name
    again = measure_json(planted_world)
    assert again["suggested_playbook"] == str(path)
    path.write_text("# edited by hand\n" + text)
    third = measure_json(planted_world)
    assert third["suggested_playbook"] != str(path)
    assert path.read_text().startswith("# edited by hand")


def test_report_shows_measured_campaigns_with_a_retention_chart(planted_world):
    root = planted_world.workspace.root.parent
    measure_json(planted_world)
    table = cli(root, "report", "--playbook", str(planted_world.playbook))
    assert "Measured campaigns" in table and "c1" in table
    out = root / "report.html"
    cli(
        root,
        "report",
        "--playbook",
        str(planted_world.playbook),
        "--format",
        "html",
        "--out",
        str(out),
    )
    html = out.read_text()
    assert "Measured campaigns" in html
    assert "Campaign c1: treated vs control retention" in html
    payload = json.loads(cli(root, "report", "--playbook", str(planted_world.playbook), "--json"))
    assert payload["campaigns"][0]["campaign"] == "c1"


def test_measure_renders_markdown_and_html_with_the_chart(planted_world, tmp_path):
    root = planted_world.workspace.root.parent
    html = tmp_path / "c1.html"
    cli(root, "measure", "c1", "--format", "html", "--out", str(html))
    text = html.read_text()
    assert "data:image/png;base64," in text and "Treated vs control" in text
    md = tmp_path / "c1.md"
    cli(root, "measure", "c1", "--format", "markdown", "--out", str(md))
    assert (tmp_path / "c1_files" / "campaign_c1.png").is_file()
    assert "](c1_files/campaign_c1.png)" in md.read_text()
    terminal = cli(root, "measure", "c1")
    assert "Treated vs control" in terminal and "uplift" in terminal


def test_incomplete_window_is_measured_so_far(world, tmp_path):
    early = copy_world(world, tmp_path)
    cut = early.after.filter(pl.col("Invoice Date") <= "2026-08-20 23:59:59")
    ingest_after(early, cut)
    result = measure_json(early)
    assert result["window_complete"] is False
    assert result["window_end"] == "2026-08-20"
    assert result["window_days"] == 36
    assert any("window is incomplete" in n for n in result["notes"])
    # --as-of measures as the data stood then
    older = measure_json(early, "--as-of", "2026-08-01")
    assert older["window_end"] == "2026-08-01"


def test_measure_before_anything_happened_says_so(world, run_cli):
    root = world.workspace.root
    out = run_cli("--workspace", str(root), "measure", "c1", expect=3)
    assert "nothing has happened since" in out.stderr


def test_campaign_errors_are_plain(world, run_cli, tmp_path):
    ws = str(world.workspace.root)
    pb = str(world.playbook)
    missing = run_cli("--workspace", ws, "measure", "nope", expect=2)
    assert "no campaign 'nope'" in missing.stderr and "c1" in missing.stderr
    bad = run_cli(
        "--workspace", ws, "report", "--playbook", pb, "--save-campaign", "../x", expect=2
    )
    assert "campaign name" in bad.stderr
    again = run_cli(
        "--workspace", ws, "report", "--playbook", pb, "--control-share", "0.3",
        "--save-campaign", "c1", expect=2,
    )  # fmt: skip
    assert "already exists" in again.stderr and "--force" in again.stderr
    no_control = run_cli(
        "--workspace", ws, "report", "--playbook", pb, "--save-campaign", "c2", expect=2
    )
    assert "control group" in no_control.stderr


def test_save_campaign_without_a_budget_keeps_every_action_worth_doing(world, run_cli, tmp_path):
    other = copy_world(world, tmp_path)
    ws = str(other.workspace.root)
    run_cli(
        "--workspace", ws, "report", "--playbook", str(other.playbook), "--control-share",
        "0.3", "--save-campaign", "all", "--json",
    )  # fmt: skip
    campaign = load_campaign(other.workspace, "all")
    budgeted = load_campaign(other.workspace, "c1")
    assert campaign.treated > budgeted.treated
    assert campaign.plan["expected_saved_value"].min() > 0
    assert campaign.budget is None
    meta = yaml.safe_load((other.workspace.root / "campaigns/all/campaign.json").read_text())
    assert meta["customers"] == {"treated": campaign.treated, "control": campaign.control}


@pytest.mark.slow
def test_campaign_chart_shows_in_a_real_browser(planted_world, tmp_path):
    """The HTML report with its campaign chart, rendered by headless Chromium
    (bench/screenshot_report.sh): the screenshot is not blank."""
    import shutil
    import subprocess

    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    import matplotlib.image as mpimg
    import numpy as np

    root = planted_world.workspace.root.parent
    html = tmp_path / "report.html"
    pb = str(planted_world.playbook)
    cli(root, "report", "--playbook", pb, "--format", "html", "--out", str(html))
    png = tmp_path / "report.png"
    script = Path(__file__).resolve().parents[2] / "bench" / "screenshot_report.sh"
    subprocess.run(["bash", str(script), str(html), str(png), "1200x3000"], check=True, timeout=180)
    pixels = mpimg.imread(png)[:, :, :3]
    assert pixels.shape[:2] == (3000, 1200)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 50  # text, tables and charts, not an empty page
