"""Sharding a scan across machines with Dask: split the endpoints, merge the results."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from exhunt.errors import UsageError
from exhunt.scan.engine import Result, ScanOptions, scan_list
from exhunt.scan.scope import Scope
from exhunt.scan.targets import Endpoint


def chunked(items: list[Endpoint], parts: int) -> list[list[Endpoint]]:
    if not items:
        return []
    size = max(1, math.ceil(len(items) / max(1, parts)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def scan_with_client(
    client: Any,
    endpoints: list[Endpoint],
    scope: Scope,
    options: ScanOptions,
    emit: Callable[[Result], None],
    chunks_per_worker: int = 4,
) -> int:
    """Run the scan on an existing Dask client; results are emitted as shards finish."""
    from distributed import as_completed

    workers = max(1, len(client.scheduler_info().get("workers", {})))
    shards = chunked(endpoints, workers * chunks_per_worker)
    futures = client.map(scan_list, shards, scope=scope, options=options, pure=False)
    count = 0
    for future in as_completed(futures):  # type: ignore[no-untyped-call]
        for result in future.result():
            emit(result)
            count += 1
    return count


def scan_on_dask(
    address: str,
    endpoints: list[Endpoint],
    scope: Scope,
    options: ScanOptions,
    emit: Callable[[Result], None],
) -> int:
    """Connect to the scheduler at `address` (tcp://HOST:PORT) and run the scan there."""
    from distributed import Client

    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")):
        raise UsageError(f"--dask wants a scheduler address like tcp://HOST:PORT, not {address!r}")
    try:
        client = Client(address, timeout=30)  # type: ignore[no-untyped-call]
    except OSError as e:
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {e}") from None
    with client:
        return scan_with_client(client, endpoints, scope, options, emit)
