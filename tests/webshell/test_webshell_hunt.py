"""The file stage inside `hunt`: shells on disk, their use, hostile files, BYO rules and IOCs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exhunt.hunt.engine import hunt
from exhunt.hunt.files import FileStageSettings
from exhunt.hunt.report import report_json, report_text
from exhunt.model import Severity, Verdict
from helpers.webshell_samples import (
    ASPNET_CLIENT,
    CHOPPER,
    EXCHANGE,
    OWA_AUTH,
    SHELLS,
    Builder,
    oab_dump,
)

SHELL_USE = ("2021-03-05 03:06:27 10.0.0.1 POST /aspnet_client/system_web/{name} - 443 - "
             "198.51.100.23 Mozilla/5.0+(Windows+NT+10.0) - 200 0 0 133")


def counting(report: object) -> list[dict[str, object]]:
    data = report_json(report)  # type: ignore[arg-type]
    return [f for f in data["findings"] if f["severity"] != "info"]


def test_clean_server_with_product_pages_stays_clean(server: Builder) -> None:
    report = hunt(str(server()))
    assert report.verdict is Verdict.CLEAN, counting(report)
    assert report.coverage["file"].files >= 9


def test_shell_in_aspnet_client_used_from_outside(server: Builder) -> None:
    name = "qx81vz.aspx"
    root = server({f"{ASPNET_CLIENT}/system_web/{name}": SHELLS["chopper"]},
                  iis=[SHELL_USE.format(name=name)])
    report = hunt(str(root))
    assert report.verdict is Verdict.REENTERED
    on_disk = [f for f in report.findings if f.check == "webshell.file"]
    assert on_disk and on_disk[0].severity is Severity.CRITICAL
    assert on_disk[0].webshell_path and on_disk[0].webshell_path.endswith(name)
    used = [f for f in report.findings if f.check == "webshell.reentry"]
    assert [f.client_ip for f in used] == ["198.51.100.23"]
    assert used[0].timestamp is not None and used[0].timestamp.day == 5


def test_shell_on_disk_never_requested_is_backdoored(server: Builder) -> None:
    root = server({f"{OWA_AUTH}/Current/themes/resources/zz.aspx":
                   oab_dump("http://f/" + CHOPPER.replace("{p}", "mm3"))})
    report = hunt(str(root))
    assert report.verdict is Verdict.BACKDOORED
    assert not [f for f in report.findings if f.check == "webshell.reentry"]


def test_a_shell_was_here_named_by_the_logs_gone_from_disk(server: Builder) -> None:
    shell = r"C:\inetpub\wwwroot\aspnet_client\gone.aspx"
    oab = ("#Software: Microsoft Exchange Server\r\n#Fields: DateTime,Message\r\n"
           f"2021-03-03T06:50:08.000Z,Download failed and temporary file '{shell}' needs to "
           "be removed\r\n")
    root = server({f"{EXCHANGE}/Logging/OABGeneratorLog/OABGenerator_1.log": oab},
                  iis=["2021-03-04 01:00:00 10.0.0.1 POST /aspnet_client/gone.aspx - 443 - "
                       "203.0.113.77 antSword/v2.1 - 200 0 0 20"])
    report = hunt(str(root))
    assert report.verdict is Verdict.REENTERED
    was_here = [f for f in report.findings if f.check == "webshell.reentry"]
    assert was_here and "no longer on disk" in was_here[0].evidence
    assert was_here[0].client_ip == "203.0.113.77"


def test_requests_answered_404_are_not_reentry(server: Builder) -> None:
    name = "qq.aspx"
    line = SHELL_USE.format(name=name).replace(" 200 0 0 ", " 404 0 2 ")
    root = server({f"{ASPNET_CLIENT}/system_web/{name}": SHELLS["regeorg"]}, iis=[line])
    assert hunt(str(root)).verdict is Verdict.BACKDOORED


def test_hostile_files_are_named_and_the_run_goes_on(server: Builder, tmp_path: Path) -> None:
    odd = "logon\u202expsa.aspx"  # right-to-left override hides the real extension
    root = server({
        f"{OWA_AUTH}/{odd}": SHELLS["unknown_cmd"],
        f"{ASPNET_CLIENT}/junk.bin": os.urandom(70_000),
        f"{OWA_AUTH}/Current/empty.aspx": b"",
    })
    big = root / OWA_AUTH / "Current/big.aspx"
    with big.open("wb") as handle:  # sparse: 3 GB that takes no disk
        handle.truncate(3 << 30)
    outside = tmp_path / "outside.aspx"
    outside.write_text(SHELLS["chopper"])
    (root / ASPNET_CLIENT / "link.aspx").symlink_to(outside)
    report = hunt(str(root))
    messages = "\n".join(f"{e.artifact}: {e.message}" for e in report.errors)
    assert "odd file name" in messages
    assert "sparse file" in messages and "big.aspx" in messages
    assert "symbolic link not followed" in messages
    shells = [f for f in report.findings if f.check == "webshell.file" and counts(f)]
    assert any("xpsa.aspx" in (f.webshell_path or "") for f in shells)
    assert not any("link.aspx" in (f.webshell_path or "") for f in shells)
    report_text(report)  # renders without raising on odd names


def counts(finding: object) -> bool:
    return getattr(finding, "severity", Severity.INFO) > Severity.INFO


def test_bring_your_own_rules_and_a_broken_rule_file(server: Builder, tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "house.yar").write_text(
        'rule House_Shell_Marker { meta: score = 85 description = "house shell" '
        'strings: $a = "zq-house-marker" condition: $a and filename matches /\\.aspx$/ }\n')
    (rules / "broken.yar").write_text("rule Broken { strings: $a = \"x\" condition: $b }\n")
    root = server({f"{OWA_AUTH}/Current/plain.aspx": "<html>zq-house-marker</html>"})
    report = hunt(str(root), files=FileStageSettings(yara_dirs=(str(rules),)))
    assert any("broken.yar" in e.artifact and "left out" in e.message for e in report.errors)
    hits = [f for f in report.findings if f.check == "webshell.file"]
    assert hits and "House_Shell_Marker" in hits[0].evidence
    assert hits[0].severity is Severity.HIGH


def test_ioc_lists_in_signature_base_formats(server: Builder, tmp_path: Path) -> None:
    page = b"<html>a page with no tell in it</html>"
    import hashlib

    hashes = tmp_path / "hash-iocs.txt"
    hashes.write_text(f"# comment\n{hashlib.md5(page).hexdigest()};Test shell md5\n"
                      f"{hashlib.sha256(b'other').hexdigest()};Other\nnot-a-hash;oops\n")
    names = tmp_path / "filename-iocs.txt"
    names.write_text("# ProxyShell staging\n\\\\ProgramData\\\\ZING\\\\.+\\.aspx$;80\n"
                     "([unclosed;70\n")
    root = server({f"{OWA_AUTH}/Current/quiet.aspx": page,
                   "C/ProgramData/ZING/sh.aspx": "<html></html>"})
    report = hunt(str(root), files=FileStageSettings(ioc_files=(str(hashes), str(names))))
    messages = [e.message for e in report.errors]
    assert any("not a hash" in m for m in messages) and any("bad regex" in m for m in messages)
    by_path = {f.artifact.rsplit("/", 1)[-1]: f for f in report.findings
               if f.check == "webshell.file"}
    assert "Test shell md5" in by_path["quiet.aspx"].evidence
    assert by_path["quiet.aspx"].severity >= Severity.HIGH
    assert "filename IOC" in by_path["sh.aspx"].evidence


def test_missing_yara_folder_is_a_named_problem(server: Builder, tmp_path: Path) -> None:
    report = hunt(str(server()), files=FileStageSettings(yara_dirs=(str(tmp_path / "nope"),)))
    assert any("YARA folder not found" in e.message for e in report.errors)
    assert report.verdict is Verdict.CLEAN


@pytest.mark.parametrize("layout", ["zip"])
def test_zip_collection_is_scanned_in_place(server: Builder, tmp_path: Path,
                                            layout: str) -> None:
    import zipfile

    root = server({f"{ASPNET_CLIENT}/s.aspx": SHELLS["chopper_item"]})
    archive = tmp_path / "copy.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in root.rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    report = hunt(str(archive))
    assert report.verdict is Verdict.BACKDOORED


def test_unreadable_shell_is_named_and_still_judged_by_place_and_name(tmp_path: Path) -> None:
    import zipfile

    archive = tmp_path / "copy.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{ASPNET_CLIENT}/shell.aspx", b"A" * 5000 + SHELLS["chopper"].encode())
        zf.writestr("C/inetpub/wwwroot/iisstart.htm", b"<html></html>")
    data = bytearray(archive.read_bytes())
    start = data.find(b"shell.aspx") + len(b"shell.aspx") + 20
    for k in range(start, start + 30):  # corrupt the member's compressed data
        data[k] ^= 0xFF
    archive.write_bytes(bytes(data))
    report = hunt(str(archive))
    assert any(e.artifact.endswith("shell.aspx") and "cannot read" in e.message
               for e in report.errors)
    found = [f for f in report.findings if f.check == "webshell.file"]
    assert found and found[0].severity >= Severity.MEDIUM
    assert "could not be read" in found[0].evidence


def test_a_product_page_replaced_by_a_shell_is_followed_in_the_logs(server: Builder) -> None:
    # The hunt leaves lines for OWA's logon page unparsed on a busy server, unless the file
    # stage judged the file behind it a shell: then its requests are re-entry.
    use = SHELL_USE.format(name="x").replace("/aspnet_client/system_web/x", "/owa/auth/logon.aspx")
    root = server({f"{OWA_AUTH}/logon.aspx": SHELLS["chopper"]}, iis=[use])
    report = hunt(str(root))
    used = [f for f in report.findings if f.check == "webshell.reentry"]
    # Every answered request to it, the fixture's own logon from 192.0.2.10 too.
    assert sorted(f.client_ip or "" for f in used) == ["192.0.2.10", "198.51.100.23"]
    assert used[0].webshell_path and used[0].webshell_path.endswith("logon.aspx")
