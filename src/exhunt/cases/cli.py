"""Coordinator commands: ingest, contacts import, cases, rejects, notify, stats."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import func, select

from exhunt.cases.absence import PARTIAL_BELOW, campaign_counts, held_back_days, uptake_curve
from exhunt.cases.attribution import AsnSource, AsnTable, MaxMindAsn
from exhunt.cases.contacts import import_contacts
from exhunt.cases.handover import HandoverJournal, default_journal
from exhunt.cases.ingest import Ingestor
from exhunt.cases.notify import (
    Portal,
    Renderer,
    Sender,
    SmtpTarget,
    parse_duration,
    plan_round,
    process_bounces,
)
from exhunt.cases.tracking import HEADLINE_GROUPS
from exhunt.errors import ExhuntError, UsageError
from exhunt.lab.campaign import write_campaign
from exhunt.store.db import Store
from exhunt.store.lake import ObservationLake
from exhunt.store.models import Case, Event, Host, Message, Observation, Reject
from exhunt.web.cli import register_case_token

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: EXHUNT_DB, else sqlite exhunt.db here)."),
]
FormatOption = Annotated[str, typer.Option("--format", help="text or json")]


def _fail(exc: ExhuntError) -> None:
    # The message may name a hostile file: print it as text, never as markup.
    console = Console(stderr=True)
    console.print("[red]error:[/red] ", end="", markup=True, highlight=False)
    console.print(str(exc), markup=False, highlight=False)
    raise typer.Exit(2)


def _portal(store: Store, url: str | None) -> Portal | None:
    """Tokens are made from a secret the portal keeps in the same database."""
    if url is None:
        return None
    from exhunt.web.security import case_token, create_web_tables, server_secret, token_generations

    create_web_tables(store.engine)
    with store.transaction() as session:
        secret = server_secret(session)
        generations = token_generations(session)  # after a rotation, notices carry the new one
    return Portal(url, lambda ref: case_token(secret, ref, generations.get(ref, 1)))


def _json_out(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def case_rows(store: Store, *, detail: bool = False) -> list[dict[str, Any]]:
    """Cases with their hosts; with `detail`, each host's evidence and each case's history."""
    with store.session() as session:
        cases = list(session.scalars(select(Case).order_by(Case.reference)))
        hosts = list(session.scalars(select(Host).where(Host.organisation_id.is_not(None))
                                     .order_by(Host.ip)))
        by_org: dict[int, list[Host]] = {}
        for host in hosts:
            assert host.organisation_id is not None
            by_org.setdefault(host.organisation_id, []).append(host)
        evidence: dict[int, list[dict[str, Any]]] = {}
        history: dict[int, list[dict[str, Any]]] = {}
        if detail:
            last_seen = {h.id: h.last_seen for h in hosts}
            for o in session.scalars(select(Observation).order_by(Observation.seen_at)):
                evidence.setdefault(o.host_id, []).append({
                    "seen_at": o.seen_at.isoformat(),
                    "last_seen_at": o.ended(last_seen.get(o.host_id)).isoformat(),
                    "source": o.source, "state": o.state, "evidence": o.evidence})
            host_case = {h.id: h.organisation_id for h in hosts}
            case_of_org = {c.organisation_id: c.id for c in cases}
            for e in session.scalars(select(Event).order_by(Event.at, Event.id)):
                case_id = e.case_id or case_of_org.get(host_case.get(e.host_id or -1) or -1)
                if case_id is not None:
                    history.setdefault(case_id, []).append(
                        {"at": e.at.isoformat(), "kind": e.kind, "detail": e.detail})
        rows = []
        for c in cases:
            row: dict[str, Any] = {
                "reference": c.reference, "organisation": c.organisation.name,
                "status": c.status, "flagged": c.flagged, "flag_reason": c.flag_reason,
                "last_notified_at": c.last_notified_at.isoformat() if c.last_notified_at
                else None,
                "contacts": [ct.email for ct in c.organisation.contacts],
                "hosts": [_host_json(h) | ({"evidence": evidence.get(h.id, [])} if detail else {})
                          for h in by_org.get(c.organisation_id, [])],
            }
            if detail:
                row["history"] = history.get(c.id, [])
            rows.append(row)
        return rows


def _host_json(h: Host) -> dict[str, Any]:
    return {"ip": h.ip, "hostname": h.hostname, "state": h.state, "worst_state": h.worst_state,
            "network": h.network, "asn": h.asn, "as_name": h.as_name, "country": h.country,
            "country_source": h.country_source, "feed_country": h.feed_country,
            "registry_country": h.registry_country,
            "country_disagrees": bool(h.feed_country and h.registry_country
                                      and h.feed_country != h.registry_country),
            "sector": h.sector, "sector_source": h.sector_source,
            "first_seen": h.first_seen.isoformat() if h.first_seen else None,
            "last_seen": h.last_seen.isoformat() if h.last_seen else None}


def unattributed_rows(store: Store) -> list[dict[str, Any]]:
    with store.session() as session:
        return [_host_json(h) for h in session.scalars(
            select(Host).where(Host.organisation_id.is_(None)).order_by(Host.ip))]


def stats(store: Store) -> dict[str, Any]:
    """Counts and the uptake curve, grouped in SQL (the curve from the counts ingest wrote
    each day: confirmed fixed and no longer reported, apart)."""
    with store.session() as session:
        def grouped(column: Any) -> dict[str, int]:
            return {str(value): n for value, n in session.execute(
                select(column, func.count()).group_by(column))}

        groups = campaign_counts(session)
        messages = grouped(Message.status)
        by_state = grouped(Host.state)
        notified = session.execute(
            select(Host.first_patched_at, func.min(Message.sent_at))
            .join(Case, Case.organisation_id == Host.organisation_id)
            .join(Message, Message.case_id == Case.id)
            .where(Message.sent_at.is_not(None)).group_by(Host.id, Host.first_patched_at)).all()
        result = {
            "hosts": sum(by_state.values()),
            "by_group": {g: groups[g] for g in (*HEADLINE_GROUPS, "unknown")},
            "by_state": by_state,
            "by_country": grouped(Host.country),
            "by_sector": grouped(Host.sector),
            "by_asn": grouped(Host.asn),
            "messages": messages,
            "uptake": uptake_curve(session),
            "held_back_days": held_back_days(session),
        }
    waits = sorted((fixed - sent).total_seconds() / 86400 for fixed, sent in notified
                   if fixed is not None and sent is not None and fixed >= sent)
    result["remediation_after_notice"] = {
        "notified_hosts": len(notified), "remediated": len(waits),
        "median_days": waits[len(waits) // 2] if waits else None}
    return result


def _export(fmt: str, reports: list[Path], with_victims: bool, tlp: str, producer: str,
            output: Path | None) -> None:
    from exhunt.share.coordinator import export_campaign
    from exhunt.share.options import TLP_NAMES, ShareOptions

    if tlp not in TLP_NAMES:
        raise typer.BadParameter(f"--tlp must be one of {', '.join(TLP_NAMES)}")
    options = ShareOptions(producer=producer, tlp=tlp, with_victims=with_victims)
    try:
        text, problems = export_campaign(fmt, reports, options)
    except ExhuntError as exc:
        _fail(exc)
        return
    console = Console(stderr=True, highlight=False)
    for problem in problems:
        console.print(f"skipped {problem.artifact}: {problem.message}", markup=False)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, "utf-8")


def register(app: typer.Typer, lab: typer.Typer) -> None:
    contacts_app = typer.Typer(help="The constituency list: who owns which network.")
    app.add_typer(contacts_app, name="contacts")

    @app.command("ingest")
    def ingest_cmd(
        files: Annotated[list[Path], typer.Argument(help="Scan JSONL, hunt JSON, CSV")],
        db: DbOption = None,
        ip2asn: Annotated[Path | None, typer.Option(help="ip2asn TSV")] = None,
        mmdb: Annotated[Path | None, typer.Option(
            "--mmdb", help="MaxMind-format ASN database (GeoLite2-ASN layout)")] = None,
        host_ip: Annotated[str | None, typer.Option(help="Hunt report host")] = None,
        parquet: Annotated[Path | None, typer.Option(help="Also write Parquet here")] = None,
        partial_below: Annotated[float, typer.Option(
            min=0.0, max=1.0, help="Hold back a daily report's absences when it lists fewer "
            "than this share of the median of the counted days before it (a partial scan)"
        )] = PARTIAL_BELOW,
        fmt: FormatOption = "text",
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Take evidence files in; a file already taken in adds nothing."""
        try:
            store = Store(db)
            if ip2asn and mmdb:
                raise UsageError("give --ip2asn or --mmdb, not both")
            asn_source: AsnSource | None = (
                AsnTable(ip2asn) if ip2asn else MaxMindAsn(mmdb) if mmdb else None)
            ingestor = Ingestor(store, asn_source,
                                ObservationLake(parquet) if parquet else None,
                                partial_below=partial_below)
            results = []
            failed = False
            with Progress(console=Console(stderr=True),
                          disable=quiet or not sys.stderr.isatty()) as bar:
                for path in bar.track(files, description="ingesting"):
                    try:
                        results.append(ingestor.ingest(path, host_ip=host_ip))
                    except ExhuntError as exc:
                        failed = True
                        bar.console.print(f"error: {exc}", markup=False, highlight=False)
        except ExhuntError as exc:
            _fail(exc)
            return
        if fmt == "json":
            _json_out([asdict(r) for r in results])
        else:
            for r in results:
                what = f"shadowserver {r.report}" if r.report else r.kind
                if r.status == "skipped":
                    print(f"{r.name}: {what}, skipped: {r.note}")
                    continue
                print(f"{r.name}: {what}, {r.status}, {r.rows} rows, {r.added} added, "
                      f"{r.rejected} rejected")
                if r.note:
                    print(f"  {r.note}")
        if failed:
            raise typer.Exit(3)

    @contacts_app.command("import")
    def contacts_import_cmd(file: Path, db: DbOption = None) -> None:
        """Import network,org,country,sector,email (most specific network wins)."""
        try:
            r = import_contacts(Store(db), file)
        except ExhuntError as exc:
            _fail(exc)
            return
        print(f"{file}: {r.rows} rows, {r.organisations} organisations, {r.networks} networks, "
              f"{r.contacts} new contacts, {r.rejected} rejected, "
              f"{r.hosts_attributed} hosts changed owner")
        if r.without_contact:
            names = ", ".join(repr(n) for n in r.without_contact[:5])
            more = f" and {len(r.without_contact) - 5} more" if len(r.without_contact) > 5 else ""
            print(f"{len(r.without_contact)} organisations have no e-mail address ({names}{more}):"
                  " their hosts are attributed; notify flags their cases until one is listed")

    cases_app = typer.Typer(help="List cases (one per organisation) or the unattributed "
                            "queue; `exhunt cases token REF` for a case's victim token.",
                            invoke_without_command=True)
    app.add_typer(cases_app, name="cases")
    register_case_token(cases_app)

    @cases_app.callback()
    def cases_cmd(
        ctx: typer.Context,
        db: DbOption = None,
        fmt: Annotated[str, typer.Option("--format", help="text, json, or stix / misp (the "
                                         "campaign's shared infrastructure from --reports)")
                       ] = "text",
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
        if fmt in ("stix", "misp"):
            _export(fmt, reports or [], with_victims, tlp, producer, output)
            return
        try:
            store = Store(db)
        except ExhuntError as exc:
            _fail(exc)
            return
        rows = unattributed_rows(store) if unattributed else case_rows(store, detail=detail)
        if fmt == "json":
            _json_out(rows)
            return
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
                              str(len(c["hosts"])), ", ".join(states),
                              c["flag_reason"] or "")
        Console(highlight=False).print(table, markup=False)

    @app.command("rejects")
    def rejects_cmd(db: DbOption = None, fmt: FormatOption = "text") -> None:
        """Rows that could not be used, with the reason."""
        try:
            store = Store(db)
        except ExhuntError as exc:
            _fail(exc)
            return
        with store.session() as session:
            rows: list[dict[str, Any]] = [
                {"source": r.source, "line": r.line, "reason": r.reason, "raw": r.raw}
                for r in session.scalars(select(Reject).order_by(Reject.id))]
        if fmt == "json":
            _json_out(rows)
            return
        table = Table(title=f"{len(rows)} rejected rows")
        for col in ("source", "line", "reason", "raw"):
            table.add_column(col, overflow="fold")
        for r in rows:
            table.add_row(r["source"], str(r["line"] or ""), r["reason"], r["raw"][:200])
        Console(highlight=False).print(table, markup=False)

    @app.command("notify")
    def notify_cmd(
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
        try:
            store = Store(db)
            if bounces is not None:
                b = process_bounces(store, bounces)
                print(f"bounces: {b.files} files, {b.matched} notices bounced, "
                      f"{b.unmatched} not ours")
            plan = plan_round(store, Renderer(sender, verify, _portal(store, portal)),
                              renotify_after=parse_duration(renotify_after)
                              if renotify_after else None)
            print(f"queued {plan.queued} notices; {plan.skipped_no_contact} cases have no "
                  "usable contact")
            if plan_only:
                return
            handover = HandoverJournal(journal or default_journal(store.url))
            with Progress(console=Console(stderr=True),
                          disable=quiet or not sys.stderr.isatty()) as bar:
                task = bar.add_task("sending", total=None)
                try:
                    result = Sender(store, SmtpTarget.parse(smtp), sender, rate=rate,
                                    retry_base=parse_duration(retry_base),
                                    on_sent=lambda: bar.advance(task), journal=handover).run()
                finally:
                    handover.close()
        except ExhuntError as exc:
            _fail(exc)
            return
        print(f"sent {result.sent}, retry later {result.retried}, failed {result.failed}, "
              f"recovered after a stop {result.recovered}")

    @app.command("stats")
    def stats_cmd(
        db: DbOption = None, fmt: FormatOption = "text",
        parquet: Annotated[Path | None, typer.Option(
            help="Observation Parquet folder: uptake curve from it with DuckDB")] = None,
    ) -> None:
        """Counts by state, country, sector and AS; the patch-uptake curve."""
        try:
            data = stats(Store(db))
        except ExhuntError as exc:
            _fail(exc)
            return
        if parquet is not None:
            total, curve = ObservationLake(parquet).uptake()
            data["uptake_source"] = str(parquet)
            data["uptake_hosts_first_vulnerable"] = total
            data["uptake"] = [{"day": p.day, "patched_share": p.share} for p in curve]
        if fmt == "json":
            _json_out(data)
            return
        console = Console(highlight=False)
        for key in ("by_group", "by_state", "by_country", "by_sector", "by_asn", "messages"):
            table = Table(title=key.replace("_", " "))
            table.add_column("value")
            table.add_column("hosts" if key != "messages" else "messages", justify="right")
            for value, count in sorted(data[key].items(), key=lambda kv: -kv[1])[:20]:
                table.add_row(value, str(count))
            console.print(table, markup=False)
        table = Table(title="patch uptake (of hosts first seen vulnerable)")
        table.add_column("day")
        table.add_column("confirmed fixed", justify="right")
        table.add_column("no longer reported", justify="right")
        for point in data["uptake"]:
            table.add_row(point["day"], f"{point['patched_share']:.1%}",
                          f"{point.get('unreported_share', 0.0):.1%}")
        console.print(table, markup=False)
        for held in data.get("held_back_days", []):
            console.print(f"held back: {held['reason']}", markup=False)

    @lab.command("campaign")
    def campaign_cmd(
        out: Annotated[Path, typer.Argument(help="Folder for the CSVs, contacts and Parquet")],
        servers: Annotated[int, typer.Option(help="Exposed servers")] = 400_000,
        days: Annotated[int, typer.Option(help="Days of daily reports")] = 30,
        seed: Annotated[int, typer.Option(help="Random seed")] = 2021,
        parquet: Annotated[bool, typer.Option(help="Also write Parquet observations")] = True,
        partial_day: Annotated[int | None, typer.Option(
            help="Day (0 = first) whose report is a partial scan, listing ~30% of servers"
        )] = None,
        quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    ) -> None:
        """Synthetic campaign: daily Shadowserver-style CSVs following the March 2021 uptake."""
        show = not quiet and sys.stderr.isatty()
        with Progress(console=Console(stderr=True), disable=not show) as bar:
            task = bar.add_task("writing days", total=days)
            summary = write_campaign(out, servers=servers, days=days, seed=seed,
                                     parquet=parquet, partial_day=partial_day,
                                     progress=lambda done: bar.update(task, completed=done))
        print(f"{out}: {summary.servers} servers in {summary.organisations} organisations, "
              f"{summary.days} daily CSVs with {summary.csv_rows} rows, "
              f"{summary.observations} Parquet observations, {summary.webshells} web shells")
