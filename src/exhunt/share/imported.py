"""Indicators read from others' STIX bundles and MISP events that the log checks match.

(Hashes and file names go to the file stage's own IOC tables; see `iocs_in`.) Kept apart
from the readers so the file stage and the checks can hold them without importing STIX or
MISP libraries.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field


def normal_address(value: str) -> str | None:
    """One spelling per address (IPv6 compressed, lower case), or None if it is none."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def normal_agent(value: str) -> str:
    # IIS writes spaces in the user agent as '+'; HttpProxy keeps them. Case never matters.
    return value.replace("+", " ").strip().lower()


def normal_path(value: str) -> str:
    return value.strip().lower()


@dataclass(slots=True)
class LogIndicators:
    """Attacker addresses, user agents and URL paths, each with where it came from."""

    addresses: dict[str, str] = field(default_factory=dict)
    user_agents: dict[str, str] = field(default_factory=dict)
    url_paths: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.addresses or self.user_agents or self.url_paths)

    def update(self, other: LogIndicators) -> None:
        self.addresses.update(other.addresses)
        self.user_agents.update(other.user_agents)
        self.url_paths.update(other.url_paths)

    def literals(self) -> tuple[str, ...]:
        """What a log line must hold to matter: for an agent its longest run without spaces
        (IIS writes '+' where HttpProxy writes ' ')."""
        words = [max(agent.replace("+", " ").split(), key=len, default="")
                 for agent in self.user_agents]
        return tuple(sorted({*self.addresses, *self.url_paths, *(w for w in words if w)}))
