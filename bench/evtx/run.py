"""Benchmark: exhunt's event-log reader against the Rust `evtx` parser it wraps (the ceiling),
and against python-evtx (the pure-Python peer).

    .venv/bin/python bench/evtx/run.py [--records 200000 --runs 5] [--append]

It writes a mixed Application / MSExchange Management / Security EVTX file with exhunt's lab
writer, then times, alternated, over every record:
- exhunt `read_events` as a hunt calls it: asking only for the events its checks and Sigma
  rules read (`EventSelection`: event ids, providers, channels, data names); the others are
  counted but not decoded. In this mix that is the cmdlet-log and Unified Messaging events
  (2 in 5). A `--sigma` rule with no EventID condition selects its whole channel;
- exhunt `read_events` with no selection (every event decoded and mapped: what a hunt does
  when some rule reads every event of a channel that holds them all);
- the bare Rust parser, `records_json()` on one thread and on every core, records only counted
  (it skips everything exhunt does after parsing: field mapping, times, bounds);
python-evtx (`record.xml()`, ~300 rec/s here) is timed once on a smaller file written the same
way (--peer-records): it would take ten minutes on the whole file.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Series, alternate, arguments, ratio_span, record, workdir

from exhunt.checks.base import HuntContext, registered_checks
from exhunt.hunt import engine  # noqa: F401  (registers every check)
from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.model import RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.events import EventSelection, read_events

START = datetime(2021, 3, 1, tzinfo=UTC)


def mixed_events(n: int) -> Iterator[EventSpec]:
    """Application errors and MSExchange Management cmdlet events, as a real server logs them."""
    for i in range(n):
        when = START + timedelta(seconds=i * 3)
        kind = i % 5
        if kind == 0:
            yield EventSpec(
                "MSExchange Management",
                "MSExchange CmdletLogs",
                1,
                4,
                when,
                "EX01.contoso.local",
                [
                    "Get-Mailbox",
                    f"-Identity 'user{i % 977}@contoso.local' -ResultSize 1",
                    "contoso.local/Users/Administrator",
                    "S-1-5-21-1-2-3-500",
                    "Remote Powershell",
                    "ExchangeManagementShell",
                    "",
                    "0",
                ],
            )
        elif kind == 1:
            yield EventSpec(
                "Application",
                "MSExchange Unified Messaging",
                1400,
                2,
                when,
                "EX01.contoso.local",
                [
                    f"The Unified Messaging service could not process call {i}: "
                    "System.InvalidCastException: Unable to cast object."
                ],
            )
        elif kind == 2:
            yield EventSpec(
                "Application",
                "MSExchange ADAccess",
                2080,
                4,
                when,
                "EX01.contoso.local",
                [
                    "w3wp.exe",
                    str(1000 + i % 9000),
                    "Process w3wp.exe () (PID=4242). Exchange Active Directory Provider has "
                    "discovered the following servers: DC01.contoso.local CDG 1 7 7 1 0 1 1 7 1",
                ],
            )
        elif kind == 3:
            yield EventSpec(
                "Security",
                "Microsoft-Windows-Security-Auditing",
                4624,
                4,
                when,
                "EX01",
                {
                    "SubjectUserSid": "S-1-5-18",
                    "TargetUserName": f"user{i % 977}",
                    "LogonType": "3",
                    "IpAddress": f"10.0.{i % 256}.{i % 199}",
                    "ProcessName": "C:\\Windows\\System32\\inetsrv\\w3wp.exe",
                },
            )
        else:
            yield EventSpec(
                "Application",
                "MSExchangeTransport",
                12014,
                3,
                when,
                "EX01.contoso.local",
                ["EX01.contoso.local", "Default Frontend EX01"],
            )


def hunt_selection() -> EventSelection | None:
    """The events a default hunt asks for (every check that reads events, exhunt's rules)."""
    checks = [cls(HuntContext()) for cls in registered_checks()]
    return EventSelection.union(c.events for c in checks if RecordKind.EVENT in c.kinds)


def time_exhunt(path: Path, select: EventSelection | None, name: str) -> float:
    stats = ReadStats(str(path))
    begin, cpu = time.perf_counter(), time.process_time()
    with path.open("rb") as handle:
        mapped = sum(1 for _ in read_events(handle, str(path), stats, local_path=path,
                                            select=select))
    elapsed = time.perf_counter() - begin
    CPU.setdefault(name, []).append(time.process_time() - cpu)
    if stats.problems:
        raise SystemExit(f"exhunt reader reported problems: {stats.problems[:3]}")
    COUNTS[name] = stats.records
    MAPPED[name] = mapped
    return elapsed


def time_rust(path: Path, threads: int) -> float:
    from evtx import PyEvtxParser

    begin, cpu = time.perf_counter(), time.process_time()
    parser = PyEvtxParser(str(path), number_of_threads=threads, indent=False)
    count = sum(1 for _ in parser.records_json())
    COUNTS[f"rust{threads}"] = count
    CPU.setdefault(f"rust{threads}", []).append(time.process_time() - cpu)
    return time.perf_counter() - begin


def time_python_evtx(path: Path) -> tuple[int, float]:
    from Evtx.Evtx import Evtx

    begin = time.perf_counter()
    count = 0
    with Evtx(str(path)) as log:
        for record_ in log.records():
            record_.xml()
            count += 1
    return count, time.perf_counter() - begin


COUNTS: dict[str, int] = {}
MAPPED: dict[str, int] = {}
CPU: dict[str, list[float]] = {}  # CPU seconds of each run (steadier than wall on a busy machine)


def cpu_ratio(peer: str, ours: str) -> str:
    ratios = [a / b for a, b in zip(CPU[peer], CPU[ours], strict=True)]
    return (f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}); "
            f"CPU {statistics.median(CPU[ours]):.2f} s vs {statistics.median(CPU[peer]):.2f} s")


def rate(series: Series, records: int) -> str:
    rates = sorted(records / s for s in series.values)
    return (f"{records / series.median:>10,.0f} rec/s ({rates[0]:,.0f}-{rates[-1]:,.0f}); "
            f"{series.span()}")


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--peer-records", type=int, default=3_000)
    args = parser.parse_args()
    with workdir("evtx", args.keep) as folder:
        big, small = folder / "mixed.evtx", folder / "mixed-small.evtx"
        begin = time.perf_counter()
        write_evtx(big, mixed_events(args.records))
        write_s = time.perf_counter() - begin
        write_evtx(small, mixed_events(args.peer_records))
        size_mb = big.stat().st_size / 1e6
        select = hunt_selection()
        series = alternate(args.runs, {
            "exhunt": lambda: time_exhunt(big, select, "exhunt"),
            "every": lambda: time_exhunt(big, None, "every"),
            "rust1": lambda: time_rust(big, 1),
            "rustN": lambda: time_rust(big, 0),
        })
        n_py, t_py = time_python_evtx(small)
    if len(set(COUNTS.values())) != 1:
        sys.exit(f"the readers disagree on the record count: {COUNTS}")
    ex, one, every = series["exhunt"], series["rust1"], series["rustN"]
    whole = series["every"]
    n = args.records
    body = (f"{n:,} records ({size_mb:.1f} MB), {args.runs} alternated runs, median (min-max)\n"
            f"exhunt read_events, a hunt's selection ({MAPPED['exhunt']:,} of {n:,} decoded):\n"
            f"                              {rate(ex, n)}\n"
            f"exhunt read_events, every event decoded:\n"
            f"                              {rate(whole, n)}\n"
            f"Rust evtx, 1 thread (bare)  : {rate(one, n)}\n"
            f"Rust evtx, all cores (bare) : {rate(every, n)}\n"
            f"python-evtx (peer)          : {n_py / t_py:>10,.0f} rec/s on {n_py:,} records\n"
            f"exhunt / bare Rust, 1 thread: {ratio_span(one, ex)} of its rate\n"
            f"exhunt / bare Rust, all     : {ratio_span(every, ex)} of its rate\n"
            f"every event / bare Rust, 1 thread: {ratio_span(one, whole)} of its rate\n"
            f"in CPU time, exhunt / bare Rust 1 thread: {cpu_ratio('rust1', 'exhunt')}\n"
            f"in CPU time, every event / bare Rust    : {cpu_ratio('rust1', 'every')}\n"
            f"exhunt / python-evtx        : {n / ex.median / (n_py / t_py):,.0f}x\n"
            f"writer: {n:,} records in {write_s:.2f} s = {n / write_s:,.0f} rec/s\n")
    record(args, "EVTX reading: exhunt vs the bare Rust parser and python-evtx", body)


if __name__ == "__main__":
    main()
