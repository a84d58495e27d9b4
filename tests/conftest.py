"""Every test session compiles Sigma rules into a cache of its own, never the user's."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("EXHUNT_CACHE", tempfile.mkdtemp(prefix="exhunt-test-cache-"))
