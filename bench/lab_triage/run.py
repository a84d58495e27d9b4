"""Benchmark: synthetic triage copy generation (`exhunt lab triage`) against two peers.

Peers, measured in the same run, in alternation (bench/harness.py), writing the same size:
- naive: the textbook way to write the same HttpProxy lines, one csv.writer row per request
  with uuid.uuid4() and datetime.isoformat() per line (what one writes without templates);
- disk: raw writes of the same number of bytes in 4 MiB blocks (the upper bound).

Every tool runs as its own process (GNU time gives its peak RSS) and writes under one
temporary folder that is removed at the end.

Usage: python bench/lab_triage/run.py [--size 1GB] [--traffic busy] [--runs 3] [--append]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

import harness

from exhunt.lab import catalog
from exhunt.lab.units import parse_size

ENV_SRC = str(Path(__file__).resolve().parents[2] / "src")


def naive_httpproxy(path: Path, size: int) -> int:
    """Write HttpProxy-shaped rows the straightforward way until `size` bytes."""
    rng = random.Random(0)
    t = datetime(2021, 2, 20, tzinfo=UTC)
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        fh.write("#Fields: " + ",".join(catalog.HTTPPROXY_FIELDS) + "\r\n")
        while fh.tell() < size:
            t += timedelta(milliseconds=rng.randint(1, 400))
            row = {name: "" for name in catalog.HTTPPROXY_FIELDS}
            row.update({
                "DateTime": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "RequestId": str(uuid.uuid4()), "MajorVersion": "15", "MinorVersion": "1",
                "BuildVersion": "2176", "RevisionVersion": "2", "Protocol": "Mapi",
                "UrlHost": "mail.example.org", "UrlStem": "/mapi/emsmdb/",
                "AuthenticationType": "Negotiate", "IsAuthenticated": "true",
                "AuthenticatedUser": f"user{rng.randint(1, 400)}@example.org",
                "UserAgent": rng.choice(catalog.OUTLOOK_UAS).replace(",", " "),
                "ClientIpAddress": f"10.1.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                "ServerHostName": "EXCH01", "HttpStatus": "200", "BackEndStatus": "200",
                "Method": "POST", "ProxyAction": "Proxy",
                "TotalRequestTime": str(rng.randint(5, 900)),
                "GenericInfo": f"BeginRequest={t.isoformat()};CorrelationID=<empty>;"
                               f"EndRequest={t.isoformat()}",
            })
            w.writerow(row.values())
    return path.stat().st_size


def raw_disk(path: Path, size: int) -> int:
    block = os.urandom(4 << 20)
    with open(path, "wb") as fh:
        left = size
        while left > 0:
            fh.write(block[: min(left, len(block))])
            left -= len(block)
        fh.flush()
        os.fsync(fh.fileno())
    return path.stat().st_size


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def main() -> None:
    parser = harness.arguments(__doc__)
    parser.add_argument("--size", default="1GB")
    parser.add_argument("--traffic", default="busy", choices=("busy", "quiet"))
    parser.add_argument("--peer", choices=("naive", "disk"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = parse_size(args.size)
    if args.peer:  # one peer's run, as its own process
        (naive_httpproxy if args.peer == "naive" else raw_disk)(args.out, size)
        return
    env_python = [sys.executable]
    os.environ["PYTHONPATH"] = ENV_SRC + os.pathsep + os.environ.get("PYTHONPATH", "")
    written: dict[str, list[int]] = {"exhunt": [], "naive": [], "disk": []}
    peaks: dict[str, list[float]] = {name: [] for name in written}
    with harness.workdir("lab-triage", args.keep) as work:
        def tool(name: str, cmd: Callable[[Path], list[str]]) -> Callable[[], float]:
            def once() -> float:
                out = work / name
                run = harness.run_command(cmd(out))
                written[name].append(folder_bytes(out) if out.is_dir() else out.stat().st_size)
                peaks[name].append(run.peak_rss_mb)
                remove(out)
                return written[name][-1] / run.seconds / 1e6
            return once

        me = [*env_python, __file__, "--size", args.size]
        rates = harness.alternate(args.runs, {
            "exhunt": tool("exhunt", lambda out: [
                *env_python, "-m", "exhunt.cli", "lab", "triage", str(out), "--scenario",
                "reentered", "--size", args.size, "--seed", "1", "--traffic", args.traffic,
                "--quiet"]),
            "naive": tool("naive", lambda out: [*me, "--peer", "naive", "--out", str(out)]),
            "disk": tool("disk", lambda out: [*me, "--peer", "disk", "--out", str(out)]),
        })
    lines = [f"size {args.size} each ({args.traffic} traffic for exhunt), {args.runs} runs, "
             "alternating; MB/s written, median (min-max); peak RSS of the command"]
    for name, series in rates.items():
        lines.append(f"{name:7}: {series.span('MB/s', 1)}, "
                     f"{sum(written[name]) / len(written[name]) / 1e6:,.0f} MB, "
                     f"peak RSS {max(peaks[name]):,.0f} MB")
    lines.append(f"ratio exhunt/naive: {harness.ratio_span(rates['exhunt'], rates['naive'])}; "
                 f"exhunt/disk: {harness.ratio_span(rates['exhunt'], rates['disk'])}")
    harness.record(args, "Lab triage copy generation: exhunt lab triage vs naive writer and "
                   "raw disk writes", "\n".join(lines))


if __name__ == "__main__":
    main()
