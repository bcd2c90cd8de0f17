"""Shared fixtures: hermetic CLI runs, workspaces on tmp_path, hypothesis profiles."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hyp_settings
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.core.config import Settings, load_settings
from churnkit.core.workspace import Workspace

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SAMPLE = ROOT / "sample_data"

hyp_settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True)
hyp_settings.register_profile("dev", max_examples=300, deadline=None)
hyp_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden files")


@pytest.fixture
def update_golden(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-golden"))


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Run ``churnkit`` in-process with an empty environment, a pinned width and a
    workspace on tmp_path. An unexpected exception fails the test with its traceback
    unless the test says it expects a non-zero exit."""
    monkeypatch.chdir(tmp_path)

    def run(*args: str, env: dict[str, str] | None = None, expect: int | None = 0) -> CliResult:
        runner = CliRunner()
        full_env = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb", **(env or {})}
        cleared = {k: None for k in os.environ if k.startswith("CHURNKIT_")}
        result = runner.invoke(app, list(args), env={**cleared, **full_env})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            tb = "".join(traceback.format_exception(result.exception))
            pytest.fail(f"unexpected exception:\n{tb}")
        out = CliResult(result.exit_code, result.stdout, result.stderr)
        if expect is not None:
            assert out.exit_code == expect, f"exit {out.exit_code}\n{out.stdout}\n{out.stderr}"
        return out

    return run


@pytest.fixture
def settings() -> Settings:
    return load_settings(None, env={})


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        return load_settings(None, env={}, overrides=overrides)

    return make


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[[str, str], Path]:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def sample_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A small generated export (billing, usage, referrals), ingested once per run."""
    from churnkit.core.schema import EventKind
    from churnkit.ingest.pipeline import ingest
    from churnkit.sample import make_sample

    root = tmp_path_factory.mktemp("sample")
    files = make_sample(root / "export", 1200, seed=5).paths
    workspace = Workspace(root / "ws")
    settings = load_settings(None, env={})
    ingest(
        [files["transactions"]],
        settings=settings,
        workspace=workspace,
        relations=files["relations"],
    )
    ingest([files["usage"]], settings=settings, workspace=workspace, kind=EventKind.USAGE)
    return workspace


@pytest.fixture
def fast_settings() -> Settings:
    """Settings that keep model training to seconds."""
    return load_settings(
        None,
        env={},
        overrides={"train": {"snapshots": 3, "lightgbm": {"num_boost_round": 150}}},
    )
