"""Who may see what: coordinator accounts, sessions, victim tokens, login throttling.

The web layer keeps its own small tables (`web_*`: accounts, sessions, uploaded reports)
beside the coordination store (store/models.py, made by the store's migrations). Victim tokens are a
concept of cases (cases/tokens.py, tables made by the store's migrations); the names are
importable here, and rotating or revoking one here also ends the portal sessions it opened.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import (
    delete,
    func,
    select,
)
from sqlalchemy.orm import Session

from exhunt.cases import tokens
from exhunt.cases.tokens import DEFAULT_TOKEN_GRACE as DEFAULT_TOKEN_GRACE
from exhunt.cases.tokens import TOKEN_PREFIX as TOKEN_PREFIX
from exhunt.cases.tokens import TokenCheck as TokenCheck
from exhunt.cases.tokens import case_token as case_token
from exhunt.cases.tokens import case_token_lapsed as case_token_lapsed
from exhunt.cases.tokens import check_token as check_token
from exhunt.cases.tokens import current_token as current_token
from exhunt.cases.tokens import server_secret as server_secret
from exhunt.cases.tokens import set_token_expiry as set_token_expiry
from exhunt.cases.tokens import token_account as token_account
from exhunt.cases.tokens import token_case as token_case
from exhunt.cases.tokens import token_expiry as token_expiry
from exhunt.cases.tokens import token_generations as token_generations
from exhunt.cases.tokens import token_reference as token_reference
from exhunt.errors import UsageError
from exhunt.store.models import WebReport as WebReport
from exhunt.store.models import WebSession, WebUser, utcnow
from exhunt.store.models import WebSetting as WebSetting

SESSION_LIFETIME = timedelta(hours=12)
_HASHER = PasswordHasher()  # argon2id, memory-hard, library defaults (RFC 9106 profile)
_DUMMY_HASH = _HASHER.hash("not a password: evens out the time of unknown-user logins")


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- coordinator accounts -------------------------------------------------------------------


def valid_username(username: str) -> bool:
    return 1 <= len(username) <= 64 and all(c.isalnum() or c in "._-@" for c in username)


def add_user(session: Session, username: str, password: str) -> None:
    """Create or re-password a coordinator account; a new password ends the user's sessions."""
    if not valid_username(username):
        raise UsageError("user name: 1-64 letters, digits or . _ - @")
    if len(password) < 12:
        raise UsageError("password: at least 12 characters")
    user = session.scalar(select(WebUser).where(WebUser.username == username))
    hashed = _HASHER.hash(password)
    if user is None:
        session.add(WebUser(username=username, password_hash=hashed))
    else:
        user.password_hash = hashed
        end_sessions(session, "coordinator", username)


def set_password(session: Session, username: str, password: str) -> None:
    """A new password for an existing account; every session of that user ends at once."""
    if session.scalar(select(WebUser.id).where(WebUser.username == username)) is None:
        raise UsageError(f"no coordinator {username!r} (exhunt users list)")
    add_user(session, username, password)


def remove_user(session: Session, username: str) -> int:
    """Delete an account and end its sessions; returns how many sessions ended."""
    user = session.scalar(select(WebUser).where(WebUser.username == username))
    if user is None:
        raise UsageError(f"no coordinator {username!r} (exhunt users list)")
    session.delete(user)
    return end_sessions(session, "coordinator", username)


def list_users(session: Session) -> list[tuple[str, datetime, int]]:
    """(user name, created, sessions open now) of every coordinator account."""
    now = utcnow()
    open_now = {subject: count for subject, count in session.execute(
        select(WebSession.subject, func.count(WebSession.id))
        .where(WebSession.kind == "coordinator", WebSession.expires_at >= now)
        .group_by(WebSession.subject))}
    return [(u.username, u.created_at, open_now.get(u.username, 0))
            for u in session.scalars(select(WebUser).order_by(WebUser.username))]


def check_password(session: Session, username: str, password: str) -> bool:
    wanted = username[:64] if valid_username(username[:64]) else None
    user = (session.scalar(select(WebUser).where(WebUser.username == wanted))
            if wanted else None)
    try:
        # unknown users still pay for one verification, so timing does not list accounts
        return _HASHER.verify(user.password_hash if user else _DUMMY_HASH, password) and bool(user)
    except (VerificationError, InvalidHashError):
        return False


def user_account(session: Session, username: str) -> str | None:
    """The throttle's key for a coordinator account that exists, else None."""
    if not valid_username(username[:64]):
        return None
    found = session.scalar(select(WebUser.id).where(WebUser.username == username[:64]))
    return f"user:{username[:64]}" if found is not None else None


# --- sessions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # coordinator | victim
    subject: str
    csrf: str

    @property
    def coordinator(self) -> bool:
        return self.kind == "coordinator"

    def may_see_case(self, reference: str) -> bool:
        return self.coordinator or (self.kind == "victim" and self.subject == reference)


def open_session(session: Session, kind: str, subject: str) -> tuple[str, Principal]:
    """A new session; returns the cookie value (only its hash is stored)."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    now = utcnow()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session.add(WebSession(id=_digest(cookie), kind=kind, subject=subject, csrf=csrf,
                           expires_at=now + SESSION_LIFETIME))
    return cookie, Principal(kind, subject, csrf)


def session_principal(session: Session, cookie: str | None) -> Principal | None:
    if not cookie or len(cookie) > 100:
        return None
    row = session.get(WebSession, _digest(cookie))
    if row is None or row.expires_at < utcnow():
        return None
    return Principal(row.kind, row.subject, row.csrf)


def end_sessions(session: Session, kind: str, subject: str) -> int:
    """End every session of one coordinator (kind 'coordinator') or one case ('victim')."""
    ended = session.execute(delete(WebSession).where(WebSession.kind == kind,
                                                     WebSession.subject == subject))
    return int(getattr(ended, "rowcount", 0) or 0)


def close_session(session: Session, cookie: str | None) -> None:
    if cookie and len(cookie) <= 100:
        session.execute(delete(WebSession).where(WebSession.id == _digest(cookie)))


# --- victim tokens: their home is cases/tokens.py; the web ends the sessions they opened ------


def rotate_token(session: Session, reference: str) -> str:
    """A new token for the case; the old one (and every portal session it opened) ends."""
    token = tokens.rotate_token(session, reference)
    end_sessions(session, "victim", reference)
    return token


def revoke_token(session: Session, reference: str) -> None:
    """The case's token opens nothing any more (until --rotate makes a new one)."""
    tokens.revoke_token(session, reference)
    end_sessions(session, "victim", reference)


# --- throttling -----------------------------------------------------------------------------


class FailureLimiter:
    """Failed credentials counted where a guesser spends them, so a guesser is slowed and
    nobody else: per account (a coordinator's user name, or the case a token names) at most
    `limit` failures per `window` seconds, whatever addresses they come from; per client
    address (an IPv6 /64 counts as one) a wider `address_limit`, so many clients behind one
    proxy or NAT are not locked out by one of them.

    Both tables are bounded without eviction: a live entry is never pushed out by a spray of
    new keys (that would wipe the guesser's own record); when a table is full after dropping
    stale entries, new keys share one overflow counter instead."""

    OVERFLOW = "*overflow*"

    def __init__(self, limit: int = 5, window: float = 300.0, *, address_limit: int = 50,
                 max_keys: int = 10_000) -> None:
        self.limit = limit
        self.address_limit = address_limit
        self.window = window
        self.max_keys = max_keys
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}

    def blocked(self, address: str, account: str | None = None) -> bool:
        """Whether an attempt from `address` on `account` must wait (checked before the
        credential, so a blocked guesser learns nothing from a right guess)."""
        return self.address_blocked(address) or self.account_blocked(account)

    def address_blocked(self, address: str) -> bool:
        return self._count(self._addresses, address_key(address)) >= self.address_limit

    def account_blocked(self, account: str | None) -> bool:
        return account is not None and self._count(self._accounts, account) >= self.limit

    def failed(self, address: str, account: str | None = None) -> None:
        """Count a failure; `account` only when it exists (unknown names are counted by
        address only, so they cannot fill the account table)."""
        self._add(self._addresses, address_key(address))
        if account is not None:
            self._add(self._accounts, account)

    def _count(self, table: dict[str, deque[float]], key: str) -> int:
        failures = table.get(key)
        if failures is None:
            failures = table.get(self.OVERFLOW) if len(table) >= self.max_keys else None
        if failures is None:
            return 0
        self._expire(failures, time.monotonic())
        return len(failures)

    def _add(self, table: dict[str, deque[float]], key: str) -> None:
        now = time.monotonic()
        if key not in table and len(table) >= self.max_keys:
            for stale in [k for k, v in table.items() if not v or now - v[-1] > self.window]:
                del table[stale]
            if len(table) >= self.max_keys:
                key = self.OVERFLOW
        failures = table.setdefault(key, deque(maxlen=max(self.limit, self.address_limit)))
        self._expire(failures, now)
        failures.append(now)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and now - failures[0] > self.window:
            failures.popleft()


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_key(address: str) -> str:
    """The unit an address is counted in: itself for IPv4, its /64 for IPv6 (one host often
    holds a whole /64)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def client_address(peer: str | None, forwarded_for: str | None,
                   trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the connection's peer, unless the peer is one of the operator's
    trusted proxies; then the right-most X-Forwarded-For entry that is not a trusted proxy
    (entries further left are whatever the client wrote)."""
    address = peer or "unknown"
    if not trusted or not _within(address, trusted) or not forwarded_for:
        return address
    for entry in reversed(forwarded_for.split(",")[-32:]):
        hop = entry.strip()
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return address  # a mangled chain: count the last proxy that named a client
        address = hop
        if not _within(hop, trusted):
            return hop
    return address


def _within(address: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def trusted_networks(cidrs: Sequence[str]) -> list[IPNetwork]:
    try:
        return [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs]
    except ValueError as exc:
        raise UsageError(f"--trusted-proxy: {exc}") from exc
