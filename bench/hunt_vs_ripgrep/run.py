"""exhunt hunt against ripgrep over the same lab triage copy.

One command: `.venv/bin/python bench/hunt_vs_ripgrep/run.py [--size 2GB] [--runs 3]`

ripgrep counts the lines holding any literal the checks rely on (`rg -c -i -F -f`), which is
the least work any hunt must do: read every byte once. It reads several GB/s from the page
cache here, so it stands for the physical limit rather than a peer. exhunt does that and
then parses the matched lines, runs every check and writes the JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
EXHUNT = ROOT / ".venv" / "bin" / "exhunt"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="2GB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rg = shutil.which("rg") or install_ripgrep()
    copy = build_copy(args.size)
    logs = log_folders(copy)
    patterns = OUT / "hunt-literals.txt"
    patterns.write_text("\n".join(check_literals()) + "\n", "utf-8")
    size = sum(f.stat().st_size for d in logs for f in d.rglob("*") if f.is_file())
    warm(logs)
    rg_cmd = [rg, "-c", "-i", "-F", "--no-ignore", "--hidden", "-f", str(patterns), *map(str, logs)]
    ex_cmd = [str(EXHUNT), "hunt", str(copy), "--format", "json", "--quiet"]
    rg_times = [timed(rg_cmd)[0] for _ in range(args.runs)]
    ex_runs = [timed(ex_cmd) for _ in range(args.runs)]
    ex_times = [t for t, _ in ex_runs]
    report = json.loads(ex_runs[-1][1])
    truth = json.loads((copy.parent / (copy.name + ".truth.json")).read_text("utf-8"))
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    rg_best, ex_best = min(rg_times), min(ex_times)
    print(f"copy: {copy} ({size / 1e9:.2f} GB of logs in {len(logs)} folders)")
    print(f"ripgrep : best {rg_best:.2f} s, median {statistics.median(rg_times):.2f} s "
          f"({size / rg_best / 1e6:,.0f} MB/s)")
    print(f"exhunt  : best {ex_best:.2f} s, median {statistics.median(ex_times):.2f} s "
          f"({size / ex_best / 1e6:,.0f} MB/s), peak RSS of any process {rss:,.0f} MB")
    print(f"ratio exhunt/ripgrep wall time (best of {args.runs}): {ex_best / rg_best:.2f}x")
    print(f"verdict: {report['verdict']} (lab truth: {truth['scenario']})")


def install_ripgrep() -> str:
    """The peer comes from Debian's packages (this machine's only package source for it)."""
    subprocess.run(["apt-get", "install", "-y", "-qq", "ripgrep"], check=False,
                   capture_output=True)
    return shutil.which("rg") or sys.exit("ripgrep is missing: apt-get install -y ripgrep")


def build_copy(size: str) -> Path:
    copy = OUT / f"triage-reentered-{size}"
    if not (copy.parent / (copy.name + ".truth.json")).exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(EXHUNT), "lab", "triage", str(copy), "--scenario", "reentered",
                        "--size", size, "--seed", "7", "--quiet"], check=True)
    return copy


def log_folders(copy: Path) -> list[Path]:
    found = [p for p in copy.rglob("*") if p.is_dir() and p.name.lower() in ("logging", "logfiles")]
    return sorted(found)


def check_literals() -> list[str]:
    sys.path.insert(0, str(ROOT / "src"))
    from exhunt.checks.base import registered_checks

    return sorted({lit for c in registered_checks() for lit in (c.literals or ())})


def warm(folders: list[Path]) -> None:
    for folder in folders:
        for path in folder.rglob("*"):
            if path.is_file():
                with path.open("rb") as f:
                    while f.read(16 << 20):
                        pass


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ})
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):  # rg exits 1 when nothing matched
        sys.exit(f"{cmd[0]} failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout


if __name__ == "__main__":
    main()
