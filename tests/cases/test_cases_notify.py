"""Notices over real SMTP to an aiosmtpd sink on 127.0.0.1, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import mailbox
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from exhunt.cases.contacts import import_contacts
from exhunt.cases.ingest import Ingestor
from exhunt.cases.notify import Renderer, Sender, SmtpTarget, plan_round
from exhunt.cases.notify.bounces import process_bounces
from exhunt.cases.notify.plan import parse_duration
from exhunt.errors import UsageError
from exhunt.store.db import Store
from exhunt.store.models import Case, Message, utcnow
from helpers.smtp_sink import RunningSink

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
SENDER = "cert@coord.example"
EXPECTED = {  # first recipient -> exactly the hosts it must be told about
    "it@cu-one.example": {"192.0.2.10", "2001:db8:10::25"},
    "branch@cu-one.example": {"192.0.2.77"},
    "clerk@town.example": {"198.51.100.5"},
    "abuse@isp.example": {"2001:db8:99::1"},
}
EVERY_ADDRESS = {r: 1 for r in EXPECTED} | {"backup@cu-one.example": 1}  # branch lists two
ALL_IPS = set().union(*EXPECTED.values()) | {"203.0.113.9"}


def loaded(db_url: str) -> Store:
    store = Store(db_url)
    import_contacts(store, DATA / "contacts.csv")
    for name in ("2021-05-14-scan_exchange.csv", "2026-03-24-scan6_exchange.csv"):
        Ingestor(store).ingest(DATA / name)
    return store


def notify(store: Store, sink: RunningSink, **kw: object) -> tuple[int, int]:
    plan = plan_round(store, Renderer(SENDER), **kw)  # type: ignore[arg-type]
    sent = Sender(store, SmtpTarget.parse(sink.address), SENDER).run()
    return plan.queued, sent.sent


def parts(message: EmailMessage) -> tuple[str, str, str]:
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    attachment = next(message.iter_attachments())
    return (str(text.get_content()), str(html.get_content()),
            attachment.get_content().decode() if isinstance(attachment.get_content(), bytes)
            else str(attachment.get_content()))


def test_one_notice_per_organisation_with_only_its_hosts(db_url: str) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        assert notify(store, sink) == (4, 4)
        assert notify(store, sink) == (0, 0)  # a second run sends nothing
        assert sink.sink.by_recipient() == EVERY_ADDRESS
        assert set(sink.sink.message_ids().values()) == {1}
        for received in sink.sink.received:
            recipient = received.rcpt_tos[0]
            message = received.message
            assert message["To"] == ", ".join(received.rcpt_tos)
            text, html, attached = parts(message)
            for ip in ALL_IPS:
                mine = ip in EXPECTED[recipient]
                assert (ip in text, ip in html, ip in attached) == (mine, mine, mine), ip
            with store.session() as s:
                reference = s.scalar(sa.select(Case.reference).join(Message)
                                     .where(Message.recipient.startswith(recipient)))
            assert reference and reference in str(message["Subject"]) and reference in text
            assert "look up our contact details yourself" in text
            assert message["X-Exhunt-Case"] == reference


def test_guidance_fits_what_was_seen(db_url: str) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        notify(store, sink)
        texts = {r.rcpt_tos[0]: parts(r.message)[0] for r in sink.sink.received}
    backdoor, vulnerable = texts["branch@cu-one.example"], texts["it@cu-one.example"]
    assert "Preserve evidence first" in backdoor and "Reset the credentials" in backdoor
    assert "exhunt hunt" in backdoor and "rebuilding" in backdoor
    assert "Preserve evidence first" not in vulnerable
    assert "patch" in vulnerable.lower() and "removes no back door" in vulnerable


def test_feed_text_is_escaped_and_cannot_break_headers(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    contacts = tmp_path / "contacts.csv"
    contacts.write_text('network,org,country,sector,email\n'
                        '192.0.2.0/24,"Evil\r\nBcc: everyone@example.org <b>Org</b>",US,,'
                        'a@org.example\n', newline="")
    import_contacts(store, contacts)
    feed = tmp_path / "scan_exchange.csv"
    hostile = '<script>alert(1)</script>\r\nBcc: x@example.org'
    feed.write_text('timestamp,ip,tag,hostname,servername,url\n'
                    f'2021-03-09 00:00:00,192.0.2.5,exchange;webshell,"{hostile}",'
                    '"=cmd|\' /C calc\'!A0","javascript:alert(2)"\n', newline="")
    assert Ingestor(store).ingest(feed).added == 1
    with RunningSink() as sink:
        assert notify(store, sink) == (1, 1)
        message = sink.sink.received[0].message
    text, html, attached = parts(message)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<script>alert(1)</script>" in text  # plain text keeps the data as it was
    assert message["Bcc"] is None and "\n" not in str(message["Subject"])
    assert sink.sink.received[0].rcpt_tos == ["a@org.example"]
    rows = list(csv.reader(io.StringIO(attached)))
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)


def test_each_host_says_what_it_runs_and_what_to_install(db_url: str) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        notify(store, sink)
        texts = {r.rcpt_tos[0]: parts(r.message) for r in sink.sink.received}
    text, html, attached = texts["it@cu-one.example"]
    # 192.0.2.10 showed version 15.2.721: only the CU (2019 CU7) is visible from outside
    assert "seen running: Exchange Server 2019 CU7 (build 15.2.721)" in text
    assert "Only the cumulative update (CU) is visible from outside" in text
    assert "upgrade to Exchange Server 2019 CU15 and install" in text
    assert "install Mar21SU (15.2.721.13, KB5000871) for CU7" in text
    assert "removes no back door already planted" in text
    assert "Exchange Server 2019 CU7 (build 15.2.721)" in html and "KB5000871" in html
    assert "KB5000871" in attached
    town = texts["clerk@town.example"][0]  # the town's host showed no version at all
    assert "seen running" not in town and "What to install" not in town


def _dsn(bounced_id: str) -> str:
    return ("From: MAILER-DAEMON@mx.example\r\nTo: cert@coord.example\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
            "--b\r\nContent-Type: text/plain\r\n\r\nmailbox unknown\r\n"
            "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Final-Recipient: rfc822; branch@cu-one.example\r\nAction: failed\r\n"
            "Status: 5.1.1\r\n\r\n"
            "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            f"Message-ID: {bounced_id}\r\nTo: branch@cu-one.example\r\n--b--\r\n")


SPAM = "From: someone@example.org\r\nSubject: hello\r\n\r\nnot a bounce of ours\r\n"


def _reports_in(form: str, where: Path, reports: list[str]) -> Path:
    """The delivery reports as a folder of files, a Maildir or an mbox file."""
    if form == "folder":
        where.mkdir()
        for n, text in enumerate(reports):
            (where / f"dsn{n}.eml").write_text(text)
        return where
    box: mailbox.Mailbox[mailbox.Message] = (
        mailbox.Maildir(where, create=True) if form == "maildir" else mailbox.mbox(where))
    for text in reports:
        box.add(text)
    box.close()
    return where


@pytest.mark.parametrize("form", ["folder", "maildir", "mbox"])
def test_bounce_flags_the_case_and_only_the_bounced_address_is_dropped(
        db_url: str, tmp_path: Path, form: str) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        notify(store, sink)
        with store.session() as s:
            bounced_id = s.scalar(sa.select(Message.message_id)
                                  .where(Message.recipient.startswith("branch@cu-one.example")))
        assert bounced_id
        assert sink.sink.by_recipient()["backup@cu-one.example"] == 1  # both were written to
        reports = _reports_in(form, tmp_path / "bounces", [_dsn(bounced_id), SPAM])
        result = process_bounces(store, reports)
        assert (result.files, result.matched, result.unmatched) == (2, 1, 1)
        assert process_bounces(store, reports).matched == 0  # reading it again changes nothing
        assert notify(store, sink) == (0, 0)  # backup@ got it: nothing to send again
        later = utcnow() + timedelta(days=8)
        assert notify(store, sink, renotify_after=parse_duration("7d"), now=later) == (4, 4)
        last_round = [r.rcpt_tos for r in sink.sink.received[-4:]]
        assert ["backup@cu-one.example"] in last_round
        assert all("branch@cu-one.example" not in tos for tos in last_round)
    with store.session() as s:
        case = s.scalar(sa.select(Case).join(Message).where(Message.message_id == bounced_id))
        assert case is not None and case.flagged and "bounced" in (case.flag_reason or "")
        assert s.scalar(sa.select(Message.status).where(Message.message_id == bounced_id)) \
            != "bounced"


def test_a_notice_every_address_bounced_goes_to_no_one_and_is_flagged(db_url: str,
                                                                       tmp_path: Path) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        notify(store, sink)
        with store.session() as s:
            bounced_id = s.scalar(sa.select(Message.message_id)
                                  .where(Message.recipient.startswith("clerk@town.example")))
        assert bounced_id
        report = _dsn(bounced_id).replace("branch@cu-one.example", "clerk@town.example")
        assert process_bounces(store, _reports_in("folder", tmp_path / "b", [report])).matched
        assert notify(store, sink) == (0, 0)  # the town lists no other address
    with store.session() as s:
        assert s.scalar(sa.select(Message.status).where(Message.message_id == bounced_id)) \
            == "bounced"
        case = s.scalar(sa.select(Case).join(Message).where(Message.message_id == bounced_id))
        assert case is not None and "no contact left" in (case.flag_reason or "")


def test_bounces_from_something_that_is_no_mailbox_are_refused(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(UsageError, match="no such bounces folder"):
        process_bounces(store, tmp_path / "missing")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 10)
    result = process_bounces(store, junk)  # read as an mbox: binary junk holds no message
    assert (result.files, result.matched, result.unmatched) == (0, 0, 0)


def test_renotify_only_after_interval_or_new_evidence(db_url: str, tmp_path: Path) -> None:
    store = loaded(db_url)
    week = parse_duration("7d")
    with RunningSink() as sink:
        notify(store, sink)
        assert notify(store, sink, renotify_after=week) == (0, 0)
        feed = tmp_path / "new-scan_exchange.csv"
        feed.write_text("timestamp,ip,tag\n2026-06-01 00:00:00,198.51.100.5,exchange;webshell\n")
        Ingestor(store).ingest(feed)
        assert notify(store, sink) == (1, 1)
        assert sink.sink.received[-1].rcpt_tos == ["clerk@town.example"]
        later = utcnow() + timedelta(days=8)
        assert notify(store, sink, renotify_after=week, now=later) == (4, 4)
        assert sink.sink.by_recipient()["clerk@town.example"] == 3


def test_temporary_refusal_is_retried_with_backoff_and_sent_once(db_url: str) -> None:
    store = loaded(db_url)
    with RunningSink() as sink:
        sink.sink.refuse_next = 1
        plan_round(store, Renderer(SENDER))
        target = SmtpTarget.parse(sink.address)
        first = Sender(store, target, SENDER, retry_base=timedelta(hours=1)).run()
        assert (first.sent, first.retried) == (3, 1)
        assert Sender(store, target, SENDER).run().sent == 0  # still backing off
        with store.transaction() as s:
            s.execute(sa.update(Message).values(next_attempt_at=None))
        assert Sender(store, target, SENDER).run().sent == 1
        assert sink.sink.by_recipient() == EVERY_ADDRESS


def test_unreachable_relay_keeps_messages_queued(db_url: str) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    with RunningSink() as sink:
        dead = SmtpTarget("127.0.0.1", sink.port)
    result = Sender(store, dead, SENDER, retry_base=timedelta(0)).run()
    assert result.sent == 0 and result.retried + result.failed == 4
    with store.session() as s:
        assert set(s.scalars(sa.select(Message.status))) == {"pending"}


def test_bad_options_are_usage_errors() -> None:
    from exhunt.errors import UsageError
    with pytest.raises(UsageError):
        parse_duration("soon")
    with pytest.raises(UsageError):
        SmtpTarget.parse("no-port")


def test_time_to_remediation_after_notice(db_url: str, tmp_path: Path) -> None:
    import orjson
    from typer.testing import CliRunner

    from exhunt.cli import app

    store = loaded(db_url)
    with RunningSink() as sink:
        notify(store, sink)
    fixed = utcnow() + timedelta(days=3)
    scan = tmp_path / "rescan.jsonl"
    scan.write_bytes(orjson.dumps({
        "target": "198.51.100.5", "ip": "198.51.100.5", "port": 443, "reachable": True,
        "exchange": True, "time": fixed.isoformat() + "Z", "build": "15.1.2176.9",
        "vulnerabilities": {"CVE-2021-26855": "patched"}}) + b"\n")
    Ingestor(store).ingest(scan)
    out = CliRunner().invoke(app, ["stats", "--db", db_url, "--format", "json"])
    remediation = orjson.loads(out.stdout)["remediation_after_notice"]
    assert remediation["remediated"] == 1 and 2.9 < remediation["median_days"] < 3.1
    assert remediation["notified_hosts"] == 5


def test_hostile_scan_and_hunt_text_reaches_the_notice_escaped(db_url: str,
                                                                 tmp_path: Path) -> None:
    import orjson

    store = loaded(db_url)
    scan = tmp_path / "s.jsonl"
    scan.write_bytes(orjson.dumps({
        "target": "<img src=x onerror=alert(1)>.town.example", "ip": "198.51.100.7",
        "port": 443, "reachable": True, "exchange": True, "time": "2026-04-01T00:00:00Z",
        "build": "<svg onload=alert(2)>", "vulnerabilities": {"CVE-<b>1</b>": "vulnerable"}})
        + b"\n")
    hunt = tmp_path / "h.json"
    hunt.write_bytes(orjson.dumps({
        "source": "x", "host": {"name": "h", "exchange_build": None}, "verdict": "reentered",
        "first_exploitation": None, "errors": [], "coverage": {},
        "findings": [{"check": "x", "title": "</td><script>alert(3)</script>\r\nTo: a@b"}]}))
    Ingestor(store).ingest(scan)
    assert Ingestor(store).ingest(hunt, host_ip="198.51.100.8").added == 1
    with RunningSink() as sink:
        notify(store, sink)
        town = next(r.message for r in sink.sink.received
                    if r.rcpt_tos == ["clerk@town.example"])
    text, html, _ = parts(town)
    for raw in ("<img src=x", "<svg onload", "<script>alert(3)", "<b>1</b>"):
        assert raw in text and raw not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "&lt;script&gt;alert(3)" in html
    assert "Preserve evidence first" in text  # the re-entered host gets the compromise steps
    assert town["To"] == "clerk@town.example"


def test_rate_limit_spaces_out_messages(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import exhunt.cases.notify.send as notify_module

    waits: list[float] = []
    monkeypatch.setattr(notify_module.time, "sleep", waits.append)
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    with RunningSink() as sink:
        result = Sender(store, SmtpTarget.parse(sink.address), SENDER, rate=0.5).run()
    assert result.sent == 4
    assert len(waits) == 3 and all(1.0 < w <= 2.0 for w in waits)  # 0.5/s = one per 2 s


def test_message_claimed_by_a_concurrent_run_is_not_sent_twice(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = loaded(db_url)
    plan_round(store, Renderer(SENDER))
    with store.session() as s:
        first = s.scalar(sa.select(Message.id).order_by(Message.id))
    original = Sender._claim

    def rival_claims_first(self: Sender, message_pk: int) -> bool:
        if message_pk == first:  # another `exhunt notify` wins the race for this one
            with store.transaction() as s:
                s.execute(sa.update(Message).where(Message.id == message_pk)
                          .values(status="sending"))
        return original(self, message_pk)

    monkeypatch.setattr(Sender, "_claim", rival_claims_first)
    with RunningSink() as sink:
        result = Sender(store, SmtpTarget.parse(sink.address), SENDER).run()
        assert (result.sent, result.skipped) == (3, 1)
        assert len(sink.sink.received) == 3  # the abandoned transaction was discarded
        assert set(sink.sink.message_ids().values()) == {1}
