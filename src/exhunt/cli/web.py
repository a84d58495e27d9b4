"""`exhunt serve` (the dashboard), `exhunt users add|passwd|remove|list|token`."""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from exhunt.cli.common import DbOption, command_group, failures, say, table_console
from exhunt.errors import InputError, UsageError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from exhunt.store.db import Store

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def _load_fleet_summary(db: str | None, path: Path) -> None:
    import orjson

    from exhunt.hunt.fleet import answer
    from exhunt.web.queries import MAX_FLEET_BYTES, save_fleet_summary

    try:
        if path.stat().st_size > MAX_FLEET_BYTES:
            raise InputError(f"{path}: larger than {MAX_FLEET_BYTES} bytes")
        summary = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a readable fleet summary JSON: {exc}") from exc
    if not isinstance(summary, dict) or not isinstance(summary.get("clusters"), list):
        raise InputError(f"{path}: not a fleet summary (no 'clusters' list)")
    try:
        summary.setdefault("answer", answer(summary))
    except (KeyError, TypeError, AttributeError):
        summary["answer"] = ""
    from exhunt.store.db import Store

    store = Store(db)
    try:
        with store.transaction() as session:
            save_fleet_summary(session, summary)
    finally:
        store.close()


PasswordEnvOption = Annotated[str | None, typer.Option(
    help="Read the password from this environment variable instead of a prompt")]


def _read_password(password_env: str | None) -> str:
    if password_env:
        return os.environ.get(password_env, "")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise UsageError("the two passwords differ")
    return password


def _web_store(db: str | None) -> Store:
    from exhunt.store.db import Store

    return Store(db)


def _store_password(db: str | None, username: str, password_env: str | None,
                    store: Callable[[Session, str, str], None]) -> None:
    """Read the password (twice on a terminal) and hand it to `store` in one transaction."""
    with failures():
        password = _read_password(password_env)
        with _web_store(db).transaction() as session:
            store(session, username, password)


def secure_cookies(host: str, *, tls: bool, proxies: list[str], insecure_http: bool) -> bool:
    """Whether cookies are marked Secure: always behind TLS or an HTTPS proxy, otherwise not on
    loopback or when the operator says --insecure-http. Listening beyond loopback with neither
    TLS nor an HTTPS proxy in front is refused unless told so: the portal's tokens and
    passwords would cross the network bare."""
    if insecure_http:
        return False
    if tls or proxies:
        return True
    if host not in LOOPBACK:
        raise UsageError(f"listening on {host} without TLS: give --tls-cert/--tls-key, or "
                         "--trusted-proxy CIDR for the HTTPS proxy in front, or --insecure-http")
    return False


def register(app: typer.Typer, lab: typer.Typer) -> None:
    users_app = command_group(help="Coordinator accounts of the dashboard, victim tokens.")
    app.add_typer(users_app, name="users")

    @app.command("serve")
    def serve_cmd(
        db: DbOption = None,
        host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port")] = 8000,
        trusted_proxy: Annotated[list[str] | None, typer.Option(
            "--trusted-proxy", metavar="CIDR",
            help="A reverse proxy (HTTPS in front of this server) whose X-Forwarded-For names "
            "the client; repeat for several")] = None,
        tls_cert: Annotated[Path | None, typer.Option(help="Serve HTTPS with this certificate "
                                                           "(PEM)")] = None,
        tls_key: Annotated[Path | None, typer.Option(help="Its private key (PEM)")] = None,
        insecure_http: Annotated[bool, typer.Option(
            "--insecure-http", help="Plain HTTP beyond loopback, cookies not Secure: only for "
            "a closed lab network")] = False,
        fleet_summary: Annotated[Path | None, typer.Option(
            help="Show this fleet-hunt summary JSON (waves, clusters) on the overview")
        ] = None,
        contact: Annotated[str, typer.Option(
            help="Whom a victim asks when their token is revoked or expired, e.g. an address "
            "of the CERT")] = "the CERT that sent your notice",
        token_grace_days: Annotated[int, typer.Option(
            min=0, help="A victim token still opens its case this many days after the case "
            "is resolved")] = 28,
        case_reports: Annotated[int, typer.Option(
            min=1, help="Reports a token holder may upload to one case")] = 50,
        case_mb: Annotated[int, typer.Option(
            min=1, help="Megabytes a token holder may upload to one case")] = 50,
    ) -> None:
        """The campaign dashboard and victim portal."""
        proxies = trusted_proxy or []
        with failures():
            import uvicorn

            from exhunt.web.app import PortalSettings, create_app

            settings = PortalSettings(contact, timedelta(days=token_grace_days), case_reports,
                                      case_mb * 1024 * 1024)
            secure = secure_cookies(host, tls=tls_cert is not None, proxies=proxies,
                                    insecure_http=insecure_http)
            if (tls_cert is None) != (tls_key is None):
                raise UsageError("give --tls-cert and --tls-key together")
            web_app = create_app(db, secure_cookies=secure, trusted_proxies=proxies,
                                 settings=settings)
            if fleet_summary is not None:
                _load_fleet_summary(db, fleet_summary)
        uvicorn.run(web_app, host=host, port=port, log_level="warning",
                    proxy_headers=False, server_header=False,
                    ssl_certfile=str(tls_cert) if tls_cert else None,
                    ssl_keyfile=str(tls_key) if tls_key else None)

    @users_app.command("add")
    def users_add(
        username: Annotated[str, typer.Argument(help="Coordinator user name")],
        db: DbOption = None,
        password_env: PasswordEnvOption = None,
    ) -> None:
        """Create a coordinator account (or set a new password); argon2id-hashed."""
        from exhunt.web.security import add_user

        _store_password(db, username, password_env, add_user)
        say(f"coordinator {username} ready")

    @users_app.command("passwd")
    def users_passwd(
        username: Annotated[str, typer.Argument(help="Coordinator user name")],
        db: DbOption = None,
        password_env: PasswordEnvOption = None,
    ) -> None:
        """Set a coordinator's new password; every session of that user ends at once."""
        from exhunt.web.security import set_password

        _store_password(db, username, password_env, set_password)
        say(f"coordinator {username}: new password; their sessions are ended")

    @users_app.command("remove")
    def users_remove(
        username: Annotated[str, typer.Argument(help="Coordinator user name")],
        db: DbOption = None,
    ) -> None:
        """Delete a coordinator account; its sessions end at once."""
        with failures():
            from exhunt.web.security import remove_user

            with _web_store(db).transaction() as session:
                ended = remove_user(session, username)
        say(f"coordinator {username} removed; {ended} sessions ended")

    @users_app.command("list")
    def users_list(db: DbOption = None) -> None:
        """The coordinator accounts, when each was made, and their sessions open now."""
        from rich.table import Table

        with failures():
            from exhunt.web.security import list_users

            with _web_store(db).session() as session:
                users = list_users(session)
        table = Table(title=f"{len(users)} coordinators")
        for column in ("user", "created (UTC)", "open sessions"):
            table.add_column(column)
        for name, created, sessions in users:
            table.add_row(name, created.isoformat(timespec="seconds"), str(sessions))
        table_console().print(table)

    @users_app.command("token")
    def users_token(
        reference: Annotated[str, typer.Argument(help="Case reference, e.g. EXH-0123456789")],
        db: DbOption = None,
    ) -> None:
        """Print the victim token of one case (it opens that case only)."""
        case_token_cmd(reference, db)


def case_token_cmd(reference: str, db: str | None = None, *, rotate: bool = False,
                   revoke: bool = False, expires: str | None = None) -> None:
    """`exhunt cases token REF`: print the case's current victim token, or rotate it (a new
    token; the old one and its portal sessions end; the next notice round carries the new
    one), revoke it, or set its expiry (YYYY-MM-DD, UTC; 'default' = some weeks after the
    case is resolved)."""
    with failures():
        if rotate and revoke:
            raise UsageError("give --rotate or --revoke, not both")
        token, state = _case_token(reference, db, rotate=rotate, revoke=revoke, expires=expires)
    if token is None:
        say(f"{reference}: token revoked; it opens nothing until --rotate")
        return
    typer.echo(token)
    if state is not None:  # the operator sees it before mailing a token that opens nothing
        say(f"note: this token is {state} (--rotate makes a new one; --expires sets another "
            "date)", err=True)


def _case_token(reference: str, db: str | None, *, rotate: bool, revoke: bool,
                expires: str | None) -> tuple[str | None, str | None]:
    """The case's token (None once revoked) and why it would be refused, if it would be."""
    from sqlalchemy import select

    from exhunt.store.models import Case
    from exhunt.web.security import (
        DEFAULT_TOKEN_GRACE,
        check_token,
        current_token,
        revoke_token,
        rotate_token,
        set_token_expiry,
    )

    with _web_store(db).transaction() as session:
        if session.scalar(select(Case.id).where(Case.reference == reference)) is None:
            raise UsageError(f"no case {reference!r}")
        if expires is not None:
            set_token_expiry(session, reference, _expiry(expires))
        if revoke:
            revoke_token(session, reference)
            return None, None
        token = rotate_token(session, reference) if rotate else current_token(session,
                                                                              reference)
        return token, check_token(session, token, DEFAULT_TOKEN_GRACE).refusal


def _expiry(text: str) -> datetime | None:
    if text == "default":
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError as exc:
        raise UsageError(f"--expires: {text!r} is not YYYY-MM-DD or 'default'") from exc


def register_case_token(cases_app: typer.Typer) -> None:
    """Add `token` to the `exhunt cases` group."""

    @cases_app.command("token")
    def cases_token(
        reference: Annotated[str, typer.Argument(help="Case reference, e.g. EXH-0123456789")],
        db: DbOption = None,
        rotate: Annotated[bool, typer.Option(
            "--rotate", help="Make a new token; the old one stops opening the case")] = False,
        revoke: Annotated[bool, typer.Option(
            "--revoke", help="The token opens nothing any more")] = False,
        expires: Annotated[str | None, typer.Option(
            help="Expiry date YYYY-MM-DD (UTC), or 'default'")] = None,
    ) -> None:
        """Print, rotate or revoke a case's victim token, or set when it expires."""
        case_token_cmd(reference, db, rotate=rotate, revoke=revoke, expires=expires)
