"""What long commands show on a terminal: rich progress bars on standard error, nothing when
the output is piped or the user asked for quiet. The engines only call a progress callback
(done, total); the commands choose the bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# (servers just finished, servers in all): the engines' progress convention.
FleetProgress = Callable[[int, int], None]


@contextmanager
def server_progress(
    quiet: bool = False, console: Console | None = None
) -> Iterator[FleetProgress | None]:
    """A rich bar of servers done / total on a terminal (standard error); nothing when piped
    or quiet. Pass the result as `hunt_many(..., progress=...)`."""
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
