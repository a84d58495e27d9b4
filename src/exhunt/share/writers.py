"""One entry point for the CLI: a format's name to the text it writes for some hunts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from exhunt.model import HuntReport
from exhunt.share.options import ShareOptions

Writer = Callable[[Sequence[HuntReport], ShareOptions], str]


def _stix(reports: Sequence[HuntReport], options: ShareOptions) -> str:
    from exhunt.share.stix import stix_text

    return stix_text(reports, options)


def _misp(reports: Sequence[HuntReport], options: ShareOptions) -> str:
    from exhunt.share.misp import misp_text

    return misp_text(reports, options)


def _timeline(reports: Sequence[HuntReport], options: ShareOptions) -> str:
    from exhunt.share.timeline import timeline_jsonl

    return timeline_jsonl(reports)


def _timeline_csv(reports: Sequence[HuntReport], options: ShareOptions) -> str:
    from exhunt.share.timeline import timeline_csv

    return timeline_csv(reports)


def _ecs(reports: Sequence[HuntReport], options: ShareOptions) -> str:
    from exhunt.share.ecs import ecs_jsonl

    return ecs_jsonl(reports)


# The libraries behind STIX and MISP take a while to import: only the chosen one is loaded.
WRITERS: dict[str, Writer] = {
    "stix": _stix,
    "misp": _misp,
    "timeline": _timeline,
    "timeline-csv": _timeline_csv,
    "ecs": _ecs,
}


def render(name: str, reports: Sequence[HuntReport], options: ShareOptions) -> str:
    return WRITERS[name](reports, options)
