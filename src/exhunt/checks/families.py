"""Every family of checks; importing this module registers them all."""

from __future__ import annotations

from exhunt.checks import iis, proxylogon

__all__ = ["iis", "proxylogon"]
