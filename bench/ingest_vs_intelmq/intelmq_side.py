"""The IntelMQ side of the ingest benchmark: IntelMQ's own Shadowserver parser in library mode
(no Redis, no daemons), fed the same CSV. Run with the Python of a venv holding `intelmq`:
    <venv>/bin/python bench/ingest_vs_intelmq/intelmq_side.py FILE.csv
Prints one JSON line: rows, events, errors, seconds."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    csv_path = Path(sys.argv[1])
    root = Path(tempfile.mkdtemp(prefix="intelmq-root-"))
    bots = root / "var" / "lib" / "bots"
    bots.mkdir(parents=True)
    shutil.copy(HERE / "scan_exchange_schema.json", bots / "shadowserver-schema.json")
    os.environ["INTELMQ_ROOT_DIR"] = str(root)

    import intelmq.lib.cache

    class NoCache:  # IntelMQ writes statistics to Redis at exit (~7 s per bot) without this
        def __init__(self, *a: object, **k: object) -> None: ...
        def __getattr__(self, name: str) -> object:
            return lambda *a, **k: None

    intelmq.lib.cache.Cache = NoCache  # type: ignore[misc,assignment]
    from intelmq.bots.parsers.shadowserver.parser import ShadowserverParserBot
    from intelmq.lib.bot import BotLibSettings

    bot = ShadowserverParserBot("ss-parser", settings=BotLibSettings | {
        "feedname": "Vulnerable-Exchange-Server", "logging_level": "ERROR"})
    data = csv_path.read_bytes()
    report = {"__type": "Report", "feed.name": "Shadowserver", "raw":
              base64.b64encode(data).decode(), "extra.file_name": csv_path.name}
    rows = data.count(b"\n") - 1
    start = time.perf_counter()
    result = bot.process_message(report)
    seconds = time.perf_counter() - start
    events = result.get("_default", result.get("output", []))
    shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"rows": rows, "events": len(events), "seconds": seconds,
                      "sample": events[0] if events else None}, default=str))


if __name__ == "__main__":
    main()
