"""What every benchmark shares, so each one is honest in the same way.

- Work happens under one temporary folder that is removed at the end (``--keep DIR`` copies it
  out first); nothing is written into the repository.
- BENCHMARKS.md is only touched when ``--append`` is given.
- Two tools are timed in alternation (A B A B ...), so a noisy neighbour on the shared cores
  hits both alike; results are medians with min and max.
- Peak memory is that of the timed command itself (GNU time between it and the driver), never
  the driver's or the largest child the driver ever had (the lab builder run before it, say).
- Peers are installed by ``bench/setup-peers.sh``; a missing one stops the run before any work
  with the line that installs it.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SETUP = "bash bench/setup-peers.sh"


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """A parser with the options every benchmark takes."""
    parser = argparse.ArgumentParser(description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each tool")
    parser.add_argument("--append", action="store_true",
                        help="add this run's section to BENCHMARKS.md")
    parser.add_argument("--keep", type=Path, help="copy the work folder here before removing it")
    return parser


@contextmanager
def workdir(prefix: str, keep: Path | None = None) -> Iterator[Path]:
    """A temporary folder for everything the run writes, removed whatever happens."""
    folder = Path(tempfile.mkdtemp(prefix=f"exhunt-bench-{prefix}-"))
    try:
        yield folder
    finally:
        if keep is not None:
            shutil.copytree(folder, keep, dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)


def need(program: str) -> str:
    """The peer's path, or stop before any work with the command that installs it."""
    found = shutil.which(program)
    if found is None:
        sys.exit(f"the peer '{program}' is missing: run `{SETUP}` first")
    return found


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    stdout: str


def run_command(cmd: Sequence[str], ok: tuple[int, ...] = (0,)) -> Run:
    """Time one command as a whole process, and its own peak RSS.

    The peak comes from GNU time started in between: a child forked straight from this
    driver would inherit the driver's own high-water mark (the lab fleet it serves, say)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as peak:
        wrapped = ["/usr/bin/time", "-f", "%M", "-o", peak.name, *cmd]
        start = time.perf_counter()
        proc = subprocess.run(wrapped, stdout=out, stderr=err, check=False)
        elapsed = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        if proc.returncode not in ok:
            tail = err.read().decode("utf-8", "replace")[-2000:]
            sys.exit(f"{cmd[0]} failed ({proc.returncode}): {tail}")
        kib = int((peak.read().strip().splitlines() or ["0"])[-1])  # GNU time: KiB
        return Run(elapsed, kib / 1024, out.read().decode("utf-8", "replace"))


@dataclass
class Series:
    """Repeated figures of one tool (seconds, or any other measure)."""

    name: str
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def span(self, unit: str = "s", digits: int = 2) -> str:
        lo, hi = min(self.values), max(self.values)
        return f"{self.median:.{digits}f} {unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def alternate(runs: int, tools: dict[str, Callable[[], float]]) -> dict[str, Series]:
    """Each tool `runs` times, interleaved, the order rotating each round."""
    series = {name: Series(name) for name in tools}
    names = list(tools)
    for round_ in range(runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            series[name].values.append(tools[name]())
    return series


def ratio_span(numerator: Series, denominator: Series) -> str:
    """Median of the per-round ratios, with their range (rounds were run side by side)."""
    ratios = [a / b for a, b in zip(numerator.values, denominator.values, strict=True)]
    return f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"


def machine() -> str:
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores (shared), "
            f"Python {platform.python_version()}")


def section(title: str, command: str, body: str) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (f"\n## {title}\n\n- command: `{command}`\n- date: {when}\n- machine: {machine()}\n\n"
            f"```\n{body.rstrip()}\n```\n")


def record(args: argparse.Namespace, title: str, body: str) -> None:
    """Print the result; add it to BENCHMARKS.md only when asked (--append)."""
    print(body.rstrip())
    if not args.append:
        return
    command = "python " + " ".join([os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    with (REPO / "BENCHMARKS.md").open("a", encoding="utf-8") as out:
        out.write(section(title, command, body))
    print("appended to BENCHMARKS.md")
