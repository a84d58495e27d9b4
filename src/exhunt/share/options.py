"""What every export is asked for: who produces it, its TLP level, whether victims are named."""

from __future__ import annotations

from dataclasses import dataclass

from exhunt.model import Tlp

TLP_NAMES = tuple(level.value for level in Tlp)
DEFAULT_PRODUCER = "exhunt"


@dataclass(frozen=True, slots=True)
class ShareOptions:
    """`with_victims`: name the hunted servers (identities, sightings' places, MISP targets).
    A hunt's own output names them; the coordinator's export does not unless asked."""

    producer: str = DEFAULT_PRODUCER
    tlp: str = Tlp.AMBER.value
    with_victims: bool = True
