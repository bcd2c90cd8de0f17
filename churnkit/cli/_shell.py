"""What every command shares: global state, consoles, settings and the error boundary.

This is the only place where exceptions become exit codes: a ``ChurnkitError`` is
one line on stderr and its exit code; anything else is a bug (exit 70), with a
traceback only under ``--verbose``.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

from churnkit.core.config import DEFAULT_CONFIG, Settings, load_settings
from churnkit.core.errors import ChurnkitError, ChurnkitWarning, ExitCode
from churnkit.core.progress import Progress
from churnkit.core.workspace import Workspace
from churnkit.data import CONFIG, packaged
from churnkit.render.terminal import markup_safe

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    workspace: Path | None = None
    config: Path | None = None
    quiet: bool = False
    verbose: bool = False
    progress: bool = True
    engine: str | None = None
    scheduler: str | None = None
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    out: Console = field(default_factory=lambda: Console(highlight=False, soft_wrap=False))
    err: Console = field(default_factory=lambda: Console(stderr=True, highlight=False))

    def settings(self, overrides: dict[str, Any] | None = None) -> Settings:
        """Resolve flag > env > file > default once per command."""
        merged: dict[str, Any] = dict(overrides or {})
        if self.workspace is not None:
            merged["workspace"] = str(self.workspace)
        engine: dict[str, Any] = {}
        if self.scheduler is not None:
            engine = {"kind": self.engine or "dask", "scheduler": self.scheduler}
        elif self.engine is not None:
            engine = {"kind": self.engine}
        if engine:
            merged["engine"] = {**merged.get("engine", {}), **engine}
        return load_settings(self._config_path(), env=self.env, overrides=merged)

    def workspace_of(self, settings: Settings) -> Workspace:
        return Workspace(Path(settings.workspace))

    def _config_path(self) -> Path:
        """``--config`` > ``$CHURNKIT_CONFIG`` > ``./configs/churnkit.yaml`` > the
        shipped default."""
        if self.config is not None:
            return self.config
        from_env = self.env.get("CHURNKIT_CONFIG")
        if from_env:
            return Path(from_env)
        return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else packaged(CONFIG)

    def emit_json(self, payload: Any) -> None:
        """One JSON object on stdout, for cron jobs and CI."""
        typer.echo(json.dumps(payload, indent=2, default=str, sort_keys=False))

    @contextmanager
    def step(self, description: str) -> Iterator[Progress]:
        """A progress bar on a terminal (unless --no-progress or --quiet), plain log
        lines otherwise. Yields the ``Progress`` the core reports to."""
        if self.progress and not self.quiet and self.err.is_terminal:
            with _bar(self.err, description) as report:
                yield report
        else:
            logging.getLogger("churnkit").info(description)
            yield _LogProgress(logging.getLogger("churnkit"))


@contextmanager
def _bar(console: Console, description: str) -> Iterator[Progress]:
    """One line: a spinner while the amount of work is unknown, then a bar."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        _Count(),
        TimeElapsedColumn(),
    )
    with RichProgress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)

        def report(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"{description}: {what}", completed=done, total=total)

        yield report


class _Count(ProgressColumn):
    """``1,234/5,678`` once the amount of work is known; nothing before."""

    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text(f"{task.completed:,.0f}/{task.total:,.0f}", style="progress.download")


class _LogProgress:
    """Without a terminal: a log line when a stage starts and when it ends."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log

    def __call__(self, what: str, done: int, total: int) -> None:
        if done == 0:
            self.log.info("%s ...", what)
        elif done >= total:
            self.log.info("%s: done", what)
        else:
            self.log.debug("%s: %s of %s", what, f"{done:,}", f"{total:,}")


STATE = AppState()


def configure(state: AppState) -> None:
    """Route logs and domain warnings to stderr according to --quiet/--verbose."""
    global STATE
    STATE = state
    level = logging.ERROR if state.quiet else logging.DEBUG if state.verbose else logging.INFO
    logger = logging.getLogger("churnkit")
    logger.handlers.clear()
    logger.propagate = False
    handler = _ConsoleHandler(state.err)
    logger.addHandler(handler)
    logger.setLevel(level)

    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        if not state.quiet or not issubclass(category, ChurnkitWarning):
            state.err.print(f"[yellow]warning:[/] {markup_safe(message)}", soft_wrap=True)

    warnings.showwarning = show  # type: ignore[assignment]
    warnings.simplefilter("always", ChurnkitWarning)


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(f"[dim]{markup_safe(record.getMessage())}[/]", soft_wrap=True)


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """The error boundary every command runs inside.

    An error is one line on stderr (and a hint); with ``--json`` (or ``--format json``)
    stdout also gets one JSON object with ``error`` and ``exit_code``, so a cron job or a
    CI step always has a verdict to parse.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = wants_json(kwargs)
        try:
            return fn(*args, **kwargs)
        except ChurnkitError as exc:
            report_error(exc.message, exc.hint)
            _json_error(as_json, exc.message, exc.exit_code, hint=exc.hint)
            raise typer.Exit(int(exc.exit_code)) from None
        except KeyboardInterrupt:
            STATE.err.print("interrupted")
            _json_error(as_json, "interrupted", ExitCode.INTERRUPTED)
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        except typer.BadParameter as exc:
            _json_error(as_json, exc.format_message(), ExitCode.USAGE)
            raise
        except (typer.Exit, typer.Abort, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # Rust panics from Polars are BaseExceptions too
            if STATE.verbose:
                raise
            message = f"internal error: {type(exc).__name__}: {exc}"
            STATE.err.print(
                f"{markup_safe(message)} (rerun with --verbose for a traceback)", soft_wrap=True
            )
            _json_error(as_json, message, ExitCode.INTERNAL)
            raise typer.Exit(int(ExitCode.INTERNAL)) from None

    return wrapper


def report_error(message: str, hint: str | None = None) -> None:
    """One error line (and its hint) on stderr, safe for the terminal."""
    STATE.err.print(f"[red]error:[/] {markup_safe(message)}", soft_wrap=True)
    if hint:
        STATE.err.print(f"hint: {markup_safe(hint)}", soft_wrap=True)


def wants_json(kwargs: dict[str, Any]) -> bool:
    """True when the command was asked for JSON (``--json`` or ``--format json``)."""
    if kwargs.get("json_out") is True:
        return True
    return any(
        str(getattr(kwargs.get(k), "value", kwargs.get(k))) == "json"
        for k in ("fmt", "output_format", "format")
    )


def _json_error(as_json: bool, message: str, code: ExitCode, *, hint: str | None = None) -> None:
    if as_json:
        payload: dict[str, Any] = {"error": message, "exit_code": int(code)}
        if hint:
            payload["hint"] = hint
        STATE.emit_json(payload)


def parse_pairs(values: list[str] | None, *, flag: str) -> dict[str, str]:
    """``["a=b", "c=d"]`` → ``{"a": "b", "c": "d"}``; a malformed pair is a usage error."""
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise typer.BadParameter(f"expected NAME=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value.strip()
    return out


def exit_with(code: ExitCode) -> None:
    if code != ExitCode.OK:
        raise typer.Exit(int(code))


def is_tty() -> bool:
    return sys.stdout.isatty()
