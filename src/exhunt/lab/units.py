"""Sizes as people write them: 500MB, 2GB, 10k, 1.5MiB."""

from __future__ import annotations

import re

from exhunt.errors import UsageError

# Decimal units (k, MB, GB) as disks and logs are sold; binary ones spelled out (KiB, MiB, GiB).
_UNITS = {
    "": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "kib": 2**10, "mib": 2**20, "gib": 2**30,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int:
    """'500MB' -> 500_000_000; '10k' -> 10_000; '2GiB' -> 2 * 2**30; plain numbers are bytes."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _UNITS:
        raise UsageError(f"size {text!r}: use a number with an optional unit (k, MB, GB, MiB...)")
    size = int(float(m.group(1)) * _UNITS[unit])
    if size <= 0:
        raise UsageError(f"size {text!r} must be positive")
    return size
