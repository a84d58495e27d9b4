"""The sender's local record of each notice whose end-of-data marker it wrote.

Why: a notice is claimed ('sending') in the store before its end-of-data marker goes out, and
a claim becomes durable in the database before the claiming process hears so. A process killed
in that gap leaves a claimed notice the server never took. The database alone cannot tell
that notice from one whose marker went out, so the rerun would have to guess; this journal
tells them apart. The marker is written, and in the very next system call the notice's claim
token is appended here (an O_APPEND write survives the process being killed). On restart a
claimed notice whose token is here went out; one whose token is not never did, and is sent
again. What remains is the gap between those two system calls, a few microseconds, and there
a kill means one notice twice rather than never.

One journal serves the senders of one machine for one database: each running sender holds a
shared lock on it, and a restart judges this journal's claims only when it can take the lock
alone (no live sender is mid-notice).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from datetime import datetime
from pathlib import Path

from exhunt.errors import UsageError

MAX_JOURNAL_BYTES = 64 << 20  # a journal is emptied at every restart; more is not ours


def default_journal(db_url: str) -> Path:
    """$EXHUNT_STATE_DIR, else $XDG_STATE_HOME/exhunt, else ~/.local/state/exhunt; one file
    per database."""
    base = os.environ.get("EXHUNT_STATE_DIR")
    if base:
        folder = Path(base)
    else:
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        folder = Path(state) / "exhunt"
    digest = hashlib.sha256(db_url.encode("utf-8")).hexdigest()[:16]
    return folder / f"outbox-{digest}.journal"


def claim_token(message_pk: int, claimed_at: datetime) -> str:
    return f"{message_pk} {claimed_at.isoformat()}"


class HandoverJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.identity = f"{socket.gethostname()}:{path.resolve()}"[:300]
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise UsageError(f"{path}: cannot open the outbox journal: {exc}") from exc
        self.alone = self._try_alone()

    def _try_alone(self) -> bool:
        """Take the lock alone if no other sender holds it, then share it (a later sender
        may join while this one runs)."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            return False

    def handed_over(self) -> set[str]:
        """Tokens of the claims whose end-of-data marker was written."""
        size = os.fstat(self._fd).st_size
        if size > MAX_JOURNAL_BYTES:
            raise UsageError(f"{self.path}: {size} bytes is not an exhunt outbox journal")
        os.lseek(self._fd, 0, os.SEEK_SET)
        data = os.read(self._fd, size) if size else b""
        return {line for line in data.decode("utf-8", "replace").splitlines() if line}

    def forget_all(self) -> None:
        """Empty the journal once its claims are settled (only while alone with it)."""
        assert self.alone, "only a sender alone with the journal may empty it"
        os.ftruncate(self._fd, 0)

    def share(self) -> None:
        """Settled: let other senders use the journal alongside this one."""
        if self.alone:
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            self.alone = False

    @staticmethod
    def entry(token: str) -> bytes:
        """The journal line for a claim, made before the marker goes out."""
        return token.encode("ascii") + b"\n"

    def write(self, entry: bytes) -> None:
        os.write(self._fd, entry)

    def close(self) -> None:
        os.close(self._fd)
