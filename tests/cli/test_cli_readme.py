"""Everything the README points at exists: its links resolve inside the repository and every
`exhunt` command line it shows names real commands and options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import typer.main

from exhunt.cli import app

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text("utf-8")


def test_every_relative_link_resolves_inside_the_repository() -> None:
    links = re.findall(r"\]\(([^)\s]+)\)", README)
    local = [link.split("#")[0] for link in links if not re.match(r"[a-z]+:", link)]
    assert local, "the README links its docs"
    for link in filter(None, local):
        target = (ROOT / link).resolve()
        assert target.is_relative_to(ROOT), f"{link} leaves the repository"
        assert target.exists(), f"{link} does not exist"


def command_lines() -> list[list[str]]:
    """Each `exhunt ...` invocation in the README's shell blocks, as arguments."""
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|\|", line):
                words = shlex.split(part, comments=True, posix=True)
                if words[:1] == ["exhunt"]:
                    lines.append(words[1:])
    return lines


def resolve(args: list[str]) -> tuple[Any, list[str]]:
    """The (typer-built click) command the arguments name, and the arguments left."""
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "get_command") and rest and not rest[0].startswith("-"):
        sub = command.get_command(None, rest[0])
        if sub is None:
            break
        command, rest = sub, rest[1:]
    return command, rest


def test_every_exhunt_command_line_names_real_commands_and_options() -> None:
    lines = command_lines()
    assert len(lines) > 20
    for args in lines:
        command, rest = resolve(args)
        assert not hasattr(command, "get_command") or command.invoke_without_command, args
        known = {opt for param in command.params for opt in param.opts + param.secondary_opts}
        for word in rest:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"exhunt {' '.join(args)}: {word}"
