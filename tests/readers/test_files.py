"""Files as read: hashes and first bytes, headers, names and paths, the IOC list formats."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterator
from typing import BinaryIO

from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.collect.base import Artifact, ArtifactKind, Collection
from exhunt.intel import indicators
from exhunt.readers.base import ReadStats
from exhunt.readers.files import (
    Digest,
    odd_name,
    parse_filename_iocs,
    parse_hash_iocs,
    read_file,
    sniff_header,
    windows_path,
)

HEADER_NAMES = {"pst", "minidump", "zip", "7z", "rar", "cab", "pe", "ole", "evtx", "gzip", "der",
                "utf16-text", "text", "binary", "empty"}


class _InMemory(Collection):
    """Files held in memory; a file whose bytes are None cannot be opened."""

    def __init__(self, files: dict[str, bytes | None]) -> None:
        super().__init__("memory")
        self.files = files

    def artifacts(self) -> Iterator[Artifact]:
        for path, data in self.files.items():
            yield Artifact(ArtifactKind.WEB_FILE, path, len(data or b""))

    def open(self, artifact: Artifact) -> BinaryIO:
        data = self.files[artifact.path]
        if data is None:
            raise OSError("permission denied")
        return io.BytesIO(data)


def _read(data: bytes | None, web: bool = True, lengths: frozenset[int] = frozenset(),
          ) -> tuple[Digest | None, dict[str, str], list[str], ReadStats]:
    collection = _InMemory({"inetpub/wwwroot/aspnet_client/a.aspx": data})
    artifact = next(collection.artifacts())
    if not web:
        artifact = Artifact(ArtifactKind.OTHER_FILE, artifact.path, artifact.size)
    fields: dict[str, str] = {}
    notes: list[str] = []
    stats = ReadStats(artifact.path)
    digest = read_file(collection, artifact, lengths, web, stats, notes, fields)
    return digest, fields, notes, stats


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=5000))
def test_a_file_is_hashed_whole_and_its_first_bytes_kept(data: bytes) -> None:
    digest, fields, _, _ = _read(data, lengths=frozenset({32, 40}))
    assert fields["sha256"] == hashlib.sha256(data).hexdigest()
    assert fields["md5"] == hashlib.md5(data).hexdigest()
    assert fields["sha1"] == hashlib.sha1(data).hexdigest()
    assert digest is not None and data.startswith(bytes(digest.prefix))


def test_md5_and_sha1_only_when_an_ioc_list_needs_them() -> None:
    _, fields, _, _ = _read(b"<%@ Page %>")
    assert "sha256" in fields and "md5" not in fields and "sha1" not in fields


def test_the_rules_see_a_bounded_prefix_and_the_note_says_so() -> None:
    keep = int(indicators("webshell")["scan"]["web_prefix_bytes"])
    data = b"a" * (keep + 10)
    digest, fields, notes, _ = _read(data)
    assert digest is not None and len(digest.prefix) == keep
    assert fields["sha256"] == hashlib.sha256(data).hexdigest()
    assert any(f"first {keep} of {keep + 10} bytes" in n for n in notes)


def test_a_file_that_cannot_be_read_is_named_and_the_run_goes_on() -> None:
    digest, fields, _, stats = _read(None)
    assert digest is None and "permission denied" in fields["unreadable"]
    assert stats.problems


@given(st.text(max_size=600))
def test_hash_ioc_parser_never_raises(text: str) -> None:
    hashes, problems = parse_hash_iocs(text, "hash-iocs.txt")
    assert all(len(h) in (32, 40, 64) and h == h.lower() for h in hashes)
    assert all(p.artifact == "hash-iocs.txt" for p in problems)


@given(st.lists(st.tuples(st.sampled_from([16, 20, 32]).flatmap(
    lambda n: st.binary(min_size=n, max_size=n)), st.text(alphabet="abc XYZ-_.", max_size=30)),
    max_size=30))
def test_hash_ioc_lines_round_trip(rows: list[tuple[bytes, str]]) -> None:
    text = "# hashes\n\n" + "".join(f"{h.hex().upper()};{c}\n" for h, c in rows)
    hashes, problems = parse_hash_iocs(text, "x")
    assert problems == []
    assert set(hashes) == {h.hex() for h, _ in rows}


@given(st.text(max_size=600))
def test_filename_ioc_parser_never_raises(text: str) -> None:
    iocs, problems = parse_filename_iocs(text, "filename-iocs.txt")
    assert len(iocs) + len(problems) <= len(text.splitlines())
    for ioc in iocs:
        ioc.matches("C:\\inetpub\\wwwroot\\aspnet_client\\x.aspx")


def test_filename_ioc_lines() -> None:
    text = ("# comment\n"
            "\\\\aspnet_client\\\\[a-z]{1,3}\\.aspx$;70\n"
            "\\\\owa\\\\auth\\\\.+\\.aspx$;50;\\\\owa\\\\auth\\\\logon\\.aspx$\n"
            "(unclosed;40\n"
            "\\\\x\\.aspx;notanumber\n"
            "only-one-field\n")
    iocs, problems = parse_filename_iocs(text, "f.txt")
    assert [i.score for i in iocs] == [70, 50]
    assert len(problems) == 3 and all(re.match(r"line [456]:", p.message) for p in problems)
    owa = iocs[1]
    assert owa.matches("C:\\Program Files\\x\\owa\\auth\\errorEE.aspx")
    assert not owa.matches("C:\\Program Files\\x\\owa\\auth\\logon.aspx")


def test_non_ascii_digits_are_not_scores() -> None:
    iocs, problems = parse_filename_iocs("\\\\a\\.aspx;\u0663\n", "f")
    assert iocs == [] and len(problems) == 1


@given(st.binary(max_size=300))
def test_header_sniffing_never_raises(head: bytes) -> None:
    assert sniff_header(head) in HEADER_NAMES


def test_header_examples() -> None:
    assert sniff_header(b"!BDN\x00\x01") == "pst"
    assert sniff_header(b"MDMP\x93\xa7") == "minidump"
    assert sniff_header(b"\x30\x82\x01\x00") == "der"
    assert sniff_header(b"PK\x03\x04") == "zip"
    assert sniff_header(b"<%@ Page %>") == "text"
    assert sniff_header(b"\x00\x01\x02\x03") == "binary"
    assert sniff_header(b"") == "empty"


@given(st.text(max_size=80))
def test_names_and_paths_never_raise(name: str) -> None:
    odd_name(name)
    windows_path(name)


def test_odd_names_and_windows_paths() -> None:
    assert odd_name("a/b/logon\u202excod.aspx") and odd_name("a/x\nb.aspx")
    assert not odd_name("a/b/logon.aspx")
    assert windows_path("C%3A/inetpub/wwwroot/a.aspx") == "C:\\inetpub\\wwwroot\\a.aspx"
    assert windows_path("kape/C/ProgramData/ZING/a.aspx") == "C:\\ProgramData\\ZING\\a.aspx"
