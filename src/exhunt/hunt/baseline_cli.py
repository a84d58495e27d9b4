"""`exhunt baseline build CLEAN_COPY -o FILE`: record a clean server's web-file hashes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from exhunt.errors import InputError
from exhunt.hunt.baseline import build_baseline, write_baseline


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add the `baseline` command group to the top-level app (`lab` is not used)."""
    group = typer.Typer(help="Known-good hashes of a clean Exchange server's web files.",
                        no_args_is_help=True)

    @group.command("build")
    def build(
        clean_copy: Annotated[str, typer.Argument(help="A clean server's install root, "
                                                       "triage copy or .zip")],
        output: Annotated[Path, typer.Option("--output", "-o", help="Baseline CSV to write")],
        build_number: Annotated[str | None, typer.Option(
            "--build", help="Exchange build (e.g. 15.1.2176.2); default: the HttpProxy "
                            "logs' #Version header")] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Hash every web file of CLEAN_COPY into a baseline for `exhunt hunt --baseline`."""
        try:
            rows, found, problems = build_baseline(clean_copy, build_number)
        except InputError as exc:
            typer.echo(f"exhunt baseline: {exc}", err=True)
            raise typer.Exit(3) from None
        if not rows:
            typer.echo(f"exhunt baseline: no web files found in {clean_copy}", err=True)
            raise typer.Exit(3)
        try:
            write_baseline(rows, str(output))
        except OSError as exc:
            typer.echo(f"exhunt baseline: cannot write {output}: {exc.strerror or exc}",
                       err=True)
            raise typer.Exit(2) from None
        if not quiet:
            typer.echo(f"{len(rows)} web files of build {found} written to {output}")
            for problem in problems[:20]:
                typer.echo(f"  not read: {problem.artifact}: {problem.message}", err=True)

    app.add_typer(group, name="baseline")
