"""Many hunts at once: `hunt_many` hunts a fleet of triage copies in parallel.

Local processes (a process pool, one whole hunt per worker), or a Dask cluster
(hunt/fleet_dask.py); the unit of work both run is hunt/fleet_work.py. What the reports say
together is hunt/fleet.py's `fleet_summary`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool

from exhunt.hunt.files import FileStageSettings
from exhunt.hunt.fleet_work import STOP, FleetProgress, crashed_report, hunt_one
from exhunt.model import HuntReport


def hunt_many(
    sources: Sequence[str],
    *,
    workers: int | None = None,
    dask_address: str | None = None,
    progress: FleetProgress | None = None,
    file_stage: FileStageSettings | None = None,
) -> list[HuntReport]:
    """Hunt every copy in `sources`; one report per source, in the order given.

    Local: a process pool of `workers` (default: every core), one whole hunt per process with
    its reading serial; `workers=1` hunts in this process. Dask: `dask_address` is a scheduler
    (`tcp://HOST:PORT`); each copy is one task, so each copy's path must be readable, under the
    same name, on every Dask worker (a shared or mounted folder), and exhunt must be installed
    there (and the files named in `file_stage`, the extra rules, IOCs and baselines given to
    every hunt). A copy that cannot be hunted (not a copy, garbage zip, empty folder, a crash
    of its worker) gives a report with its errors; the others are hunted all the same.
    """
    sources = list(sources)
    if dask_address is not None:
        from exhunt.hunt.fleet_dask import hunt_on_dask

        return hunt_on_dask(sources, dask_address, progress, file_stage)
    count = workers or os.cpu_count() or 1
    if count <= 1 or len(sources) <= 1:
        return _hunt_serial(sources, progress, file_stage)
    return _hunt_pool(sources, min(count, len(sources)), progress, file_stage)


def _hunt_serial(
    sources: list[str], progress: FleetProgress | None, file_stage: FileStageSettings | None
) -> list[HuntReport]:
    reports = []
    for source in sources:
        try:
            reports.append(hunt_one(source, file_stage))
        except STOP:
            raise
        except BaseException as exc:  # a bug on one copy (even a native panic) must not end
            reports.append(crashed_report(source, repr(exc)))  # the fleet's run
        if progress:
            progress(1, len(sources))
    return reports


def _pool_context() -> multiprocessing.context.BaseContext:
    # Same choice as the engine: fork is cheap and needs no importable __main__.
    return multiprocessing.get_context("fork" if os.name == "posix" else "spawn")


def _hunt_pool(
    sources: list[str], workers: int, progress: FleetProgress | None,
    file_stage: FileStageSettings | None,
) -> list[HuntReport]:
    results: dict[int, HuntReport] = {}
    suspects: list[int] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context()) as pool:
        futures = {pool.submit(hunt_one, src, file_stage): i for i, src in enumerate(sources)}
        try:
            for future in as_completed(futures):
                i = futures[future]
                outcome = _outcome(future, sources[i])
                if outcome is None:
                    suspects.append(i)  # its pool broke: hunt it again, alone
                    continue
                results[i] = outcome
                if progress:
                    progress(1, len(sources))
        except STOP:
            # Ctrl-C: do not hunt the thousands still queued before giving the prompt back.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    # A worker that died (killed, out of memory) breaks the whole pool and every copy in it;
    # hunting each of those alone finds the one that kills its worker and saves the others.
    for i in sorted(suspects):
        results[i] = _hunt_alone(sources[i], file_stage)
        if progress:
            progress(1, len(sources))
    return [results[i] for i in range(len(sources))]


def _outcome(future: Future[HuntReport], source: str) -> HuntReport | None:
    try:
        return future.result()
    except BrokenProcessPool:
        return None
    except STOP:
        raise
    except BaseException as exc:  # a bug on one copy must not end the fleet's run
        return crashed_report(source, repr(exc))


def _hunt_alone(source: str, file_stage: FileStageSettings | None) -> HuntReport:
    with ProcessPoolExecutor(max_workers=1, mp_context=_pool_context()) as pool:
        future = pool.submit(hunt_one, source, file_stage)
        outcome = _outcome(future, source)
    if outcome is None:
        return crashed_report(source, "its worker process died (killed, or out of memory?)")
    return outcome

