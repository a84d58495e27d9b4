"""The one-command demo, small: it builds every part on loopback, serves the dashboard with
a working coordinator login, and Ctrl-C (SIGINT) stops every part."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

SMALL = "servers=24, feed_servers=60, days=8, compromised=2"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_closed(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_ctrl_c_while_the_world_is_built_stops_every_part(tmp_path: Path) -> None:
    port = _free_port()
    code = (f"from exhunt.demo import run_demo; run_demo(port={port}, servers=120, "
            "feed_servers=200, days=10, compromised=3)")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "contacts of the fleet" in line:  # the fleet is starting or scanning now
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()  # the interrupt was not obeyed: fail below, leave nothing running
            proc.wait()
    assert proc.returncode not in (0, -9)  # interrupted, not finished
    assert not list(tmp_path.glob("exhunt-demo-*"))  # its working folder is gone
    assert _port_closed(port)


def test_demo_serves_the_dashboard_and_stops_on_ctrl_c() -> None:
    port = _free_port()
    code = f"from exhunt.demo import run_demo; run_demo(port={port}, {SMALL})"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        lines: list[str] = []
        for line in proc.stderr:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(lines)
        assert "lab fleet of 24 servers up and scanned" in text, text
        password = re.search(r"password (\S+)", text)
        assert password is not None, text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(200):  # the server starts listening just after the banner
                try:
                    page = client.get("/login")
                    break
                except httpx.TransportError:
                    time.sleep(0.05)
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            client.post("/login", data={"username": "coordinator",
                                        "password": password.group(1),
                                        "csrf": csrf.group(1)})
            summary = client.get("/api/summary").json()
        assert summary["by_group"]["backdoored"] >= 1  # the hunted triage copies
        assert summary["funnel"]["delivered"] >= 1  # notices reached the demo's sink
        assert summary["funnel"]["delivered"] == summary["funnel"]["notified"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    assert rc == 0
    assert _port_closed(port)
