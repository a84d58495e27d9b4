"""Properties: no zip member name escapes the root or crashes; any folder tree lists."""

from __future__ import annotations

import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from exhunt.collect import ArtifactKind, ArtifactReadError, open_collection
from exhunt.collect.ziparchive import member_parts

PIECES = ["..", ".", "", "C:", "c:", "%2E%2E", "%5C", "C%3A", "inetpub", "wwwroot", "Logging",
          "HttpProxy", "Owa", "ProgramData", "W3SVC1", "x.log", "a.aspx", "root", "Windows",
          "Temp", "e.xml"]
name_piece = st.one_of(
    st.sampled_from(PIECES),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6),
)
member_name = st.lists(name_piece, min_size=1, max_size=7).flatmap(
    lambda parts: st.lists(st.sampled_from(["/", "\\"]), min_size=len(parts) - 1,
                           max_size=len(parts) - 1).map(
        lambda seps: "".join(p + s for p, s in zip(parts, [*seps, ""], strict=True))
    )
)
PREFIXES = ["", "C/inetpub/wwwroot/", "C/ProgramData/", "V15/Logging/HttpProxy/Owa/"]


def _escapes(path: str) -> bool:
    parts = re.split(r"[\\/]", path)
    return (
        path.startswith(("/", "\\"))
        or ".." in parts
        or re.match(r"[A-Za-z]:", parts[0]) is not None
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PREFIXES), member_name), min_size=1, max_size=8))
def test_no_zip_member_name_escapes_or_crashes(names: list[tuple[str, str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "h.zip"
        with zipfile.ZipFile(source, "w") as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # duplicate names are part of the input space
            for prefix, name in names:
                try:  # a ZipInfo lets even names zipfile's writer refuses into the zip
                    zf.writestr(zipfile.ZipInfo(prefix + name), b"<Events>")
                except (ValueError, UnicodeEncodeError, IndexError):
                    assume(False)
        collection = open_collection(str(source))
        artifacts = list(collection.artifacts())
        paths = [a.path for a in artifacts]
        assert paths == sorted(set(paths))
        for artifact in artifacts:
            assert not _escapes(artifact.path), artifact.path
            try:
                with collection.open(artifact) as fh:
                    assert fh.read() == b"<Events>"
            except ArtifactReadError:
                pass
        collection.close()


folder_name = st.one_of(
    st.sampled_from(["Logging", "HttpProxy", "Ecp", "inetpub", "wwwroot", "W3SVC1", "logs",
                     "LogFiles", "ProgramData", "Windows", "Temp", "root", "C", "C%3A",
                     "FrontEnd", "ClientAccess", "WinSxS", "AppData", "Users"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
            min_size=1, max_size=8).filter(lambda s: s not in (".", "..")),
).map(lambda s: s.swapcase() if len(s) % 2 else s)
file_name = st.sampled_from(["a.LOG", "b.log.gz", "c.aspx", "d.evtx", "e.xml", "f.bin"])
tree = st.lists(st.tuples(st.lists(folder_name, max_size=6), file_name), max_size=25)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree)
def test_any_folder_tree_lists_without_error(files: list[tuple[list[str], str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        made: set[str] = set()
        for folders, name in files:
            rel = "/".join([*folders, name])
            target = root / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"x")
            except OSError:  # a name used both as file and folder, or too long
                continue
            made.add(rel)
        collection = open_collection(str(root))
        artifacts = list(collection.artifacts())
        paths = [a.path for a in artifacts]
        assert paths == sorted(set(paths))
        for artifact in artifacts:
            local = collection.local_path(artifact)
            assert local is not None and local.is_file()
            assert os.path.commonpath([local, root]) == str(root)
        # Every file the rules name must be listed under its kind.
        for rel in made:
            low = rel.casefold().split("/")
            if (len(low) >= 4 and low[-4:-2] == ["logging", "httpproxy"]
                    and low[-1] in ("a.log", "b.log.gz")):
                kinds = {a.kind for a in artifacts if a.path == rel}
                assert kinds == {ArtifactKind.HTTPPROXY_LOG}, rel


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60) | member_name)
def test_member_parts_are_refused_or_plain_relative_names(name: str) -> None:
    parts, refusal = member_parts(name)
    if refusal is None:
        assert parts and all(p not in ("", ".", "..") for p in parts)
        assert not any("/" in p or "\\" in p for p in parts)
        assert not _escapes("/".join(parts))
    else:
        assert parts == ()
