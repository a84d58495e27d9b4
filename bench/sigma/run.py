"""Benchmark: the event-log hunt with exhunt's Sigma rules (pySigma + SQLite) against the same
hunt without them (the Python checks alone), in the same run.

One command: `.venv/bin/python bench/sigma/run.py` (options: --events, --repeat, --no-append).
It writes one Sysmon and one Security EVTX with exhunt's lab writer (process creation, process
access, file creation, 4688, 4698, 4732; a few attacks among routine events), hunts the copy
`--repeat` times each way, and prints medians with ranges; the result goes to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exhunt.checks import sigma
from exhunt.hunt.engine import hunt
from exhunt.lab import event_layouts as ev
from exhunt.lab.evtx_writer import EventSpec, write_evtx

REPO = Path(__file__).resolve().parents[2]
START = datetime(2021, 3, 1, tzinfo=UTC)
SYS32 = "C:\\Windows\\System32\\"


def sysmon(n: int) -> Iterator[EventSpec]:
    for i in range(n):
        when = START + timedelta(seconds=i)
        kind = i % 4
        if i % 5000 == 4999:
            yield ev.sysmon_process_access(when, "C:\\Users\\x\\m.exe", SYS32 + "lsass.exe",
                                           "0x1010")
        elif kind == 0:
            yield ev.sysmon_process(when, SYS32 + "svchost.exe", "svchost.exe -k netsvcs",
                                    SYS32 + "services.exe")
        elif kind == 1:
            yield ev.sysmon_process_access(when, SYS32 + "csrss.exe", SYS32 + "lsass.exe",
                                           "0x1000")
        elif kind == 2:
            yield ev.sysmon_file_create(when, SYS32 + "svchost.exe",
                                        f"C:\\Windows\\Temp\\log{i}.txt")
        else:
            yield ev.sysmon_process(when, SYS32 + "conhost.exe", "conhost.exe 0xffffffff",
                                    SYS32 + "cmd.exe")


def security(n: int) -> Iterator[EventSpec]:
    for i in range(n):
        when = START + timedelta(seconds=i)
        if i % 7000 == 6999:
            yield ev.member_added(when, "S-1-5-21-1-2-3-501")
        elif i % 3:
            yield ev.security_process(when, SYS32 + "taskhostw.exe", "taskhostw.exe",
                                      SYS32 + "svchost.exe")
        else:
            yield ev.task_created(when, f"\\Maint{i}", SYS32 + "defrag.exe", "-c")


def timed(copy: Path, with_sigma: bool) -> tuple[float, int]:
    saved = sigma.SigmaEvents.feed
    if not with_sigma:
        sigma.SigmaEvents.feed = lambda self, record: ()  # type: ignore[method-assign]
    try:
        begin = time.perf_counter()
        report = hunt(str(copy), workers=1)
        return time.perf_counter() - begin, len(report.findings)
    finally:
        sigma.SigmaEvents.feed = saved  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events per log")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-append", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "copy/C/Windows/System32/winevt/Logs"
        logs.mkdir(parents=True)
        write_evtx(logs / "Microsoft-Windows-Sysmon%4Operational.evtx", sysmon(args.events))
        write_evtx(logs / "Security.evtx", security(args.events))
        size = sum(p.stat().st_size for p in logs.iterdir())
        runs: dict[bool, list[float]] = {True: [], False: []}
        found: dict[bool, int] = {}
        for _ in range(args.repeat):
            for flag in (False, True):
                seconds, found[flag] = timed(logs.parents[4], flag)
                runs[flag].append(seconds)
    events = 2 * args.events
    lines = [f"input: {events:,} events in two EVTX files ({size / 1e6:.1f} MB), "
             f"{args.repeat} runs each, workers=1"]
    for flag, label in ((False, "Python checks only (peer)"), (True, "with exhunt's Sigma rules")):
        times = runs[flag]
        median = statistics.median(times)
        lines.append(f"{label:<28}: median {median:.2f} s (range {min(times):.2f}-"
                     f"{max(times):.2f}) = {events / median:,.0f} events/s, {found[flag]} findings")
    ratio = statistics.median(runs[True]) / statistics.median(runs[False])
    lines.append(f"cost of the Sigma stage: {ratio:.2f}x the hunt without it")
    print("\n".join(lines))
    if args.no_append:
        return
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with (REPO / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
        out.write(f"\n## sigma: event-log hunt with and without exhunt's Sigma rules (issue 15)\n\n"
                  f"- command: `.venv/bin/python bench/sigma/run.py --events {args.events}`\n"
                  f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
                  f"{os.cpu_count()} cores, load average {load:.1f}\n\n```\n"
                  + "\n".join(lines) + "\n```\n")


if __name__ == "__main__":
    main()
