"""Targets: hosts, IPs, CIDRs (v4/v6), host:port, @file, stdin, masscan JSON, ZMap CSV.

Format knowledge only: every token becomes Target entries or a TargetProblem naming the input;
nothing here decides what may be contacted (that is scope.py).
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_CIDR_ADDRESSES = 1 << 24  # a /8 of IPv4; bigger sweeps belong to masscan/ZMap first
MAX_TOKEN_CHARS = 300
_HOSTNAME = re.compile(r"^(?=.{1,253}$)(?!-)[A-Za-z0-9-]{1,63}(?:\.(?!-)[A-Za-z0-9-]{1,63})*\.?$")


@dataclass(frozen=True)
class Target:
    """One thing to probe: a host name or IP literal, on one port (None: default ports)."""

    host: str
    port: int | None = None

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True


@dataclass(frozen=True)
class Endpoint:
    """A target on a concrete port; `target` is what the JSONL line names."""

    target: str
    port: int

    @property
    def key(self) -> tuple[str, int]:
        return (self.target, self.port)


@dataclass(frozen=True)
class TargetProblem:
    source: str
    message: str


@dataclass(frozen=True)
class TargetSpec:
    """A parsed token: a single target or a network to expand lazily."""

    target: Target | None = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    port: int | None = None

    def count(self) -> int:
        if self.network is not None:
            return _network_size(self.network)
        return 1

    def expand(self) -> Iterator[Target]:
        if self.target is not None:
            yield self.target
            return
        assert self.network is not None
        net = self.network
        # Network and broadcast addresses are skipped except on /31, /32, /127, /128.
        hosts: Iterator[ipaddress.IPv4Address] | Iterator[ipaddress.IPv6Address]
        hosts = net.hosts() if net.num_addresses > 2 else iter(net)  # type: ignore[assignment]
        for ip in hosts:
            yield Target(str(ip), self.port)


def _network_size(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> int:
    return (
        net.num_addresses - 2
        if net.num_addresses > 2 and net.version == 4
        else (net.num_addresses - 1 if net.num_addresses > 2 else net.num_addresses)
    )


def _port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range: {text}")
    return port


def parse_token(token: str) -> TargetSpec:
    """Parse one target token; raises ValueError with a reason a responder understands."""
    token = token.strip()
    if not token:
        raise ValueError("empty target")
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError("target too long")
    port: int | None = None
    host = token
    if token.startswith("["):  # [v6]:port or [v6]
        end = token.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {token!r}")
        host, rest = token[1:end], token[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"junk after ']' in {token!r}")
            port = _port(rest[1:])
    elif token.count(":") == 1:  # host:port or v4:port (v6 literals have several colons)
        host, port_text = token.split(":")
        port = _port(port_text)
    if "/" in host:
        try:
            net = ipaddress.ip_network(host, strict=False)
        except ValueError as e:
            raise ValueError(f"bad network {host!r}: {e}") from None
        if net.num_addresses > MAX_CIDR_ADDRESSES:
            raise ValueError(f"network {host} is larger than 2^24 addresses")
        return TargetSpec(network=net, port=port)
    try:
        ip = ipaddress.ip_address(host)
        return TargetSpec(target=Target(str(ip), port))
    except ValueError:
        pass
    if not _HOSTNAME.match(host):
        raise ValueError(f"not a host, IP, CIDR or host:port: {token!r}")
    return TargetSpec(target=Target(host.rstrip(".").lower(), port))


def _masscan_records(text: str) -> Iterator[dict[str, object]]:
    """masscan -oJ output: a JSON array, often with a trailing comma; or one object a line."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, list):
        yield from (d for d in data if isinstance(d, dict))
        return
    if isinstance(data, dict):
        yield data
        return
    for line in text.splitlines():
        line = line.strip().rstrip(",")
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def parse_masscan(text: str, source: str) -> tuple[list[TargetSpec], list[TargetProblem]]:
    specs: list[TargetSpec] = []
    problems: list[TargetProblem] = []
    for rec in _masscan_records(text):
        ip = rec.get("ip")
        ports = rec.get("ports")
        if not isinstance(ip, str) or not isinstance(ports, list):
            problems.append(TargetProblem(source, "masscan record without ip/ports"))
            continue
        for p in ports:
            if not isinstance(p, dict):
                continue
            if p.get("status", "open") != "open":
                continue
            try:
                addr = ipaddress.ip_address(ip)
                port = _port(str(p.get("port")))
            except ValueError as e:
                problems.append(TargetProblem(source, f"masscan record {ip!r}: {e}"))
                continue
            specs.append(TargetSpec(target=Target(str(addr), port)))
    return specs, problems


def parse_zmap(text: str, source: str) -> tuple[list[TargetSpec], list[TargetProblem]]:
    """ZMap CSV (-O csv -f saddr,sport,...): saddr is the host, sport the port that answered."""
    specs: list[TargetSpec] = []
    problems: list[TargetProblem] = []
    reader = csv.DictReader(text.splitlines())
    for n, row in enumerate(reader, start=2):
        saddr = (row.get("saddr") or "").strip()
        sport = (row.get("sport") or "").strip()
        if (row.get("success") or "1").strip() in ("0", "false"):
            continue
        try:
            addr = ipaddress.ip_address(saddr)
            port = _port(sport) if sport else None
        except ValueError as e:
            problems.append(TargetProblem(f"{source}:{n}", f"bad ZMap row: {e}"))
            continue
        specs.append(TargetSpec(target=Target(str(addr), port)))
    return specs, problems


def parse_lines(lines: Iterable[str], source: str) -> tuple[list[TargetSpec], list[TargetProblem]]:
    specs: list[TargetSpec] = []
    problems: list[TargetProblem] = []
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for token in line.replace(",", " ").split():
            try:
                specs.append(parse_token(token))
            except ValueError as e:
                problems.append(TargetProblem(f"{source}:{n}", str(e)))
    return specs, problems


def parse_text(text: str, source: str) -> tuple[list[TargetSpec], list[TargetProblem]]:
    """Sniff the format of a target list: masscan JSON, ZMap CSV with header, or plain lines."""
    head = text.lstrip()[:1]
    first_line = text.lstrip().split("\n", 1)[0].lower()
    if head in ("[", "{"):
        return parse_masscan(text, source)
    if "saddr" in first_line and "," in first_line:
        return parse_zmap(text, source)
    return parse_lines(text.splitlines(), source)


def read_file(path: Path, max_bytes: int = 512 * 1024 * 1024) -> str:
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path}: target list larger than {max_bytes} bytes")
    return path.read_bytes().decode("utf-8", errors="replace")


def gather(
    tokens: Iterable[str], stdin_text: str | None = None
) -> tuple[list[TargetSpec], list[TargetProblem]]:
    """Every target from the command line: tokens, @file, and '-' for standard input."""
    specs: list[TargetSpec] = []
    problems: list[TargetProblem] = []
    for token in tokens:
        if token == "-":
            got, bad = parse_text(stdin_text or "", "<stdin>")
        elif token.startswith("@"):
            path = Path(token[1:])
            try:
                text = read_file(path)
            except (OSError, ValueError) as e:
                problems.append(TargetProblem(token, f"cannot read target file: {e}"))
                continue
            got, bad = parse_text(text, str(path))
        else:
            try:
                got, bad = [parse_token(token)], []
            except ValueError as e:
                got, bad = [], [TargetProblem(token, str(e))]
        specs.extend(got)
        problems.extend(bad)
    return specs, problems


def endpoints(specs: Iterable[TargetSpec], ports: tuple[int, ...]) -> Iterator[Endpoint]:
    """Expand specs lazily to (target, port); a target's own port overrides the defaults."""
    seen: set[tuple[str, int]] = set()
    for spec in specs:
        for target in spec.expand():
            for port in (target.port,) if target.port else ports:
                ep = Endpoint(target.host, port)
                # Deduplicate only explicit entries; CIDR expansions are disjoint by nature.
                if spec.network is None:
                    if ep.key in seen:
                        continue
                    seen.add(ep.key)
                yield ep


def count_endpoints(specs: Iterable[TargetSpec], ports: tuple[int, ...]) -> int:
    total = 0
    for spec in specs:
        per = 1 if (spec.target and spec.target.port) or spec.port else len(ports)
        total += spec.count() * per
    return total
