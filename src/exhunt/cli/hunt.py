"""`exhunt hunt`, and the two commands around it: `exhunt artifacts` (what exhunt finds in a
server's files before hunting them) and `exhunt baseline build` (a clean server's web-file
hashes)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from exhunt.cli.common import (
    EXIT_UNREADABLE,
    Format,
    QuietOption,
    command_group,
    failures,
    format_option,
    plain,
    progress_bar,
    server_progress,
    wanted,
)
from exhunt.errors import InputError, UsageError
from exhunt.model import Tlp

if TYPE_CHECKING:  # the modules themselves load with the command that needs them
    from exhunt.collect.base import Artifact, Collection
    from exhunt.model import HuntReport
    from exhunt.share.options import ShareOptions

HUNT_FORMATS = (Format.TEXT, Format.JSON, Format.HTML, Format.STIX, Format.MISP,
                Format.TIMELINE, Format.TIMELINE_CSV, Format.ECS)
LIST_FORMATS = (Format.TEXT, Format.JSON)
PathArgument = Annotated[str, typer.Argument(
    help="Exchange install root, triage copy (C:\\ copy, KAPE, Velociraptor) or .zip")]


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add `hunt`, `artifacts` and `baseline build` to the top-level app."""
    del lab
    app.command("hunt")(hunt_command)
    app.command("artifacts")(artifacts_command)
    baseline = command_group(help="Known-good hashes of a clean Exchange server's web files.",
                             no_args_is_help=True)
    baseline.command("build")(baseline_build)
    app.add_typer(baseline, name="baseline")


def hunt_command(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Exchange install root, triage copy (C:\\ copy, KAPE, Velociraptor) or .zip")] = None,
    each: Annotated[Path | None, typer.Option(
        "--each", help="Hunt every copy (folder or .zip) directly inside this folder.")] = None,
    fmt: Annotated[Format, format_option(*HUNT_FORMATS, short=True)] = Format.TEXT,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write here instead of standard output (a folder for several "
        "HTML reports).")] = None,
    yara: Annotated[list[Path] | None, typer.Option(
        "--yara", help="Also run the YARA rules in this folder on web files (repeatable).")] = None,
    sigma: Annotated[list[Path] | None, typer.Option(
        "--sigma", help="Also run the Sigma rules in this folder (e.g. SigmaHQ's rules/windows) "
        "on the event logs (repeatable).")] = None,
    iocs: Annotated[list[Path] | None, typer.Option(
        "--iocs", help="IOC list: hashes (HASH;COMMENT), file names (REGEX;SCORE), a STIX 2.1 "
        "bundle or a MISP event (repeatable).")] = None,
    baseline: Annotated[list[Path] | None, typer.Option(
        "--baseline", help="Known-good web-file hashes from `exhunt baseline build` "
        "(repeatable).")] = None,
    summary: Annotated[Path | None, typer.Option(
        "--summary", metavar="FILE.json|FILE.html",
        help="Also write the fleet summary: verdicts, shared infrastructure, waves.")] = None,
    stix: Annotated[Path | None, typer.Option(
        "--stix", metavar="FILE.json",
        help="Also write a STIX 2.1 bundle of all the copies: indicators, sightings, CVEs, "
        "one intrusion-set per shared-infrastructure cluster.")] = None,
    tlp: Annotated[Tlp, typer.Option(
        "--tlp", help="TLP marking of STIX and MISP output.")] = Tlp.AMBER,
    producer: Annotated[str, typer.Option(
        "--producer", help="Who produces STIX and MISP output (its identity / organisation)."
    )] = "exhunt",
    dask: Annotated[str | None, typer.Option(
        "--dask", metavar="tcp://HOST:PORT",
        help="Hunt on this Dask scheduler; every worker must read the copies under the same "
        "path.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="Processes to read with (with several copies: copies hunted at once).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Was this Exchange server probed, exploited, back-doored or re-entered? Since when? Who?"""
    wanted(fmt, *HUNT_FORMATS)
    sources = list(paths or [])
    if each is not None:
        sources.extend(_copies_in(each))
    if not sources:
        raise typer.BadParameter("give at least one PATH, or --each FOLDER")
    if fmt is Format.HTML and len(sources) > 1 and (output is None or output.is_file()):
        raise typer.BadParameter("several HTML reports need --output FOLDER")
    if summary is not None and summary.suffix.lower() not in (".json", ".html", ".htm"):
        raise typer.BadParameter("--summary must end in .json or .html")
    with failures(unreadable=EXIT_UNREADABLE):
        reports = _hunt(sources, yara, sigma, iocs, baseline, dask, workers, quiet)
        _write(reports, fmt, output, summary, stix, tlp, producer)
    if any(r.unreadable for r in reports):
        raise typer.Exit(EXIT_UNREADABLE)


def _hunt(sources: list[str], yara: list[Path] | None, sigma: list[Path] | None,
          iocs: list[Path] | None, baseline: list[Path] | None, dask: str | None,
          workers: int | None, quiet: bool) -> list[HuntReport]:
    from exhunt.hunt.engine import hunt
    from exhunt.hunt.files import FileStageSettings
    from exhunt.hunt.fleet_run import hunt_many

    files = FileStageSettings(yara_dirs=tuple(str(p) for p in yara or ()),
                              ioc_files=tuple(str(p) for p in iocs or ()),
                              baselines=tuple(str(p) for p in baseline or ()),
                              sigma_dirs=tuple(str(p) for p in sigma or ()))
    if len(sources) == 1 and dask is None:
        with progress_bar(f"hunting {sources[0]}", quiet) as progress:
            return [hunt(sources[0], workers=workers, progress=progress, files=files)]
    with server_progress(quiet) as fleet_progress:
        return hunt_many(sources, workers=workers, dask_address=dask,
                         progress=fleet_progress, file_stage=files)


def _write(reports: list[HuntReport], fmt: Format, output: Path | None, summary: Path | None,
           stix: Path | None, tlp: Tlp, producer: str) -> None:
    from exhunt.hunt.fleet import write_fleet_summary
    from exhunt.share.options import ShareOptions
    from exhunt.share.writers import render

    share = ShareOptions(producer=producer, tlp=tlp.value)
    _emit(reports, fmt, output, share)
    if summary is not None:
        write_fleet_summary(reports, summary)
    if stix is not None:
        stix.write_text(render("stix", reports, share), "utf-8")


def _copies_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder")
    return [str(p) for p in sorted(folder.iterdir()) if p.is_dir() or p.suffix.lower() == ".zip"]


def _emit(reports: list[HuntReport], fmt: Format, output: Path | None,
          share: ShareOptions) -> None:
    from exhunt.hunt.report import report_html, report_json, report_text
    from exhunt.share.writers import render

    if fmt is Format.HTML and len(reports) > 1 and output is not None:
        output.mkdir(parents=True, exist_ok=True)
        for i, report in enumerate(reports, 1):
            name = Path(report.source.rstrip("/\\")).name or f"copy{i}"
            (output / f"{i:03d}-{name}.html").write_text(report_html(report), "utf-8")
        return
    if fmt is Format.JSON:
        data = [report_json(r) for r in reports]
        text = json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)
        text += "\n"
    elif fmt is Format.HTML:
        text = report_html(reports[0])
    elif fmt is Format.TEXT:
        text = "\n".join(report_text(r) for r in reports)
    else:
        text = render(fmt.value, reports, share)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")


def artifacts_command(
    path: PathArgument,
    kind: Annotated[list[str] | None, typer.Option(
        "--kind", "-k", metavar="KIND", help="Only this kind (repeatable): iis, httpproxy, "
        "evtx, web-file... as the listing names them.")] = None,
    fmt: Annotated[Format, format_option(*LIST_FORMATS, short=True)] = Format.TEXT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """List the artifacts exhunt finds in PATH (logs, event logs, web files) and any problems."""
    from exhunt.collect.base import ArtifactKind
    from exhunt.collect.source import open_collection

    wanted(fmt, *LIST_FORMATS)
    kinds = set(kind or ())
    if unknown := kinds - {k.value for k in ArtifactKind}:
        raise typer.BadParameter(f"no artifact kind {', '.join(sorted(unknown))}; one of "
                                 + ", ".join(k.value for k in ArtifactKind), param_hint="'--kind'")
    with failures(unreadable=EXIT_UNREADABLE):
        collection = open_collection(path)
    with collection, _walking(path, quiet):
        found = [a for a in collection.artifacts() if not kinds or a.kind.value in kinds]
    sys.stdout.write(_render(collection, found, fmt))


@contextlib.contextmanager
def _walking(path: str, quiet: bool) -> Iterator[None]:
    """A spinner on a terminal while the walk runs; nothing when piped or quiet."""
    from rich.console import Console

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield
        return
    with console.status(plain(f"looking through {path}"), spinner="line"):
        yield


def _render(collection: Collection, found: list[Artifact], fmt: Format) -> str:
    from exhunt.model import iso

    if fmt is Format.JSON:
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
    return plain("\n".join(lines) + "\n")


def _artifact_json(art: Artifact) -> dict[str, object]:
    from exhunt.model import iso

    return {
        "kind": art.kind.value,
        "path": art.path,
        "size": art.size,
        "mtime": iso(art.mtime),
        "protocol": art.protocol,
        "exchange_root": art.exchange_root,
    }


def baseline_build(
    clean_copy: Annotated[str, typer.Argument(help="A clean server's install root, "
                                                   "triage copy or .zip")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Baseline CSV to write")],
    build_number: Annotated[str | None, typer.Option(
        "--build", help="Exchange build (e.g. 15.1.2176.2); default: the HttpProxy "
                        "logs' #Version header")] = None,
    quiet: QuietOption = False,
) -> None:
    """Hash every web file of CLEAN_COPY into a baseline for `exhunt hunt --baseline`."""
    from exhunt.hunt.baseline import build_baseline, write_baseline

    with failures(unreadable=EXIT_UNREADABLE):
        rows, found, problems = build_baseline(clean_copy, build_number)
        if not rows:
            raise InputError(f"no web files found in {clean_copy}")
        try:
            write_baseline(rows, str(output))
        except OSError as exc:
            raise UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    if not quiet:
        typer.echo(plain(f"{len(rows)} web files of build {found} written to {output}"))
        for problem in problems[:20]:
            typer.echo(plain(f"  not read: {problem.artifact}: {problem.message}"), err=True)
