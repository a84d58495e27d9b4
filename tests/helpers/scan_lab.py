"""Scan test helpers: a lab fleet running in a background thread's event loop.

The scan CLI and Dask workers run their own event loops, so the fleet serves from another
thread; tests still only ever talk to loopback.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from exhunt.lab.fleet import Fleet, FleetHost


@contextmanager
def fleet_in_thread(**kwargs: Any) -> Iterator[tuple[Fleet, list[FleetHost]]]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    thread = threading.Thread(target=_run_loop, args=(loop, ready), daemon=True)
    thread.start()
    ready.wait(30)
    fleet = Fleet(**kwargs)
    hosts = asyncio.run_coroutine_threadsafe(fleet.__aenter__(), loop).result(120)
    try:
        yield fleet, hosts
    finally:
        asyncio.run_coroutine_threadsafe(fleet.close(), loop).result(120)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()
