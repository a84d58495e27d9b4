"""A command loads only the part of exhunt it needs: `exhunt scan` on a scanning box, or in a
loop over target lists, must not wait for the coordinator's database layer or the web stack."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
sys.argv = ["exhunt", *{args!r}]
from exhunt.cli import main
try:
    main()
except SystemExit:
    pass
print("LOADED", " ".join(sorted(m for m in ("sqlalchemy", "fastapi", "dask", "exhunt.cases.cli",
                                         "exhunt.web.cli", "exhunt.scan.cli") if m in sys.modules)))
"""


def loaded(*args: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(args=list(args))],
                         capture_output=True, text=True, timeout=120, check=False)
    line = next(x for x in out.stdout.splitlines() if x.startswith("LOADED"))
    return set(line.split()[1:])


def test_scan_and_builds_do_not_load_the_coordinator_or_the_web() -> None:
    for args in (("scan", "--help"), ("builds", "15.1.2176.2")):
        mods = loaded(*args)
        assert args[0] == "builds" or "exhunt.scan.cli" in mods, args
        assert not mods & {"sqlalchemy", "fastapi", "dask", "exhunt.cases.cli",
                           "exhunt.web.cli"}, (args, mods)


def test_help_still_lists_every_part() -> None:
    out = subprocess.run([sys.executable, "-m", "exhunt.cli", "--help"], capture_output=True,
                         text=True, timeout=120, check=False)
    for command in ("hunt", "scan", "builds", "ingest", "notify", "serve", "artifacts"):
        assert command in out.stdout, command
