"""IntelMQ's parser run on a file in its own venv (see run.py's docstring for setting that up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


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
