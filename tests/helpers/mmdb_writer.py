"""A minimal MaxMind DB writer for tests: enough of the format to build a GeoLite2-ASN-shaped
file with a handful of networks.

Format facts from the "MaxMind DB File Format Specification" 2.0: a binary search tree of
nodes (two records each; a record is a node number, the node count for "no data", or node
count + 16 + an offset into the data section), 16 zero bytes, the data section, then the
metadata marker b"\\xab\\xcd\\xefMaxMind.com" and a metadata map. Data fields start with a control
byte: type in the top 3 bits (0 = extended: type - 7 in the next byte), size in the low 5.
"""

from __future__ import annotations

import ipaddress
import struct

METADATA_MARKER = b"\xab\xcd\xefMaxMind.com"
Value = int | str | dict[str, "Value"] | list["Value"]


def _control(kind: int, size: int) -> bytes:
    extended = kind > 7
    if size < 29:
        head, tail = size, b""
    elif size < 29 + 256:
        head, tail = 29, bytes([size - 29])
    elif size < 285 + 65536:
        head, tail = 30, (size - 285).to_bytes(2, "big")
    else:
        head, tail = 31, (size - 65821).to_bytes(3, "big")
    first = bytes([((0 if extended else kind) << 5) | head])
    return first + (bytes([kind - 7]) if extended else b"") + tail


def encode(value: Value, *, unsigned: int = 6) -> bytes:
    """utf8 string (2), map (7), array (11), unsigned ints (5 = uint16, 6 = uint32,
    9 = uint64) in as few bytes as hold the value."""
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _control(2, len(raw)) + raw
    if isinstance(value, dict):
        body = b"".join(encode(k) + encode(v) for k, v in value.items())
        return _control(7, len(value)) + body
    if isinstance(value, list):
        return _control(11, len(value)) + b"".join(encode(v) for v in value)
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""
    return _control(unsigned, len(raw)) + raw


def write_mmdb(networks: dict[str, dict[str, Value]], *, ip_version: int = 6,
               record_size: int = 32) -> bytes:
    """Build a database mapping each (non-overlapping) network to its record. IPv4 networks
    in an IPv6 tree go under ::/96, where readers look them up."""
    assert record_size in (24, 32)
    data = bytearray()
    tree: list[list[int | tuple[str, int] | None]] = [[None, None]]  # root is node 0
    bits = 128 if ip_version == 6 else 32
    for cidr, record in networks.items():
        network = ipaddress.ip_network(cidr)
        value, length = int(network.network_address), network.prefixlen
        if network.version == 4 and ip_version == 6:
            length += 96
        elif network.version != ip_version:
            raise ValueError(f"{cidr} does not fit an IPv{ip_version} tree")
        offset = len(data)
        data += encode(record)
        node = 0
        for depth in range(length):
            bit = (value >> (bits - 1 - depth)) & 1  # an IPv4 value is ::a.b.c.d in 128 bits
            if depth == length - 1:
                tree[node][bit] = ("data", offset)
                break
            nxt = tree[node][bit]
            if nxt is None:
                tree.append([None, None])
                nxt = tree[node][bit] = len(tree) - 1
            assert isinstance(nxt, int), f"{cidr} overlaps a shorter network"
            node = nxt
    count = len(tree)

    def number(record: int | tuple[str, int] | None) -> int:
        if record is None:
            return count
        if isinstance(record, tuple):
            return count + 16 + record[1]
        return record

    out = bytearray()
    for left, right in tree:
        a, b = number(left), number(right)
        if record_size == 32:
            out += struct.pack(">II", a, b)
        else:
            out += a.to_bytes(3, "big") + b.to_bytes(3, "big")
    out += bytes(16) + data + METADATA_MARKER
    # metadata field types as the specification gives them (libmaxminddb checks them)
    fields: list[tuple[str, bytes]] = [
        ("node_count", encode(count, unsigned=6)),
        ("record_size", encode(record_size, unsigned=5)),
        ("ip_version", encode(ip_version, unsigned=5)),
        ("database_type", encode("GeoLite2-ASN")),
        ("languages", encode(["en"])),
        ("binary_format_major_version", encode(2, unsigned=5)),
        ("binary_format_minor_version", encode(0, unsigned=5)),
        ("build_epoch", encode(1_614_729_600, unsigned=9)),
        ("description", encode({"en": "exhunt test ASN database"})),
    ]
    out += _control(7, len(fields)) + b"".join(encode(k) + v for k, v in fields)
    return bytes(out)
