"""Benchmark: exhunt's web-root scan vs the `yara` command-line tool, same rules, same files.

Generates a triage copy with a few thousand web files (mostly benign pages, scripts and
styles, some web shells), then times, alternated, each tool the same two ways:
  - as a whole process: `exhunt hunt COPY --format json --quiet` (walk, hash every file with
    sha256, YARA-X on a bounded prefix, web-shell scoring, every check, the report) against
    `yara -r -w -p 2 RULES COPY` (Debian's yara, rules compiled at start-up);
  - warm: exhunt's `hunt()` inside this already-started process against `yara -C` with the
    rules compiled beforehand by `yarac` (start-up and compilation left out of both).
yara only matches: it neither hashes, scores, reads the logs nor writes a report.
Checks both flag the same shells.

    .venv/bin/python bench/webshell_scan/run.py [--files 4000 --runs 5] [--append]
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import alternate, arguments, need, ratio_span, record, run_command, workdir

from exhunt.hunt.engine import hunt
from exhunt.hunt.files import builtin_rule_sources

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


def flagged_by_exhunt(findings: list[dict[str, str]]) -> set[str]:
    """Files a family rule or the page's capabilities flagged, as the finding's reasons say
    (unknown shells are judged by exhunt.readers.page, not by YARA rules)."""
    return {f["artifact"] for f in findings if f["check"] == "webshell.file"
            and ("rule " in f["evidence"] or "what the page can do" in f["evidence"])}


def flagged_by_yara(stdout: str, root: Path) -> set[str]:
    flagged = {str(Path(line.split(" ", 1)[1]).relative_to(root))
               for line in stdout.splitlines() if " " in line}
    return {f for f in flagged if not f.endswith(".LOG")}


class Tools:
    def __init__(self, root: Path, rules: Path, compiled: Path) -> None:
        self.root, self.rules, self.compiled = root, rules, compiled
        self.flagged: dict[str, set[str]] = {}

    def exhunt_process(self) -> float:
        done = run_command([sys.executable, "-m", "exhunt.cli", "hunt", str(self.root),
                            "--format", "json", "--quiet"])
        self.flagged["exhunt process"] = flagged_by_exhunt(json.loads(done.stdout)["findings"])
        return done.seconds

    def exhunt_warm(self) -> float:
        start = time.perf_counter()
        report = hunt(str(self.root), workers=2)
        elapsed = time.perf_counter() - start
        self.flagged["exhunt warm"] = {
            f.artifact for f in report.findings if f.check == "webshell.file"
            and ("rule " in f.evidence or "what the page can do" in f.evidence)}
        return elapsed

    def yara_process(self) -> float:
        done = run_command([need("yara"), "-r", "-w", "-p", "2", str(self.rules),
                            str(self.root / "C")], ok=(0, 1))
        self.flagged["yara process"] = flagged_by_yara(done.stdout, self.root)
        return done.seconds

    def yara_compiled(self) -> float:
        done = run_command([need("yara"), "-C", "-r", "-w", "-p", "2", str(self.compiled),
                            str(self.root / "C")], ok=(0, 1))
        self.flagged["yara compiled"] = flagged_by_yara(done.stdout, self.root)
        return done.seconds


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--files", type=int, default=4000)
    args = parser.parse_args()
    need("yara")
    with workdir("webshell", args.keep) as work:
        root = work / "copy"
        shells = generate(root, args.files)
        rules = work / "rules.yar"
        rules.write_text("\n".join(text for _, text in builtin_rule_sources()))
        compiled = work / "rules.yarc"
        run_command([need("yarac"), "-w", str(rules), str(compiled)])
        total_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        tools = Tools(root, rules, compiled)
        tools.yara_process()  # warm the page cache for all
        series = alternate(args.runs, {
            "exhunt process": tools.exhunt_process, "yara process": tools.yara_process,
            "exhunt warm": tools.exhunt_warm, "yara compiled": tools.yara_compiled})
    n = args.files
    lines = [f"{n} files, {total_bytes / 1e6:.1f} MB, {len(shells)} shells planted; "
             f"{args.runs} alternated runs, median (min-max)"]
    for name, s in series.items():
        lines.append(f"{name:15}: {s.span()}, {n / s.median:7.0f} files/s, shells flagged "
                     f"{len(tools.flagged[name] & shells)}/{len(shells)}, other files "
                     f"{len(tools.flagged[name] - shells)}")
    lines.append("exhunt / yara files/s, whole processes: "
                 f"{ratio_span(series['yara process'], series['exhunt process'])}")
    lines.append("exhunt / yara files/s, warm           : "
                 f"{ratio_span(series['yara compiled'], series['exhunt warm'])}")
    record(args, "Web-shell scan: exhunt vs yara, each whole and warm", "\n".join(lines))


if __name__ == "__main__":
    main()
