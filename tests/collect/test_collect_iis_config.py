"""IIS's applicationHost.config is collected, and every folder its sites serve is searched."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exhunt.collect import ArtifactKind, open_collection
from exhunt.collect.iisconfig import MAX_CONFIG_BYTES, virtual_directories
from helpers.collect_trees import EXCH, write_tree, zip_tree

CONFIG = "Windows/System32/inetsrv/config/applicationHost.config"
WEB = ArtifactKind.WEB_FILE
OTHER = ArtifactKind.OTHER_FILE

LAYOUTS = {
    "plain-c-copy": "",
    "kape-c": "C/",
    "velociraptor-auto": "uploads/auto/C%3A/",
    "velociraptor-ntfs": "uploads/ntfs/%5C%5C.%5CC%3A/",
}


def config(*vdirs: tuple[str, str], site: str = "Default Web Site") -> bytes:
    """An applicationHost.config with one site, one application per (url, physicalPath)."""
    apps = "".join(
        f"<application path={quoteattr(url)} applicationPool=\"DefaultAppPool\">"
        f"<virtualDirectory path=\"/\" physicalPath={quoteattr(path)} /></application>"
        for url, path in vdirs
    )
    return (
        '\ufeff<?xml version="1.0" encoding="UTF-8"?>\r\n<configuration>'
        "<system.applicationHost><applicationPools><add name=\"DefaultAppPool\" />"
        "</applicationPools><sites><siteDefaults><logFile directory=\"%SystemDrive%\\inetpub\" />"
        f"</siteDefaults><site name={quoteattr(site)} id=\"1\">{apps}"
        "<bindings><binding protocol=\"https\" bindingInformation=\"*:443:\" /></bindings>"
        "</site></sites></system.applicationHost></configuration>"
    ).encode()


PROXYSHELL_CONFIG = config(
    ("/", "%SystemDrive%\\inetpub\\wwwroot"),
    ("/com", "C:\\ProgramData\\COM1\\"),
)


def _server(
    prefix: str, cfg: bytes, extra: list[tuple[str, bytes]] | None = None
) -> list[tuple[str, bytes]]:
    files = [
        (CONFIG, cfg),
        ("Windows/System32/inetsrv/config/schema/IIS_schema.xml", b"<configSchema/>"),
        ("Windows/System32/inetsrv/w3wp.exe", b"MZ"),
        ("Windows/System32/drivers/etc/hosts", b"127.0.0.1 localhost"),
        ("inetpub/wwwroot/iisstart.htm", b"<html></html>"),
        ("ProgramData/COM1/x.aspx", b'<%@ Page Language="Jscript"%><%eval(Request["a"]);%>'),
        ("ProgramData/staged.zip", b"PK\x05\x06" + b"\x00" * 18),
        *(extra or []),
    ]
    return [(prefix + rel, data) for rel, data in files]


def _open(tmp_path: Path, files: list[tuple[str, bytes]], packed: bool):
    write_tree(tmp_path / "in", files)
    source = tmp_path / "in"
    if packed:
        source = zip_tree(tmp_path / "in", tmp_path / "server.zip")
    return open_collection(str(source))


def _kinds(collection) -> dict[str, ArtifactKind]:
    found = list(collection.artifacts())
    paths = [a.path for a in found]
    assert len(paths) == len(set(paths)), "a file listed twice"
    return {a.path: a.kind for a in found}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_shell_in_a_programdata_vdir_is_a_web_file_and_the_config_is_collected(
    tmp_path: Path, layout: str, packed: bool
) -> None:
    prefix = LAYOUTS[layout]
    with _open(tmp_path, _server(prefix, PROXYSHELL_CONFIG), packed) as collection:
        kinds = _kinds(collection)
        assert collection.problems == []
    assert kinds == {
        prefix + CONFIG: WEB,
        prefix + "inetpub/wwwroot/iisstart.htm": WEB,
        prefix + "ProgramData/COM1/x.aspx": WEB,      # served by IIS: a web file
        prefix + "ProgramData/staged.zip": OTHER,      # not served: stays a zone file
    }


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_served_files_carry_the_url_their_vdir_serves_them_at(
    tmp_path: Path, packed: bool
) -> None:
    cfg = config(("/com", "C:\\ProgramData\\COM1\\"), ("/Far/Away", "C:\\Users\\Public"))
    extra = [("Users/Public/Deep/Sub/Shell.ASPX", b"x")]
    with _open(tmp_path, _server("C/", cfg, extra), packed) as collection:
        served = {a.path: a.served_at for a in collection.artifacts()}
    assert served["C/ProgramData/COM1/x.aspx"] == "/com/x.aspx"
    assert served["C/Users/Public/Deep/Sub/Shell.ASPX"] == "/Far/Away/Deep/Sub/Shell.ASPX"
    assert served["C/ProgramData/staged.zip"] is None


def test_windows_made_zip_with_backslashes_and_odd_case_still_maps(tmp_path: Path) -> None:
    cfg = config(("/com", "c:\\programdata\\com1"))
    files = [(CONFIG.upper(), cfg), ("PROGRAMDATA/Com1/X.ASPX", b"<%@ Page %>")]
    write_tree(tmp_path / "in", [("C/" + rel, data) for rel, data in files])
    source = zip_tree(tmp_path / "in", tmp_path / "server.zip", backslashes=True)
    with open_collection(str(source)) as collection:
        kinds = _kinds(collection)
        assert collection.problems == []
    assert kinds == {"C/" + CONFIG.upper(): WEB, "C/PROGRAMDATA/Com1/X.ASPX": WEB}


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
def test_vdirs_outside_every_usual_root_are_walked_whole(tmp_path: Path, packed: bool) -> None:
    cfg = config(
        ("/pub", "%PUBLIC%\\site"),                       # Users is never walked otherwise
        ("/sys", "%windir%\\System32\\oddweb"),          # System32 is pruned otherwise
        ("/d", "D:\\sites\\app"),                         # another drive of the KAPE copy
        ("/d2", "D:\\sites\\app\\sub"),                   # nested: walked once
    )
    extra = [
        ("Users/Public/site/a.aspx", b"<%@ Page %>"),
        ("Users/Public/site/deep/er/b.ashx", b"x"),
        ("Windows/System32/oddweb/c.asmx", b"x"),
    ]
    files = [
        *_server("C/", cfg, extra),
        ("D/sites/app/d.aspx", b"x"),
        ("D/sites/app/sub/e.aspx", b"x"),
        ("D/other/f.aspx", b"x"),
    ]
    with _open(tmp_path, files, packed) as collection:
        kinds = _kinds(collection)
        assert collection.problems == []
    for path in ("C/Users/Public/site/a.aspx", "C/Users/Public/site/deep/er/b.ashx",
                 "C/Windows/System32/oddweb/c.asmx", "D/sites/app/d.aspx",
                 "D/sites/app/sub/e.aspx"):
        assert kinds[path] is WEB
    assert "D/other/f.aspx" not in kinds
    assert "C/ProgramData/COM1/x.aspx" in kinds  # zone file, still listed (no vdir now)


def test_system_drive_mounted_under_another_letter_still_answers_for_c(tmp_path: Path) -> None:
    with _open(tmp_path, _server("mnt/e/", PROXYSHELL_CONFIG), packed=False) as collection:
        kinds = _kinds(collection)
        assert collection.problems == []
    assert kinds["mnt/e/ProgramData/COM1/x.aspx"] is WEB


def test_exchange_install_path_maps_onto_the_install_found(tmp_path: Path) -> None:
    install = "Exchange/V15"  # not the default folder: the found one must be used
    cfg = config(("/owa/x", "%ExchangeInstallPath%FrontEnd\\custom"))
    files = [
        ("C/" + CONFIG, cfg),
        (f"C/{install}/Logging/HttpProxy/Owa/HttpProxy_2021030100-1.LOG", b"#Fields: x\n"),
        (f"C/{install}/FrontEnd/custom/y.aspx", b"x"),
        ("C/ProgramData/x.txt", b"x"),
    ]
    with _open(tmp_path, files, packed=False) as collection:
        kinds = _kinds(collection)
        assert collection.problems == []
    assert kinds[f"C/{install}/FrontEnd/custom/y.aspx"] is WEB


def test_default_exchange_vdirs_under_known_web_roots_keep_their_listing(tmp_path: Path) -> None:
    cfg = config(
        ("/owa", f"C:\\{EXCH}\\FrontEnd\\HttpProxy\\owa".replace("/", "\\")),
        ("/ecp", f"C:\\{EXCH}\\ClientAccess\\ecp".replace("/", "\\")),
    )
    files = [
        ("C/" + CONFIG, cfg),
        (f"C/{EXCH}/Logging/HttpProxy/Owa/HttpProxy_2021030100-1.LOG", b"#Fields: x\n"),
        (f"C/{EXCH}/FrontEnd/HttpProxy/owa/auth/logon.aspx", b"x"),
        (f"C/{EXCH}/ClientAccess/ecp/auth/TimeoutLogout.aspx", b"x"),
    ]
    with _open(tmp_path, files, packed=False) as collection:
        found = {a.path: a for a in collection.artifacts()}
        assert collection.problems == []
    for rel in (
        "FrontEnd/HttpProxy/owa/auth/logon.aspx",
        "ClientAccess/ecp/auth/TimeoutLogout.aspx",
    ):
        artifact = found[f"C/{EXCH}/{rel}"]
        assert artifact.kind is WEB
        assert artifact.exchange_root == f"C/{EXCH}"


def _problems(
    tmp_path: Path, cfg: bytes, packed: bool = False
) -> tuple[dict[str, ArtifactKind], str]:
    with _open(tmp_path, _server("C/", cfg), packed) as collection:
        kinds = _kinds(collection)
        text = "\n".join(f"{p.artifact}: {p.message}" for p in collection.problems)
    assert kinds["C/" + CONFIG] is WEB  # the config itself is always listed for the rules
    return kinds, text


BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    b"<configuration><system.applicationHost><sites><site name=\"&lol2;\"><application path=\"/\">"
    b'<virtualDirectory path="/" physicalPath="C:\\ProgramData\\COM1" /></application></site>'
    b"</sites></system.applicationHost></configuration>"
)
EXTERNAL_ENTITY = (
    b'<?xml version="1.0"?><!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<configuration>&x;</configuration>"
)


@pytest.mark.parametrize("packed", [False, True], ids=["folder", "zip"])
@pytest.mark.parametrize(
    ("cfg", "named"),
    [
        (BILLION_LAUGHS, "document type declaration (DTD) refused"),
        (EXTERNAL_ENTITY, "document type declaration (DTD) refused"),
        (b"\x00\xffMZ garbage \x89PNG" * 50, "not well-formed XML"),
        (b"<configuration>" + b"<a>" * 100_000, "nested deeper than"),
        (b'<?xml version="1.0" encoding="x-made-up"?><configuration/>', "unreadable XML"),
    ],
    ids=["billion-laughs", "external-entity", "garbage", "deep", "encoding"],
)
def test_hostile_configs_are_named_and_nothing_is_expanded(
    tmp_path: Path, packed: bool, cfg: bytes, named: str
) -> None:
    kinds, problems = _problems(tmp_path, cfg, packed)
    assert named in problems
    assert "C/" + CONFIG in problems
    assert "lollol" not in problems
    assert kinds["C/ProgramData/COM1/x.aspx"] is OTHER  # no vdir was read from it


def test_truncated_config_still_yields_the_vdirs_read_before_the_break(tmp_path: Path) -> None:
    kinds, problems = _problems(tmp_path, PROXYSHELL_CONFIG[:-40])
    assert "not well-formed XML" in problems
    assert kinds["C/ProgramData/COM1/x.aspx"] is WEB


def test_huge_config_is_not_parsed(tmp_path: Path) -> None:
    padding = b" " * MAX_CONFIG_BYTES
    cfg = PROXYSHELL_CONFIG.replace(b"<configuration>", b"<configuration>" + padding)
    kinds, problems = _problems(tmp_path, cfg)
    assert "over the cap" in problems
    assert kinds["C/ProgramData/COM1/x.aspx"] is OTHER


@pytest.mark.parametrize(
    ("physical", "named"),
    [
        ("C:\\..\\..\\etc", "climbs with '..'"),
        ("C:\\ProgramData\\..\\..\\..\\etc", "climbs with '..'"),
        ("\\\\evil.example\\share\\web", "network share"),
        ("\\\\?\\UNC\\evil.example\\share", "network share"),
        ("//evil.example/share", "network share"),
        ("%NOSUCHVAR%\\web", "unknown variable %NOSUCHVAR%"),
        ("relative\\web", "not an absolute drive path"),
        ("C:web", "not an absolute drive path"),
        ("Z:\\web", "drive Z: which is not in the copy"),
        ("C:\\ProgramData\\COM2", "'COM2' is not in the copy"),
        ("C:\\ProgramData\\COM1::$DATA", "characters no Windows folder name has"),
    ],
)
def test_physical_paths_outside_the_copy_are_named(
    tmp_path: Path, physical: str, named: str
) -> None:
    kinds, problems = _problems(tmp_path, config(("/x", physical)))
    assert named in problems
    assert "'/x'" in problems  # the vdir is named, so a responder can look at it
    assert kinds["C/ProgramData/COM1/x.aspx"] is OTHER
    assert not any(p.startswith(("etc", "C/etc")) for p in kinds)


def test_long_path_prefix_is_a_local_path(tmp_path: Path) -> None:
    kinds, problems = _problems(tmp_path, config(("/x", "\\\\?\\C:\\ProgramData\\COM1")))
    assert problems == ""
    assert kinds["C/ProgramData/COM1/x.aspx"] is WEB


def test_symbolic_link_on_a_vdir_path_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.aspx").write_bytes(b"x")
    write_tree(tmp_path / "in", _server("C/", config(("/x", "C:\\ProgramData\\link\\"))))
    try:
        os.symlink(outside, tmp_path / "in/C/ProgramData/link")
    except OSError:
        pytest.skip("cannot make symbolic links here")
    with open_collection(str(tmp_path / "in")) as collection:
        paths = [a.path for a in collection.artifacts()]
        problems = "\n".join(p.message for p in collection.problems)
    assert "is a symbolic link" in problems
    assert not any("secret" in p for p in paths)


def test_config_outside_a_windows_folder_names_the_unknown_drive(tmp_path: Path) -> None:
    files = [("System32/inetsrv/config/applicationHost.config", PROXYSHELL_CONFIG)]
    with _open(tmp_path, files, packed=False) as collection:
        kinds = _kinds(collection)
        problems = "\n".join(p.message for p in collection.problems)
    assert kinds == {"System32/inetsrv/config/applicationHost.config": WEB}
    assert "drive root is unknown" in problems


def test_config_elsewhere_is_not_collected(tmp_path: Path) -> None:
    files = [("C/Users/admin/Desktop/applicationHost.config", PROXYSHELL_CONFIG),
             ("C/Windows/System32/inetsrv/backup/applicationHost.config", PROXYSHELL_CONFIG)]
    with _open(tmp_path, files, packed=False) as collection:
        assert _kinds(collection) == {}


# -- the parser on its own ----------------------------------------------------------------


def test_parser_reads_sites_applications_and_vdirs_with_variables_expanded() -> None:
    cfg = config(("/", "%SystemDrive%\\inetpub\\wwwroot"), ("/owa", "%windir%\\Temp\\w"),
                 site="Exchange Back End")
    found = virtual_directories(cfg)
    assert [(v.site, v.app_path, v.vdir_path, v.physical_path) for v in found] == [
        ("Exchange Back End", "/", "/", "C:\\inetpub\\wwwroot"),
        ("Exchange Back End", "/owa", "/", "C:\\Windows\\Temp\\w"),
    ]
    assert found[1].raw_physical_path == "%windir%\\Temp\\w"
    assert found[1].url_path == "/owa"


def test_parser_ignores_vdir_defaults_and_names_a_vdir_without_path() -> None:
    cfg = (b"<configuration><system.applicationHost><sites>"
           b'<virtualDirectoryDefaults physicalPath="C:\\x" />'
           b'<site name="s"><application path="/"><virtualDirectory path="/v" /></application>'
           b"</site></sites></system.applicationHost></configuration>")
    problems: list[str] = []
    assert virtual_directories(cfg, problems) == []
    assert problems == ["virtual directory '/v' of site 's' application '/' has no physicalPath"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parser_never_raises_on_arbitrary_bytes(data: bytes) -> None:
    problems: list[str] = []
    found = virtual_directories(data, problems)
    assert isinstance(found, list)
    assert all(isinstance(p, str) for p in problems)


_ATTR_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                     max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_ATTR_TEXT, _ATTR_TEXT), max_size=5), _ATTR_TEXT)
def test_parser_returns_each_vdir_written(vdirs: list[tuple[str, str]], site: str) -> None:
    problems: list[str] = []
    cfg = config(*vdirs, site=site)
    if any(not p.strip() for _, p in vdirs):
        return  # a blank physicalPath is a named problem, tested above
    found = virtual_directories(cfg, problems)
    text = "".join(u + p for u, p in vdirs) + site
    clean = all((ch >= " " or ch in "\t\n\r") and ch not in "\ufffe\uffff" for ch in text)
    if clean:  # control characters make the XML itself ill-formed: named, not raised
        assert [(v.app_path, v.raw_physical_path) for v in found] == [
            (u, p) for u, p in vdirs
        ]


@settings(max_examples=40, deadline=None)
@given(_ATTR_TEXT)
def test_walk_never_raises_on_any_physical_path(physical: str) -> None:
    if not physical.strip():
        return
    with tempfile.TemporaryDirectory() as tmp:
        write_tree(Path(tmp), _server("C/", config(("/x", physical))))
        with open_collection(tmp) as collection:
            kinds = _kinds(collection)
    assert "C/" + CONFIG in kinds
