"""A typer app with the coordinator commands registered, for tests and subprocess runs
(the lead wires register() into exhunt.cli)."""

from __future__ import annotations

import typer

from exhunt.cases.cli import register

app = typer.Typer()
lab = typer.Typer()
app.add_typer(lab, name="lab")
register(app, lab)

if __name__ == "__main__":
    app()
