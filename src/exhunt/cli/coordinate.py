"""Coordinator commands: ingest, contacts import, cases, rejects, notify, stats.

Every command loads the store and the case machinery when it runs, not when the command line
is built: they need exhunt[coordinate].
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from exhunt.cli.common import (
    EXIT_UNREADABLE,
    DbOption,
    Format,
    command_group,
    error,
    failures,
    format_option,
    json_out,
    say,
    shows_progress,
    table_console,
    wanted,
)
from exhunt.errors import ExhuntError, UsageError

if TYPE_CHECKING:
    from exhunt.cases.notify.render import Portal
    from exhunt.store.db import Store

LISTS = (Format.TEXT, Format.JSON)
EXPORTS = (Format.STIX, Format.MISP)


def _portal(store: Store, url: str | None) -> Portal | None:
    """Tokens are made from a secret the portal keeps in the same database."""
    if url is None:
        return None
    from exhunt.cases.notify.render import Portal
    from exhunt.web.security import case_token, server_secret, token_generations

    with store.transaction() as session:
        secret = server_secret(session)
        generations = token_generations(session)  # after a rotation, notices carry the new one
    return Portal(url, lambda ref: case_token(secret, ref, generations.get(ref, 1)))


def _export(fmt: Format, reports: list[Path], with_victims: bool, tlp: str, producer: str,
            output: Path | None) -> None:
    from exhunt.share.coordinator import export_campaign
    from exhunt.share.options import TLP_NAMES, ShareOptions

    if tlp not in TLP_NAMES:
        raise typer.BadParameter(f"--tlp must be one of {', '.join(TLP_NAMES)}")
    options = ShareOptions(producer=producer, tlp=tlp, with_victims=with_victims)
    with failures():
        text, problems = export_campaign(fmt.value, reports, options)
    for problem in problems:
        say(f"skipped {problem.artifact}: {problem.message}", err=True)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")


def _print_tables(data: dict[str, Any]) -> None:
    from rich.table import Table

    console = table_console()
    for key in ("by_group", "by_state", "by_country", "by_sector", "by_asn", "messages"):
        table = Table(title=key.replace("_", " "))
        table.add_column("value")
        table.add_column("hosts" if key != "messages" else "messages", justify="right")
        for value, count in sorted(data[key].items(), key=lambda kv: -kv[1])[:20]:
            table.add_row(value, str(count))
        console.print(table)
    table = Table(title="patch uptake (of hosts first seen vulnerable)")
    table.add_column("day")
    table.add_column("confirmed fixed", justify="right")
    table.add_column("no longer reported", justify="right")
    for point in data["uptake"]:
        table.add_row(point["day"], f"{point['patched_share']:.1%}",
                      f"{point.get('unreported_share', 0.0):.1%}")
    console.print(table)
    for held in data.get("held_back_days", []):
        console.print(f"held back: {held['reason']}")


def register(app: typer.Typer, lab: typer.Typer) -> None:
    """Add the coordinator commands to the top-level app."""
    from exhunt.cli.web import register_case_token

    del lab
    app.command("ingest")(ingest_command)
    contacts_app = command_group(help="The constituency list: who owns which network.")
    contacts_app.command("import")(contacts_import_command)
    app.add_typer(contacts_app, name="contacts")
    cases_app = command_group(
        help="List cases (one per organisation) or the unattributed queue; "
             "`exhunt cases token REF` for a case's victim token.",
        invoke_without_command=True)
    cases_app.callback()(cases_command)
    register_case_token(cases_app)
    app.add_typer(cases_app, name="cases")
    app.command("rejects")(rejects_command)
    app.command("notify")(notify_command)
    app.command("stats")(stats_command)


def ingest_command(
    files: Annotated[list[Path], typer.Argument(help="Scan JSONL, hunt JSON, CSV")],
    db: DbOption = None,
    ip2asn: Annotated[Path | None, typer.Option(help="ip2asn TSV")] = None,
    mmdb: Annotated[Path | None, typer.Option(
        "--mmdb", help="MaxMind-format ASN database (GeoLite2-ASN layout)")] = None,
    host_ip: Annotated[str | None, typer.Option(help="Hunt report host")] = None,
    parquet: Annotated[Path | None, typer.Option(help="Also write Parquet here")] = None,
    partial_below: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, show_default=False, help="Hold back a daily report's absences when "
        "it lists fewer than this share of the median of the counted days before it (a "
        "partial scan)  [default: 0.5, cases.absence.PARTIAL_BELOW]")] = None,
    fmt: Annotated[Format, format_option(*LISTS)] = Format.TEXT,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Take evidence files in; a file already taken in adds nothing."""
    wanted(fmt, *LISTS)
    results = []
    failed = False
    with failures():
        from rich.console import Console
        from rich.progress import Progress

        from exhunt.cases.absence import PARTIAL_BELOW
        from exhunt.cases.attribution import AsnSource, AsnTable, MaxMindAsn
        from exhunt.cases.ingest import Ingestor
        from exhunt.store.db import Store
        from exhunt.store.lake import ObservationLake

        store = Store(db)
        if ip2asn and mmdb:
            raise UsageError("give --ip2asn or --mmdb, not both")
        asn_source: AsnSource | None = (
            AsnTable(ip2asn) if ip2asn else MaxMindAsn(mmdb) if mmdb else None)
        ingestor = Ingestor(store, asn_source, ObservationLake(parquet) if parquet else None,
                            partial_below=PARTIAL_BELOW if partial_below is None
                            else partial_below)
        with Progress(console=Console(stderr=True),
                      disable=not shows_progress(quiet)) as bar:
            for path in bar.track(files, description="ingesting"):
                try:
                    results.append(ingestor.ingest(path, host_ip=host_ip))
                except ExhuntError as exc:  # the other files are still taken in
                    failed = True
                    error(str(exc))
    if fmt is Format.JSON:
        json_out([asdict(r) for r in results])
    else:
        for r in results:
            what = f"shadowserver {r.report}" if r.report else r.kind
            if r.status == "skipped":
                say(f"{r.name}: {what}, skipped: {r.note}")
                continue
            say(f"{r.name}: {what}, {r.status}, {r.rows} rows, {r.added} added, "
                f"{r.rejected} rejected")
            if r.note:
                say(f"  {r.note}")
    if failed:
        raise typer.Exit(EXIT_UNREADABLE)


def contacts_import_command(file: Path, db: DbOption = None) -> None:
    """Import network,org,country,sector,email (most specific network wins)."""
    with failures():
        from exhunt.cases.contacts import import_contacts
        from exhunt.store.db import Store

        r = import_contacts(Store(db), file)
    say(f"{file}: {r.rows} rows, {r.organisations} organisations, {r.networks} networks, "
        f"{r.contacts} new contacts, {r.rejected} rejected, "
        f"{r.hosts_attributed} hosts changed owner")
    if r.without_contact:
        names = ", ".join(repr(n) for n in r.without_contact[:5])
        more = f" and {len(r.without_contact) - 5} more" if len(r.without_contact) > 5 else ""
        say(f"{len(r.without_contact)} organisations have no e-mail address ({names}{more}):"
            " their hosts are attributed; notify flags their cases until one is listed")


def cases_command(
    ctx: typer.Context,
    db: DbOption = None,
    fmt: Annotated[Format, format_option(
        *LISTS, *EXPORTS, help="stix and misp: the campaign's shared infrastructure from "
        "--reports")] = Format.TEXT,
    unattributed: Annotated[bool, typer.Option(help="Hosts with no owner yet")] = False,
    detail: Annotated[bool, typer.Option(help="Evidence per host, history per case")] = False,
    reports: Annotated[list[Path] | None, typer.Option(
        "--reports", help="stix/misp: hunt reports (JSON) or folders of them")] = None,
    with_victims: Annotated[bool, typer.Option(
        "--with-victims", help="stix/misp: also name the hunted servers")] = False,
    tlp: Annotated[str, typer.Option(help="stix/misp: TLP level")] = "amber",
    producer: Annotated[str, typer.Option(help="stix/misp: who shares it")] = "exhunt",
    output: Annotated[Path | None, typer.Option("--output", "-o")] = None,
) -> None:
    """List cases (one per organisation) or the unattributed queue; or export the
    campaign's shared infrastructure as STIX or MISP, without victims by default."""
    if ctx.invoked_subcommand is not None:
        return
    wanted(fmt, *LISTS, *EXPORTS)
    if fmt in EXPORTS:
        _export(fmt, reports or [], with_victims, tlp, producer, output)
        return
    with failures():
        from exhunt.store.db import Store
        from exhunt.store.queries import case_rows, unattributed_rows

        store = Store(db)
        rows = unattributed_rows(store) if unattributed else case_rows(store, detail=detail)
    if fmt is Format.JSON:
        json_out(rows)
        return
    _print_cases(rows, unattributed)


def _print_cases(rows: list[dict[str, Any]], unattributed: bool) -> None:
    from rich.table import Table

    table = Table(title="unattributed hosts" if unattributed else "cases")
    if unattributed:
        for col in ("ip", "hostname", "state", "country", "asn"):
            table.add_column(col)
        for h in rows:
            where = str(h["country"] or "")
            if h["country_disagrees"]:
                where += f" (registry; the feed says {h['feed_country']})"
            table.add_row(str(h["ip"]), str(h["hostname"] or ""), str(h["state"] or ""),
                          where, str(h["asn"] or ""))
    else:
        for col in ("reference", "organisation", "status", "hosts", "worst", "flagged"):
            table.add_column(col)
        for c in rows:
            states = sorted({h["state"] for h in c["hosts"] if h["state"]})
            table.add_row(c["reference"], c["organisation"], c["status"],
                          str(len(c["hosts"])), ", ".join(states), c["flag_reason"] or "")
    table_console().print(table)


def rejects_command(db: DbOption = None,
                    fmt: Annotated[Format, format_option(*LISTS)] = Format.TEXT) -> None:
    """Rows that could not be used, with the reason."""
    wanted(fmt, *LISTS)
    with failures():
        from exhunt.store.db import Store
        from exhunt.store.queries import reject_rows

        rows = reject_rows(Store(db))
    if fmt is Format.JSON:
        json_out(rows)
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} rejected rows")
    for col in ("source", "line", "reason", "raw"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["source"], str(r["line"] or ""), r["reason"], r["raw"][:200])
    table_console().print(table)


def notify_command(
    smtp: Annotated[str, typer.Option(help="SMTP relay HOST:PORT")],
    sender: Annotated[str, typer.Option(help="From address")],
    db: DbOption = None,
    renotify_after: Annotated[str | None, typer.Option(help="e.g. 7d")] = None,
    rate: Annotated[float | None, typer.Option(help="Messages per second at most")] = None,
    retry_base: Annotated[str, typer.Option(help="First retry delay, doubling")] = "60s",
    bounces: Annotated[Path | None, typer.Option(
        help="Delivery reports: a folder of message files, a Maildir or an mbox")] = None,
    verify: Annotated[str | None, typer.Option(help="Sender verification line")] = None,
    portal: Annotated[str | None, typer.Option(
        help="Victim portal URL (exhunt serve): each notice carries it with a token that "
        "opens only that organisation's case")] = None,
    plan_only: Annotated[bool, typer.Option(help="Queue only")] = False,
    journal: Annotated[Path | None, typer.Option(
        help="This machine's outbox handover journal (default: one per database under "
        "$EXHUNT_STATE_DIR or ~/.local/state/exhunt)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """One notice per organisation with its hosts and guidance, each sent exactly once."""
    with failures():
        from rich.console import Console
        from rich.progress import Progress

        from exhunt.cases.handover import HandoverJournal, default_journal
        from exhunt.cases.notify.bounces import process_bounces
        from exhunt.cases.notify.plan import parse_duration, plan_round
        from exhunt.cases.notify.render import Renderer
        from exhunt.cases.notify.send import Sender
        from exhunt.cases.notify.smtp import SmtpTarget
        from exhunt.store.db import Store

        store = Store(db)
        if bounces is not None:
            b = process_bounces(store, bounces)
            say(f"bounces: {b.files} files, {b.matched} notices bounced, {b.unmatched} not ours")
        plan = plan_round(store, Renderer(sender, verify, _portal(store, portal)),
                          renotify_after=parse_duration(renotify_after)
                          if renotify_after else None)
        say(f"queued {plan.queued} notices; {plan.skipped_no_contact} cases have no "
            "usable contact")
        if plan_only:
            return
        handover = HandoverJournal(journal or default_journal(store.url))
        with Progress(console=Console(stderr=True),
                      disable=not shows_progress(quiet)) as bar:
            task = bar.add_task("sending", total=None)
            try:
                result = Sender(store, SmtpTarget.parse(smtp), sender, rate=rate,
                                retry_base=parse_duration(retry_base),
                                on_sent=lambda: bar.advance(task), journal=handover).run()
            finally:
                handover.close()
    say(f"sent {result.sent}, retry later {result.retried}, failed {result.failed}, "
        f"recovered after a stop {result.recovered}")


def stats_command(
    db: DbOption = None,
    fmt: Annotated[Format, format_option(*LISTS)] = Format.TEXT,
    parquet: Annotated[Path | None, typer.Option(
        help="Observation Parquet folder: uptake curve from it with DuckDB")] = None,
) -> None:
    """Counts by state, country, sector and AS; the patch-uptake curve."""
    wanted(fmt, *LISTS)
    with failures():
        from exhunt.store.db import Store
        from exhunt.store.lake import ObservationLake
        from exhunt.store.queries import campaign_stats

        data = campaign_stats(Store(db))
        if parquet is not None:
            total, curve = ObservationLake(parquet).uptake()
            data["uptake_source"] = str(parquet)
            data["uptake_hosts_first_vulnerable"] = total
            data["uptake"] = [{"day": p.day, "patched_share": p.share} for p in curve]
    if fmt is Format.JSON:
        json_out(data)
        return
    _print_tables(data)
