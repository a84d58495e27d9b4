"""The names of the team's private reference notes, which no tracked file may cite: exhunt's
sources are the public ones the notes point to. Built from parts so that this file, and the
tests that look for the names, do not name them themselves."""

from __future__ import annotations

PRIVATE_NOTES: tuple[str, ...] = (
    *(name + ".md" for name in ("hunting", "scanning", "notification", "style-anchors",
                                "dependencies", "DESIGN")),
    "reference" + "/",
    "../" + "shared",
)


def private_notes_named(text: str) -> list[str]:
    """The private note names `text` mentions, empty when it stands alone."""
    return [name for name in PRIVATE_NOTES if name in text]
