"""The text-log reader reuses its buffer from file to file: no file may see another's bytes,
whether the files are read one after the other or side by side (two readers in one thread)."""

from __future__ import annotations

from io import BytesIO

from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.model import RecordKind
from exhunt.readers.base import ReadStats
from exhunt.readers.prefilter import LiteralFilter
from exhunt.readers.textlog import read_text_log

HEAD = b"#Fields: date time cs-method cs-uri-stem c-ip sc-status\r\n"


def log(paths: list[str], ip: str) -> bytes:
    return HEAD + b"".join(f"2021-03-01 10:00:00 GET {p} {ip} 200\r\n".encode() for p in paths)


def seen(data: bytes) -> list[tuple[str, str]]:
    stats = ReadStats("x.log")
    return [(r.get("cs-uri-stem") or "", r.get("c-ip") or "")
            for r in read_text_log(BytesIO(data), RecordKind.IIS, stats, LiteralFilter(()))]


paths = st.lists(st.from_regex(r"/[a-z]{1,40}", fullmatch=True), min_size=0, max_size=30)


@settings(max_examples=40, deadline=None)
@given(paths, paths)
def test_files_read_in_turn_or_side_by_side_keep_their_own_lines(a: list[str],
                                                                 b: list[str]) -> None:
    first, second = log(a, "10.0.0.1"), log(b, "10.0.0.2")
    alone = (seen(first), seen(second))
    assert alone == ([(p, "10.0.0.1") for p in a], [(p, "10.0.0.2") for p in b])
    one = read_text_log(BytesIO(first), RecordKind.IIS, ReadStats("a"), LiteralFilter(()))
    two = read_text_log(BytesIO(second), RecordKind.IIS, ReadStats("b"), LiteralFilter(()))
    side = ([], [])  # type: tuple[list[tuple[str, str]], list[tuple[str, str]]]
    for got, reader in ((side[0], one), (side[1], two), (side[0], one), (side[1], two)):
        for record in reader:
            got.append((record.get("cs-uri-stem") or "", record.get("c-ip") or ""))
            break
    for got, reader in ((side[0], one), (side[1], two)):
        got.extend((r.get("cs-uri-stem") or "", r.get("c-ip") or "") for r in reader)
    assert side == alone
    assert (seen(first), seen(second)) == alone  # and again, on buffers the others left
