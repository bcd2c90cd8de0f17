"""The ``churnkit`` command: global options and one module per verb.

Each verb module parses its flags, resolves settings, calls one core function and
renders the result; the core never imports Typer.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from churnkit import __version__
from churnkit.cli import _shell

app = typer.Typer(
    name="churnkit",
    help="Churn analysis from transaction exports: ingest, segment, train, predict, report.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class EngineKind(StrEnum):
    local = "local"
    dask = "dask"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"churnkit {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    workspace: Annotated[
        Path | None,
        typer.Option(help="Workspace directory [env CHURNKIT_WORKSPACE; default ./.churnkit]."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Config file [env CHURNKIT_CONFIG; default ./configs/churnkit.yaml, else "
            "the shipped defaults]."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logs; tracebacks for bugs.")
    ] = False,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="No progress bars, plain log lines.")
    ] = False,
    engine: Annotated[
        EngineKind | None,
        typer.Option(help="Run per-bucket work here (local) or on a Dask cluster [engine.kind]."),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Dask scheduler, e.g. tcp://10.0.0.5:8786; implies --engine dask "
            "[engine.scheduler].",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Churn analysis from transaction exports."""
    if engine is EngineKind.local and scheduler is not None:
        raise typer.BadParameter("a scheduler needs --engine dask", param_hint="--scheduler")
    _shell.configure(
        _shell.AppState(
            workspace=workspace,
            config=config,
            quiet=quiet,
            verbose=verbose,
            progress=not no_progress,
            engine=engine.value if engine is not None else None,
            scheduler=scheduler,
        )
    )


def _register() -> None:
    # Only commands that work are registered; each module adds itself to `app`.
    from churnkit.cli import (  # noqa: F401
        ingest,
        init,
        measure,
        predict,
        report,
        sample,
        segment,
        train,
    )


_register()


def main() -> None:
    app()
