"""A case's victim token: what opens one case's portal page and nothing else.

Tokens are not stored: a token is the case reference plus an HMAC of it under a secret made
once per database (the store's `settings`), so any process holding the database can print or
check one. What the operator changes (a rotation, a revocation, an expiry set by hand) is kept
in `case_tokens`. Ending the portal sessions a token opened is the web layer's part.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from exhunt.errors import UsageError
from exhunt.store.models import Case, CaseToken, Setting, utcnow

TOKEN_PREFIX = "exv1"
DEFAULT_TOKEN_GRACE = timedelta(weeks=4)  # a token still opens its case this long after resolution
SECRET_KEY = "token_secret"


def server_secret(session: Session) -> bytes:
    """The HMAC key for victim tokens, made once per database."""
    row = session.get(Setting, SECRET_KEY)
    if row is None:
        row = Setting(key=SECRET_KEY, value=secrets.token_hex(32))
        session.add(row)
        session.flush()
    return bytes.fromhex(row.value)


def _mac(secret: bytes, reference: str, generation: int = 1) -> str:
    # generation 1 keeps the form of the first tokens, so notices already sent stay valid
    suffix = "" if generation == 1 else f":{generation}"
    message = f"exhunt-case-token:{reference}{suffix}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def case_token(secret: bytes, reference: str, generation: int = 1) -> str:
    """The token printed in a case's notice: `exv1.<reference>.<hmac>`."""
    return f"{TOKEN_PREFIX}.{reference}.{_mac(secret, reference, generation)[:40]}"


def token_generations(session: Session) -> dict[str, int]:
    """The current generation of every rotated token (others are generation 1)."""
    return {reference: generation for reference, generation in session.execute(
        select(CaseToken.reference, CaseToken.generation))}


def current_token(session: Session, reference: str) -> str:
    """The token that opens the case now (the one the next notice carries)."""
    row = session.get(CaseToken, reference)
    return case_token(server_secret(session), reference, row.generation if row else 1)


def _token_row(session: Session, reference: str) -> CaseToken:
    if session.scalar(select(Case.id).where(Case.reference == reference)) is None:
        raise UsageError(f"no case {reference!r}")
    row = session.get(CaseToken, reference)
    if row is None:
        row = CaseToken(reference=reference, generation=1)
        session.add(row)
    return row


def rotate_token(session: Session, reference: str) -> str:
    """A new token for the case; the old one stops opening it."""
    row = _token_row(session, reference)
    row.generation += 1
    row.revoked_at = None
    session.flush()
    return case_token(server_secret(session), reference, row.generation)


def revoke_token(session: Session, reference: str) -> None:
    """The case's token opens nothing any more (until a rotation makes a new one)."""
    _token_row(session, reference).revoked_at = utcnow()


def set_token_expiry(session: Session, reference: str, expires_at: datetime | None) -> None:
    _token_row(session, reference).expires_at = expires_at


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What a token is: the case it opens, or why a once-good token no longer opens it."""

    case: Case | None
    refusal: str | None = None  # revoked | expired | replaced; None with no case: not a token


def check_token(session: Session, token: str, grace: timedelta) -> TokenCheck:
    """The case a token opens; a token that is not exactly right opens nothing. A right token
    of a case that was resolved more than `grace` ago (or past the expiry the operator set),
    revoked or replaced by a rotation is named as such, so its holder can be told why."""
    reference = token_reference(token)
    if reference is None:
        return TokenCheck(None)
    case = session.scalar(select(Case).where(Case.reference == reference))
    if case is None:
        return TokenCheck(None)
    row = session.get(CaseToken, reference)
    generation = row.generation if row else 1
    secret = server_secret(session)
    given = token.strip().split(".")[2].encode()
    if not hmac.compare_digest(_mac(secret, reference, generation)[:40].encode(), given):
        older = any(hmac.compare_digest(_mac(secret, reference, g)[:40].encode(), given)
                    for g in range(max(1, generation - 20), generation))
        return TokenCheck(None, "replaced" if older else None)
    if row is not None and row.revoked_at is not None:
        return TokenCheck(None, "revoked")
    expires = token_expiry(case, row, grace)
    if expires is not None and expires < utcnow():
        return TokenCheck(None, "expired")
    return TokenCheck(case)


def case_token_lapsed(session: Session, reference: str, grace: timedelta) -> bool:
    """Whether the case's token expired or was revoked since a portal session was opened."""
    case = session.scalar(select(Case).where(Case.reference == reference))
    row = session.get(CaseToken, reference)
    if case is None or (row is not None and row.revoked_at is not None):
        return True
    expires = token_expiry(case, row, grace)
    return expires is not None and expires < utcnow()


def token_expiry(case: Case, row: CaseToken | None, grace: timedelta) -> datetime | None:
    """The operator's date if set, else `grace` after the case was resolved, else none."""
    if row is not None and row.expires_at is not None:
        return row.expires_at
    if case.status == "resolved" and case.resolved_at is not None:
        return case.resolved_at + grace
    return None


def token_reference(token: str) -> str | None:
    """The case reference a token names (not yet checked), or None if it is no token."""
    parts = token.strip().split(".")
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or len(token) > 120:
        return None
    reference = parts[1]
    if not reference or not reference.isascii() or not reference.isprintable() \
            or len(reference) > 32:
        return None
    return reference


def token_account(session: Session, token: str) -> str | None:
    """The throttle's key for the existing case a token names, else None."""
    reference = token_reference(token)
    if reference is None:
        return None
    found = session.scalar(select(Case.id).where(Case.reference == reference))
    return f"case:{reference}" if found is not None else None


def token_case(session: Session, token: str) -> Case | None:
    """The case a token opens now, or None (see check_token for why not)."""
    return check_token(session, token, DEFAULT_TOKEN_GRACE).case
