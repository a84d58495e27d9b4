"""What both ingest benches share: the lab's two daily reports and IntelMQ's parser run on a
file in its own venv (see run.py's docstring for setting that up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from exhunt.lab.campaign import write_campaign

HERE = Path(__file__).resolve().parent


def lab_days(rows: int, prefix: str) -> tuple[Path, Path, Path]:
    """(work folder holding contacts.csv, first day's report, next day's report)."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    write_campaign(work, servers=rows, days=2, parquet=False)
    first, second = sorted(work.glob("*-scan_exchange.csv"))
    return work, first, second


def intelmq_venv() -> Path:
    """Where bench/setup-peers.sh puts IntelMQ's own venv (outside the repository)."""
    cache = os.environ.get("EXHUNT_BENCH_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "exhunt-bench")
    return Path(cache) / "intelmq-venv"


def intelmq_parse(csv_path: Path) -> dict[str, Any]:
    """IntelMQ's Shadowserver parser on the file: rows, events, errors, seconds."""
    peer = os.environ.get("INTELMQ_PYTHON") or str(intelmq_venv() / "bin" / "python")
    if not Path(peer).exists():
        sys.exit(f"IntelMQ venv not found at {peer}: run `bash bench/setup-peers.sh` first")
    out = subprocess.run([peer, str(HERE / "intelmq_side.py"), str(csv_path)],
                         capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result
