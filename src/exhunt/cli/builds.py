"""`exhunt builds` as a typer command, for the whole app's --help and in-process runs; a run
from the shell goes through `builds_plain.main`, which does not import typer at all."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from exhunt.cli.builds_plain import UsageProblem, check, local_table, run
from exhunt.cli.common import EXIT_USAGE, Format, error, format_option, wanted

BUILD_FORMATS = (Format.TEXT, Format.JSON, Format.JSONL)


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `builds` to the top-level app (for its --help and in-process runs)."""
    del lab

    @app.command("builds")
    def builds_cmd(
        builds: Annotated[list[str], typer.Argument(
            help="Exchange builds, e.g. 15.1.2176.9 or 15.1.2176; '-' reads one per line "
            "from standard input")] = [],  # noqa: B006 (typer reads the default, never changes it)
        fmt: Annotated[Format, format_option(
            *BUILD_FORMATS, short=True, help="json: one object for one build, else an array"
        )] = Format.TEXT,
        table: Annotated[Path | None, typer.Option(
            help="explain with this build table (exchange_builds.csv's layout)")] = None,
        check_table: Annotated[Path | None, typer.Option(
            "--check-table", help="check a build table and say what is wrong with it")] = None,
    ) -> None:
        """Explain Exchange builds: product, CU, update, status per CVE, what to install."""
        wanted(fmt, *BUILD_FORMATS)
        try:
            if check_table is not None:
                raise typer.Exit(check(check_table, sys.stdout))
            local = local_table(table) if table is not None else None
            status = run(builds, fmt.value, sys.stdout, sys.stderr, sys.stdin, local)
        except UsageProblem as exc:
            error(str(exc))
            raise typer.Exit(EXIT_USAGE) from None
        if status:
            raise typer.Exit(status)
