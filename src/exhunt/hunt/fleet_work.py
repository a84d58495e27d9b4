"""The unit of work of a fleet run: one whole hunt of one copy, as every worker runs it (a
local process or a Dask worker), and the report of a copy whose hunt did not finish.

Both runners (hunt/fleet_run.py's process pool, hunt/fleet_dask.py's cluster) import it; it
imports neither, so the two runners never import each other.
"""

from __future__ import annotations

from collections.abc import Callable

from exhunt.hunt.engine import forget_open_collections, hunt
from exhunt.hunt.files import FileStageSettings
from exhunt.model import HuntReport, InputProblem

# Called with (servers just finished, servers in all): the engine's progress convention.
FleetProgress = Callable[[int, int], None]
# What a fleet run must not swallow while it keeps going past broken copies.
STOP = (KeyboardInterrupt, SystemExit, GeneratorExit)


def hunt_one(source: str, file_stage: FileStageSettings | None = None) -> HuntReport:
    """One whole hunt with serial reading (the unit of work of every worker)."""
    try:
        return hunt(source, workers=1, files=file_stage)
    finally:
        forget_open_collections()


def crashed_report(source: str, why: str) -> HuntReport:
    """The report of a copy whose hunt did not finish: named, with the reason."""
    report = HuntReport(source=source, unreadable=True)
    report.errors.append(InputProblem(source, f"the hunt of this copy did not finish: {why}"))
    return report
