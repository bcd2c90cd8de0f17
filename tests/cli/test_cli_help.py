"""Every command explains itself with a runnable example; bad invocations exit 2."""

from __future__ import annotations

import pytest
import typer

from churnkit import __version__
from churnkit.cli import app

COMMANDS = sorted(typer.main.get_group(app).commands)


def test_there_are_commands_to_check():
    assert "ingest" in COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(run_cli, command):
    result = run_cli(command, "--help")
    assert "Example" in result.stdout
    assert f"churnkit {command}" in result.stdout
    assert result.stderr == ""


def test_top_level_help_lists_every_command(run_cli):
    result = run_cli("--help")
    for command in COMMANDS:
        assert command in result.stdout
    for option in ("--workspace", "--config", "--quiet", "--verbose", "--version"):
        assert option in result.stdout


def test_version(run_cli):
    result = run_cli("--version")
    assert result.stdout.strip() == f"churnkit {__version__}"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["frobnicate"], "No such command"),
        (["ingest", "--frobnicate"], "No such option"),
        (["--frobnicate", "ingest"], "No such option"),
        (["ingest", "x.csv", "--kind", "sale"], "--kind"),
    ],
    ids=["unknown-command", "unknown-option", "unknown-global-option", "bad-choice"],
)
def test_bad_invocations_exit_2_with_usage_on_stderr(run_cli, argv, fragment):
    result = run_cli(*argv, expect=2)
    assert fragment in result.stderr
    assert "Usage:" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
