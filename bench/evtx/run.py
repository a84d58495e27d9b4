"""Benchmark: exhunt's event-log reader (Rust `evtx` inside) against python-evtx.

One command: `.venv/bin/python bench/evtx/run.py` (options: --records, --peer-records,
--no-append, --quiet). It writes a mixed Application / MSExchange Management EVTX file with
exhunt's lab writer, times exhunt's `read_events` over every record, times python-evtx
(pure Python, ~500 rec/s, so on a smaller file written the same way), prints both rates and
their ratio, and appends the result to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.readers.base import ReadStats
from exhunt.readers.events import read_events

REPO = Path(__file__).resolve().parents[2]
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


def time_exhunt(path: Path) -> tuple[int, float]:
    stats = ReadStats(str(path))
    begin = time.perf_counter()
    with path.open("rb") as handle:
        count = sum(1 for _ in read_events(handle, str(path), stats, local_path=path))
    elapsed = time.perf_counter() - begin
    if stats.problems:
        raise SystemExit(f"exhunt reader reported problems: {stats.problems[:3]}")
    return count, elapsed


def time_rust_only(path: Path) -> tuple[int, float]:
    from evtx import PyEvtxParser

    begin = time.perf_counter()
    count = sum(1 for _ in PyEvtxParser(str(path), number_of_threads=1).records_json())
    return count, time.perf_counter() - begin


def time_python_evtx(path: Path) -> tuple[int, float]:
    from Evtx.Evtx import Evtx

    begin = time.perf_counter()
    count = 0
    with Evtx(str(path)) as log:
        for record in log.records():
            record.xml()
            count += 1
    return count, time.perf_counter() - begin


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--peer-records", type=int, default=3_000)
    parser.add_argument("--no-append", action="store_true", help="do not write BENCHMARKS.md")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()

    def say(text: str) -> None:
        if not args.quiet:
            print(text, flush=True)

    with tempfile.TemporaryDirectory(prefix="exhunt-bench-evtx-") as folder:
        big = Path(folder) / "mixed.evtx"
        small = Path(folder) / "mixed-small.evtx"
        say(f"writing {args.records:,} records with exhunt.lab.evtx_writer ...")
        begin = time.perf_counter()
        write_evtx(big, mixed_events(args.records))
        write_s = time.perf_counter() - begin
        write_evtx(small, mixed_events(args.peer_records))
        size_mb = big.stat().st_size / 1e6
        say(f"  {size_mb:.1f} MB in {write_s:.2f} s ({args.records / write_s:,.0f} rec/s)")

        say("reading with exhunt read_events (Rust evtx + field mapping) ...")
        n_ex, t_ex = time_exhunt(big)
        say("reading with the Rust evtx parser alone (records_json, no mapping) ...")
        n_rs, t_rs = time_rust_only(big)
        say(f"reading {args.peer_records:,} records with python-evtx (record.xml()) ...")
        n_py, t_py = time_python_evtx(small)

    rate_ex, rate_rs, rate_py = n_ex / t_ex, n_rs / t_rs, n_py / t_py
    lines = [
        f"exhunt read_events : {n_ex:>9,} records in {t_ex:7.2f} s = {rate_ex:>11,.0f} rec/s",
        f"evtx alone (Rust)  : {n_rs:>9,} records in {t_rs:7.2f} s = {rate_rs:>11,.0f} rec/s",
        f"python-evtx (peer) : {n_py:>9,} records in {t_py:7.2f} s = {rate_py:>11,.0f} rec/s",
        f"ratio exhunt / python-evtx = {rate_ex / rate_py:,.0f}x",
        f"writer: {args.records:,} records, {size_mb:.1f} MB in {write_s:.2f} s "
        f"= {args.records / write_s:,.0f} rec/s",
    ]
    print("\n".join(lines))
    if args.no_append:
        return
    machine = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"Python {platform.python_version()}"
    )
    command = ".venv/bin/python bench/evtx/run.py" + "".join(
        f" {a}" for a in sys.argv[1:] if a != "--quiet"
    )
    section = (
        f"\n## EVTX reading: exhunt read_events vs python-evtx\n\n"
        f"- command: `{command}`\n"
        f"- date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}\n"
        f"- machine: {machine}\n"
        f"- input: {args.records:,} mixed Application / MSExchange Management / Security "
        f"records written by exhunt.lab.evtx_writer ({size_mb:.1f} MB); python-evtx timed on "
        f"{args.peer_records:,} records of the same mix\n\n"
        "```\n" + "\n".join(lines) + "\n```\n"
    )
    with (REPO / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
        out.write(section)
    say("appended to BENCHMARKS.md")


if __name__ == "__main__":
    main()
