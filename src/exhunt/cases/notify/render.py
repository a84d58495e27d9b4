"""Rendering a notice: the message an organisation receives (text and HTML from the templates
in cases/templates, the guidance its hosts' states call for, the hosts as a CSV attachment), and
the text guards every value in it passes (headers, spreadsheet cells)."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from exhunt.intel.builds import explain
from exhunt.intel.guidance import notice_guidance
from exhunt.store.models import COMPROMISED, HostState

STATE_LABELS = {
    HostState.REENTERED: "back door used (re-entered)",
    HostState.BACKDOOR: "back door seen",
    HostState.EXPLOITED: "exploited",
    HostState.VULNERABLE: "vulnerable build",
    HostState.EXPOSED: "exposed",
    HostState.PATCHED: "patched",
    HostState.CLEAN: "clean",
}
CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
DEFAULT_VERIFY = (
    "This notice comes from {sender}. To check that it is genuine, do not use links or "
    "numbers in this message: look up our contact details yourself and quote {reference}."
)


def header_safe(text: str, limit: int = 200) -> str:
    """Text that cannot break out of a header: controls (CR, LF, NUL ...) become spaces."""
    return CONTROL.sub(" ", text).strip()[:limit]


def csv_safe(value: object) -> str:
    """A spreadsheet cell that cannot run as a formula when the recipient opens the CSV."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@dataclass
class NoticeHost:
    ip: str
    hostname: str | None
    state: HostState
    label: str
    first_seen: str
    last_seen: str
    evidence: list[str] = field(default_factory=list)
    software: str = ""  # 'Exchange Server 2019 CU7 (build 15.2.721)', from the build table
    install: list[str] = field(default_factory=list)  # what to install, from the build table
    cu_only: bool = False  # only the CU is visible from outside, not the installed update


@lru_cache(maxsize=4096)  # a round of 100,000 notices names a few hundred builds
def software_of(build: str | None) -> tuple[str, tuple[str, ...], bool]:
    """(product, CU and update in words; what to install; only the CU visible) for the
    build last seen on a host, from the build table ('' and () when none is known)."""
    if not build:
        return "", (), False
    try:
        info = explain(build)
    except ValueError:
        return f"build {build} (not an Exchange build number)", (), False
    if info.product is None:
        return f"build {info.build} (not in the build table)", (), False
    named = " ".join(p for p in (info.product, info.cu, info.update) if p)
    return f"{named} (build {info.build})", tuple(info.install), not info.exact


@dataclass(frozen=True, slots=True)
class Guidance:
    title: str
    steps: list[str]


def _guidance_data() -> dict[str, Any]:
    return notice_guidance()  # data shared with the hunt report (intel/data/guidance.toml)


@dataclass(frozen=True)
class Portal:
    """Where a victim uploads their hunt report, and the token that opens their case only."""

    url: str
    token_for: Callable[[str], str]


class Renderer:
    def __init__(self, sender: str, verify: str | None = None,
                 portal: Portal | None = None) -> None:
        self.sender = sender
        self.verify = verify or DEFAULT_VERIFY
        self.portal = portal
        self.html = Environment(
            loader=PackageLoader("exhunt.cases", "templates"),
            autoescape=select_autoescape(["html", "html.j2"], default_for_string=True),
            undefined=StrictUndefined,
        )
        self.text = Environment(
            loader=PackageLoader("exhunt.cases", "templates"),
            autoescape=False,  # plain text: nothing is interpreted as markup
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        self.guidance = _guidance_data()
        self.domain = sender.rpartition("@")[2] or "exhunt.invalid"

    def guidance_for(self, states: set[HostState]) -> list[Guidance]:
        chosen: list[Guidance] = []
        if states & COMPROMISED:
            chosen.append(Guidance(**self.guidance["compromised"]))
        if HostState.VULNERABLE in states:
            chosen.append(Guidance(**self.guidance["vulnerable"]))
        if HostState.EXPOSED in states:
            chosen.append(Guidance(**self.guidance["exposed"]))
        return chosen

    def render(
        self, *, reference: str, organisation: str, recipient: str, hosts: list[NoticeHost],
        round_number: int,
    ) -> tuple[str, str, bytes]:
        """(Message-ID, subject, full message bytes)."""
        context = {
            "reference": reference, "organisation": organisation, "hosts": hosts,
            "guidance": self.guidance_for({h.state for h in hosts}),
            "verify": self.verify.format(sender=self.sender, reference=reference),
            "portal": None if self.portal is None else {
                "url": self.portal.url.rstrip("/") + "/access",
                "token": self.portal.token_for(reference)},
        }
        message_id = f"<{reference}.{round_number}.{uuid.uuid4().hex[:16]}@{self.domain}>"
        subject = header_safe(
            f"[{reference}] Exchange servers of {organisation} need action", 250)
        # email.mime with the compat32 policy: ten times faster than EmailMessage's header
        # registry at 100,000 notices; every header value is ours or passed header_safe().
        mail = MIMEMultipart("mixed")
        mail["From"] = header_safe(self.sender)
        mail["To"] = header_safe(recipient, 2000)
        mail["Subject"] = Header(subject, "utf-8").encode()
        mail["Message-ID"] = message_id
        mail["Date"] = formatdate(usegmt=True)
        mail["X-Exhunt-Case"] = reference
        body = MIMEMultipart("alternative")
        body.attach(MIMEText(self.text.get_template("notice.txt.j2").render(context), "plain",
                             "utf-8"))
        body.attach(MIMEText(self.html.get_template("notice.html.j2").render(context), "html",
                             "utf-8"))
        mail.attach(body)
        attachment = MIMEText(hosts_csv(hosts), "csv", "utf-8")
        attachment.add_header("Content-Disposition", "attachment",
                              filename=f"{reference}-hosts.csv")
        mail.attach(attachment)
        return message_id, subject, mail.as_bytes()


def hosts_csv(hosts: list[NoticeHost]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["ip", "hostname", "state", "first_seen", "last_seen", "evidence",
                     "software", "install"])
    for h in hosts:
        writer.writerow([csv_safe(v) for v in (h.ip, h.hostname, h.label, h.first_seen,
                                                h.last_seen, " | ".join(h.evidence), h.software,
                                                " | ".join(h.install))])
    return out.getvalue()
