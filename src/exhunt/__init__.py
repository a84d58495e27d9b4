"""exhunt: response toolkit for mass compromise of on-premises Microsoft Exchange servers."""

from __future__ import annotations

__version__ = "0.1.0"
