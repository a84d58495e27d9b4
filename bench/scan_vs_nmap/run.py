"""Benchmark: `exhunt scan` against nmap's http-headers script over the same lab hosts.

    .venv/bin/python bench/scan_vs_nmap/run.py [--hosts 2000] [--append]

Starts a lab fleet of HOSTS simulated OWA front ends, one per loopback address
(127.20.x.y), all on one port (443 with TLS when it can be bound, else a high HTTP port),
in the exposure modes header / logon page / export tool / not Exchange. Then runs, one after
the other, over the same host list:

- exhunt:  the scan CLI in a subprocess (default options), JSONL to a file;
- nmap:    nmap -n -Pn -p PORT --script http-headers --script-args http-headers.path=/owa/
           -oX FILE -iL hosts.txt   (Debian's nmap; `apt-get install -y nmap` if missing).

It reports hosts/s of each, the ratio, builds read correctly (against what each lab host
really shows), and the scanner's peak RSS. With --append it adds a section to BENCHMARKS.md.
Only loopback is ever contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from exhunt.lab.fleet import WELL_BEHAVED, Fleet, FleetHost

ROOT = Path(__file__).resolve().parents[2]

DRIVER = (
    "import sys, typer\n"
    "from exhunt.scan.cli import register\n"
    "app = typer.Typer(); lab = typer.Typer(); app.add_typer(lab, name='lab')\n"
    "register(app, lab)\n"
    "sys.argv[0] = 'exhunt'\n"
    "app()\n"
)


def pick_port(first: str) -> tuple[int, str]:
    """443 over TLS when bindable on the lab addresses, else a free high port over HTTP."""
    for port, scheme in ((443, "https"), (18080, "http"), (28080, "http")):
        try:
            with socket.socket() as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((first, port))
            return port, scheme
        except OSError:
            continue
    raise SystemExit("no usable port on the lab addresses")


class FleetThread:
    """The fleet serves from its own thread and loop while the scanners run as processes."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def __enter__(self) -> list[FleetHost]:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self.fleet.__aenter__(), self.loop).result(600)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.fleet.close(), self.loop).result(600)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(60)


def run_exhunt(
    hosts: list[FleetHost], port: int, work: Path
) -> tuple[float, dict[str, dict[str, object]], int]:
    targets = work / "targets.txt"
    targets.write_text("".join(f"{h.host}\n" for h in hosts))
    out = work / "exhunt.jsonl"
    cmd = [sys.executable, "-c", DRIVER, "scan", f"@{targets}", "-p", str(port), "-o", str(out),
           "--quiet", "--concurrency", "256", "--timeout", "30", "--read-timeout", "20"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"exhunt scan failed: {proc.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        results[rec["target"]] = rec
    return elapsed, results, peak_kb


def run_nmap(hosts: list[FleetHost], port: int, work: Path) -> tuple[float, dict[str, str | None]]:
    nmap = shutil.which("nmap")
    if nmap is None:
        raise SystemExit("nmap is not installed: run `apt-get install -y nmap` (Debian) first")
    targets = work / "nmap-targets.txt"
    targets.write_text("".join(f"{h.host}\n" for h in hosts))
    xml_out = work / "nmap.xml"
    cmd = [nmap, "-n", "-Pn", "-p", str(port), "--script", "http-headers",
           "--script-args", "http-headers.path=/owa/", "-oX", str(xml_out), "-iL", str(targets)]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"nmap failed: {proc.stderr[-2000:]}")
    found: dict[str, str | None] = {}
    header = re.compile(r"x-owa-version:\s*([\d.]+)", re.IGNORECASE)
    for host in ET.parse(xml_out).getroot().iter("host"):
        addr = host.find("address")
        if addr is None:
            continue
        build = None
        for script in host.iter("script"):
            m = header.search(script.get("output", ""))
            if m:
                build = m.group(1)
        found[addr.get("addr", "")] = build
    return elapsed, found


def score_exhunt(hosts: list[FleetHost], results: dict[str, dict[str, object]]) -> Counter[str]:
    c: Counter[str] = Counter()
    for h in hosts:
        r = results.get(h.host)
        ok = r is not None and r.get("build") == h.expected
        if ok and h.mode == "not-exchange":
            ok = r is not None and r.get("exchange") is False
        c["right" if ok else "wrong"] += 1
        c[f"{h.mode}:{'right' if ok else 'wrong'}"] += 1
    return c


def score_nmap(hosts: list[FleetHost], found: dict[str, str | None]) -> Counter[str]:
    c: Counter[str] = Counter()
    for h in hosts:
        ok = found.get(h.host) == h.expected
        c["right" if ok else "wrong"] += 1
        c[f"{h.mode}:{'right' if ok else 'wrong'}"] += 1
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--hosts", type=int, default=2000)
    ap.add_argument("--append", action="store_true", help="append the result to BENCHMARKS.md")
    args = ap.parse_args()

    first = "127.20.0.1"
    port, scheme = pick_port(first)
    fleet = Fleet(
        args.hosts, modes=WELL_BEHAVED, per_address=1, first_address=first,
        https_share=1.0 if scheme == "https" else 0.0, port=port, seed=11,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="exhunt-bench-") as tmp, FleetThread(fleet) as hosts:
        work = Path(tmp)
        print(
            f"fleet: {len(hosts)} hosts on port {port} ({scheme}), modes {', '.join(WELL_BEHAVED)}"
        )
        ex_time, ex_results, ex_rss = run_exhunt(hosts, port, work)
        ex_score = score_exhunt(hosts, ex_results)
        print(f"exhunt: {ex_time:.1f} s, {len(hosts) / ex_time:.1f} hosts/s, "
              f"builds right {ex_score['right']}/{len(hosts)}, peak RSS {ex_rss / 1024:.0f} MiB")  # fmt: skip
        nm_time, nm_found = run_nmap(hosts, port, work)
        nm_score = score_nmap(hosts, nm_found)
        print(f"nmap:   {nm_time:.1f} s, {len(hosts) / nm_time:.1f} hosts/s, "
              f"builds right {nm_score['right']}/{len(hosts)}")  # fmt: skip
        header_hosts = sum(1 for h in hosts if h.mode == "header")
        ratio = nm_time / ex_time
        print(f"ratio (exhunt hosts/s / nmap hosts/s): {ratio:.1f}x")
        modes = Counter(h.mode for h in hosts)
    if args.append:
        nmap_ver = subprocess.run(["nmap", "--version"], capture_output=True, text=True).stdout
        nmap_ver = nmap_ver.splitlines()[0] if nmap_ver else "nmap"
        section = f"""
## scan_vs_nmap — `exhunt scan` vs nmap http-headers ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)

Command: `.venv/bin/python bench/scan_vs_nmap/run.py --hosts {args.hosts} --append`

- Lab fleet: {len(hosts)} simulated OWA hosts, one per loopback address (127.20.x.y), port {port}
  ({scheme}); modes {dict(modes)}.
- Peer: `{nmap_ver}`: `nmap -n -Pn -p {port} --script http-headers --script-args
  http-headers.path=/owa/ -iL hosts.txt -oX` (default timing).
- exhunt: `exhunt scan @hosts.txt -p {port} --concurrency 256 --quiet -o out.jsonl` (subprocess).

| tool | wall s | hosts/s | builds right | peak RSS |
|---|---|---|---|---|
| exhunt scan | {ex_time:.1f} | {len(hosts) / ex_time:.1f} | {ex_score["right"]}/{len(hosts)} | {ex_rss / 1024:.0f} MiB |
| nmap http-headers | {nm_time:.1f} | {len(hosts) / nm_time:.1f} | {nm_score["right"]}/{len(hosts)} (header mode only: {header_hosts} hosts can be read by it) | — |

Ratio: **{ratio:.1f}x** nmap's hosts/s. "Builds right" = the reported build equals what the
host shows (4-part from header/export tool, CU from the logon page, none for not-Exchange).
Machine: {platform.machine()}, {os.cpu_count()} cores shared with other agents, fleet served
from the same process as the benchmark driver (both tools face the same server load).
"""
        with (ROOT / "BENCHMARKS.md").open("a", encoding="utf-8") as fh:
            fh.write(section)
        print("appended to BENCHMARKS.md")


if __name__ == "__main__":
    main()
