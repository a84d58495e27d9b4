"""Open a server's files (live install, triage copy, zip) and locate its artifacts."""

from __future__ import annotations

from exhunt.collect.base import Artifact, ArtifactKind, Collection

__all__ = ["Artifact", "ArtifactKind", "Collection"]
