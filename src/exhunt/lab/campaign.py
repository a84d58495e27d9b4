"""A synthetic ProxyLogon notification campaign: N exposed Exchange servers in organisations
with sectors, patched over D days along the March 2021 curve, some with web shells; written
as Shadowserver-style daily scan_exchange CSVs, a contacts list, and (optionally) every
server's daily state as Parquet observations. For tests, the demo and benchmarks; addresses
come from 10.0.0.0/8 so nothing real is ever named.
"""

from __future__ import annotations

import csv
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa

from exhunt.store.lake import ObservationLake

# Share of the servers vulnerable at patch release still unpatched on day N (day 0 = 2021-03-02).
# source: Microsoft/RiskIQ figures as quoted by securityaffairs.com/115896 (2021-03-24): "nearly
# 400,000" (Mar 2), "a bit
# more than 100,000" (Mar 9), "about 82,000" (Mar 14), ~30,000 / "92% patched or mitigated"
# (Mar 22, MSRC); DIVD's long tail of never-patchers (~15% of its initial count, flat into May) is
# modelled as a 5% floor of this population by day 30.
UPTAKE_ANCHORS: tuple[tuple[float, float], ...] = (
    (0, 1.0), (7, 100_000 / 400_000), (12, 82_000 / 400_000), (20, 30_000 / 400_000),
    (30, 0.05),
)
NEVER_PATCHED = 0.04
# Share with a web shell: 5,818 IPs with shells (Shadowserver/KryptosLogic, Mar 12) of
# ~400,000 exposed. source: Shadowserver blog "Special Reports - Exchange Scanning #2" (2021).
WEBSHELL_SHARE = 5_818 / 400_000
START = datetime(2021, 3, 2)
# (NAICS, sector, weight): exhunt's lab mix, leaning to the victims named in 2021 reporting.
SECTORS: tuple[tuple[str, str, float], ...] = (
    ("522130", "credit union", 0.06), ("921190", "local and general government", 0.12),
    ("611110", "school", 0.08), ("622110", "hospital", 0.04), ("332710", "manufacturing", 0.16),
    ("452210", "retail", 0.08), ("541110", "legal services", 0.06), ("", "", 0.40),
)
BUILDS = ("15.0.1497", "15.1.2176", "15.1.2106", "15.2.721", "15.2.792", "14.3.498")
COLUMNS = ("timestamp", "severity", "ip", "protocol", "port", "hostname", "tag", "asn", "geo",
           "region", "city", "naics", "hostname_source", "sector", "version", "servername", "url")


def remaining(day: float) -> float:
    """Share still vulnerable on `day`, log-linear between the anchors."""
    for (d0, r0), (d1, r1) in itertools.pairwise(UPTAKE_ANCHORS):
        if d0 <= day <= d1:
            t = (day - d0) / (d1 - d0)
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
    return UPTAKE_ANCHORS[-1][1]


@dataclass(slots=True)
class Server:
    ip: str
    org: int
    naics: str
    build: str
    patch_day: int | None  # first day seen patched; None = never in the window
    shell_from: int | None  # first day a web shell is visible from outside
    shell_until: int | None  # first day it is gone (None = stays)


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    servers: int
    organisations: int
    days: int
    csv_rows: int
    observations: int
    webshells: int


def patch_day(u: float, days: int) -> int | None:
    """The first day on which a server drawn at quantile u is patched."""
    if u < NEVER_PATCHED:
        return None
    for day in range(1, days):
        if u >= remaining(day):
            return day
    return None


def make_servers(count: int, days: int, rng: random.Random) -> tuple[list[Server], int]:
    servers: list[Server] = []
    org = 0
    weights = [w for _, _, w in SECTORS]
    while len(servers) < count:
        naics = rng.choices(SECTORS, weights)[0][0]
        size = min(rng.choice((1, 1, 1, 1, 2, 2, 3)), count - len(servers))
        base = org * 16  # one /28 per organisation inside 10.0.0.0/8
        for k in range(size):
            value = base + 1 + k
            ip = f"10.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
            patched = patch_day(rng.random(), days)
            shell_from = shell_until = None
            if rng.random() < WEBSHELL_SHARE:
                shell_from = rng.randint(3, 8)  # shells scanned for from ~Mar 5-10
                if patched is not None and rng.random() < 0.6:
                    shell_until = min(days, max(shell_from + 1, patched + rng.randint(2, 15)))
            servers.append(Server(ip, org, naics, rng.choice(BUILDS), patched, shell_from,
                                  shell_until))
        org += 1
    return servers, org


def state_on(server: Server, day: int) -> str:
    if server.shell_from is not None and server.shell_from <= day and (
            server.shell_until is None or day < server.shell_until):
        return "backdoor"
    if server.patch_day is not None and day >= server.patch_day:
        return "patched"
    return "vulnerable"


def write_contacts(path: Path, organisations: int, servers: list[Server]) -> None:
    naics_of = {s.org: s.naics for s in servers}
    sector_of = {code: name for code, name, _ in SECTORS}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["network", "org", "country", "sector", "email"])
        for org in range(organisations):
            base = org * 16
            net = f"10.{base >> 16 & 255}.{base >> 8 & 255}.{base & 255}/28"
            sector = sector_of.get(naics_of.get(org, ""), "")
            writer.writerow([net, f"Lab organisation {org}", "US", sector,
                             f"it@org{org}.lab.example"])


def _csv_row(server: Server, day: int, moment: datetime, tag: str) -> list[str]:
    name = f"mail{server.ip.replace('.', '-')}.org{server.org}.lab.example"
    url = f"https://{name}/aspnet_client/system_web/x.aspx" if "webshell" in tag else ""
    return [moment.strftime("%Y-%m-%d %H:%M:%S"), "critical", server.ip, "tcp", "443", name,
            tag, "64512", "US", "", "", server.naics, "ptr", "", server.build,
            f"EXCH{server.org % 1000:03d}", url]


def write_campaign(
    folder: Path, *, servers: int = 400_000, days: int = 30, seed: int = 2021,
    parquet: bool = True, csvs: bool = True, progress: Callable[[int], None] | None = None,
    partial_day: int | None = None, partial_share: float = 0.3,
) -> CampaignSummary:
    """`partial_day`: that day's report is a partial scan, listing only about
    `partial_share` of the servers it should (the Parquet observations stay whole: they
    are the truth the reports are measured against)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    fleet, organisations = make_servers(servers, days, rng)
    write_contacts(folder / "contacts.csv", organisations, fleet)
    lake = ObservationLake(folder / "observations") if parquet else None
    csv_rows = observations = 0
    for day in range(days):
        date = START + timedelta(days=day)
        ips: list[str] = []
        states: list[str] = []
        rows: list[list[str]] = []
        for index, server in enumerate(fleet):
            state = state_on(server, day)
            scanned = day != partial_day or (index * 7919) % 1000 < partial_share * 1000
            if csvs and state != "patched" and scanned:
                moment = date + timedelta(seconds=index * 86_000 // len(fleet))
                tag = ("exchange;webshell" if state == "backdoor"
                       else "exchange;cve-2021-26855;cve-2021-27065")
                rows.append(_csv_row(server, day, moment, tag))
            if lake is not None:
                ips.append(server.ip)
                states.append(state)
        if csvs:
            with (folder / f"{date:%Y-%m-%d}-scan_exchange.csv").open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(COLUMNS)
                writer.writerows(rows)
            csv_rows += len(rows)
        if lake is not None:
            times = pa.array([date] * len(ips), pa.timestamp("s"))
            table = pa.table([pa.array(ips, pa.string()), times,
                              pa.array(states).dictionary_encode(),
                              pa.array(["lab"] * len(ips)).dictionary_encode()],
                             names=["ip", "seen_at", "state", "source"])
            lake.write_table(f"lab-{date:%Y-%m-%d}", table)
            observations += len(ips)
        if progress:
            progress(day + 1)
    webshells = sum(1 for s in fleet if s.shell_from is not None)
    return CampaignSummary(len(fleet), organisations, days, csv_rows, observations, webshells)
