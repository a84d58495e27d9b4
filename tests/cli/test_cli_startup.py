"""A command loads only the part of exhunt it needs: `exhunt --help` lists every command
without importing a library behind one, `exhunt scan` on a scanning box does not wait for the
coordinator's database layer or the web stack, and `exhunt builds` does not even import typer."""

from __future__ import annotations

import subprocess
import sys

# Libraries and exhunt packages that only a running command needs (each costs tens to
# hundreds of milliseconds to import).
HEAVY = ("sqlalchemy", "alembic", "fastapi", "uvicorn", "dask", "distributed", "duckdb",
         "pyarrow", "aiohttp", "hyperscan", "evtx", "yara_x", "sigma", "jinja2", "stix2",
         "pymisp", "orjson", "exhunt.store", "exhunt.cases", "exhunt.web", "exhunt.hunt",
         "exhunt.scan", "exhunt.collect", "exhunt.readers", "exhunt.checks", "exhunt.lab",
         "exhunt.share", "rich.progress")

PROBE = """
import sys
sys.argv = ["exhunt", *{args!r}]
from exhunt.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED", " ".join(sorted(sys.modules)))
"""


def loaded(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))],
                         capture_output=True, text=True, timeout=120, check=False)
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED"))
    return set(line.split()[1:])


def heavy_in(modules: set[str]) -> set[str]:
    return {m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)}


def test_help_imports_no_library_behind_a_command() -> None:
    for args in (("--help",), ("hunt", "--help"), ("lab", "--help"), ("cases", "--help")):
        mods = loaded(*args)
        assert "exhunt.cli.coordinate" in mods or args[0] not in ("--help", "cases")
        assert not heavy_in(mods), (args, sorted(heavy_in(mods)))


def test_scan_and_builds_do_not_load_the_coordinator_or_the_web() -> None:
    scan = loaded("scan", "--help")
    assert "exhunt.cli.scan" in scan
    assert not scan & {"sqlalchemy", "fastapi", "dask", "exhunt.cli.coordinate",
                       "exhunt.cli.web"}, sorted(scan)
    builds = loaded("builds", "15.1.2176.2")
    assert "exhunt.intel.builds" in builds
    assert not builds & {"typer", "click", "rich", "sqlalchemy", "exhunt.cli.common"}


def test_help_still_lists_every_part() -> None:
    out = subprocess.run([sys.executable, "-m", "exhunt.cli", "--help"], capture_output=True,
                         text=True, timeout=120, check=False)
    for command in ("hunt", "scan", "builds", "ingest", "notify", "serve", "artifacts",
                    "checks", "lab", "cases", "users", "baseline", "demo"):
        assert command in out.stdout, command
