"""Benchmark: synthetic triage copy generation (exhunt.lab.triage) against two peers.

Peers, measured in the same run:
- naive: the textbook way to write the same HttpProxy lines, one csv.writer row per request
  with uuid.uuid4() and datetime.isoformat() per line (what one writes without templates);
- disk: raw writes of the same number of bytes in 4 MiB blocks (the upper bound).

Usage: .venv/bin/python bench/lab_triage/run.py [--size 2GB] [--peer-size 200MB]
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from exhunt.lab import catalog
from exhunt.lab.triage import Scenario, TriageSpec, build_triage
from exhunt.lab.units import parse_size


def naive_httpproxy(path: Path, size: int) -> int:
    """Write HttpProxy-shaped rows the straightforward way until `size` bytes."""
    rng = random.Random(0)
    t = datetime(2021, 2, 20, tzinfo=UTC)
    written = 0
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        fh.write("#Fields: " + ",".join(catalog.HTTPPROXY_FIELDS) + "\r\n")
        while written < size:
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
                "Method": "POST", "ProxyAction": "Proxy", "TotalRequestTime": str(rng.randint(5, 900)),
                "GenericInfo": f"BeginRequest={t.isoformat()};CorrelationID=<empty>;"
                               f"EndRequest={t.isoformat()}",
            })
            w.writerow(row.values())
            written += 600  # close to the real row length; re-measured below
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


def timed(fn, *args):  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="2GB")
    ap.add_argument("--peer-size", default="200MB")
    args = ap.parse_args()
    size, peer_size = parse_size(args.size), parse_size(args.peer_size)
    work = Path(tempfile.mkdtemp(prefix="bench-lab-"))
    try:
        truth, secs = timed(build_triage, work / "copy",
                            TriageSpec(Scenario.REENTERED, size_bytes=size, seed=1))
        ours = truth.bytes_written / secs / 1e6
        shutil.rmtree(work / "copy")
        naive_bytes, naive_secs = timed(naive_httpproxy, work / "naive.LOG", peer_size)
        naive = naive_bytes / naive_secs / 1e6
        disk_bytes, disk_secs = timed(raw_disk, work / "raw.bin", peer_size)
        disk = disk_bytes / disk_secs / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"machine: {platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}")
    print(f"exhunt build_triage : {truth.bytes_written / 1e6:9.1f} MB in {secs:7.2f} s = "
          f"{ours:7.1f} MB/s ({truth.files_written} files, scenario reentered)")
    print(f"naive csv/uuid4 peer: {naive_bytes / 1e6:9.1f} MB in {naive_secs:7.2f} s = "
          f"{naive:7.1f} MB/s (HttpProxy rows only)")
    print(f"raw disk writes     : {disk_bytes / 1e6:9.1f} MB in {disk_secs:7.2f} s = "
          f"{disk:7.1f} MB/s (upper bound)")
    print(f"ratio exhunt / naive = {ours / naive:.1f}x; exhunt / disk = {ours / disk:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
