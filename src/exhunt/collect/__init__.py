"""Open a server's files (live install, triage copy, zip) and locate its artifacts.

    collection = open_collection(path)      # InputError("cannot read PATH: ...") if unusable
    with collection:
        for artifact in collection.artifacts():   # sorted by path, each once
            with collection.open(artifact) as stream: ...
        collection.exchange_roots                  # installs found ('.' = the root itself)
        collection.problems                        # InputProblem list, named, never raised

A collection is re-openable from `collection.source` in another process (and pickles
to that), so workers call `open_collection(source).open(artifact)`.
"""

from __future__ import annotations

from exhunt.collect.base import (
    Artifact,
    ArtifactKind,
    ArtifactReadError,
    Collection,
    printable_path,
)
from exhunt.collect.directory import DirectoryCollection
from exhunt.collect.source import open_collection
from exhunt.collect.webpaths import web_relative
from exhunt.collect.ziparchive import ZipCollection, ZipLimits

__all__ = [
    "Artifact",
    "ArtifactKind",
    "ArtifactReadError",
    "Collection",
    "DirectoryCollection",
    "ZipCollection",
    "ZipLimits",
    "open_collection",
    "printable_path",
    "web_relative",
]
