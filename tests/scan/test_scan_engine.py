"""The scan engine against the lab fleet on loopback: builds, misbehaving servers, scope."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from exhunt.intel.builds import explain
from exhunt.lab.fleet import MISBEHAVING, WELL_BEHAVED, Fleet, FleetHost
from exhunt.scan.engine import Result, ScanOptions, run_scan
from exhunt.scan.scope import build_scope
from exhunt.scan.targets import endpoints, gather

# Generous: the machine is shared and loaded; nothing here asserts on time.
FAST = ScanOptions(
    concurrency=32,
    connect_timeout=10,
    read_timeout=4,
    request_timeout=6,
    target_timeout=60,
    retries=1,
    backoff=0.05,
)

SOURCE_FOR_MODE = {"header": "x-owa-version", "logon": "logon-page", "exporttool": "exporttool"}


def token(h: FleetHost) -> str:
    return f"[{h.host}]:{h.port}" if ":" in h.host else f"{h.host}:{h.port}"


async def scan_fleet(
    fleet: Fleet,
    tokens: list[str],
    options: ScanOptions = FAST,
    scope_file: Path | None = None,
    exclude_file: Path | None = None,
) -> dict[tuple[str, int], Result]:
    specs, problems = gather(tokens)
    assert not problems
    scope = build_scope(specs, scope_file, exclude_file)
    results: dict[tuple[str, int], Result] = {}

    def keep(r: Result) -> None:
        assert (r["target"], r["port"]) not in results
        results[(r["target"], r["port"])] = r

    await run_scan(endpoints(specs, options.ports), scope, options, keep)
    return results


def check_against_table(h: FleetHost, r: dict[str, Any]) -> None:
    assert r["reachable"], (h, r)
    assert r["scheme"] == h.scheme
    if h.mode == "not-exchange":
        assert r["exchange"] is False and r["build"] is None and r["vulnerabilities"] == {}
        return
    assert r["exchange"] is True, (h, r)
    assert r["build"] == h.expected, (h, r)
    assert r["build_source"] == SOURCE_FOR_MODE[h.mode]
    assert h.expected is not None
    info = explain(h.expected)
    assert r["vulnerabilities"] == info.vulnerabilities
    assert r["product"] == info.product and r["release"] == info.release


def test_well_behaved_fleet_matches_the_table() -> None:
    async def go() -> None:
        fleet = Fleet(count=40, modes=WELL_BEHAVED, seed=7)
        async with fleet as hosts:
            # Both TLS and plain-HTTP hosts: plain ones are found by the HTTP fallback.
            assert {h.scheme for h in hosts} == {"http", "https"}
            results = await scan_fleet(fleet, [token(h) for h in hosts])
            assert len(results) == len(hosts)
            for h in hosts:
                check_against_table(h, results[(h.host, h.port)])
            assert fleet.canary_hits == 0

    asyncio.run(go())


def test_every_misbehaving_server_is_handled() -> None:
    async def go() -> None:
        fleet = Fleet(count=len(MISBEHAVING) * 2, modes=MISBEHAVING, seed=3, tarpit_seconds=60)
        async with fleet as hosts:
            opts = ScanOptions(
                concurrency=16, connect_timeout=10, read_timeout=3, request_timeout=4,
                target_timeout=60, retries=1, backoff=0.05, max_body=64 * 1024,
            )  # fmt: skip
            results = await scan_fleet(fleet, [token(h) for h in hosts], opts)
            assert fleet.canary
            for h in hosts:
                r = results[(h.host, h.port)]
                err = r["error"] or ""
                if h.mode == "tarpit":
                    assert not r["reachable"] and "timeout" in err
                elif h.mode == "reset":
                    assert not r["reachable"] and ("reset" in err or "closed" in err), err
                elif h.mode == "broken-tls":
                    assert not r["reachable"] and "TLS" in err
                elif h.mode == "huge":
                    # The 50 MB body is cut at the cap and the build in its head still read.
                    assert r["reachable"] and r["build"] == h.expected
                    # The scanner hung up each time: far less than 50 MB per request left
                    # the server (what did is socket buffering, a few MB per connection).
                    requests = fleet.hits[(h.host, h.port)]
                    assert fleet.bytes_sent[(h.host, h.port)] < requests * 16 * 1024 * 1024
                elif h.mode == "redirect-loop":
                    assert r["reachable"] and "redirect loop" in err
                    assert r["build"] is None
                elif h.mode == "redirect-out":
                    c_host, c_port = fleet.canary
                    assert r["redirect"].startswith(f"http://{c_host}:{c_port}/")
                    assert "out of scope" in err
            # The out-of-scope redirect target was never contacted.
            assert fleet.canary_hits == 0

    asyncio.run(go())


def test_exclusion_list_and_scope_file_are_never_crossed(tmp_path: Path) -> None:
    async def go() -> None:
        fleet = Fleet(count=6, modes=("header",), per_address=1, seed=5)
        async with fleet as hosts:
            excluded = hosts[:2]
            outside = hosts[2]
            inside = hosts[3:]
            exclude = tmp_path / "optout.txt"
            exclude.write_text("".join(f"{h.host}\n" for h in excluded) + "# opt-outs\n")
            scope = tmp_path / "scope.txt"
            scope.write_text("".join(f"{h.host}/32\n" for h in excluded + inside))
            results = await scan_fleet(fleet, [token(h) for h in hosts], FAST, scope, exclude)
            for h in [*excluded, outside]:
                r = results[(h.host, h.port)]
                assert r["error"].startswith("refused") and not r["reachable"]
                assert fleet.hits[(h.host, h.port)] == 0
            for h in inside:
                check_against_table(h, results[(h.host, h.port)])

    asyncio.run(go())


def test_name_resolving_outside_scope_is_refused(tmp_path: Path) -> None:
    async def go() -> None:
        fleet = Fleet(count=1, modes=("header",), first_address="127.0.0.1", https_share=1.0)
        async with fleet as hosts:
            h = hosts[0]
            scope = tmp_path / "scope.txt"
            scope.write_text("127.20.0.0/16\n")
            results = await scan_fleet(fleet, [f"localhost:{h.port}"], FAST, scope)
            r = results[("localhost", h.port)]
            assert r["error"].startswith("refused") and "outside scope" in r["error"]
            assert fleet.hits[(h.host, h.port)] == 0

    asyncio.run(go())


def test_names_get_sni_and_host_header() -> None:
    async def go() -> None:
        fleet = Fleet(count=1, modes=("header",), first_address="127.0.0.1", https_share=1.0)
        async with fleet as hosts:
            h = hosts[0]
            # Scope is the targets given: the name itself. localhost may also resolve to ::1,
            # so pin the IPv4 answer through an explicit scope of the name.
            results = await scan_fleet(fleet, [f"localhost:{h.port}"])
            r = results[("localhost", h.port)]
            assert r["reachable"], r
            assert r["build"] == h.build
            assert "localhost" in fleet.sni_names
            assert fleet.host_headers[(h.host, h.port)] == f"localhost:{h.port}"

    asyncio.run(go())


def test_ipv6_loopback() -> None:
    async def go() -> None:
        fleet = Fleet(count=3, modes=("header", "logon", "exporttool"), first_address="::1")
        async with fleet as hosts:
            results = await scan_fleet(fleet, [token(h) for h in hosts])
            for h in hosts:
                r = results[("::1", h.port)]
                assert r["ip"] == "::1"
                check_against_table(h, r)

    asyncio.run(go())


def test_per_host_politeness_limits_requests_in_flight() -> None:
    async def go() -> None:
        fleet = Fleet(count=12, modes=("logon",), per_address=12, seed=2)
        async with fleet as hosts:
            opts = ScanOptions(
                concurrency=12, per_host=1, connect_timeout=10, read_timeout=5,
                request_timeout=10, target_timeout=120,
            )  # fmt: skip
            results = await scan_fleet(fleet, [token(h) for h in hosts], opts)
            assert all(results[(h.host, h.port)]["build"] == h.expected for h in hosts)
            assert fleet.max_in_flight[hosts[0].host] == 1

    asyncio.run(go())


def test_global_rate_limit_spaces_requests() -> None:
    async def go() -> None:
        fleet = Fleet(count=6, modes=("logon",), per_address=1, seed=2, https_share=0.0)
        async with fleet as hosts:
            rate = 20.0
            opts = ScanOptions(
                ports=(80,), concurrency=6, rate=rate, connect_timeout=10, read_timeout=5,
                request_timeout=10, target_timeout=120,
            )  # fmt: skip
            await scan_fleet(fleet, [token(h) for h in hosts], opts)
            arrivals = sorted(fleet.arrivals)
            # A lower bound only: a loaded machine can only stretch the span.
            assert len(arrivals) >= 12
            assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / rate * 0.7

    asyncio.run(go())


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_are_bounded_on_resets(retries: int) -> None:
    async def go() -> None:
        fleet = Fleet(count=1, modes=("reset",), https_share=0.0)
        async with fleet as hosts:
            h = hosts[0]
            opts = ScanOptions(
                ports=(80,), retries=retries, backoff=0.01, connect_timeout=10,
                request_timeout=10, target_timeout=60,
            )  # fmt: skip
            results = await scan_fleet(fleet, [token(h)], opts)
            assert not results[(h.host, h.port)]["reachable"]
            # http then https fallback; each request tried 1 + retries times at most.
            assert 1 <= fleet.hits[(h.host, h.port)] <= (retries + 1) * 2

    asyncio.run(go())


def test_a_failing_endpoint_does_not_stop_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    import exhunt.scan.engine as engine

    real = engine.fingerprint
    calls = {"n": 0}

    def flaky(pages: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated bug")
        return real(pages)

    monkeypatch.setattr(engine, "fingerprint", flaky)

    async def go() -> None:
        fleet = Fleet(count=3, modes=("logon",), seed=4)
        async with fleet as hosts:
            opts = ScanOptions(concurrency=1, request_timeout=10, read_timeout=6)
            results = await scan_fleet(fleet, [token(h) for h in hosts], opts)
            errors = [r for r in results.values() if "internal error" in (r["error"] or "")]
            assert len(results) == 3 and len(errors) == 1
            assert sum(1 for r in results.values() if r["build"]) == 2

    asyncio.run(go())
