"""hunt_many: many copies in parallel (processes, Dask) give the serial results, in order."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from exhunt.hunt import fleet_work
from exhunt.hunt.fleet_dask import local_cluster
from exhunt.hunt.fleet_run import hunt_many
from exhunt.model import HuntReport, Verdict

LabCopy = tuple[Path, dict[str, Any]]  # as the conftest fixtures give them


def as_json(reports: list[HuntReport]) -> list[dict[str, object]]:
    return [r.to_json() for r in reports]


def sources(copies: list[LabCopy], broken: list[Path]) -> list[str]:
    # Broken copies in the middle: they must not shift or stop the others.
    good = [str(c[0]) for c in copies]
    return good[:2] + [str(p) for p in broken] + good[2:]


def test_serial_hunts_find_what_the_lab_planted(lab_copies: list[LabCopy]) -> None:
    reports = hunt_many([str(c[0]) for c in lab_copies], workers=1)
    assert [r.verdict.label for r in reports] == [c[1]["scenario"] for c in lab_copies]
    assert [r.source for r in reports] == [str(c[0]) for c in lab_copies]


def test_parallel_equals_serial(lab_copies: list[LabCopy], broken_copies: list[Path]) -> None:
    todo = sources(lab_copies, broken_copies)
    done: list[tuple[int, int]] = []
    serial = hunt_many(todo, workers=1)
    parallel = hunt_many(todo, workers=2, progress=lambda n, total: done.append((n, total)))
    assert as_json(parallel) == as_json(serial)
    assert sum(n for n, _ in done) == len(todo)
    assert {total for _, total in done} == {len(todo)}


def test_a_broken_copy_is_named_and_the_others_are_hunted(
    lab_copies: list[LabCopy], broken_copies: list[Path]
) -> None:
    todo = sources(lab_copies, broken_copies)
    reports = hunt_many(todo, workers=2)
    assert [r.source for r in reports] == todo
    by_source = {r.source: r for r in reports}
    for bad in broken_copies:
        report = by_source[str(bad)]
        assert report.errors, f"{bad} gave no error"
        assert report.verdict is Verdict.CLEAN and not report.findings
        # The responder must see this is not a clean bill of health.
        assert report.unreadable or not report.exchange_found
    for copy in lab_copies:
        assert by_source[str(copy[0])].verdict.label == copy[1]["scenario"]


@pytest.mark.skipif(os.name != "posix", reason="the crash is planted through fork")
def test_a_copy_that_kills_its_worker_is_named_and_the_others_survive(
    lab_copies: list[LabCopy], monkeypatch: pytest.MonkeyPatch
) -> None:
    killer = str(lab_copies[2][0])
    real_hunt = fleet_work.hunt

    def hunt_or_die(source: str, **options: Any) -> HuntReport:
        if source == killer:
            os._exit(9)  # as the out-of-memory killer would end it
        return real_hunt(source, **options)

    monkeypatch.setattr(fleet_work, "hunt", hunt_or_die)  # forked workers inherit the patch
    todo = [str(c[0]) for c in lab_copies]
    reports = hunt_many(todo, workers=2)
    assert [r.source for r in reports] == todo
    dead = reports[2]
    assert dead.unreadable
    assert "did not finish" in dead.errors[0].message and dead.errors[0].artifact == killer
    for copy, report in zip(lab_copies, reports, strict=True):
        if str(copy[0]) != killer:
            assert report.verdict.label == copy[1]["scenario"]


def test_dask_local_cluster_equals_serial(
    lab_copies: list[LabCopy], broken_copies: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative paths, as a user types them: they must be resolved before they travel.
    root = lab_copies[0][0].parent
    monkeypatch.chdir(root)
    todo = [c[0].name for c in lab_copies] + [str(broken_copies[0]), str(broken_copies[1])]
    serial = hunt_many(todo, workers=1)
    done: list[int] = []
    with local_cluster(n_workers=2) as address:
        distributed = hunt_many(todo, dask_address=address,
                                progress=lambda n, _total: done.append(n))
    assert as_json(distributed) == as_json(serial)
    assert sum(done) == len(todo)
    assert any(r.verdict >= Verdict.BACKDOORED for r in distributed)


def test_dask_names_a_path_its_workers_cannot_read(tmp_path: Path) -> None:
    missing = str(tmp_path / "not-mounted-here")
    with local_cluster(n_workers=1) as address:
        [report] = hunt_many([missing], dask_address=address)
    assert report.unreadable and report.source == missing
    assert any("Dask worker" in e.message for e in report.errors)


def test_an_unreachable_scheduler_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from exhunt.errors import UsageError
    from exhunt.hunt import fleet_dask

    monkeypatch.setattr(fleet_dask, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(UsageError, match=r"127\.0\.0\.1:9"):
        hunt_many(["x"], dask_address="tcp://127.0.0.1:9")


def test_extra_rules_reach_every_hunt_locally_and_on_dask(
    lab_copies: list[LabCopy], tmp_path: Path
) -> None:
    from exhunt.hunt.files import FileStageSettings

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "broken.yar").write_text("rule broken { condition: ( }\n")
    stage = FileStageSettings(yara_dirs=(str(rules),))
    todo = [str(c[0]) for c in lab_copies[:3]]

    def named(reports: list[HuntReport]) -> bool:
        return all(any("broken.yar" in e.artifact + e.message for e in r.errors)
                   for r in reports)

    assert named(hunt_many(todo, workers=2, file_stage=stage))
    with local_cluster(n_workers=1) as address:
        assert named(hunt_many(todo, dask_address=address, file_stage=stage))
    assert not named(hunt_many(todo, workers=1))


def test_the_progress_bar_is_quiet_when_piped() -> None:
    from exhunt.cli.common import server_progress

    with server_progress() as progress:  # pytest captures stderr: not a terminal
        assert progress is None


def test_the_progress_bar_counts_servers_on_a_terminal(lab_copies: list[LabCopy]) -> None:
    import io

    from rich.console import Console

    from exhunt.cli.common import server_progress

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with server_progress(console=console) as progress:
        assert progress is not None
        hunt_many([str(c[0]) for c in lab_copies[:3]], workers=2, progress=progress)
    assert "3/3" in screen.getvalue()


@pytest.mark.parametrize("workers", [1, 2])
def test_ctrl_c_stops_the_fleet_run_instead_of_becoming_a_broken_copy(
    lab_copies: list[LabCopy], workers: int
) -> None:
    def interrupt(_done: int, _total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        hunt_many([str(c[0]) for c in lab_copies], workers=workers, progress=interrupt)


def test_a_worker_thread_hunts_after_the_main_thread_without_a_native_panic(
    lab_copies: list[LabCopy],
) -> None:
    """A Dask worker hunts on a thread of its own; YARA scanners are bound to the thread that
    made them, so one made by an earlier hunt on another thread must not be reused there."""
    from exhunt.hunt.fleet_dask import hunt_on_worker
    from exhunt.hunt.fleet_work import hunt_one

    source = str(lab_copies[0][0])
    here = hunt_one(source)
    there = hunt_on_worker(source)  # the worker's hunt thread, after this thread's hunt
    assert there.to_json() == here.to_json()
