"""A zip from a compromised server is hostile input: traversal, bombs, encryption, corruption."""

from __future__ import annotations

import multiprocessing
import os
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from exhunt.collect import (
    ArtifactKind,
    ArtifactReadError,
    ZipCollection,
    ZipLimits,
    open_collection,
)
from exhunt.errors import InputError

WEB = "C/inetpub/wwwroot/"


def _zip(path: Path, members: list[tuple[str | zipfile.ZipInfo, bytes]], **kw) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, **kw) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return path


def _patch(path: Path, name: str, *, flags: int | None = None, size: int | None = None) -> None:
    """Rewrite a member's flag bits or declared size in both its headers (a lying zip)."""
    blob = bytearray(path.read_bytes())
    encoded = name.encode()
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(name).header_offset
    central = blob.find(b"PK\x01\x02")
    while central >= 0:
        nlen = struct.unpack_from("<H", blob, central + 28)[0]
        if bytes(blob[central + 46 : central + 46 + nlen]) == encoded:
            break
        central = blob.find(b"PK\x01\x02", central + 4)
    if flags is not None:
        struct.pack_into("<H", blob, offset + 6, flags)
        struct.pack_into("<H", blob, central + 8, flags)
    if size is not None:
        struct.pack_into("<I", blob, offset + 22, size)
        struct.pack_into("<I", blob, central + 24, size)
    path.write_bytes(bytes(blob))


def _problems(collection) -> dict[str, str]:
    return {p.artifact: p.message for p in collection.problems}


def test_traversal_absolute_and_drive_members_are_refused_by_name(tmp_path: Path) -> None:
    source = _zip(tmp_path / "t.zip", [
        ("../evil.aspx", b"x"),
        (WEB + "../../../../etc/cron.d/x.aspx", b"x"),
        ("..\\..\\Windows\\evil.aspx", b"x"),
        ("/etc/passwd", b"x"),
        ("\\\\server\\share\\x.aspx", b"x"),
        ("C:/inetpub/wwwroot/drive.aspx", b"x"),
        ("c:\\inetpub\\wwwroot\\drive2.aspx", b"x"),
        (WEB + "ok.aspx", b"ok"),
        ("./" + WEB + "./dot.aspx", b"ok"),
    ])
    collection = open_collection(str(source))
    assert [a.path for a in collection.artifacts()] == [WEB + "dot.aspx", WEB + "ok.aspx"]
    assert _problems(collection) == {
        "../evil.aspx": "member refused: path traversal ('..')",
        WEB + "../../../../etc/cron.d/x.aspx": "member refused: path traversal ('..')",
        "..\\..\\Windows\\evil.aspx": "member refused: path traversal ('..' with backslashes)",
        "/etc/passwd": "member refused: absolute path",
        "\\\\server\\share\\x.aspx": "member refused: absolute path",
        "C:/inetpub/wwwroot/drive.aspx": "member refused: drive letter in path",
        "c:\\inetpub\\wwwroot\\drive2.aspx": "member refused: drive letter in path",
    }
    with collection.open(next(iter(collection.artifacts()))) as fh:
        assert fh.read() == b"ok"


def test_zip_bomb_is_stopped_while_streaming_and_named(tmp_path: Path) -> None:
    log = "C/inetpub/logs/LogFiles/W3SVC1/u_ex210301.log"
    source = _zip(tmp_path / "bomb.zip", [(log, bytes(64 << 20)), (WEB + "a.aspx", b"x")])
    assert source.stat().st_size < 1 << 20
    collection = open_collection(str(source))
    arts = {a.path: a for a in collection.artifacts()}
    assert arts[log].kind is ArtifactKind.IIS_LOG
    read = 0
    bomb = "zip bomb: member expands more than 200:1"
    with pytest.raises(ArtifactReadError, match=bomb) as err, collection.open(arts[log]) as fh:
        while chunk := fh.read(1 << 16):
            read += len(chunk)
    assert isinstance(err.value, OSError)  # readers guarding with `except OSError` catch it
    assert read < 16 << 20  # stopped early, not after 64 MiB
    assert "zip bomb" in _problems(collection)[log]
    with collection.open(arts[WEB + "a.aspx"]) as fh:  # the rest of the zip still reads
        assert fh.read() == b"x"


def test_header_that_understates_the_size_is_not_trusted(tmp_path: Path) -> None:
    name = WEB + "big.aspx"
    source = _zip(tmp_path / "lie.zip", [(name, bytes(1 << 20))])
    _patch(source, name, size=1000)
    collection = open_collection(str(source))
    (art,) = collection.artifacts()
    assert art.size == 1000
    with pytest.raises(ArtifactReadError, match="corrupt member"), collection.open(art) as fh:
        fh.read()
    assert "corrupt member" in _problems(collection)[name]


def test_member_and_total_caps_are_named(tmp_path: Path) -> None:
    noise = os.urandom(3 << 20)
    source = _zip(tmp_path / "big.zip", [
        (WEB + "a.aspx", noise[: 2 << 20]), (WEB + "b.aspx", noise[1 << 20 :]),
        (WEB + "huge.aspx", noise),
    ])
    limits = ZipLimits(member_bytes=(2 << 20) + 10, total_bytes=3 << 20)
    collection = ZipCollection(str(source), limits)
    arts = list(collection.artifacts())
    assert [a.path for a in arts] == [WEB + "a.aspx", WEB + "b.aspx"]
    assert "over the cap" in _problems(collection)[WEB + "huge.aspx"]
    with collection.open(arts[0]) as fh:
        assert fh.read() == noise[: 2 << 20]
    total = "total bytes read from this zip"
    with pytest.raises(ArtifactReadError, match=total), collection.open(arts[1]) as fh:
        fh.read()


def test_encrypted_members_are_named_and_skipped(tmp_path: Path) -> None:
    source = _zip(tmp_path / "enc.zip", [(WEB + "secret.aspx", b"x"), (WEB + "a.aspx", b"y")])
    _patch(source, WEB + "secret.aspx", flags=0x1)
    collection = open_collection(str(source))
    assert [a.path for a in collection.artifacts()] == [WEB + "a.aspx"]
    assert _problems(collection) == {WEB + "secret.aspx": "member is encrypted; not read"}


def test_corrupt_members_are_named(tmp_path: Path) -> None:
    source = _zip(tmp_path / "bad.zip", [
        (WEB + "data.aspx", os.urandom(5000)), (WEB + "header.aspx", b"x" * 100),
        (WEB + "fine.aspx", b"fine"),
    ])
    with zipfile.ZipFile(source) as zf:
        data_at = zf.getinfo(WEB + "data.aspx").header_offset + 30 + len(WEB) + 9 + 40
        head_at = zf.getinfo(WEB + "header.aspx").header_offset
    blob = bytearray(source.read_bytes())
    blob[data_at : data_at + 200] = bytes(200)
    blob[head_at : head_at + 4] = b"XXXX"  # local header signature destroyed
    source.write_bytes(bytes(blob))
    collection = open_collection(str(source))
    arts = {a.path: a for a in collection.artifacts()}
    assert sorted(arts) == [WEB + "data.aspx", WEB + "fine.aspx"]
    assert "corrupt member" in _problems(collection)[WEB + "header.aspx"]
    corrupt = r"cannot read .*data\.aspx: corrupt member"
    with pytest.raises(ArtifactReadError, match=corrupt), collection.open(
        arts[WEB + "data.aspx"]
    ) as fh:
        fh.read()
    with collection.open(arts[WEB + "fine.aspx"]) as fh:
        assert fh.read() == b"fine"


def test_not_a_zip_and_truncated_zip_raise_input_error(tmp_path: Path) -> None:
    junk = tmp_path / "triage.zip"
    junk.write_bytes(b"this is not a zip" * 100)
    with pytest.raises(InputError, match=r"cannot read .*triage.zip: not a zip archive"):
        open_collection(str(junk))
    good = _zip(tmp_path / "cut.zip", [(WEB + "a.aspx", b"x" * 1000)])
    good.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(InputError, match=r"cannot read .*cut.zip"):
        open_collection(str(good))


def test_unsupported_compression_and_symlink_members_are_named(tmp_path: Path) -> None:
    link = zipfile.ZipInfo(WEB + "link.aspx")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    source = tmp_path / "mixed.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr(WEB + "b.aspx", b"x" * 100, compress_type=zipfile.ZIP_BZIP2)
        zf.writestr(link, b"/etc/passwd")
        zf.writestr(WEB + "ok.aspx", b"ok")
    collection = open_collection(str(source))
    assert [a.path for a in collection.artifacts()] == [WEB + "ok.aspx"]
    problems = _problems(collection)
    assert "compression method 12 not supported" in problems[WEB + "b.aspx"]
    assert problems[WEB + "link.aspx"] == "symbolic link not followed"


def test_duplicate_names_are_named_and_listed_once(tmp_path: Path) -> None:
    source = tmp_path / "dup.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr(WEB + "a.aspx", b"first")
        with pytest.warns(UserWarning):
            zf.writestr(WEB + "a.aspx", b"second")
        zf.writestr(WEB.replace("/", "\\") + "a.aspx", b"third")
    collection = open_collection(str(source))
    (art,) = collection.artifacts()
    assert "holds this name twice" in _problems(collection)[WEB + "a.aspx"]
    with collection.open(art) as fh:
        assert fh.read() == b"third"


def test_nested_zip_is_a_web_file_and_not_opened(tmp_path: Path) -> None:
    inner = _zip(tmp_path / "inner.zip", [(WEB + "hidden.aspx", b"x")])
    source = _zip(tmp_path / "outer.zip", [(WEB + "drop.zip", inner.read_bytes())])
    arts = list(open_collection(str(source)).artifacts())
    assert [(a.path, a.kind) for a in arts] == [(WEB + "drop.zip", ArtifactKind.WEB_FILE)]


def test_zip_times_come_from_the_ntfs_field_when_present(tmp_path: Path) -> None:
    info = zipfile.ZipInfo(WEB + "t.aspx", date_time=(1999, 1, 1, 0, 0, 0))
    ticks = (1614556800 + 11644473600) * 10_000_000  # 2021-03-01T00:00:00Z as FILETIME
    info.extra = struct.pack("<HHIHHQQQ", 0x000A, 32, 0, 1, 24, ticks, ticks, ticks)
    source = _zip(tmp_path / "ntfs.zip", [(info, b"x")])
    (art,) = open_collection(str(source)).artifacts()
    assert art.mtime is not None and art.mtime.isoformat() == "2021-03-01T00:00:00+00:00"


def test_backslash_folder_entries_are_folders_not_files(tmp_path: Path) -> None:
    source = tmp_path / "ps.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("C\\ProgramData\\Microsoft\\", b"")
        zf.writestr("C\\ProgramData\\Microsoft\\it.7z", b"7z")
        zf.writestr("C\\inetpub\\logs\\LogFiles\\W3SVC1\\u_ex210301.gz", b"\x1f\x8b")
    kinds = {a.path: a.kind for a in open_collection(str(source)).artifacts()}
    assert kinds == {
        "C/ProgramData/Microsoft/it.7z": ArtifactKind.OTHER_FILE,
        "C/inetpub/logs/LogFiles/W3SVC1/u_ex210301.gz": ArtifactKind.IIS_LOG,
    }


def test_problems_are_named_once_whatever_the_call_order(tmp_path: Path) -> None:
    source = _zip(tmp_path / "o.zip", [("../x.aspx", b"x"), (WEB + "a.aspx", b"a")])
    collection = open_collection(str(source))
    art = ZipCollection(str(source)).artifacts().__next__()
    with collection.open(art) as fh:  # opened before listing, as a worker does
        assert fh.read() == b"a"
    assert [a.path for a in collection.artifacts()] == [WEB + "a.aspx"]
    assert [a.path for a in collection.artifacts()] == [WEB + "a.aspx"]
    assert len(collection.problems) == 1


_FORKED: ZipCollection | None = None


def _read_all_in_child(_: int) -> list[bytes]:
    assert _FORKED is not None
    out = []
    for _round in range(20):
        for art in _FORKED.artifacts():
            with _FORKED.open(art) as fh:
                out.append(fh.read())
    return out


def test_collection_inherited_by_forked_workers_reads_correctly(tmp_path: Path) -> None:
    global _FORKED
    members = [(f"{WEB}{i}.aspx", os.urandom(200_000)) for i in range(4)]
    source = _zip(tmp_path / "fork.zip", members)
    _FORKED = ZipCollection(str(source))
    list(_FORKED.artifacts())
    context = multiprocessing.get_context("fork")
    with context.Pool(2) as pool:  # both children and the parent read at once
        pending = pool.map_async(_read_all_in_child, range(4))
        mine = _read_all_in_child(0)
        results = pending.get(timeout=120)
    expected = [data for _, data in members] * 20
    assert mine == expected
    assert all(r == expected for r in results)
    _FORKED.close()


def test_ten_thousand_deep_member_hits_the_named_depth_cap(tmp_path: Path) -> None:
    source = _zip(tmp_path / "deep.zip", [
        (WEB + "d/" * 10_000 + "shell.aspx", b"x"), (WEB + "a.aspx", b"a"),
    ])
    collection = open_collection(str(source))
    assert [a.path for a in collection.artifacts()] == [WEB + "a.aspx"]
    (problem,) = collection.problems
    assert "deeper than 100 levels" in problem.message


def test_non_ascii_member_names_list_and_read_without_problems(tmp_path: Path) -> None:
    name = WEB + "shéll—文件.aspx"
    source = _zip(tmp_path / "u.zip", [(name, b"<%@ Page %>")])
    collection = open_collection(str(source))
    (art,) = collection.artifacts()
    assert art.path == name and collection.problems == []
    with collection.open(art) as fh:
        assert fh.read() == b"<%@ Page %>"
