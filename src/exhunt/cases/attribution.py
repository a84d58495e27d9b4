"""Who owns an address: the coordinator's contacts list (most specific network wins), AS
number and name from a user-supplied ip2asn TSV or MaxMind-format database, country offline
from iptocc, sector from the contacts list, else the feed's NAICS code, else unknown."""

from __future__ import annotations

import bisect
import csv
import ipaddress
import socket
import struct
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Protocol

import iptocc
import maxminddb
import maxminddb.errors

from exhunt.errors import InputError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN_SECTOR = "unknown"


class Attributed(Protocol):
    """What attribution fills on a host: the ORM row or ingest's plain copy."""

    organisation_id: int | None
    network: str | None
    asn: int | None
    as_name: str | None
    country: str | None
    feed_country: str | None
    registry_country: str | None
    country_source: str | None
    sector: str | None
    sector_source: str | None
    naics: str | None

    @property
    def ip(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Owner:
    organisation_id: int
    cidr: str


class NetworkIndex:
    """Most-specific-prefix lookup over the constituency's networks (IPv4 and IPv6)."""

    def __init__(self) -> None:
        # (ip version, prefix length) -> network address as int -> owner
        self._tables: dict[tuple[int, int], dict[int, Owner]] = {}
        self._lengths: dict[int, list[int]] = {4: [], 6: []}

    def add(self, cidr: str, organisation_id: int) -> None:
        version, length, value, text = _network(cidr)
        key = (version, length)
        if key not in self._tables:
            self._tables[key] = {}
            lengths = self._lengths[version]
            lengths.append(length)
            lengths.sort(reverse=True)  # longest (most specific) first
        self._tables[key][value] = Owner(organisation_id, text)

    def lookup(self, ip: str) -> Owner | None:
        if not self._tables:  # no contacts imported: skip parsing the address
            return None
        version, value = _address(ip)
        bits = 32 if version == 4 else 128
        for length in self._lengths[version]:
            masked = value >> (bits - length) << (bits - length) if length else 0
            owner = self._tables[(version, length)].get(masked)
            if owner is not None:
                return owner
        return None

    def __len__(self) -> int:
        return sum(len(table) for table in self._tables.values())


def _address(ip: str) -> tuple[int, int]:
    """(IP version, address as an int). The C parser first (a constituency's worth of hosts
    goes through here); anything it refuses gets the ipaddress module's answer or error."""
    try:
        packed = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    except (OSError, ValueError):
        address = ipaddress.ip_address(ip)
        return address.version, int(address)
    return (4 if len(packed) == 4 else 6), int.from_bytes(packed, "big")


def _network(cidr: str) -> tuple[int, int, int, str]:
    """(IP version, prefix length, network address as an int, canonical text) of a network,
    host bits cleared. The text as given when it is already the canonical one (as the contacts
    import stores it), else the ipaddress module's."""
    address, slash, length = cidr.partition("/")
    try:
        version, value = _address(address)
        bits = 32 if version == 4 else 128
        prefix = int(length) if slash else bits
        if not (slash and length.isdigit() and 0 <= prefix <= bits):
            raise ValueError(cidr)
        value = value >> (bits - prefix) << (bits - prefix) if prefix else 0
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        text = f"{socket.inet_ntop(family, value.to_bytes(bits // 8, 'big'))}/{prefix}"
    except (OSError, ValueError):
        text = ""
    if text != cidr or ("." in text and version == 6):  # inet_ntop dots embedded IPv4
        network = ipaddress.ip_network(cidr, strict=False)
        return (network.version, network.prefixlen, int(network.network_address),
                str(network))
    return version, prefix, value, text


@dataclass(frozen=True, slots=True)
class AsInfo:
    asn: int
    name: str


class AsnSource(Protocol):
    """Anything that names the AS announcing an address (ip2asn TSV, MaxMind database)."""

    def lookup(self, ip: str) -> AsInfo | None: ...


class AsnTable:
    """iptoasn.com-style TSV: range_start, range_end, AS number, country, AS description.
    Rows with AS 0 ('Not routed') are skipped."""

    def __init__(self, path: Path) -> None:
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._rows: dict[int, list[tuple[int, AsInfo]]] = {4: [], 6: []}
        entries: list[tuple[int, int, int, AsInfo]] = []
        try:
            handle = path.open(encoding="utf-8", errors="replace", newline="")
        except OSError as exc:
            raise InputError(f"{path}: cannot read the ip2asn table: {exc}") from exc
        with handle:
            for line in handle:
                entry = self._parse(line)
                if entry is not None:
                    entries.append(entry)
        for version, start, end, info in sorted(entries, key=lambda e: (e[0], e[1])):
            self._starts[version].append(start)
            self._rows[version].append((end, info))

    @staticmethod
    def _parse(line: str) -> tuple[int, int, int, AsInfo] | None:
        parts = line.rstrip("\r\n").split("\t")
        if len(parts) < 3 or not parts[2].strip().isdigit():
            return None
        try:
            start = ipaddress.ip_address(parts[0].strip())
            end = ipaddress.ip_address(parts[1].strip())
        except ValueError:
            return None
        asn = int(parts[2])
        if asn == 0 or start.version != end.version:
            return None
        name = parts[4].strip()[:200] if len(parts) > 4 else ""
        return start.version, int(start), int(end), AsInfo(asn, name)

    def lookup(self, ip: str) -> AsInfo | None:
        address = ipaddress.ip_address(ip)
        value = int(address)
        starts = self._starts[address.version]
        index = bisect.bisect_right(starts, value) - 1
        if index < 0:
            return None
        end, info = self._rows[address.version][index]
        return info if value <= end else None


MAX_AS_NAME = 200
MAX_MMDB_BYTES = 1 << 30  # GeoLite2-ASN is ~10 MB and even City ~100 MB: more is not one
# Errors the pure-Python reader raises on a file that is not what it claims (fuzzed in tests)
_BROKEN = (maxminddb.errors.InvalidDatabaseError, ValueError, TypeError, KeyError, IndexError,
           UnicodeDecodeError, struct.error, OverflowError, RecursionError, AttributeError)


class MaxMindAsn:
    """AS number and name from a MaxMind-format database in the GeoLite2-ASN layout
    (autonomous_system_number, autonomous_system_organization).

    Source of the layout: MaxMind, GeoLite2 ASN database record fields; file format: "MaxMind
    DB File Format Specification" 2.0. The file is user-supplied and may be anything: a file
    that is not such a database, or a record that does not decode, is an InputError naming
    the file, never a crash."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            if size > MAX_MMDB_BYTES:
                raise InputError(f"{path}: {size} bytes is too large for an ASN database")
            # MODE_MEMORY: the pure-Python reader over the file's bytes, read once
            self._reader = maxminddb.open_database(str(path), maxminddb.MODE_MEMORY)
        except OSError as exc:
            raise InputError(f"{path}: cannot read the MaxMind database: {exc}") from exc
        except _BROKEN as exc:
            raise InputError(f"{path}: not a usable MaxMind database: {exc}") from exc
        self._v4_only = self._reader.metadata().ip_version == 4

    def lookup(self, ip: str) -> AsInfo | None:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None  # not an address: nothing to look up
        if address.version == 6 and self._v4_only:
            return None
        try:
            record = self._reader.get(address)
        except _BROKEN as exc:
            raise InputError(f"{self.path}: broken MaxMind record for {ip}: {exc}") from exc
        if not isinstance(record, dict):
            return None
        asn = record.get("autonomous_system_number")
        if not isinstance(asn, int) or isinstance(asn, bool) or not 0 < asn < 2**32:
            return None
        name = record.get("autonomous_system_organization")
        return AsInfo(asn, name[:MAX_AS_NAME] if isinstance(name, str) else "")

    def close(self) -> None:
        self._reader.close()


def country_of(ip: str) -> str | None:
    """RIR-assigned country, offline (iptocc ships the RIR data in the wheel)."""
    try:
        code = iptocc.country_code(ip)
    except (ValueError, TypeError):
        return None
    return code if isinstance(code, str) and code else None


@lru_cache(maxsize=1)
def _naics_table() -> tuple[tuple[str, str], ...]:
    text = (resources.files("exhunt.cases") / "data" / "naics_sectors.csv").read_text("utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    return tuple(sorted(((r["prefix"], r["sector"]) for r in rows), key=lambda r: -len(r[0])))


@lru_cache(maxsize=4096)  # a feed repeats a few hundred codes across 100,000s of rows
def sector_from_naics(code: str | None) -> str | None:
    if not code:
        return None
    digits = code.strip()
    if not digits.isdigit():
        return None
    for prefix, sector in _naics_table():
        if digits.startswith(prefix):
            return sector
    return None


def choose_sector(
    contacts_sector: str | None, naics: str | None, feed_sector: str | None
) -> tuple[str, str]:
    """(sector, where it came from): contacts list, else NAICS, else the feed's text, else
    unknown."""
    if contacts_sector:
        return contacts_sector, "contacts"
    from_naics = sector_from_naics(naics)
    if from_naics:
        return from_naics, "naics"
    if feed_sector:
        return feed_sector[:128], "feed"
    return UNKNOWN_SECTOR, "unknown"
