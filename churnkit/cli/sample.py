"""``churnkit sample``: write a realistic, seeded sample export to try the pipeline on."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from churnkit.cli import _shell, app
from churnkit.core.errors import UsageError
from churnkit.render.common import count, kv_table
from churnkit.sample import make_sample


@app.command("sample")
@_shell.guarded
def sample_command(
    customers: Annotated[
        int, typer.Option(min=1, help="How many customers sign up over the period.")
    ] = 3000,
    out: Annotated[
        Path, typer.Option(help="Directory for transactions.csv, usage.csv.gz, relations.csv.")
    ] = Path("sample_data"),
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    months: Annotated[int, typer.Option(min=1, help="Length of the period in months.")] = 24,
    end: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="Last day of the period [default: 2026-10-31]."),
    ] = None,
    messy_share: Annotated[
        float,
        typer.Option(
            min=0.0, max=0.5, help="Share of messy lines (bad dates, currency strings, ...)."
        ),
    ] = 0.015,
    force: Annotated[
        bool, typer.Option("--force", help="Write into a directory that already holds files.")
    ] = False,
    business: Annotated[
        str,
        typer.Option(help="Kind of business: subscription, saas (usage-heavy) or retail (a shop)."),
    ] = "subscription",
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Generate a realistic sample export.

    subscription (default): a subscription business that also sells one-off items:
    billing and orders (with failed payments, cancels, refunds and a few messy lines),
    weekly product usage and referrals. saas: the same with nearly every customer
    subscribed and heavy weekly usage. retail: a shop's order export (no cancels, no
    failed payments), customers buying by a Pareto/NBD process.

    Example:

        churnkit sample --customers 5000 --out data/

        churnkit sample --out sample_data --force
        churnkit sample --business retail --out shop/

        churnkit ingest data/transactions.csv --relations data/relations.csv
    """
    state = _shell.STATE
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UsageError(
            f"{out} is not empty; the sample would overwrite its files",
            hint="pass --out with a new directory, or --force to overwrite",
        )
    last_day = end.date() if end is not None else date(2026, 10, 31)
    with state.step(f"simulating {customers:,} customers"):
        result = make_sample(
            out,
            customers,
            seed=seed,
            end=last_day,
            months=months,
            messy_share=messy_share,
            business=business,
        )
    if json_out:
        state.emit_json(result.to_json())
    elif not state.quiet:
        rows = [
            ("customers", count(result.customers)),
            ("period", f"{result.start} .. {result.end}"),
            ("seed", str(result.seed)),
            *((f"{result.paths[name]} (rows)", count(n)) for name, n in result.rows.items()),
            ("messy lines", count(sum(result.messy_rows.values()))),
        ]
        state.out.print(kv_table("Sample data written", rows))
