"""Every family of checks; importing this module registers them all."""

from __future__ import annotations

from exhunt.checks import iis, iocmatch, postexploit, proxylogon, proxyshell, sigma, webshell

__all__ = ["iis", "iocmatch", "postexploit", "proxylogon", "proxyshell", "sigma", "webshell"]
