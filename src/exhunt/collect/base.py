"""What a collection (live install, triage copy, zip) offers to the readers.

A collection knows where things are, never what they mean. Paths shown to the
user are relative to the collection root, '/'-separated, as they appear in it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from exhunt.errors import InputError
from exhunt.model import InputProblem


class ArtifactReadError(InputError, OSError):
    """An artifact could not be read (vanished, unsafe, corrupt, over a size cap).

    Also an OSError, so readers that guard their I/O with `except OSError` catch it.
    """


def printable_path(path: str) -> str:
    """A path safe to print or put in JSON: undecodable file-name bytes shown as \\xNN."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        raw = path.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


class ArtifactKind(StrEnum):
    HTTPPROXY_LOG = "httpproxy"          # Logging/HttpProxy/<Protocol>/*.LOG
    ECP_SERVER_LOG = "ecp-server"        # Logging/ECP/Server/*.LOG
    OAB_GENERATOR_LOG = "oab-generator"  # Logging/OABGeneratorLog/**
    RPS_HTTP_LOG = "rps-http"            # Logging/CmdletInfra/Powershell-Proxy/Http/*
    RPS_CMDLET_LOG = "rps-cmdlet"        # Logging/CmdletInfra/Powershell-Proxy/Cmdlet/*
    IIS_LOG = "iis"                      # inetpub/logs/LogFiles/W3SVC*/*.log
    EVTX = "evtx"                        # Windows/System32/winevt/Logs/*.evtx
    EVENT_EXPORT = "event-export"        # wevtutil XML or Get-WinEvent JSON exports
    WEB_FILE = "web-file"                # files under web roots (for the web-shell checks)
    OTHER_FILE = "other-file"            # ProgramData, Windows/Temp, ... (post-exploitation)


@dataclass(frozen=True, slots=True)
class Artifact:
    kind: ArtifactKind
    path: str                 # relative to the collection root, '/'-separated
    size: int
    mtime: datetime | None = None
    protocol: str | None = None   # HttpProxy protocol folder ("Ecp", "Owa", ...)
    exchange_root: str | None = None  # relative path of the Exchange install it belongs to
    served_at: str | None = None  # URL path, when an IIS virtual directory serves the file


class Collection(ABC):
    """One server's files, wherever they come from. Re-openable from `source` in any process."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[InputProblem] = []

    @abstractmethod
    def artifacts(self) -> Iterator[Artifact]:
        """Every artifact found, each once. Problems met on the way go to `problems`."""

    @abstractmethod
    def open(self, artifact: Artifact) -> BinaryIO:
        """Raw bytes of the artifact (compressed rotations stay compressed)."""

    def local_path(self, artifact: Artifact) -> Path | None:
        """A real file on disk holding the artifact, when there is one (lets readers mmap)."""
        return None

    @property
    def exchange_roots(self) -> list[str]:
        """Relative paths of the Exchange installs found (folders holding Logging/HttpProxy)."""
        return []

    def close(self) -> None:  # noqa: B027 (optional hook: most collections hold nothing)
        """Release open handles (zip files)."""

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WalkedCollection(Collection):
    """A collection listed by one walk of its tree, done on first use and kept."""

    def __init__(self, source: str) -> None:
        super().__init__(source)
        self._artifacts: list[Artifact] | None = None
        self._exchange_roots: list[str] = []

    @abstractmethod
    def _walk(self) -> tuple[list[Artifact], list[str]]:
        """(every artifact, the Exchange install roots found)."""

    def _listing(self) -> list[Artifact]:
        if self._artifacts is None:
            self._artifacts, self._exchange_roots = self._walk()
        return self._artifacts

    def artifacts(self) -> Iterator[Artifact]:
        return iter(self._listing())

    @property
    def exchange_roots(self) -> list[str]:
        self._listing()
        return list(self._exchange_roots)
