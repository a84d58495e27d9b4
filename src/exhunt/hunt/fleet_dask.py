"""Hunting many copies on a Dask cluster: one task per copy, run by `hunt_on_worker`.

This module is imported by Dask workers by name, so it must stay importable (no work at
import time). The copies' paths must be readable, under the same name, on every worker: a
shared or mounted folder. Relative paths are made absolute here, before they travel.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from exhunt.errors import UsageError
from exhunt.hunt.files import FileStageSettings
from exhunt.hunt.fleet_work import STOP, crashed_report, hunt_one
from exhunt.model import HuntReport, InputProblem

# Seconds to wait for the scheduler before telling the user it cannot be reached.
CONNECT_TIMEOUT = "20s"


_HUNTER: ThreadPoolExecutor | None = None
_HUNTER_LOCK = threading.Lock()


def _hunter() -> ThreadPoolExecutor:
    # Every hunt of a worker process runs on one thread of its own: the hunt is bound by the
    # GIL anyway, and the engine keeps native objects (yara-x scanners) that must be used and
    # dropped on the thread that made them, whatever number of threads the worker runs.
    global _HUNTER
    with _HUNTER_LOCK:
        if _HUNTER is None:
            _HUNTER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="exhunt-hunt")
        return _HUNTER


def hunt_on_worker(source: str, file_stage: FileStageSettings | None = None) -> HuntReport:
    """The task: hunt one copy on whichever worker runs it."""
    report = _hunter().submit(hunt_one, source, file_stage).result()
    if report.unreadable and not os.path.exists(source):
        report.errors.append(InputProblem(
            source, f"read on Dask worker {socket.gethostname()}: the path must be readable "
                    "there under the same name"))
    return report


def hunt_on_dask(
    sources: list[str], address: str, progress: Callable[[int, int], None] | None,
    file_stage: FileStageSettings | None = None,
) -> list[HuntReport]:
    """Submit one task per copy to the scheduler at `address`; reports in the order given."""
    from distributed import Client, as_completed

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError) as exc:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
    results: dict[int, HuntReport] = {}
    with client:
        futures = [client.submit(hunt_on_worker, os.path.abspath(src), file_stage, pure=False)
                   for src in sources]
        index = {future.key: i for i, future in enumerate(futures)}
        for future in as_completed(futures, loop=client.loop):  # type: ignore[no-untyped-call]
            i = index[future.key]
            results[i] = _result(future, sources[i])
            future.release()
            if progress:
                progress(1, len(sources))
    return [results[i] for i in range(len(sources))]


def _result(future: Any, source: str) -> HuntReport:
    try:
        report: HuntReport = future.result()
    except STOP:
        raise
    except BaseException as exc:  # a task that failed or whose workers kept dying
        return crashed_report(source, f"on the Dask cluster: {exc!r}")
    absolute = os.path.abspath(source)
    report.source = source  # as the user gave it, not as it travelled
    if absolute != source:
        report.errors = [_as_given(problem, absolute, source) for problem in report.errors]
    return report


def _as_given(problem: InputProblem, absolute: str, source: str) -> InputProblem:
    artifact = source if problem.artifact == absolute else problem.artifact
    return InputProblem(artifact, problem.message.replace(absolute, source))


@contextmanager
def local_cluster(n_workers: int = 2) -> Iterator[str]:
    """A LocalCluster of worker processes for tests and benchmarks; yields its address.

    Worker processes import this module by name; a script that calls this needs the
    `if __name__ == "__main__":` guard.
    """
    from distributed import LocalCluster

    with LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield str(cluster.scheduler_address)
