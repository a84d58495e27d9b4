"""A folder from a compromised server is hostile input: loops, depth, vanishing files, odd names."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from exhunt.collect import ArtifactKind, ArtifactReadError, locate, open_collection
from exhunt.errors import InputError
from helpers.collect_trees import write_tree


def _messages(collection) -> dict[str, str]:
    return {p.artifact: p.message for p in collection.problems}


def test_symlink_loop_is_named_and_not_followed(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/a.aspx", b"x")])
    os.symlink(tmp_path / "C", tmp_path / "C/inetpub/wwwroot/loop")
    os.symlink(tmp_path / "C/inetpub", tmp_path / "C/inetpub/wwwroot/up")
    os.symlink("/etc/passwd", tmp_path / "C/inetpub/wwwroot/passwd.aspx")
    collection = open_collection(str(tmp_path))
    assert [a.path for a in collection.artifacts()] == ["C/inetpub/wwwroot/a.aspx"]
    assert _messages(collection) == {
        "C/inetpub/wwwroot/loop": "symbolic link not followed",
        "C/inetpub/wwwroot/up": "symbolic link not followed",
        "C/inetpub/wwwroot/passwd.aspx": "symbolic link not followed",
    }


def _remove_chain(top: Path, name: str) -> None:
    """Delete a very deep chain top/name/name/... without long paths or recursion.

    (shutil.rmtree recurses, and the full path is longer than PATH_MAX.)
    """
    home = os.getcwd()
    try:
        os.chdir(top)
        depth = 0
        while os.path.isdir(name):
            os.chdir(name)
            depth += 1
        for leftover in os.listdir("."):
            os.remove(leftover)
        for _ in range(depth):
            os.chdir("..")
            os.rmdir(name)
    finally:
        os.chdir(home)


@pytest.fixture
def deep_tree(tmp_path: Path) -> Iterator[Path]:
    # tmpfs when there is one: 20,000 mkdir/rmdir on a journaling disk take many seconds.
    fast = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(dir=fast)) if os.access(fast, os.W_OK) else tmp_path
    write_tree(base, [("C/inetpub/wwwroot/a.aspx", b"x")])
    fd = os.open(base / "C/inetpub/wwwroot", os.O_RDONLY)
    try:
        for _ in range(10_000):  # iteratively, with dir fds: the full path is ~20,000 chars
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        with open(os.open("shell.aspx", os.O_WRONLY | os.O_CREAT, dir_fd=fd), "wb") as fh:
            fh.write(b"deep")
    finally:
        os.close(fd)
    yield base
    _remove_chain(base / "C/inetpub/wwwroot", "d")
    if base != tmp_path:
        shutil.rmtree(base)


def test_ten_thousand_deep_folder_hits_a_named_depth_cap(deep_tree: Path) -> None:
    collection = open_collection(str(deep_tree))
    paths = [a.path for a in collection.artifacts()]
    assert "C/inetpub/wwwroot/a.aspx" in paths
    capped = [p for p in collection.problems if "deeper than" in p.message]
    assert len(capped) == 1
    assert capped[0].artifact.count("/d") == locate.MAX_DEPTH + 1 - 3
    assert all(len(p.split("/")) <= locate.MAX_DEPTH + 1 for p in paths)


def test_permission_denied_folder_is_named_and_walk_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/a.aspx", b"x"), ("C/ProgramData/x/b.7z", b"7z")])
    real = os.scandir
    locked = str(tmp_path / "C/ProgramData/x")

    def scandir(path):  # root ignores chmod 000, so the refusal is simulated
        if path == locked:
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    collection = open_collection(str(tmp_path))
    assert [a.path for a in collection.artifacts()] == ["C/inetpub/wwwroot/a.aspx"]
    assert _messages(collection) == {
        "C/ProgramData/x": "cannot list folder: permission denied",
    }


def test_files_and_folders_vanishing_during_the_walk_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, [
        ("C/inetpub/wwwroot/gone.aspx", b"x"),
        ("C/inetpub/wwwroot/kept.aspx", b"x"),
        ("C/inetpub/wwwroot/sub/gone-too.aspx", b"x"),
    ])
    real = os.scandir
    wwwroot = str(tmp_path / "C/inetpub/wwwroot")

    class Listing:
        def __init__(self, entries):
            self._entries = entries

        def __enter__(self):
            return iter(self._entries)

        def __exit__(self, *exc):
            return None

    def scandir(path):
        with real(path) as found:
            entries = list(found)
        if os.fspath(path) == wwwroot:  # listed, then deleted before it is looked at
            os.remove(os.path.join(wwwroot, "gone.aspx"))
            os.remove(os.path.join(wwwroot, "sub", "gone-too.aspx"))
            os.rmdir(os.path.join(wwwroot, "sub"))
        return Listing(entries)

    monkeypatch.setattr(os, "scandir", scandir)
    collection = open_collection(str(tmp_path))
    assert [a.path for a in collection.artifacts()] == ["C/inetpub/wwwroot/kept.aspx"]
    assert _messages(collection) == {
        "C/inetpub/wwwroot/gone.aspx": "vanished during the walk",
        "C/inetpub/wwwroot/sub": "folder vanished during the walk",
    }


def test_file_vanishing_after_listing_fails_to_open_with_a_clear_error(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/a.aspx", b"x")])
    collection = open_collection(str(tmp_path))
    (art,) = collection.artifacts()
    os.remove(tmp_path / art.path)
    with pytest.raises(ArtifactReadError, match=r"cannot read C/inetpub/wwwroot/a\.aspx: .*vanished"):
        collection.open(art)
    assert collection.local_path(art) is None


def test_file_swapped_for_a_symlink_after_listing_is_refused(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/a.aspx", b"x")])
    collection = open_collection(str(tmp_path))
    (art,) = collection.artifacts()
    os.remove(tmp_path / art.path)
    os.symlink("/etc/hostname", tmp_path / art.path)
    with pytest.raises(OSError, match="symbolic link"):
        collection.open(art)


def test_forged_artifact_path_cannot_leave_the_collection(tmp_path: Path) -> None:
    write_tree(tmp_path / "in", [("C/inetpub/wwwroot/a.aspx", b"x")])
    (tmp_path / "secret").write_bytes(b"secret")
    collection = open_collection(str(tmp_path / "in"))
    (art,) = collection.artifacts()
    forged = type(art)(kind=art.kind, path="../secret", size=6)
    with pytest.raises(InputError, match="not a plain relative path"):
        collection.open(forged)


def test_non_utf8_file_name_is_listed_named_and_readable(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/ok.aspx", b"x")])
    raw = os.fsencode(tmp_path / "C/inetpub/wwwroot") + b"/sh\xffell.aspx"
    with open(raw, "wb") as fh:
        fh.write(b"<%eval%>")
    collection = open_collection(str(tmp_path))
    arts = {a.path: a for a in collection.artifacts()}
    odd = arts["C/inetpub/wwwroot/sh\\xffell.aspx"]
    assert odd.kind is ArtifactKind.WEB_FILE
    assert odd.path.encode("utf-8")  # printable: safe for JSON reports
    with collection.open(odd) as fh:
        assert fh.read() == b"<%eval%>"
    assert os.fsencode(collection.local_path(odd)) == raw
    assert _messages(collection) == {
        "C/inetpub/wwwroot/sh\\xffell.aspx": "file name is not valid UTF-8; shown with \\x escapes"
    }


def test_missing_path_and_plain_file_raise_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read .*nope: no such file or folder"):
        open_collection(str(tmp_path / "nope"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"cannot read .*notes.txt: not a folder or a .zip"):
        open_collection(str(tmp_path / "notes.txt"))
    os.mkfifo(tmp_path / "pipe.zip")  # must not block reading a pipe
    with pytest.raises(InputError, match=r"not a folder or a \.zip"):
        open_collection(str(tmp_path / "pipe.zip"))


def test_post_exploitation_zone_cap_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locate, "MAX_ZONE_FILES", 5)
    write_tree(tmp_path, [(f"C/ProgramData/vendor/{i:02}.bin", b"x") for i in range(12)])
    write_tree(tmp_path, [("C/Windows/Temp/a.dmp", b"x"), ("C/inetpub/wwwroot/z.aspx", b"x")])
    collection = open_collection(str(tmp_path))
    listed = [a.path for a in collection.artifacts()]
    assert len([p for p in listed if "/ProgramData/" in p]) == 5
    assert "C/Windows/Temp/a.dmp" in listed
    assert "C/inetpub/wwwroot/z.aspx" in listed
    assert _messages(collection) == {
        "C/ProgramData": "more than 5 files here; the rest not listed",
    }


def test_event_export_sniffing_is_capped_and_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locate, "MAX_SNIFFED", 3)
    write_tree(tmp_path, [(f"exports/{i}.txt", b"plain") for i in range(7)])
    collection = open_collection(str(tmp_path))
    assert list(collection.artifacts()) == []
    (problem,) = collection.problems
    assert "stopped after 3 files; 4 .xml/.json/.txt files not examined" in problem.message


def test_entry_cap_stops_the_walk_with_a_named_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(locate, "MAX_ENTRIES", 10)
    write_tree(tmp_path, [(f"inetpub/wwwroot/{i:02}.aspx", b"x") for i in range(30)])
    collection = open_collection(str(tmp_path))
    assert len(list(collection.artifacts())) < 30
    assert any("walk stopped after 10 entries" in p.message for p in collection.problems)


def test_heavy_windows_trees_are_not_walked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, [
        ("C/Windows/WinSxS/amd64_a/x.dll", b"MZ"),
        ("C/Windows/System32/DriverStore/FileRepository/x.inf", b"x"),
        ("C/Windows/System32/winevt/Logs/System.evtx", b"ElfFile\x00"),
        ("C/Users/bob/AppData/Local/Packages/p/x.txt", b"x"),
        ("C/$Recycle.Bin/S-1/$R.aspx", b"x"),
        ("C/ProgramData/Package Cache/{guid}/setup.exe", b"MZ"),
        ("C/ProgramData/Microsoft/Windows/WER/ReportArchive/r/Report.wer", b"x"),
    ])
    real = os.scandir
    walked: list[str] = []

    def scandir(path):
        if isinstance(path, str):
            walked.append(os.path.relpath(path, tmp_path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    collection = open_collection(str(tmp_path))
    listed = {a.path for a in collection.artifacts()}
    assert listed == {
        "C/Windows/System32/winevt/Logs/System.evtx",
        "C/ProgramData/Microsoft/Windows/WER/ReportArchive/r/Report.wer",
    }
    for heavy in ("WinSxS", "DriverStore", "AppData/Local", "$Recycle.Bin", "Package Cache"):
        assert not any(heavy in w for w in walked), heavy


def test_pipe_swapped_in_after_listing_does_not_block(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/inetpub/wwwroot/a.aspx", b"x")])
    collection = open_collection(str(tmp_path))
    (art,) = collection.artifacts()
    os.remove(tmp_path / art.path)
    os.mkfifo(tmp_path / art.path)
    with pytest.raises(ArtifactReadError, match="not a regular file"):
        collection.open(art)


def test_pipes_and_sockets_in_the_tree_are_never_opened(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/ProgramData/a.txt", b"x")])
    os.mkfifo(tmp_path / "C/ProgramData/events.xml")
    os.mkfifo(tmp_path / "C/inetpub.xml")
    listed = [a.path for a in open_collection(str(tmp_path)).artifacts()]
    assert listed == ["C/ProgramData/a.txt"]
