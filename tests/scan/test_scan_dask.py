"""Sharding a scan over a Dask LocalCluster: the list is split, every result comes back."""

from __future__ import annotations

import pytest

from exhunt.scan.engine import Result, ScanOptions
from exhunt.scan.scope import build_scope
from exhunt.scan.shard import chunked, scan_with_client
from exhunt.scan.targets import Endpoint, endpoints, gather
from helpers.scan_lab import fleet_in_thread

distributed = pytest.importorskip("distributed")

# Dask's own HTTP endpoint moves off port 8787 when another cluster holds it; harmless here.
pytestmark = pytest.mark.filterwarnings("ignore:Port .* is already in use:UserWarning")


def test_chunking_covers_everything_once() -> None:
    items = [Endpoint(f"192.0.2.{i}", 443) for i in range(1, 11)]
    parts = chunked(items, 3)
    assert [e for p in parts for e in p] == items and len(parts) == 3
    assert chunked([], 4) == []


def test_scan_on_local_cluster_matches_a_local_scan() -> None:
    with fleet_in_thread(count=12, modes=("header", "logon", "exporttool")) as (_fleet, hosts):
        specs, _ = gather([f"{h.host}:{h.port}" for h in hosts])
        scope = build_scope(specs)
        opts = ScanOptions(concurrency=8, request_timeout=10, read_timeout=6)
        eps = list(endpoints(specs, opts.ports))
        results: list[Result] = []
        with (
            distributed.LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=False,
                dashboard_address=None,
                host="127.0.0.1",
                protocol="tcp://",
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            n = scan_with_client(client, eps, scope, opts, results.append)
        assert n == len(hosts)
        by_key = {(r["target"], r["port"]): r for r in results}
        assert len(by_key) == len(hosts)
        for h in hosts:
            assert by_key[(h.host, h.port)]["build"] == h.expected


def test_cli_dask_option(tmp_path: object) -> None:
    import json

    from typer.testing import CliRunner

    from exhunt.cli import register_areas

    app = register_areas("scan")
    runner = CliRunner()
    with (
        fleet_in_thread(count=4, modes=("header",)) as (_fleet, hosts),
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None,
            host="127.0.0.1", protocol="tcp://",
        ) as cluster,
    ):  # fmt: skip
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        out = runner.invoke(
            app, ["scan", *[f"{h.host}:{h.port}" for h in hosts], "--dask", address, "-q"]
        )
        assert out.exit_code == 0, out.output
        got = {json.loads(x)["build"] for x in out.stdout.splitlines()}
        assert got == {h.build for h in hosts}
    bad = runner.invoke(app, ["scan", "127.0.0.1", "--dask", "localhost:1", "-q"])
    assert bad.exit_code == 2
