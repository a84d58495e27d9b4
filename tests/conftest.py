"""Every test session compiles Sigma rules into a cache of its own, never the user's, and
removes it at the end."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

if "EXHUNT_CACHE" not in os.environ:
    os.environ["EXHUNT_CACHE"] = tempfile.mkdtemp(prefix="exhunt-test-cache-")
    atexit.register(shutil.rmtree, os.environ["EXHUNT_CACHE"], ignore_errors=True)
