"""Throttling slows a guesser and nobody else (issue 11): failures are counted per account and
per case a token names, with a wider per-address bound; the address comes from X-Forwarded-For
only through the operator's trusted proxies; a spray of addresses cannot wipe the record."""

from __future__ import annotations

import ipaddress
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.store.db import Store
from exhunt.web.app import create_app
from exhunt.web.security import FailureLimiter, add_user, client_address, trusted_networks
from helpers.webworld import COORDINATOR, World

SECOND = ("second", "another long enough password")
PROXY = ("10.0.0.5", 40000)  # the CERT's reverse proxy, as the server sees it


def _login(client: TestClient, user: str, password: str, forwarded: str | None = None) -> int:
    page = client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return client.post("/login", data={"username": user, "password": password,
                                       "csrf": csrf.group(1)},
                       headers=headers, follow_redirects=False).status_code


def _with_second_user(world: World) -> None:
    store = Store(world.url)
    with store.transaction() as session:
        add_user(session, *SECOND)
    store.close()


def test_guessing_one_account_locks_that_account_only(world: World) -> None:
    _with_second_user(world)
    client = TestClient(create_app(world.url), client=PROXY)
    for _ in range(5):
        assert _login(client, COORDINATOR[0], "wrong password!") == 401
    assert _login(client, COORDINATOR[0], COORDINATOR[1]) == 429
    # behind the same proxy address, another coordinator with the right password gets in
    assert _login(client, *SECOND) == 303


def test_guessing_one_account_from_many_addresses_stays_bounded(world: World) -> None:
    client = TestClient(create_app(world.url, trusted_proxies=["10.0.0.0/24"]), client=PROXY)
    statuses = [_login(client, COORDINATOR[0], "wrong password!", f"203.0.113.{n}")
                for n in range(1, 21)]
    assert statuses.count(401) == 5 and statuses.count(429) == 15
    assert _login(client, COORDINATOR[0], COORDINATOR[1], "198.51.100.99") == 429


def test_one_address_is_bounded_across_accounts(world: World) -> None:
    client = TestClient(create_app(world.url, address_limit=8), client=("203.0.113.7", 1))
    statuses = [_login(client, f"nobody{n}", "wrong password!") for n in range(10)]
    assert statuses == [401] * 8 + [429] * 2
    other = TestClient(create_app(world.url), client=("203.0.113.8", 1))
    assert _login(other, *COORDINATOR) == 303


def test_forwarded_header_is_believed_only_from_trusted_proxies(world: World) -> None:
    # not trusted: each forged X-Forwarded-For is ignored, the peer's own address counts
    app = create_app(world.url, address_limit=3)
    direct = TestClient(app, client=("203.0.113.7", 1))
    statuses = [_login(direct, f"nobody{n}", "wrong password!", f"198.51.100.{n}")
                for n in range(4)]
    assert statuses == [401, 401, 401, 429]
    # trusted: the client's address is the right-most entry that is not a proxy
    networks = trusted_networks(["10.0.0.0/24"])
    assert client_address("10.0.0.5", "1.2.3.4, 203.0.113.9, 10.0.0.7", networks) \
        == "203.0.113.9"
    assert client_address("203.0.113.50", "10.0.0.1", networks) == "203.0.113.50"
    assert client_address("10.0.0.5", "junk", networks) == "10.0.0.5"
    assert client_address("10.0.0.5", None, networks) == "10.0.0.5"


def test_a_spray_of_addresses_cannot_flush_the_table() -> None:
    limiter = FailureLimiter(limit=5, window=300.0, address_limit=3, max_keys=100)
    for _ in range(3):
        limiter.failed("203.0.113.1")
    assert limiter.blocked("203.0.113.1")
    for n in range(10_000):  # far more addresses than the table holds
        limiter.failed(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
    assert limiter.blocked("203.0.113.1")  # the guesser's record is still there
    assert len(limiter._addresses) <= 101  # bounded


def test_an_ipv6_slash_64_counts_as_one_address() -> None:
    limiter = FailureLimiter(limit=5, window=300.0, address_limit=3)
    for n in range(3):
        limiter.failed(f"2001:db8:1:2::{n + 1}")
    assert limiter.blocked("2001:db8:1:2:ffff::9")
    assert not limiter.blocked("2001:db8:1:3::1")


def test_guessing_a_case_token_through_the_access_form_locks_that_case_only(
        app: FastAPI, world: World) -> None:
    client = TestClient(app)
    page = client.get("/access")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    prefix = world.token_a.rsplit(".", 1)[0]
    for n in range(5):
        wrong = client.post("/access", data={"token": f"{prefix}.{str(n) * 40}",
                                             "csrf": csrf.group(1)})
        assert wrong.status_code == 401
    right = client.post("/access", data={"token": world.token_a, "csrf": csrf.group(1)},
                        follow_redirects=False)
    assert right.status_code == 429
    other = client.post("/access", data={"token": world.token_b, "csrf": csrf.group(1)},
                        follow_redirects=False)
    assert other.status_code == 303


def test_wrong_tokens_from_a_shared_address_do_not_lock_out_right_ones(world: World) -> None:
    """Behind one proxy address (not declared trusted), a guesser spraying tokens of unknown
    cases is slowed; the victims behind the same address still open their cases."""
    app = create_app(world.url, address_limit=5)
    client = TestClient(app, client=PROXY)
    statuses = [client.get(f"/api/cases/EXH-{n:010d}",
                           headers={"Authorization": f"Bearer exv1.EXH-{n:010d}.{'0' * 40}"}
                           ).status_code for n in range(8)]
    assert statuses == [401] * 5 + [429] * 3
    right = client.get(f"/api/cases/{world.case_b}",
                       headers={"Authorization": f"Bearer {world.token_b}"})
    assert right.status_code == 200
    page = client.get("/access")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    wrong = client.post("/access", data={"token": "exv1.EXH-X.00", "csrf": csrf.group(1)})
    assert wrong.status_code == 429
    opened = client.post("/access", data={"token": world.token_a, "csrf": csrf.group(1)},
                         follow_redirects=False)
    assert opened.status_code == 303


@settings(max_examples=300, deadline=None)
@given(st.lists(st.ip_addresses().map(str) | st.text(max_size=12), max_size=6),
       st.sampled_from(["10.0.0.5", "203.0.113.50"]))
def test_client_address_is_the_peer_or_a_listed_address(entries: list[str], peer: str) -> None:
    """Whatever a client writes in X-Forwarded-For: an untrusted peer is itself; through a
    trusted proxy the answer is one of the written addresses or the proxy, never junk."""
    networks = trusted_networks(["10.0.0.0/24"])
    header = ", ".join(entries)
    got = client_address(peer, header, networks)
    if peer == "203.0.113.50":
        assert got == peer
    else:
        assert got == peer or got in [e.strip() for e in header.split(",")]
        ipaddress.ip_address(got)  # always an address
