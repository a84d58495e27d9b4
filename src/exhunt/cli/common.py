"""What every command shares: the options, the exit codes, and how a failure is told.

Kept light on purpose: `exhunt --help` imports this module and every command module, so
nothing here may import more than typer and the standard library at module level.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exhunt.errors import ExhuntError, InputError

if TYPE_CHECKING:
    from rich.console import Console

    from exhunt.hunt.engine import Progress as ProgressSink
    from exhunt.hunt.fleet_work import FleetProgress

EXIT_USAGE = 2  # the command line or its inputs cannot be used as given
EXIT_UNREADABLE = 3  # an input could not be read (the rest was still done)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: EXHUNT_DB, else sqlite exhunt.db here)."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


class Format(StrEnum):
    """Every output format of every command; each command says which of them it writes."""

    TEXT = "text"
    JSON = "json"
    JSONL = "jsonl"
    HTML = "html"
    MARKDOWN = "markdown"
    # The field's exchange formats (exhunt.share).
    STIX = "stix"
    MISP = "misp"
    TIMELINE = "timeline"
    TIMELINE_CSV = "timeline-csv"
    ECS = "ecs"


def command_group(**settings: Any) -> typer.Typer:
    """A group of commands with plain help: typer's rich help rendering cost ~150 ms a call,
    a third of `exhunt --help`."""
    return typer.Typer(rich_markup_mode=None, **settings)


def format_option(*writes: Format, short: bool = False, help: str = "") -> Any:
    """`--format` for a command that writes `writes`; the others are refused by `wanted`."""
    names = ("--format", "-f") if short else ("--format",)
    listed = ", ".join(f.value for f in writes)
    return typer.Option(*names, show_choices=False, metavar="FORMAT",
                        help=f"{listed}{'; ' + help if help else ''}.")


def wanted(fmt: Format, *writes: Format) -> Format:
    """The format, or a usage error when this command cannot write it (never a silent text)."""
    if fmt not in writes:
        raise typer.BadParameter(
            f"this command writes {', '.join(f.value for f in writes)}, not {fmt.value}",
            param_hint="'--format'")
    return fmt


# The extra that brings each optional library (pyproject.toml's optional-dependencies).
EXTRA_OF = {
    "sqlalchemy": "coordinate", "alembic": "coordinate", "psycopg": "coordinate",
    "duckdb": "coordinate", "pyarrow": "coordinate", "iptocc": "coordinate",
    "maxminddb": "coordinate", "stix2": "share", "pymisp": "share",
    "fastapi": "web", "uvicorn": "web", "argon2": "web",
    "multipart": "web", "aiosmtpd": "all",
    "dask": "fleet", "distributed": "fleet",
}


def missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The extra to install for a library that is not there, if it is one of ours."""
    top = (exc.name or "").split(".")[0]
    return EXTRA_OF.get(top)


def plain(text: str) -> str:
    """A message as the user should see it: no terminal control characters from attacker-
    chosen file names (rich markup is never interpreted here: this goes out as text)."""
    return "".join(ch if ch == "\n" or ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def error(message: str) -> None:
    """One plain error line on standard error."""
    sys.stderr.write(f"error: {plain(message)}\n")
    sys.stderr.flush()


def say(message: str, *, err: bool = False) -> None:
    """One plain line for the user, never read as markup."""
    stream = sys.stderr if err else sys.stdout
    stream.write(plain(message) + "\n")


@contextmanager
def failures(*, unreadable: int = EXIT_USAGE) -> Iterator[None]:
    """exhunt's own errors become one plain line and an exit code: an input that cannot be
    read exits `unreadable`, anything else asked of the wrong kind EXIT_USAGE; a library of
    an extra that is not installed says which extra to install."""
    try:
        yield
    except InputError as exc:
        error(str(exc))
        raise typer.Exit(unreadable) from None
    except ExhuntError as exc:
        error(str(exc))
        raise typer.Exit(EXIT_USAGE) from None
    except ModuleNotFoundError as exc:
        extra = missing_extra(exc)
        if extra is None:
            raise
        error(f"this command needs {exc.name}, which comes with exhunt[{extra}]: "
              f"pip install 'exhunt[{extra}]'")
        raise typer.Exit(EXIT_USAGE) from None


def json_out(value: Any) -> None:
    """Indented JSON on standard output (orjson: case lists run to hundreds of megabytes)."""
    import orjson

    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def shows_progress(quiet: bool) -> bool:
    """Bars only on a terminal, and not when told --quiet."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, quiet: bool) -> Iterator[ProgressSink | None]:
    """A rich byte bar on a terminal; nothing when piped or quiet."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total)

        yield advance



@contextmanager
def server_progress(
    quiet: bool = False, console: Console | None = None
) -> Iterator[FleetProgress | None]:
    """A rich bar of servers done / total on a terminal (standard error); nothing when piped
    or quiet. Pass the result as `hunt_many(..., progress=...)`: the engines only call back."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = console or Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    columns = (TextColumn("hunting servers"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task("servers", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, advance=done, total=total)

        yield advance

def table_console() -> Console:
    """A console for tables of stored values: never highlighted, never read as markup
    (callers pass markup=False to print)."""
    from rich.console import Console

    return Console(highlight=False, markup=False)
