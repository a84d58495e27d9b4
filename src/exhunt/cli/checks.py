"""`exhunt checks`: every registered check, what it sees and its public sources."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from exhunt.cli.common import Format, format_option, json_out, wanted

CHECK_FORMATS = (Format.TEXT, Format.JSON, Format.MARKDOWN)


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `checks` to the top-level app."""
    del lab
    app.command("checks")(checks_command)


def checks_command(
    fmt: Annotated[Format, format_option(
        *CHECK_FORMATS, short=True, help="markdown: the README's check table")] = Format.TEXT,
) -> None:
    """The checks a hunt runs: id, stage, severity, what each sees, its sources."""
    from exhunt.checks.catalog import check_table, markdown, text

    wanted(fmt, *CHECK_FORMATS)
    entries = check_table()
    if fmt is Format.JSON:
        json_out([e.to_json() for e in entries])
    else:
        sys.stdout.write(markdown(entries) if fmt is Format.MARKDOWN else text(entries))
