"""The coordinator's export: the campaign's shared infrastructure, from the hunts it received.

`exhunt cases --format stix|misp --reports FILES` reads the hunt reports (JSON) that owners
and responders sent, and writes one STIX bundle or MISP event over all of them: indicators,
the CVEs seen exploited, and one intrusion-set per cluster of servers sharing
infrastructure. By default no victim is named: no server identity, no host name, no path
of a triage copy, no internal address, sightings counted but not placed; `--with-victims`
names the servers (for a trusted peer, under TLP:RED).
"""

from __future__ import annotations

from pathlib import Path

from exhunt.errors import UsageError
from exhunt.model import InputProblem
from exhunt.share.options import ShareOptions
from exhunt.share.report_in import read_reports
from exhunt.share.writers import render

EXPORT_FORMATS = ("stix", "misp")


def export_campaign(fmt: str, reports: list[Path], options: ShareOptions
                    ) -> tuple[str, list[InputProblem]]:
    """The export's text and the problems met reading the reports."""
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"the campaign is exported as {' or '.join(EXPORT_FORMATS)}")
    if not reports:
        raise UsageError("give the hunt reports to export with --reports FILE|FOLDER")
    hunts, problems = read_reports(reports)
    if not hunts:
        raise UsageError("none of the --reports is an exhunt hunt report")
    return render(fmt, hunts, options), problems
