"""The global --engine and --scheduler options, and progress bars on a terminal only."""

from __future__ import annotations

import io

from rich.console import Console

from churnkit.cli import _shell
from churnkit.cli._shell import AppState


def test_dask_without_a_scheduler_is_a_config_error_naming_the_key(run_cli):
    result = run_cli("--engine", "dask", "segment", expect=4)
    assert "engine.scheduler" in result.stderr
    assert "--scheduler" in result.stderr
    env = {"CHURNKIT_ENGINE__KIND": "dask"}
    assert "engine.scheduler" in run_cli("segment", env=env, expect=4).stderr


def test_a_scheduler_with_the_local_engine_is_a_usage_error(run_cli):
    result = run_cli(
        "--engine", "local", "--scheduler", "tcp://127.0.0.1:8786", "segment", expect=2
    )
    assert "--scheduler" in result.stderr


def test_flags_override_the_environment_and_a_scheduler_implies_dask():
    env = {"CHURNKIT_ENGINE__KIND": "local", "CHURNKIT_ENGINE__BUCKETS": "8"}
    settings = AppState(scheduler="tcp://10.0.0.5:8786", env=env).settings()
    assert settings.engine.kind == "dask"
    assert settings.engine.scheduler == "tcp://10.0.0.5:8786"
    assert settings.engine.buckets == 8
    assert AppState(env=env).settings().engine.kind == "local"
    assert AppState(engine="local", env={}).settings().engine.kind == "local"
    from_env = AppState(
        env={"CHURNKIT_ENGINE__KIND": "dask", "CHURNKIT_ENGINE__SCHEDULER": "tcp://h:8786"}
    ).settings()
    assert (from_env.engine.kind, from_env.engine.scheduler) == ("dask", "tcp://h:8786")


def test_the_engine_is_in_the_top_level_help(run_cli):
    out = run_cli("--help").stdout
    assert "--engine" in out and "--scheduler" in out


def bar_state(**kwargs: object) -> tuple[AppState, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    return AppState(err=console, env={}, **kwargs), buffer  # type: ignore[arg-type]


def test_a_terminal_shows_a_progress_bar_that_counts_buckets():
    state, buffer = bar_state()
    with state.step("counting") as progress:
        progress("buckets", 0, 4)
        progress("buckets", 4, 4)
    assert "counting: buckets" in buffer.getvalue()
    assert "4/4" in buffer.getvalue()


def test_no_progress_and_quiet_print_no_bar():
    for flags in ({"progress": False}, {"quiet": True}):
        state, buffer = bar_state(**flags)
        with state.step("counting") as progress:
            progress("buckets", 0, 4)
            progress("buckets", 4, 4)
        assert "4/4" not in buffer.getvalue()


def test_without_a_terminal_progress_is_plain_log_lines():
    buffer = io.StringIO()
    state = AppState(err=Console(file=buffer, width=100, color_system=None), env={})
    _shell.configure(state)
    with state.step("counting") as progress:
        progress("buckets", 0, 4)
        progress("buckets", 2, 4)
        progress("buckets", 4, 4)
    assert buffer.getvalue().splitlines() == ["counting", "buckets ...", "buckets: done"]
