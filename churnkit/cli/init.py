"""``churnkit init``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnkit.cli import _shell, app
from churnkit.data import write_copies


@app.command("init")
@_shell.guarded
def init_command(
    directory: Annotated[
        Path, typer.Argument(help="Where to put configs/ [default: the current directory].")
    ] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Replace files that already exist.")
    ] = False,
) -> None:
    """Write editable copies of the default settings and retention playbook.

    Writes DIRECTORY/configs/churnkit.yaml (every setting with its default and
    meaning) and DIRECTORY/configs/actions.yaml (the retention playbook). Commands
    run in DIRECTORY then use them instead of the copies shipped with churnkit. Files
    that exist are not replaced unless --force is given (then nothing is written).

    \b
    Example:
        churnkit init
        churnkit init ~/churn --force
    """
    for path in write_copies(directory, force=force):
        typer.echo(str(path))
