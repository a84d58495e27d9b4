"""A notice tells the victim where to upload their hunt report, with a token for their case."""

from __future__ import annotations

import email
from email.message import Message

from exhunt.cases.notify.render import NoticeHost, Portal, Renderer
from exhunt.store.models import HostState

HOST = NoticeHost(ip="192.0.2.10", hostname=None, state=HostState.VULNERABLE, label="vulnerable",
                  first_seen="2021-03-05", last_seen="2021-03-06", evidence=["build 15.1.2176.2"])


def _bodies(raw: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(raw)
    out: dict[str, str] = {}
    for part in parsed.walk():
        if isinstance(part, Message) and part.get_content_type() in ("text/plain", "text/html"):
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            out[part.get_content_type()] = payload.decode("utf-8")
    return out


def test_notice_carries_the_portal_and_the_cases_own_token() -> None:
    portal = Portal("https://cert.example/portal/", lambda ref: f"tok-{ref}")
    _, _, raw = Renderer("cert@example.org", None, portal).render(
        reference="EXH-ACME", organisation="Acme", recipient="soc@acme.example",
        hosts=[HOST], round_number=1)
    for body in _bodies(raw).values():
        assert "https://cert.example/portal/access" in body
        assert "tok-EXH-ACME" in body


def test_without_a_portal_no_token_is_printed() -> None:
    _, _, raw = Renderer("cert@example.org").render(
        reference="EXH-ACME", organisation="Acme", recipient="soc@acme.example",
        hosts=[HOST], round_number=1)
    bodies = _bodies(raw)
    assert len(bodies) == 2 and not any("/access" in b for b in bodies.values())


def test_notify_portal_token_opens_the_case_in_the_portal(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The token printed by `exhunt notify --portal` is one the portal accepts for that case."""
    from exhunt.cli.coordinate import _portal
    from exhunt.store.db import Store
    from exhunt.store.models import Case, Organisation
    from exhunt.web.security import token_case

    store = Store(f"sqlite:///{tmp_path / 'p.db'}")
    with store.transaction() as session:
        org = Organisation(name="Acme")
        session.add(org)
        session.flush()
        session.add(Case(organisation_id=org.id, reference="EXH-ACME", status="open"))
    portal = _portal(store, "https://portal.example")
    assert portal is not None
    token = portal.token_for("EXH-ACME")
    with store.session() as session:
        case = token_case(session, token)
        assert case is not None and case.reference == "EXH-ACME"
        assert token_case(session, token[:-1] + ("0" if token[-1] != "0" else "1")) is None
