"""`churnkit init` and the shipped defaults: found from any directory, overridden by
the user's own files, copied out for editing."""

from __future__ import annotations

from pathlib import Path

from churnkit.core.config import load_settings
from churnkit.data import CONFIG, PLAYBOOK, packaged

ROOT = Path(__file__).resolve().parents[2]


def test_the_repository_configs_are_the_shipped_files():
    """One source of truth: configs/ holds copies of churnkit/data (`churnkit init`)."""
    for name in (CONFIG, PLAYBOOK):
        shipped = packaged(name).read_text(encoding="utf-8")
        assert (ROOT / "configs" / name).read_text(encoding="utf-8") == shipped, name


def test_the_shipped_settings_are_the_defaults():
    assert load_settings(packaged(CONFIG), env={}) == load_settings(None, env={})


def test_init_writes_editable_copies_and_never_overwrites_unasked(run_cli, tmp_path):
    out = run_cli("init").stdout.split()
    assert out == [str(Path("configs") / CONFIG), str(Path("configs") / PLAYBOOK)]
    for name in (CONFIG, PLAYBOOK):
        assert (tmp_path / "configs" / name).read_text() == packaged(name).read_text()
    (tmp_path / "configs" / PLAYBOOK).write_text("edited")
    refused = run_cli("init", expect=2)
    assert "already exist" in refused.stderr and "--force" in refused.stderr
    assert (tmp_path / "configs" / PLAYBOOK).read_text() == "edited"
    run_cli("init", "--force")
    assert (tmp_path / "configs" / PLAYBOOK).read_text() == packaged(PLAYBOOK).read_text()


def test_init_into_a_directory(run_cli, tmp_path):
    run_cli("init", "elsewhere")
    assert (tmp_path / "elsewhere" / "configs" / CONFIG).is_file()


def test_a_local_config_is_used_and_the_shipped_one_otherwise(run_cli, tmp_path):
    # No configs/ here: the shipped settings apply (workspace .churnkit).
    missing = run_cli("report", expect=3)
    assert ".churnkit" in missing.stderr
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / CONFIG).write_text("workspace: local-ws\n")
    local = run_cli("report", expect=3)
    assert "local-ws" in local.stderr
