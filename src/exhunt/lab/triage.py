"""Synthetic triage copies of one Exchange server, for tests, the demo and benchmarks.

`build_triage(out, spec)` lays out the server's drive (plain, KAPE, Velociraptor or a live
Exchange folder) with weeks of benign traffic at the requested size and, depending on the
scenario, the traces of probes, a ProxyLogon exploitation, an OAB web shell and its use.
What a hunter should conclude is written to `<out>.truth.json` beside the copy, never in it.

Scenarios (each holds everything of the ones before it):
- clean: benign traffic and the false-positive traps of lookalikes.py, nothing else.
- probed: nmap-NSE probes (ServerInfo~localhost, 500), SSRF attempts that stop at
  autodiscover.xml (401/500), failed ProxyShell (autodiscover.json .../mapi/nspi, 401).
- exploited: one IP's SSRF chain autodiscover.xml 200 -> mapi/emsmdb 200 -> proxyLogon.ecp 241
  -> DDI GetObject OABVirtualDirectory 200; sometimes a UM InvalidCastException error event.
- backdoored: SetObject OABVirtualDirectory and ResetOABVirtualDirectory 200, ECP log
  Set-OabVirtualDirectory with China Chopper in ExternalUrl then $null, OAB "Download failed"
  naming the shell path, MSExchange Management event 1, and the shell file (an OAB config dump).
- reentered: POSTs to the shell answered 200 (IIS; HttpProxy too for shells under owa\\auth),
  then Windows\\Temp\\lsass.dmp and a staged archive in ProgramData.
"""

from __future__ import annotations

import json
import os
import random
import re
import zipfile
from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Literal

from exhunt.errors import UsageError
from exhunt.lab import catalog
from exhunt.lab.attacks import Scenario, scenario_plan
from exhunt.lab.evtx_writer import EventSpec, write_evtx
from exhunt.lab.formats import (
    DAY_MS,
    HOUR_MS,
    Clock,
    exchange_header,
    exchange_log_version,
    from_ms,
    guid,
    iis_header,
    to_ms,
)
from exhunt.lab.lookalikes import benign_plan
from exhunt.lab.plan import APPLICATION, MANAGEMENT, SECURITY, Injection, Plan
from exhunt.lab.traffic import (
    ARGS_IIS,
    ARGS_IIS_PLAIN,
    ARGS_PROXY,
    ARGS_RPS,
    ECP_SERVER,
    IIS_BE,
    IIS_FE,
    OAB_GEN,
    RPS_HTTP,
    TRAFFIC_MIXES,
    Template,
    build_site,
    template_pool,
)
from exhunt.model import iso

__all__ = ["Layout", "Scenario", "TriageSpec", "TriageTruth", "build_triage", "zip_triage"]

Layout = Literal["plain", "kape", "velociraptor", "live"]
LAYOUTS: tuple[Layout, ...] = ("plain", "kape", "velociraptor", "live")

# Below this many bytes per hour of logs, only some hours get traffic: every hourly file costs
# a header of ~1.4 KB, and a copy made of headers would be neither realistic nor on size.
_MIN_BYTES_PER_ACTIVE_HOUR = 50_000
_FLUSH_BYTES = 4 << 20
_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,14}")
_BUILD = re.compile(r"\d{1,2}\.\d{1,2}\.\d{1,5}\.\d{1,4}")
_RPS_LOG_TYPE = "Rps Http Logs"  # plausible; no public header block shows it
_OAB_FIELDS = "DateTime,ThreadId,Level,Component,Message"  # plausible (reference b3)


@dataclass(frozen=True)
class TriageSpec:
    scenario: Scenario
    size_bytes: int = 5_000_000
    seed: int = 0
    layout: Layout = "plain"
    start: datetime = datetime(2021, 2, 20, tzinfo=UTC)
    days: int = 14
    host: str = "EXCH01"
    build: str = "15.1.2176.2"  # Exchange 2016 CU19 before the March 2021 update
    traffic: str = "busy"  # one of traffic.TRAFFIC_MIXES


@dataclass(frozen=True)
class TriageTruth:
    """What the copy holds; paths are relative to the copy's folder, times UTC."""

    scenario: Scenario
    attacker_ips: list[str]
    shell_paths: list[str]
    first_exploitation: datetime | None
    notes: list[str] = field(default_factory=list)
    timeline: list[dict[str, str]] = field(default_factory=list)
    layout: str = "plain"
    seed: int = 0
    host: str = ""
    build: str = ""
    bytes_written: int = 0
    files_written: int = 0
    evtx_written: bool = False

    def to_json(self) -> str:
        data = {
            "scenario": str(self.scenario),
            "attacker_ips": self.attacker_ips,
            "shell_paths": self.shell_paths,
            "first_exploitation": iso(self.first_exploitation),
            "layout": self.layout, "seed": self.seed, "host": self.host, "build": self.build,
            "bytes_written": self.bytes_written, "files_written": self.files_written,
            "evtx_written": self.evtx_written, "notes": self.notes, "timeline": self.timeline,
        }
        return json.dumps(data, indent=2)


def truth_path(out: Path) -> Path:
    """Where the truth goes: beside the copy, never inside it."""
    return out.parent / (out.name + ".truth.json")


class _Drive:
    """Maps Windows paths of the server to files under OUT for one layout."""

    def __init__(self, out: Path, layout: Layout) -> None:
        self.out = out
        self.layout = layout
        roots: dict[str, Path] = {
            "plain": out, "kape": out / "C", "velociraptor": out / "uploads" / "auto" / "C%3A",
        }
        self._root = roots.get(layout)

    def path(self, winpath: str) -> Path | None:
        if self.layout == "live":
            prefix = catalog.EXCHANGE_ROOT.lower()
            if not winpath.lower().startswith(prefix):
                return None
            rel = winpath[len(prefix):]
            return self.out.joinpath(*[p for p in rel.split("\\") if p])
        assert self._root is not None
        if not winpath[:3].upper() == "C:\\":
            raise ValueError(f"not a C: path: {winpath}")
        return self._root.joinpath(*[p for p in winpath[3:].split("\\") if p])

    def relative(self, winpath: str) -> str | None:
        p = self.path(winpath)
        return None if p is None else p.relative_to(self.out).as_posix()


def _stream_file(stream: str, t: int) -> tuple[str, int]:
    """(Windows path, period key) of the file a stream's line at time t goes to."""
    dt = from_ms(t)
    logging = catalog.EXCHANGE_ROOT + "Logging\\"
    if stream.startswith("hp/"):
        proto = stream[3:]
        return (f"{logging}HttpProxy\\{proto}\\HttpProxy_{dt:%Y%m%d%H}-1.LOG", t // HOUR_MS)
    if stream in (IIS_FE, IIS_BE):
        site = stream.split("/")[1]
        return (f"{catalog.INETPUB}logs\\LogFiles\\{site}\\u_ex{dt:%y%m%d}.log", t // DAY_MS)
    if stream == ECP_SERVER:
        return (f"{logging}ECP\\Server\\ECPServer{dt:%Y%m%d}-1.LOG", t // DAY_MS)
    if stream == RPS_HTTP:
        return (f"{logging}CmdletInfra\\Powershell-Proxy\\Http\\Rps_Http_{dt:%Y%m%d%H}-1.LOG",
                t // HOUR_MS)
    if stream == OAB_GEN:
        return (f"{logging}OABGeneratorLog\\OABGeneratorLog_{dt:%Y%m%d}-1.LOG", t // DAY_MS)
    raise ValueError(f"unknown stream {stream}")


@dataclass
class _Open:
    key: int
    path: Path
    fh: IO[bytes]
    last_ms: int
    pending: list[bytes] = field(default_factory=list)
    pending_bytes: int = 0


class _LogWriter:
    """Keeps each stream's current file open, writes headers, counts bytes, sets mtimes."""

    def __init__(self, drive: _Drive, clock: Clock, build: str,
                 progress: Callable[[int], None] | None) -> None:
        self._drive = drive
        self._clock = clock
        self._version = exchange_log_version(build)
        self._open: dict[str, _Open] = {}
        self._progress = progress
        self.bytes = 0
        self.files = 0

    def maps(self, stream: str) -> bool:
        return self._drive.path(_stream_file(stream, 0)[0]) is not None

    def _header(self, stream: str, t: int) -> str:
        c = self._clock
        if stream.startswith("hp/"):
            return exchange_header(self._version, "HttpProxy Logs",
                                   ",".join(catalog.HTTPPROXY_FIELDS), t, c)
        if stream in (IIS_FE, IIS_BE):
            return iis_header(t, c)
        if stream == ECP_SERVER:
            return exchange_header("15.0.0.0", "ECP Server Log", catalog.ECP_FIELDS, t, c)
        if stream == RPS_HTTP:
            return exchange_header(self._version, _RPS_LOG_TYPE,
                                   ",".join(catalog.RPS_HTTP_FIELDS), t, c)
        return exchange_header(self._version, "OABGenerator Log", _OAB_FIELDS, t, c)

    def write(self, stream: str, first_ms: int, last_ms: int, lines: Iterable[str]) -> int:
        winpath, key = _stream_file(stream, first_ms)
        cur = self._open.get(stream)
        if cur is None or cur.key != key:
            if cur is not None:
                self._close(cur)
            path = self._drive.path(winpath)
            if path is None:
                return 0
            path.parent.mkdir(parents=True, exist_ok=True)
            cur = _Open(key, path, open(path, "wb"), last_ms)  # noqa: SIM115 (kept open)
            self._open[stream] = cur
            self.files += 1
            self._add(cur, self._header(stream, first_ms).encode())
        data = "".join(lines).encode()
        self._add(cur, data)
        cur.last_ms = last_ms
        return len(data)

    def _add(self, cur: _Open, data: bytes) -> None:
        cur.pending.append(data)
        cur.pending_bytes += len(data)
        self.bytes += len(data)
        if self._progress is not None:
            self._progress(len(data))
        if cur.pending_bytes >= _FLUSH_BYTES:
            self._flush(cur)

    @staticmethod
    def _flush(cur: _Open) -> None:
        cur.fh.write(b"".join(cur.pending))
        cur.pending.clear()
        cur.pending_bytes = 0

    def _close(self, cur: _Open) -> None:
        self._flush(cur)
        cur.fh.close()
        stamp = cur.last_ms / 1000
        os.utime(cur.path, (stamp, stamp))

    def close_all(self) -> None:
        for cur in self._open.values():
            self._close(cur)
        self._open.clear()


def _hour_weight(t: int) -> float:
    """Office rhythm in UTC+1: busy working hours, quiet nights, lighter weekends."""
    dt = from_ms(t + HOUR_MS)
    hour = dt.hour
    if 8 <= hour < 18:
        w = 1.0 if hour not in (12, 13) else 0.7
    elif 6 <= hour < 8 or 18 <= hour < 22:
        w = 0.3
    else:
        w = 0.07
    return w * (0.25 if dt.weekday() >= 5 else 1.0)


def _group_injections(injections: list[Injection], start_ms: int,
                      hours: int) -> dict[int, dict[str, list[Injection]]]:
    out: dict[int, dict[str, list[Injection]]] = {}
    for inj in injections:
        h = (inj.t - start_ms) // HOUR_MS
        if 0 <= h < hours:
            out.setdefault(h, {}).setdefault(inj.stream, []).append(inj)
    for per_stream in out.values():
        for lst in per_stream.values():
            lst.sort(key=lambda i: i.t)
    return out


def _active_hours(rng: random.Random, weights: list[float], budget: int,
                  forced: set[int]) -> list[float]:
    """Hour weights, zero for hours left without traffic when the budget is small."""
    hours = len(weights)
    wanted = budget // _MIN_BYTES_PER_ACTIVE_HOUR
    if wanted >= hours:
        return weights
    keep = set(forced)
    candidates = list(range(hours))
    # Weighted sampling without replacement (Efraimidis-Spirakis keys).
    keyed = sorted(candidates, key=lambda h: rng.random() ** (1.0 / weights[h]), reverse=True)
    for h in keyed:
        if len(keep) >= max(1, wanted):
            break
        keep.add(h)
    return [w if h in keep else 0.0 for h, w in enumerate(weights)]


def _restrict(pool: list[Template], writer: _LogWriter) -> list[Template]:
    """Drop lines of streams this layout does not hold (live: no IIS logs)."""
    out = []
    for tpl in pool:
        parts = tuple(p for p in tpl.parts if writer.maps(p.stream))
        if parts:
            size = sum(len(p.fmt) + 24 * len(p.offsets) + 40 for p in parts)
            out.append(Template(parts, tpl.weight, size))
    return out


def _render_hour(pool: list[Template], cum: list[float], n: int, h0: int, rng: random.Random,
                 clock: Clock) -> dict[str, tuple[list[int], list[str]]]:
    times = sorted(h0 + rng.randrange(HOUR_MS) for _ in range(n))
    chosen = rng.choices(pool, cum_weights=cum, k=n)
    iso, w3c = clock.iso, clock.w3c
    buf: dict[str, tuple[list[int], list[str]]] = {}
    for t, tpl in zip(times, chosen, strict=True):
        rid = guid(rng)
        for part in tpl.parts:
            a = part.args
            if a == ARGS_PROXY:
                o = part.offsets
                line = part.fmt % (iso(t), rid, iso(t - o[0]), iso(t - o[1]), iso(t - o[2]),
                                   iso(t - o[3]), iso(t))
            elif a == ARGS_IIS:
                line = part.fmt % (w3c(t), rid)
            elif a == ARGS_IIS_PLAIN:
                line = part.fmt % (w3c(t),)
            elif a == ARGS_RPS:
                line = part.fmt % (iso(t), iso(t - part.offsets[0]), rid)
            else:
                line = part.fmt % (iso(t), rid)
            slot = buf.get(part.stream)
            if slot is None:
                slot = buf[part.stream] = ([], [])
            slot[0].append(t)
            slot[1].append(line)
    return buf


def _merge(slot: tuple[list[int], list[str]] | None,
           injected: list[Injection]) -> tuple[list[int], list[str]]:
    if slot is None:
        return [i.t for i in injected], [i.line for i in injected]
    pairs = list(zip(*slot, strict=True))
    for inj in injected:
        insort(pairs, (inj.t, inj.line), key=lambda p: p[0])
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _write_planted(plan: Plan, drive: _Drive) -> tuple[int, int]:
    total = files = 0
    for item in plan.files:
        path = drive.path(item.winpath)
        if path is None:
            continue
        if item.data is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(item.data)
        stamp = item.mtime_ms / 1000
        os.utime(path, (stamp, stamp))
        total += len(item.data)
        files += 1
    return total, files


def _write_events(events: list[EventSpec], drive: _Drive) -> tuple[int, int]:
    total = files = 0
    for channel, name in ((APPLICATION, "Application.evtx"),
                          (MANAGEMENT, "MSExchange Management.evtx"),
                          (SECURITY, "Security.evtx")):
        path = drive.path("C:\\Windows\\System32\\winevt\\Logs\\" + name)
        chosen = sorted((e for e in events if e.channel == channel),
                        key=lambda e: e.time_created)
        if path is None or not chosen:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        write_evtx(path, chosen)
        stamp = chosen[-1].time_created.timestamp()
        os.utime(path, (stamp, stamp))
        total += path.stat().st_size
        files += 1
    return total, files


def build_triage(out: Path, spec: TriageSpec,
                 progress: Callable[[int], None] | None = None) -> TriageTruth:
    """Write a triage copy to `out` (created; must be absent or empty) and its truth beside it.

    `progress`, if given, is called with the number of bytes each write added.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"{out}: exists and is not an empty folder")
    if spec.days < 1:
        raise UsageError("days must be at least 1")
    if spec.layout not in LAYOUTS:
        raise UsageError(f"unknown layout {spec.layout!r}; one of {', '.join(LAYOUTS)}")
    try:
        scenario = Scenario(spec.scenario)
    except ValueError as exc:
        raise UsageError(f"unknown scenario {spec.scenario!r}") from exc
    if spec.traffic not in TRAFFIC_MIXES:
        raise UsageError(f"unknown traffic mix {spec.traffic!r}; one of {', '.join(TRAFFIC_MIXES)}")
    if not _HOST.fullmatch(spec.host):
        raise UsageError(f"host {spec.host!r}: a computer name of 1-15 letters, digits, '-'")
    if not _BUILD.fullmatch(spec.build):
        raise UsageError(f"build {spec.build!r}: expected four numbers, e.g. 15.1.2176.2")
    out.mkdir(parents=True, exist_ok=True)
    start_ms = to_ms(spec.start if spec.start.tzinfo else spec.start.replace(tzinfo=UTC))
    start_ms -= start_ms % HOUR_MS
    hours = spec.days * 24
    end_ms = start_ms + hours * HOUR_MS
    clock = Clock()
    rng = random.Random(f"exhunt-lab:{spec.seed}:site")
    live = spec.layout == "live"

    taken: set[str] = set()
    attack_rng = random.Random(f"exhunt-lab:{spec.seed}:attack")
    n_people = max(20, min(400, spec.size_bytes // 2_000_000))
    site = build_site(rng, spec.host, spec.build, n_people, taken)
    taken.update(site.external_pool)
    attacks = scenario_plan(scenario, site, clock, attack_rng, start_ms, end_ms, live, taken)
    benign = benign_plan(site, clock, random.Random(f"exhunt-lab:{spec.seed}:benign"),
                         start_ms, spec.days)

    drive = _Drive(out, spec.layout)
    written, files = 0, 0
    for plan in (benign, attacks):
        b, f = _write_planted(plan, drive)
        written, files = written + b, files + f
    b, f = _write_events(benign.events + attacks.events, drive)
    written, files = written + b, files + f
    evtx_written = f > 0
    if progress is not None:
        progress(written)

    writer = _LogWriter(drive, clock, spec.build, progress)
    injections = _group_injections(benign.injections + attacks.injections, start_ms, hours)
    budget = max(0, spec.size_bytes - written)
    traffic_rng = random.Random(f"exhunt-lab:{spec.seed}:traffic")
    weights = [_hour_weight(start_ms + h * HOUR_MS) for h in range(hours)]
    weights = _active_hours(traffic_rng, weights, budget, set(injections))
    total_w = sum(weights) or 1.0
    cum_target = 0.0
    pool: list[Template] = []
    cum: list[float] = []
    avg = 1.0
    pool_size = 200 if spec.size_bytes < 50_000_000 else 1200
    for h in range(hours):
        h0 = start_ms + h * HOUR_MS
        if h % 24 == 0 or not pool:
            day_rng = random.Random(f"exhunt-lab:{spec.seed}:pool:{h // 24}")
            pool = _restrict(template_pool(site, day_rng, pool_size, spec.traffic), writer)
            acc = 0.0
            cum = []
            for tpl in pool:
                acc += tpl.weight
                cum.append(acc)
            avg = sum(t.size * t.weight for t in pool) / acc
        cum_target += budget * weights[h] / total_w
        deficit = cum_target - writer.bytes
        n = int(deficit // avg) if weights[h] > 0 and deficit > 0 else 0
        injected = injections.get(h, {})
        if n == 0 and not injected:
            continue
        buf = _render_hour(pool, cum, n, h0, traffic_rng, clock) if n else {}
        for stream in sorted(set(buf) | set(injected)):
            slot = buf.get(stream)
            if stream in injected:
                slot = _merge(slot, injected[stream])
            assert slot is not None
            ts, lines = slot
            writer.write(stream, ts[0], ts[-1], lines)
    writer.close_all()

    shell_paths = [r for r in (drive.relative(w) for w in attacks.shell_winpaths) if r]
    notes = [*benign.notes, *attacks.notes]
    if not evtx_written:
        notes.append("no EVTX written (layout holds no Windows folder)")
    truth = TriageTruth(
        scenario=scenario, attacker_ips=attacks.attacker_ips, shell_paths=shell_paths,
        first_exploitation=None if attacks.first_exploitation_ms is None
        else from_ms(attacks.first_exploitation_ms),
        notes=notes,
        timeline=sorted(benign.timeline + attacks.timeline, key=lambda e: e["time"]),
        layout=spec.layout, seed=spec.seed, host=spec.host, build=spec.build,
        bytes_written=written + writer.bytes, files_written=files + writer.files,
        evtx_written=evtx_written,
    )
    truth_path(out).write_text(truth.to_json(), encoding="utf-8")
    return truth


def zip_triage(folder: Path, zip_path: Path) -> None:
    """Zip a triage copy: members relative to `folder`, empty folders kept, times kept."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a folder")
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True,
                         compresslevel=1) as zf:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            base = Path(dirpath)
            rel_dir = base.relative_to(folder)
            if rel_dir != Path(".") and not dirnames and not filenames:
                zf.write(base, rel_dir.as_posix() + "/")
            for name in sorted(filenames):
                path = base / name
                zf.write(path, (rel_dir / name).as_posix())
