"""The `exhunt` command line: hunt, scan, coordinate, and the lab that feeds them.

One module per area (`hunt`, `scan`, `builds`, `coordinate`, `web`, `lab`, `demo`), each with a
`register(app, lab)` that adds its commands; `common` holds what they share. A run registers
only the area its command belongs to; help registers every area. Command modules import
typer and `common` only: the libraries behind a command load when the command runs, so that
`exhunt --help` does not wait for the database layer, the web stack or Dask.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer


@cache
def _root() -> tuple[typer.Typer, typer.Typer]:
    """The top-level app and its `lab` group, made on first use: `exhunt builds` is answered
    before typer is imported at all."""
    from exhunt.cli.common import command_group

    app = command_group(
        help="Response toolkit for mass compromise of on-premises Exchange: hunt, scan, "
        "coordinate.",
        no_args_is_help=True,
        add_completion=False,
    )
    lab_app = command_group(
        help="Synthetic servers, triage copies and feeds for tests, demos, benchmarks.",
        no_args_is_help=True)
    app.add_typer(lab_app, name="lab")
    return app, lab_app


# The area that registers each top-level command.
AREA_OF = {
    "hunt": "hunt", "artifacts": "hunt", "baseline": "hunt",
    "scan": "scan", "builds": "builds",
    "ingest": "coordinate", "contacts": "coordinate", "cases": "coordinate",
    "rejects": "coordinate", "notify": "coordinate", "stats": "coordinate",
    "serve": "web", "users": "web",
    "lab": "lab", "demo": "demo", "checks": "checks",
}
AREAS = ("hunt", "scan", "builds", "coordinate", "web", "lab", "demo", "checks")
_registered: set[str] = set()


def register_areas(*areas: str) -> typer.Typer:
    """Add the commands of these areas (all of them when none is named), once; the app."""
    app, lab_app = _root()
    for area in areas or AREAS:
        if area not in _registered:
            _registered.add(area)
            importlib.import_module(f"exhunt.cli.{area}").register(app, lab_app)
    return app


def __getattr__(name: str) -> typer.Typer:
    """`exhunt.cli.app`: the whole command line, every area registered (tests, embedding)."""
    if name == "app":
        return register_areas()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register_parts(command: str | None = None) -> None:
    """Register the area of `command`, or every area for help and unknown commands."""
    area = AREA_OF.get(command or "")
    if area is None:
        register_areas()
    else:
        register_areas(area)


def main() -> None:
    if sys.argv[1:2] == ["builds"]:
        # answered from the build table alone: a CERT pipes hundreds of builds through it
        from exhunt.cli.builds_plain import main as builds_main

        sys.exit(builds_main(sys.argv[2:]))
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    wants_help = any(arg in ("--help", "-h") for arg in sys.argv[1:2])
    _register_parts(None if wants_help else command)
    _root()[0]()


if __name__ == "__main__":
    main()
