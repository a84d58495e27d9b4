"""Scope: what may be contacted. Everything else is refused before a packet leaves.

A scope file and an exclusion (opt-out) list hold IPs, CIDRs or host names, one a line.
Without a scope file the scope is exactly the targets given. Exclusions always win.
Names are judged by every address they resolve to: one address outside scope refuses the name.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from exhunt.scan.targets import TargetSpec

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Scope:
    networks: list[IPNetwork] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    excluded_networks: list[IPNetwork] = field(default_factory=list)
    excluded_names: set[str] = field(default_factory=set)

    def ip_allowed(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self.excluded_networks):
            return False
        return any(addr in net for net in self.networks)

    def _excluded_ip(self, ip: str) -> bool:
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            return True
        return any(addr in net for net in self.excluded_networks)

    def name_listed(self, name: str) -> bool:
        return _norm(name) in self.names

    def name_excluded(self, name: str) -> bool:
        return _norm(name) in self.excluded_names

    def addresses_allowed(self, name: str, addresses: Iterable[str]) -> tuple[bool, str | None]:
        """May `name`, resolving to `addresses`, be contacted? (allowed, reason if not)."""
        if self.name_excluded(name):
            return False, f"{name} is on the exclusion list"
        addrs = list(addresses)
        if not addrs:
            return False, f"{name} does not resolve"
        if self.name_listed(name):
            # Listed by name: its addresses need only stay clear of the exclusions.
            excluded = [a for a in addrs if self._excluded_ip(a)]
            if excluded:
                return False, f"{name} resolves to excluded {', '.join(sorted(excluded)[:3])}"
            return True, None
        outside = [a for a in addrs if not self.ip_allowed(a)]
        if outside:
            return False, f"{name} resolves outside scope ({', '.join(sorted(outside)[:3])})"
        return True, None


def _norm(name: str) -> str:
    return name.strip().rstrip(".").lower()


def _parse_entries(lines: Iterable[str], source: str) -> tuple[list[IPNetwork], set[str]]:
    nets: list[IPNetwork] = []
    names: set[str] = set()
    for n, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        for token in line.replace(",", " ").split():
            try:
                nets.append(ipaddress.ip_network(token, strict=False))
                continue
            except ValueError:
                pass
            if any(c in token for c in "/:[]@") or len(token) > 253:
                raise ValueError(f"{source}:{n}: not an IP, CIDR or host name: {token[:80]!r}")
            names.add(_norm(token))
    return nets, names


def load_scope_file(path: Path) -> tuple[list[IPNetwork], set[str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    return _parse_entries(text.splitlines(), str(path))


def build_scope(
    specs: list[TargetSpec],
    scope_file: Path | None = None,
    exclude_file: Path | None = None,
    extra_excludes: Iterable[str] = (),
) -> Scope:
    """The run's scope: the scope file, or else the targets themselves; minus exclusions."""
    scope = Scope()
    if scope_file is not None:
        scope.networks, scope.names = load_scope_file(scope_file)
    else:
        for spec in specs:
            if spec.network is not None:
                scope.networks.append(spec.network)
            elif spec.target is not None:
                if spec.target.is_ip:
                    scope.networks.append(ipaddress.ip_network(spec.target.host))
                else:
                    scope.names.add(_norm(spec.target.host))
    if exclude_file is not None:
        scope.excluded_networks, scope.excluded_names = load_scope_file(exclude_file)
    extra_nets, extra_names = _parse_entries(extra_excludes, "--exclude")
    scope.excluded_networks += extra_nets
    scope.excluded_names |= extra_names
    return scope
