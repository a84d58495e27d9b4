"""`exhunt artifacts PATH`: what exhunt finds in a server's files, before hunting them.

For a responder asking "did it see my logs?": every artifact with its kind, and every
problem met on the way (refused zip members, symlinks, caps).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from exhunt.collect.base import Artifact, ArtifactKind, Collection
from exhunt.collect.source import open_collection
from exhunt.errors import InputError
from exhunt.model import iso

EXIT_UNREADABLE = 3


class ListFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `exhunt artifacts` to the top-level app (`lab` is not used)."""
    app.command("artifacts")(artifacts_command)


def artifacts_command(
    path: Annotated[str, typer.Argument(
        help="Exchange install root, triage copy (C:\\ copy, KAPE, Velociraptor) or .zip")],
    kind: Annotated[list[ArtifactKind] | None, typer.Option(
        "--kind", "-k", help="Only these kinds (repeatable).")] = None,
    fmt: Annotated[ListFormat, typer.Option("--format", "-f")] = ListFormat.TEXT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """List the artifacts exhunt finds in PATH (logs, event logs, web files) and any problems."""
    try:
        collection = open_collection(path)
    except InputError as exc:
        sys.stderr.write(_safe(str(exc)) + "\n")
        raise typer.Exit(EXIT_UNREADABLE) from None
    with collection, _walking(path, quiet):
        found = [a for a in collection.artifacts() if not kind or a.kind in kind]
    sys.stdout.write(_render(collection, found, fmt))


@contextlib.contextmanager
def _walking(path: str, quiet: bool) -> Iterator[None]:
    """A spinner on a terminal while the walk runs; nothing when piped or quiet."""
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield
        return
    with console.status(f"looking through {path}", spinner="line"):
        yield


def _render(collection: Collection, found: list[Artifact], fmt: ListFormat) -> str:
    if fmt is ListFormat.JSON:
        data = {
            "source": collection.source,
            "exchange_roots": collection.exchange_roots,
            "artifacts": [_artifact_json(a) for a in found],
            "errors": [p.to_json() for p in collection.problems],
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    lines = [f"source: {collection.source}"]
    roots = collection.exchange_roots
    lines.append("exchange installs: " + (", ".join(roots) if roots else "none found"))
    for art in found:
        extra = f" [{art.protocol}]" if art.protocol else ""
        lines.append(f"{art.kind.value:<14} {art.size:>12} {iso(art.mtime) or '-':<24} "
                     f"{art.path}{extra}")
    lines.append(f"{len(found)} artifacts, {len(collection.problems)} problems")
    lines.extend(f"problem: {p.artifact}: {p.message}" for p in collection.problems)
    return _safe("\n".join(lines) + "\n")


def _artifact_json(art: Artifact) -> dict[str, object]:
    return {
        "kind": art.kind.value,
        "path": art.path,
        "size": art.size,
        "mtime": iso(art.mtime),
        "protocol": art.protocol,
        "exchange_root": art.exchange_root,
    }


def _safe(text: str) -> str:
    """No terminal control characters from attacker-chosen file names."""
    return "".join(ch if ch == "\n" or ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
