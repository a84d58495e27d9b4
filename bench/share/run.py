"""What sharing costs: a hunt with a large imported STIX bundle, and each exchange writer.

One command: `.venv/bin/python bench/share/run.py [--size 200MB] [--indicators 20000] [--runs 3]`

1. The same lab triage copy hunted without `--iocs` (the peer) and with a STIX 2.1 bundle of
   `--indicators` addresses, user agents and URL paths (synthetic, in 198.18.0.0/15, plus the
   copy's own attackers so that there is something to match): the price of `ioc.request`.
2. One hunt report written as exhunt's own JSON (the peer) and as STIX, MISP, Timesketch JSONL
   and CSV, and ECS, in this process: medians of `--runs`.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(os.environ.get("EXHUNT_BENCH_CACHE") or Path.home() / ".cache" / "exhunt-bench")
EXHUNT = [sys.executable, "-m", "exhunt.cli"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="200MB")
    parser.add_argument("--indicators", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    copy = build_copy(args.size)
    from exhunt.hunt.engine import hunt
    from exhunt.share.stix import stix_text

    report = hunt(str(copy))
    bundle = OUT / f"share-{args.indicators}.stix.json"
    bundle.write_text(big_bundle(stix_text([report]), args.indicators), "utf-8")
    plain = [timed([*EXHUNT, "hunt", str(copy), "-f", "json", "-q"]) for _ in range(args.runs)]
    with_iocs = [timed([*EXHUNT, "hunt", str(copy), "-f", "json", "-q", "--iocs", str(bundle)])
                 for _ in range(args.runs)]
    print(f"copy: {copy}; bundle: {args.indicators:,} synthetic indicators + the copy's own")
    print(f"hunt, no --iocs (peer) : {line(plain)}")
    print(f"hunt, --iocs bundle    : {line(with_iocs)}  "
          f"ratio {statistics.median(with_iocs) / statistics.median(plain):.2f}x")
    writers(report, args.runs)


def writers(report: object, runs: int) -> None:
    from exhunt.hunt.report import report_json
    from exhunt.share.options import ShareOptions
    from exhunt.share.writers import WRITERS

    options = ShareOptions()
    peer = [clock(lambda: json.dumps(report_json(report), indent=2)) for _ in range(runs)]  # type: ignore[arg-type]
    findings = len(report.findings)  # type: ignore[attr-defined]
    print(f"writers, one report of {findings} findings:")
    print(f"  json (peer)    : {line(peer, 'ms')}")
    for name, write in WRITERS.items():
        times = [clock(lambda w=write: w([report], options)) for _ in range(runs)]  # type: ignore[misc]
        print(f"  {name:<14} : {line(times, 'ms')}  "
              f"ratio {statistics.median(times) / statistics.median(peer):.1f}x")


def big_bundle(own: str, count: int) -> str:
    data = json.loads(own)
    base = int(ipaddress.ip_address("198.18.0.0"))
    for i in range(count):
        kind = i % 10
        if kind < 8:
            pattern = f"[ipv4-addr:value = '{ipaddress.ip_address(base + i)}']"
        elif kind == 8:
            pattern = ("[network-traffic:extensions.'http-request-ext'.request_header."
                       f"'User-Agent' = 'BenchAgent/{i}']")
        else:
            pattern = ("[network-traffic:extensions.'http-request-ext'.request_value = "
                       f"'/owa/auth/bench{i}.aspx']")
        data["objects"].append({"type": "indicator", "spec_version": "2.1",
                                "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
                                "created": "2021-03-05T00:00:00Z",
                                "modified": "2021-03-05T00:00:00Z", "pattern": pattern,
                                "pattern_type": "stix", "valid_from": "2021-03-05T00:00:00Z"})
    return json.dumps(data)


def build_copy(size: str) -> Path:
    copy = OUT / f"triage-reentered-{size}"
    if not (copy.parent / (copy.name + ".truth.json")).exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([*EXHUNT, "lab", "triage", str(copy), "--scenario", "reentered", "--size", size, "--seed", "7", "--quiet"], check=True)
    return copy


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def clock(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def line(times: list[float], unit: str = "s") -> str:
    scale = 1000 if unit == "ms" else 1
    low, mid, high = min(times) * scale, statistics.median(times) * scale, max(times) * scale
    return f"median {mid:,.1f} {unit} (range {low:,.1f}-{high:,.1f})"


if __name__ == "__main__":
    main()
