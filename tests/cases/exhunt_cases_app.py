"""The exhunt app with the coordinator and lab commands registered, for tests and subprocess
runs."""

from __future__ import annotations

from exhunt.cli import register_areas

app = register_areas("coordinate", "web", "lab")

if __name__ == "__main__":
    app()
