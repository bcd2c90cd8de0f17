"""Options several commands share, declared once so they read and behave alike."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from churnkit.core.timeline import end_of_day

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]
AS_OF_HELP = "Analysis date (YYYY-MM-DD, the whole day) [default: the last event's day]."

AsOf = Annotated[datetime | None, typer.Option(help=AS_OF_HELP, formats=DATE_FORMATS)]
ModelName = Annotated[str | None, typer.Option(help="Model name [train.model].")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def day(value: datetime | None) -> datetime | None:
    """A bare date means the whole day: midnight becomes the day's last microsecond."""
    if value is None or value.time() != datetime.min.time():
        return value
    return end_of_day(value.date())
