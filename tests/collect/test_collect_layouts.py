"""Each way a server's files arrive (live root, C:\\ copy, KAPE, Velociraptor, zip) lists alike."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from exhunt.collect import (
    ArtifactKind,
    DirectoryCollection,
    ZipCollection,
    open_collection,
)
from helpers.collect_trees import EXCH, Expect, drive_files, write_tree, zip_tree

# Where the drive's root sits inside what the user hands over.
LAYOUTS = {
    "plain-c-copy": "",
    "kape-c": "C/",
    "kape-c-encoded": "C%3A/",
    "velociraptor-auto": "uploads/auto/C%3A/",
    "velociraptor-ntfs": "uploads/ntfs/%5C%5C.%5CC%3A/",
    "one-down": "SRV-EXCH01/C/",
    "two-down": "case-2021-03/SRV-EXCH01/uploads/auto/C%3A/",
}


def _expected(prefix: str, files: list[tuple[Expect, bytes]], rename: Callable[[str], str]):
    want = {}
    for exp, _ in files:
        if exp.kind is None:
            continue
        path = prefix + rename(exp.path)
        protocol = rename(exp.protocol) if exp.protocol else None
        root = (prefix + rename(EXCH)) if exp.exchange else None
        want[path] = (exp.kind, protocol, root)
    return want


def _listing(collection):
    return {a.path: (a.kind, a.protocol, a.exchange_root) for a in collection.artifacts()}


def _identity(path: str) -> str:
    return path


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_every_layout_lists_the_same_artifacts(tmp_path: Path, layout: str, packed: bool) -> None:
    prefix = LAYOUTS[layout]
    files = drive_files()
    write_tree(tmp_path / "in", [(prefix + e.path, data) for e, data in files])
    source = tmp_path / "in"
    if packed:
        source = zip_tree(tmp_path / "in", tmp_path / "server.zip")
    with open_collection(str(source)) as collection:
        assert isinstance(collection, ZipCollection if packed else DirectoryCollection)
        assert _listing(collection) == _expected(prefix, files, _identity)
        assert collection.exchange_roots == [prefix + EXCH]
        assert collection.problems == []


def test_live_install_root_is_its_own_exchange_root(tmp_path: Path) -> None:
    files = [(e, d) for e, d in drive_files() if e.path.startswith(EXCH + "/")]
    root = tmp_path / "V15"
    write_tree(root, [(e.path[len(EXCH) + 1 :], d) for e, d in files])
    collection = open_collection(str(root))
    listed = _listing(collection)
    assert listed["Logging/HttpProxy/Owa/HttpProxy_2021030100-1.LOG"] == (
        ArtifactKind.HTTPPROXY_LOG, "Owa", ".",
    )
    assert listed["FrontEnd/HttpProxy/owa/auth/shell.aspx"] == (ArtifactKind.WEB_FILE, None, ".")
    assert {kind for kind, _, _ in listed.values()} == {
        ArtifactKind.HTTPPROXY_LOG, ArtifactKind.ECP_SERVER_LOG, ArtifactKind.OAB_GENERATOR_LOG,
        ArtifactKind.RPS_HTTP_LOG, ArtifactKind.RPS_CMDLET_LOG, ArtifactKind.WEB_FILE,
    }
    assert all(root == "." for _, _, root in listed.values())
    assert collection.exchange_roots == ["."]


@pytest.mark.parametrize("rename", [str.upper, str.lower], ids=["UPPER", "lower"])
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_folder_names_match_whatever_their_case(
    tmp_path: Path, rename: Callable[[str], str], packed: bool
) -> None:
    files = drive_files()
    prefix = "C/"
    write_tree(tmp_path / "in", [(prefix + rename(e.path), d) for e, d in files])
    source = tmp_path / "in"
    if packed:
        source = zip_tree(source, tmp_path / "s.zip")
    collection = open_collection(str(source))
    assert _listing(collection) == _expected(prefix, files, rename)


def test_windows_made_zip_with_backslashes_lists_with_slashes(tmp_path: Path) -> None:
    files = drive_files()
    write_tree(tmp_path / "in", [("C/" + e.path, d) for e, d in files])
    source = zip_tree(tmp_path / "in", tmp_path / "compress-archive.zip", backslashes=True)
    collection = open_collection(str(source))
    assert _listing(collection) == _expected("C/", files, _identity)
    assert collection.problems == []


def test_several_exchange_installs_are_each_named(tmp_path: Path) -> None:
    log = b"#Fields: DateTime\n"
    write_tree(tmp_path, [
        ("EX01/C/Program Files/Microsoft/Exchange Server/V15/Logging/HttpProxy/Owa/a.LOG", log),
        ("EX02/D/Exchange/Logging/HttpProxy/Ecp/b.LOG", log),
        ("EX02/D/Exchange/Logging/HttpProxy/Mapi/.keep", b""),
        ("EX03/V15/Logging/HttpProxy/.keep", b""),  # empty HttpProxy: still an install
    ])
    collection = open_collection(str(tmp_path))
    assert collection.exchange_roots == [
        "EX01/C/Program Files/Microsoft/Exchange Server/V15", "EX02/D/Exchange", "EX03/V15",
    ]
    roots = {a.path: a.exchange_root for a in collection.artifacts()}
    assert roots == {
        "EX01/C/Program Files/Microsoft/Exchange Server/V15/Logging/HttpProxy/Owa/a.LOG":
            "EX01/C/Program Files/Microsoft/Exchange Server/V15",
        "EX02/D/Exchange/Logging/HttpProxy/Ecp/b.LOG": "EX02/D/Exchange",
    }


def test_iis_logs_moved_out_of_inetpub_are_found(tmp_path: Path) -> None:
    write_tree(tmp_path, [
        ("D/IISLogs/W3SVC2/u_ex210302.log", b"#Fields: date\n"),
        ("D/IISLogs/W3SVC2/u_ex210301.log.gz", b"\x1f\x8b"),
        ("D/IISLogs/W3SVCx/u_ex210301.log", b"#Fields: date\n"),  # not W3SVC<digits>
        ("D/IISLogs/HTTPERR/httperr1.log", b"#Fields: date\n"),
    ])
    kinds = {a.path: a.kind for a in open_collection(str(tmp_path)).artifacts()}
    assert kinds == {
        "D/IISLogs/W3SVC2/u_ex210302.log": ArtifactKind.IIS_LOG,
        "D/IISLogs/W3SVC2/u_ex210301.log.gz": ArtifactKind.IIS_LOG,
    }


def test_client_access_counts_only_inside_an_exchange_install(tmp_path: Path) -> None:
    write_tree(tmp_path, [
        ("Vendor/ClientAccess/page.aspx", b"x"),
        ("V15/ClientAccess/owa/page.aspx", b"x"),
        ("V15/Logging/HttpProxy/Owa/.keep", b""),
    ])
    paths = [a.path for a in open_collection(str(tmp_path)).artifacts()]
    assert paths == ["V15/ClientAccess/owa/page.aspx"]


def test_no_exchange_at_all_still_lists_other_artifacts(tmp_path: Path) -> None:
    write_tree(tmp_path, [
        ("C/inetpub/wwwroot/iisstart.htm", b"<html>"),
        ("C/Windows/System32/winevt/Logs/Security.evtx", b"ElfFile\x00"),
    ])
    collection = open_collection(str(tmp_path))
    assert collection.exchange_roots == []
    assert {a.path: a.kind for a in collection.artifacts()} == {
        "C/inetpub/wwwroot/iisstart.htm": ArtifactKind.WEB_FILE,
        "C/Windows/System32/winevt/Logs/Security.evtx": ArtifactKind.EVTX,
    }


def test_empty_folder_or_zip_is_an_empty_collection_with_a_named_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    zipfile.ZipFile(tmp_path / "empty.zip", "w").close()
    for source in (str(tmp_path / "empty"), str(tmp_path / "empty.zip")):
        collection = open_collection(source)
        assert list(collection.artifacts()) == []
        assert collection.exchange_roots == []
        assert [(p.artifact, p.message) for p in collection.problems] == [
            (source, "holds no files at all: nothing to hunt"),
        ]


def test_sizes_times_and_bytes_are_the_files(tmp_path: Path) -> None:
    write_tree(tmp_path / "in", [("C/inetpub/wwwroot/a.aspx", b"12345")])
    os.utime(tmp_path / "in/C/inetpub/wwwroot/a.aspx", (1614556800, 1614556800))
    folder = open_collection(str(tmp_path / "in"))
    (art,) = folder.artifacts()
    assert (art.size, art.mtime.isoformat()) == (5, "2021-03-01T00:00:00+00:00")
    assert folder.local_path(art) == tmp_path / "in/C/inetpub/wwwroot/a.aspx"
    with folder.open(art) as fh:
        assert fh.read() == b"12345"
    packed = open_collection(str(zip_tree(tmp_path / "in", tmp_path / "s.zip")))
    (zart,) = packed.artifacts()
    assert zart.size == 5
    assert packed.local_path(zart) is None
    with packed.open(zart) as fh:
        assert fh.read() == b"12345"


def test_listing_order_is_sorted_and_each_path_once(tmp_path: Path) -> None:
    write_tree(tmp_path, [(e.path, d) for e, d in drive_files()])
    paths = [a.path for a in open_collection(str(tmp_path)).artifacts()]
    assert paths == sorted(set(paths))
    assert paths == [a.path for a in open_collection(str(tmp_path)).artifacts()]


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_worker_process_reopens_from_source_and_reads(tmp_path: Path, packed: bool) -> None:
    write_tree(tmp_path / "in", [(e.path, d) for e, d in drive_files()])
    source = tmp_path / "in"
    if packed:
        source = zip_tree(source, tmp_path / "s.zip")
    collection = open_collection(str(source))
    art = next(a for a in collection.artifacts() if a.kind is ArtifactKind.WEB_FILE)
    script = (
        "import pickle, sys\n"
        "from exhunt.collect import open_collection\n"
        "source, art, coll = pickle.loads(sys.stdin.buffer.read())\n"
        "with open_collection(source).open(art) as fh: a = fh.read()\n"
        "with coll.open(art) as fh: b = fh.read()\n"
        "sys.stdout.buffer.write(a + b'|' + b)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=pickle.dumps((collection.source, art, collection)),
        capture_output=True, check=True,
    )
    expected = (tmp_path / "in" / art.path).read_bytes()
    assert done.stdout == expected + b"|" + expected


def test_pointing_at_the_logging_folder_itself_still_finds_the_logs(tmp_path: Path) -> None:
    logging = tmp_path / "V15" / "Logging"
    write_tree(logging, [
        ("HttpProxy/Owa/HttpProxy_2021030100-1.LOG", b"#Fields: DateTime\n"),
        ("ECP/Server/ECPServer_2021030100-1.LOG", b"#Fields: DateTime\n"),
    ])
    collection = open_collection(str(logging))
    listed = _listing(collection)
    assert listed == {  # the install is the folder above the collection root
        "HttpProxy/Owa/HttpProxy_2021030100-1.LOG": (ArtifactKind.HTTPPROXY_LOG, "Owa", ".."),
        "ECP/Server/ECPServer_2021030100-1.LOG": (ArtifactKind.ECP_SERVER_LOG, None, ".."),
    }
    assert collection.exchange_roots == [".."]
    web = tmp_path / "inetpub" / "wwwroot"
    write_tree(web, [("aspnet_client/x.aspx", b"x")])
    assert [a.kind for a in open_collection(str(web)).artifacts()] == [ArtifactKind.WEB_FILE]


def test_flattened_names_with_encoded_backslashes_are_recognised(tmp_path: Path) -> None:
    flat = "C%3A%5CProgram Files%5CMicrosoft%5CExchange Server%5CV15%5CLogging%5CHttpProxy"
    write_tree(tmp_path, [
        (f"uploads/auto/{flat}%5COwa%5CHttpProxy_2021030100-1.LOG", b"#Fields: x\n"),
        ("uploads/auto/C%3A%5Cinetpub%5Cwwwroot%5Caspnet_client%5Cx.aspx", b"x"),
    ])
    collection = open_collection(str(tmp_path))
    assert [(a.kind, a.protocol) for a in collection.artifacts()] == [
        (ArtifactKind.HTTPPROXY_LOG, "Owa"), (ArtifactKind.WEB_FILE, None),
    ]
    (root,) = collection.exchange_roots
    assert root.startswith("uploads/auto/") and root.endswith("Exchange Server%5CV15")


def test_windows_compatibility_junctions_are_skipped_quietly(tmp_path: Path) -> None:
    write_tree(tmp_path, [("C/Users/bob/Desktop/x.bin", b"x"), ("C/inetpub/wwwroot/a.htm", b"x")])
    os.symlink(tmp_path / "C/Users", tmp_path / "C/Documents and Settings")
    os.symlink(tmp_path / "C/Users/bob", tmp_path / "C/Users/bob/My Documents")
    os.symlink(tmp_path / "C", tmp_path / "C/Users/bob/Desktop/odd-link")
    collection = open_collection(str(tmp_path))
    assert [a.path for a in collection.artifacts()] == ["C/inetpub/wwwroot/a.htm"]
    assert [(p.artifact, p.message) for p in collection.problems] == [
        ("C/Users/bob/Desktop/odd-link", "symbolic link not followed"),
    ]


def test_copy_kept_under_a_folder_named_programdata_is_not_one_capped_zone(
    tmp_path: Path,
) -> None:
    holder = tmp_path / "ProgramData" / "triage"
    write_tree(holder, [("notes.bin", b"x"), ("C/ProgramData/it.zip", b"PK")])
    kinds = {a.path: a.kind for a in open_collection(str(holder)).artifacts()}
    assert kinds == {"C/ProgramData/it.zip": ArtifactKind.OTHER_FILE}
