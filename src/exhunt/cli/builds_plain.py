"""`exhunt builds`: many Exchange builds explained at once, without loading the rest of exhunt.

A CERT pipes a feed's version column in (`cut -d, -f15 report.csv | exhunt builds -`) and
wants the answers as JSON: this entry point imports the build table and the standard library
only, so that a call answers in a fraction of the time the whole command line takes to import
(exhunt.cli.main hands `builds` here before typer is even imported). Typer's `builds` command
(exhunt.cli.builds, for the whole app's --help and in-process tests) calls the same `run`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from exhunt.intel.builds import BuildExplanation, BuildTable

FORMATS = ("text", "json", "jsonl")
USAGE = """Usage: exhunt builds [OPTIONS] BUILD... | -

  Explain Exchange builds: product, CU, update, status per CVE, what to install.
  BUILD is e.g. 15.1.2176.9 or 15.1.2176 (CU only); '-' reads one build per line from
  standard input.

Options:
  --format [text|json|jsonl]  json: one object for one BUILD argument, else an array;
                              jsonl: one object per line.  [default: text]
  --table FILE                explain with this build table instead of the shipped one
                              (exchange_builds.csv's layout; to try a new update)
  --check-table FILE          check a build table and say what is wrong with it
  --help                      Show this message and exit.
"""


class UsageProblem(Exception):
    """A command line that cannot be run (exit status 2)."""


def explanation_text(info: BuildExplanation) -> str:
    """The plain-text answer for one build."""
    update = info.update or ("none (CU release)" if info.exact and info.known else "not visible")
    lines = [info.build, f"  product: {info.product or 'unknown'}",
             f"  CU:      {info.cu or 'unknown'}", f"  update:  {update}", "  status:"]
    lines += [f"    {cve}  {status}" for cve, status in info.vulnerabilities.items()]
    lines.append("  install:")
    lines += [f"    - {line}" for line in info.install]
    lines += [f"  note: {note}" for note in info.notes]
    lines.append("  sources:")
    lines += [f"    - {source}" for source in info.sources]
    return "\n".join(lines) + "\n"


def wanted(builds: list[str], stdin: TextIO) -> Iterable[str]:
    """The builds asked for, '-' standing for one per line of standard input."""
    for build in builds:
        if build != "-":
            yield build
            continue
        for line in stdin:
            if line.strip():
                yield line.strip()


def run(builds: list[str], fmt: str, out: TextIO, err: TextIO, stdin: TextIO,
        table: BuildTable | None = None) -> int:
    """Answer for every build; an unreadable one is an error line (JSON: an object with
    'error') and exit status 2, the others are still answered."""
    from exhunt.intel.builds import load_table

    if fmt not in FORMATS:
        raise UsageProblem("--format is text, json or jsonl")
    if not builds:
        raise UsageProblem("give at least one BUILD, or '-' to read them from standard input")
    table = table or load_table()
    answers: list[dict[str, object]] = []
    status = 0
    for build in wanted(builds, stdin):
        try:
            info = table.explain(build)
        except ValueError as exc:
            status = 2
            err.write(f"error: {exc}\n")
            answers.append({"build": build[:200], "error": str(exc)})
            if fmt == "jsonl":
                out.write(json.dumps(answers.pop()) + "\n")
            continue
        if fmt == "text":
            out.write(explanation_text(info))
        elif fmt == "jsonl":
            out.write(json.dumps(info.to_dict()) + "\n")
        else:
            answers.append(info.to_dict())
    if fmt == "json":
        single = len(builds) == 1 and builds[0] != "-" and len(answers) == 1
        if not (single and "error" in answers[0]):
            out.write(json.dumps(answers[0] if single else answers, indent=2) + "\n")
    return status


def check(path: Path, out: TextIO) -> int:
    """`--check-table FILE`: 0 when the table can be shipped, 1 with its problems."""
    from exhunt.intel.builds import check_table

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read: {exc}") from exc
    problems = check_table(text)
    for problem in problems:
        out.write(f"{path}: {problem}\n")
    if not problems:
        out.write(f"{path}: {max(len(text.splitlines()) - 1, 0)} rows, no problem found\n")
    return 1 if problems else 0


def local_table(path: Path) -> BuildTable:
    from exhunt.intel.builds import check_table, table_from

    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageProblem(f"{path}: cannot read: {exc}") from exc
    problems = check_table(text)
    if problems:
        raise UsageProblem(f"{path}: {problems[0]} (see --check-table)")
    return table_from(text)


def main(argv: list[str]) -> int:
    """The command line, parsed by hand: argparse alone costs what this command must not."""
    builds: list[str] = []
    fmt, table_path, check_path = "text", None, None
    args = iter(argv)
    try:
        for arg in args:
            if arg in ("--help", "-h"):
                sys.stdout.write(USAGE)
                return 0
            if arg.startswith("--") and "=" in arg:
                arg, value = arg.split("=", 1)
            elif arg in ("--format", "-f", "--table", "--check-table"):
                value = next(args, "")
                if not value:
                    raise UsageProblem(f"{arg} needs a value")
            elif arg.startswith("-") and arg != "-":
                raise UsageProblem(f"no such option: {arg}")
            else:
                builds.append(arg)
                continue
            if arg in ("--format", "-f"):
                fmt = value
            elif arg == "--table":
                table_path = Path(value)
            elif arg == "--check-table":
                check_path = Path(value)
            else:
                raise UsageProblem(f"no such option: {arg}")
        if check_path is not None:
            return check(check_path, sys.stdout)
        table = local_table(table_path) if table_path is not None else None
        return run(builds, fmt, sys.stdout, sys.stderr, sys.stdin, table)
    except UsageProblem as exc:
        sys.stderr.write(f"{USAGE}\nError: {exc}\n")
        return 2
    except BrokenPipeError:  # `exhunt builds - | head`: the reader has gone
        return 0

