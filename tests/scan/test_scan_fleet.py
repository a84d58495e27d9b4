"""The lab fleet as a library: loopback only, planned builds, clean shutdown."""

from __future__ import annotations

import asyncio
import socket

import pytest

from exhunt.lab.fleet import ALL_MODES, Fleet, expected_build


def test_fleet_refuses_anything_but_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Fleet(count=1, first_address="192.0.2.1")
    with pytest.raises(ValueError, match="unknown fleet mode"):
        Fleet(count=1, modes=("exploit",))


def test_fleet_too_large_to_stay_in_loopback_fails_before_listening() -> None:
    async def go() -> None:
        fleet = Fleet(count=3, per_address=1, first_address="127.255.255.254")
        with pytest.raises(ValueError, match="leave 127"):
            await fleet.__aenter__()
        assert fleet.hosts == [] or all(h.host.startswith("127.") for h in fleet.hosts)

    asyncio.run(go())


def test_expected_build_per_mode() -> None:
    assert expected_build("15.1.2176.9", "header") == "15.1.2176.9"
    assert expected_build("15.1.2176.9", "exporttool") == "15.1.2176.9"
    assert expected_build("15.1.2176.9", "logon") == "15.1.2176"
    assert expected_build("14.3.513.0", "logon") == "14.3.513.0"
    assert expected_build("15.1.2176.9", "redirect-out") is None


def test_fleet_serves_every_mode_on_loopback_and_shuts_down_cleanly() -> None:
    async def go() -> list[tuple[str, int]]:
        fleet = Fleet(count=len(ALL_MODES), modes=ALL_MODES, seed=9)
        async with fleet as hosts:
            assert {h.mode for h in hosts} == set(ALL_MODES)
            assert all(h.host.startswith("127.") for h in hosts)
            assert fleet.canary is not None and fleet.canary[0].startswith("127.")
            return [(h.host, h.port) for h in hosts]

    addresses = asyncio.run(go())
    for host, port in addresses:
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex((host, port)) != 0  # nothing left listening
