"""Moved: the demo orchestrates every part, so it lives above them in exhunt/demo.py. These
names stay importable here for callers of the old place."""

from __future__ import annotations

from exhunt.demo import DemoTimings as DemoTimings
from exhunt.demo import DemoWorld as DemoWorld
from exhunt.demo import build_world as build_world
from exhunt.demo import run_demo as run_demo
