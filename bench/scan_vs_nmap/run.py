"""Benchmark: `exhunt scan` against tuned nmap and against the physical limit, same hosts.

    .venv/bin/python bench/scan_vs_nmap/run.py [--hosts 2000 --header-hosts 400 --runs 5]

Two lab fleets of simulated OWA front ends, one per loopback address (127.20.x.y), on one
port (443 with TLS when it can be bound, else a high HTTP port):
- "header": HEADER-HOSTS hosts that all show their build in X-OWA-Version (one request each
  is enough: the test of exhunt's own overhead);
- "lab": HOSTS hosts in the exposure modes header / logon page / export tool / not Exchange.

Over each, alternated, every tool timed as a whole process:
- exhunt: `exhunt scan @hosts -p PORT --quiet -o out.jsonl` (defaults, 256 endpoints in flight);
- nmap at its best: `nmap -n -Pn -p PORT --script http-headers --script-args
  http-headers.path=/owa/ --max-parallelism 1024 --min-hostgroup 512` (Debian's nmap). It
  reads headers only: it skips the logon page and the export tool, so it cannot know the
  build of logon or export-tool hosts, and it judges nothing;
- the limit: bench/scan_vs_nmap/bare_client.py, one `GET /owa/` per host over asyncio
  streams, 256 in flight, headers only, nothing else.
Builds read right are checked against what each host shows; requests per host are counted
on the fleet's side. Only loopback is ever contacted. Peers: `bash bench/setup-peers.sh`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import Series, alternate, arguments, need, ratio_span, record, run_command, workdir

from exhunt.lab.fleet import WELL_BEHAVED, Fleet, FleetHost

HERE = Path(__file__).resolve().parent


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


def parse_nmap(xml_out: Path) -> dict[str, str | None]:
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
    return found


def parse_exhunt(out: Path) -> dict[str, dict[str, object]]:
    results = {}
    for line in out.read_text().splitlines():
        rec = json.loads(line)
        results[rec["target"]] = rec
    return results


def parse_bare(text: str) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for line in text.splitlines():
        target, _, build = line.partition(" ")
        found[target.rsplit(":", 1)[0]] = None if build == "-" else build
    return found


class Scenario:
    """One fleet, the three commands over it, and what each got right."""

    def __init__(self, name: str, fleet: Fleet, hosts: list[FleetHost], port: int, work: Path):
        self.name, self.fleet, self.hosts, self.port = name, fleet, hosts, port
        self.work = work / name
        self.work.mkdir()
        (self.work / "hosts.txt").write_text("".join(f"{h.host}\n" for h in hosts))
        (self.work / "bare.txt").write_text(
            "".join(f"{h.host}:{h.port}:{h.scheme}\n" for h in hosts))
        self.right: dict[str, Counter[str]] = {}
        self.requests: dict[str, float] = {}
        self.rss: dict[str, Series] = {}

    def _run(self, tool: str, cmd: list[str], judge: object) -> float:
        before = sum(self.fleet.hits.values())
        done = run_command(cmd)
        self.requests[tool] = (sum(self.fleet.hits.values()) - before) / len(self.hosts)
        self.right[tool] = judge(done)  # type: ignore[operator]
        self.rss.setdefault(tool, Series(tool)).values.append(done.peak_rss_mb)
        return done.seconds

    def exhunt(self) -> float:
        out = self.work / "exhunt.jsonl"
        out.unlink(missing_ok=True)  # the scan resumes an existing file
        cmd = [sys.executable, "-m", "exhunt.cli", "scan", f"@{self.work / 'hosts.txt'}",
               "-p", str(self.port), "-o", str(out), "--quiet"]
        return self._run("exhunt", cmd, lambda _: score_exhunt(self.hosts, parse_exhunt(out)))

    def nmap(self) -> float:
        xml_out = self.work / "nmap.xml"
        cmd = [need("nmap"), "-n", "-Pn", "-p", str(self.port), "--script", "http-headers",
               "--script-args", "http-headers.path=/owa/", "--max-parallelism", "1024",
               "--min-hostgroup", "512", "-oX", str(xml_out), "-iL", str(self.work / "hosts.txt")]
        return self._run("nmap", cmd, lambda _: score_nmap(self.hosts, parse_nmap(xml_out)))

    def bare(self) -> float:
        cmd = [sys.executable, str(HERE / "bare_client.py"), str(self.work / "bare.txt"), "256"]
        return self._run("bare", cmd, lambda done: score_nmap(self.hosts, parse_bare(done.stdout)))


def measure(scenario: Scenario, runs: int) -> str:
    series = alternate(runs, {"exhunt": scenario.exhunt, "nmap": scenario.nmap,
                              "bare": scenario.bare})
    n = len(scenario.hosts)
    lines = [f"{scenario.name}: {n} hosts, modes {dict(Counter(h.mode for h in scenario.hosts))}"]
    for tool, label in (("exhunt", "exhunt scan"), ("nmap", "nmap, tuned"),
                        ("bare", "bare asyncio client (limit)")):
        s = series[tool]
        lines.append(f"  {label:28}: {s.span()}, {n / s.median:7.0f} hosts/s, builds right "
                     f"{scenario.right[tool]['right']}/{n}, {scenario.requests[tool]:.2f} "
                     f"requests/host, peak RSS {scenario.rss[tool].median:.0f} MB")
    lines.append(f"  exhunt time / bare client time : {ratio_span(series['exhunt'], series['bare'])}")
    lines.append(f"  exhunt time / nmap time        : {ratio_span(series['exhunt'], series['nmap'])}")
    return "\n".join(lines)


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--header-hosts", type=int, default=400)
    args = parser.parse_args()
    need("nmap")
    first = "127.20.0.1"
    port, scheme = pick_port(first)
    https = 1.0 if scheme == "https" else 0.0
    fleets = {
        "header": Fleet(args.header_hosts, modes=("header",), per_address=1, first_address=first,
                        https_share=https, port=port, seed=7),
        "lab": Fleet(args.hosts, modes=WELL_BEHAVED, per_address=1, first_address="127.21.0.1",
                     https_share=https, port=port, seed=11),
    }
    sections = [f"port {port} ({scheme}); {args.runs} alternated runs; median (min-max)"]
    with workdir("scan", args.keep) as work:
        for name, fleet in fleets.items():
            with FleetThread(fleet) as hosts:
                sections.append(measure(Scenario(name, fleet, hosts, port, work), args.runs))
    record(args, "Scan: exhunt vs tuned nmap vs a bare asyncio client", "\n".join(sections))


if __name__ == "__main__":
    main()
