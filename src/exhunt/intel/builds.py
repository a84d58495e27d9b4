"""Exchange build table and the per-CVE patch status of a build.

The facts (builds, which update fixes which CVE, which product a CVE touches) live in
``intel/data/*.csv``, one source per row. This module only loads them and applies the rule
Microsoft's HealthChecker uses (``Test-ExchangeBuildGreaterOrEqualThanSecurityPatch``):

1. take every build that carries the fixing update within the same major version;
2. none -> not vulnerable to that update's CVEs;
3. build >= that update's build on the newest CU that got it -> patched;
4. else patched only if the build's own CU got the update and build >= it;
5. else vulnerable (old CUs without the update, unsupported newer CUs).

A 3-part build (only the CU is known, e.g. from the OWA asset path) is evaluated at both ends
of its CU; when the ends disagree the status is ``unknown``.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from typing import Literal

Status = Literal["vulnerable", "patched", "unknown", "not-affected"]

# The CVEs every scan result and build explanation reports, in a stable order.
TRACKED_CVES: tuple[str, ...] = (
    "CVE-2021-26855",
    "CVE-2021-26857",
    "CVE-2021-26858",
    "CVE-2021-27065",
    "CVE-2021-34473",
    "CVE-2021-34523",
    "CVE-2021-31207",
    "CVE-2022-41040",
    "CVE-2022-41082",
)

Version = tuple[int, int, int, int]

_BUILD_RE = re.compile(r"^\s*(\d{1,3})\.(\d{1,3})\.(\d{1,6})(?:\.(\d{1,6}))?\s*$")
_CU_HIGH_REVISION = 10**6  # stands for "the newest possible update within this CU"


@dataclass(frozen=True)
class BuildRow:
    """One row of the build table."""

    product: str
    cu: str
    update: str  # "" for the CU release itself
    build: str
    kind: str  # cu | su | alt (conflicting number from another source) | alias (OWA version)
    released: str
    source: str
    kb: str = ""  # Microsoft's KB article (the download's name) where the table knows it

    @cached_property  # compared thousands of times per build explained
    def version(self) -> Version:
        parsed = parse_build(self.build)
        assert parsed is not None and parsed[1]
        return parsed[0]


@dataclass(frozen=True)
class Fix:
    update: str
    cve: str
    campaign: str
    source: str


@dataclass
class BuildExplanation:
    """What `exhunt builds BUILD` prints and what the scanner attaches to a host."""

    build: str
    exact: bool  # 4-part build (SU level) vs 3-part (CU level only)
    known: bool  # the exact build, or the CU for a 3-part build, is in the table
    product: str | None
    cu: str | None
    update: str | None
    release: str | None
    vulnerabilities: dict[str, Status]
    install: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {
            "build": self.build,
            "exact": self.exact,
            "known": self.known,
            "product": self.product,
            "cu": self.cu,
            "update": self.update,
            "release": self.release,
            "vulnerabilities": dict(self.vulnerabilities),
            "install": list(self.install),
            "notes": list(self.notes),
            "sources": list(self.sources),
        }


def parse_build(text: str) -> tuple[Version, bool] | None:
    """Parse '15.1.2176.9' or '15.1.2176'; returns (version, is_exact) or None."""
    m = _BUILD_RE.match(text)
    if not m:
        return None
    rev = m.group(4)
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)), int(rev) if rev else 0)
    return version, rev is not None


def normalize_build(version: str) -> str | None:
    """`15.01.2176.002` (as the logs' #Version header writes it) to `15.1.2176.2`; None if
    it is not four numbers."""
    parts = version.strip().split(".")
    if len(parts) != 4 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return None
    return ".".join(str(int(p)) for p in parts)


def format_build(v: Version, exact: bool = True) -> str:
    return ".".join(str(p) for p in (v if exact else v[:3]))


_PRODUCTS: dict[tuple[int, int], str] = {
    (14, 3): "Exchange Server 2010",
    (15, 0): "Exchange Server 2013",
    (15, 1): "Exchange Server 2016",
    (15, 2): "Exchange Server 2019",
}


def product_of(v: Version) -> str | None:
    # Exchange SE shares 15.2 with 2019 from build 2562 on; it postdates every tracked CVE.
    if v[:2] == (15, 2) and v[2] >= 2562:
        return "Exchange Server SE"
    return _PRODUCTS.get(v[:2])


class BuildTable:
    """The loaded table with lookups and the status rule."""

    def __init__(
        self,
        rows: list[BuildRow],
        fixes: list[Fix],
        scope: dict[tuple[str, str], tuple[bool, str]],
    ) -> None:
        self.rows = rows
        self.fixes = fixes
        self.scope = scope
        self.by_build: dict[Version, list[BuildRow]] = {}
        self.by_cu: dict[tuple[int, int, int], list[BuildRow]] = {}
        for row in rows:
            self.by_build.setdefault(row.version, []).append(row)
            self.by_cu.setdefault(row.version[:3], []).append(row)
        self._carriers: dict[tuple[str, tuple[int, int]], list[BuildRow]] = {}
        self.fixes_by_update: dict[str, list[Fix]] = {}
        for fix in fixes:
            self.fixes_by_update.setdefault(fix.update, []).append(fix)

    # -- lookups ---------------------------------------------------------------------------

    def row_for(self, v: Version) -> BuildRow | None:
        """The best row naming this exact build (an update beats a bare CU row)."""
        rows = self.by_build.get(v)
        if not rows:
            return None
        order = {"su": 0, "cu": 1, "alias": 2, "alt": 3}
        return sorted(rows, key=lambda r: (0 if r.update else 1, order.get(r.kind, 9)))[0]

    def cu_rows(self, v: Version) -> list[BuildRow]:
        return self.by_cu.get(v[:3], [])

    def cu_name(self, v: Version) -> str | None:
        rows = self.cu_rows(v)
        if rows:
            return rows[0].cu
        # A build between two listed CUs belongs to the lower one (an unlisted update of it).
        lower = [r for r in self.rows if r.version[:2] == v[:2] and r.kind == "cu"]
        lower = [r for r in lower if r.version[:3] <= v[:3]]
        return max(lower, key=lambda r: r.version).cu if lower else None

    def update_builds(self, update: str, major: tuple[int, int]) -> list[BuildRow]:
        """Rows carrying `update` within one product, lowest number per CU, newest CU first.

        Where two sources disagree on the number of the same update (2016 CU8/CU9 Mar21SU),
        the lower number counts: both are the March update, and no other public build lies
        between the last pre-March build and either number.
        """
        key = (update, major)
        if key not in self._carriers:  # asked for every CVE of every build: kept
            self._carriers[key] = self._update_builds(update, major)
        return self._carriers[key]

    def _update_builds(self, update: str, major: tuple[int, int]) -> list[BuildRow]:
        per_cu: dict[tuple[int, int, int], BuildRow] = {}
        for row in self.rows:
            if row.update != update or row.version[:2] != major:
                continue
            key = row.version[:3]
            if key not in per_cu or row.version < per_cu[key].version:
                per_cu[key] = row
        return sorted(per_cu.values(), key=lambda r: r.version, reverse=True)

    # -- the rule ----------------------------------------------------------------------------

    def fixed_by(self, v: Version, update: str) -> bool:
        """HealthChecker's rule: does build `v` include `update`'s fixes?"""
        carriers = self.update_builds(update, v[:2])
        if not carriers:
            return True
        if v >= carriers[0].version:
            return True
        same_cu = [r for r in carriers if r.version[:3] == v[:3]]
        return bool(same_cu) and v >= same_cu[0].version

    def _status_at(self, v: Version, cve: str) -> Status:
        product = product_of(v)
        if product is None:
            return "unknown"
        affected = self.scope.get((product, cve))
        if affected is not None and not affected[0]:
            return "not-affected"
        updates = [f.update for f in self.fixes if f.cve == cve]
        relevant = [u for u in updates if self.update_builds(u, v[:2])]
        if not relevant:
            # No update for this CVE exists for this product in the table.
            return "unknown" if product == "Exchange Server SE" else "not-affected"
        return "patched" if any(self.fixed_by(v, u) for u in relevant) else "vulnerable"

    def status(self, v: Version, exact: bool, cve: str) -> Status:
        if exact:
            return self._status_at(v, cve)
        low = self._status_at((v[0], v[1], v[2], 0), cve)
        high = self._status_at((v[0], v[1], v[2], _CU_HIGH_REVISION), cve)
        return low if low == high else "unknown"

    # -- explanation -------------------------------------------------------------------------

    def explain(self, build: str) -> BuildExplanation:
        parsed = parse_build(build)
        if parsed is None:
            raise ValueError(f"not an Exchange build number: {build!r}")
        v, exact = parsed
        text = format_build(v, exact)
        product = product_of(v)
        row = self.row_for(v) if exact else None
        # An OWA alias version (2019 CU9 reads 15.2.858.2) does not move with updates:
        # it tells the CU only, so the status is judged at CU level.
        judged_exact = exact and not (row is not None and row.kind == "alias")
        vulns = {cve: self.status(v, judged_exact, cve) for cve in TRACKED_CVES}
        cu = self.cu_name(v)
        known = row is not None if exact else bool(self.cu_rows(v))
        update: str | None = None
        notes: list[str] = []
        sources: list[str] = []
        if row is not None:
            update = row.update or None
            sources.append(row.source)
            if row.kind == "alias":
                notes.append(
                    f"{text} is the version OWA reports on {row.product} {row.cu}; "
                    "it lags the setup build, so the exact update is not shown"
                )
            if row.kind == "alt" or self._has_conflict(v):
                notes.append(
                    "sources disagree on this update's build number; "
                    "the status is the same under either number"
                )
        elif exact and product is not None and cu is not None:
            notes.append("this exact build is not in the table; status follows the CU rule")
        if not exact:
            notes.append("only the CU is visible; the installed security update is not")
            sources.extend(sorted({r.source for r in self.cu_rows(v) if r.kind == "cu"}))
        release = None
        if cu is not None:
            release = cu if not update else f"{cu} {update}"
        sources.extend(
            sorted({f.source for f in self.fixes if self.update_builds(f.update, v[:2])})
        )
        return BuildExplanation(
            build=text,
            exact=exact,
            known=known,
            product=product,
            cu=cu,
            update=update,
            release=release,
            vulnerabilities=vulns,
            install=self.install_advice(v, judged_exact, vulns),
            sources=sources,
            notes=notes,
        )

    def _has_conflict(self, v: Version) -> bool:
        row = self.row_for(v)
        if row is None or not row.update:
            return False
        same = [r for r in self.cu_rows(v) if r.update == row.update]
        return len(same) > 1

    def newest_with(self, product_major: tuple[int, int], updates: list[str]) -> BuildRow | None:
        """The newest build of a product that carries all `updates` (the upgrade target)."""
        best: BuildRow | None = None
        for upd in updates:
            carriers = self.update_builds(upd, product_major)
            if not carriers:
                continue
            top = carriers[0]
            if best is None or top.version > best.version:
                best = top
        return best

    def newest_update(self, v: Version) -> BuildRow | None:
        """The newest security or hotfix update of the CU that `v` belongs to."""
        updates = [r for r in self.cu_rows(v) if r.update and r.kind == "su"]
        return max(updates, key=lambda r: r.version) if updates else None

    def newest_release(self, major: tuple[int, int], product: str) -> BuildRow | None:
        """The newest CU of a product (Exchange SE shares 15.2 with 2019 and is apart)."""
        cus = [r for r in self.rows if r.kind == "cu" and r.version[:2] == major
               and product_of(r.version) == product]
        return max(cus, key=lambda r: r.version) if cus else None

    def install_advice(self, v: Version, exact: bool, vulns: dict[str, Status]) -> list[str]:
        product = product_of(v)
        if product is None:
            return ["not a known Exchange 2010/2013/2016/2019 build; check the server itself"]
        needed = [c for c in TRACKED_CVES if vulns[c] == "vulnerable"]
        unknown = [c for c in TRACKED_CVES if vulns[c] == "unknown"]
        advice: list[str] = []
        if product == "Exchange Server 2010":
            if needed or unknown:
                advice.append(
                    "install Update Rollup 32 for Exchange Server 2010 SP3 (14.3.513.0) or later"
                )
            advice.append("Exchange 2010 is out of support: migrate to a supported version")
            return advice
        if not needed and not unknown:
            latest = self.newest_update(v)
            keep = f" for {self.cu_name(v)}: {_named(latest)}" if latest else ""
            return [f"nothing for the tracked CVEs; keep to the newest update{keep}"]
        updates = sorted(
            {
                f.update
                for f in self.fixes
                if f.cve in needed + unknown and self.update_builds(f.update, v[:2])
            }
        )
        own = [u for u in updates if any(r.update == u for r in self.cu_rows(v))]
        missing = [u for u in updates if u not in own]
        if not missing:
            latest = self.newest_update(v)
            assert latest is not None  # the CU carries `own`
            advice.append(
                f"install {_named(latest)} for {product} {self.cu_name(v)}, the newest update "
                f"for this CU in the table (it includes {', '.join(own)})"
            )
        else:
            target = self.newest_release(v[:2], product)
            first = self.newest_with(v[:2], missing)
            if target is not None:
                newest = self.newest_update(target.version) or target
                also = "" if newest is target else f" and install {_named(newest)}"
                minimum = "" if first is None else (
                    f"; any release from {first.cu} with {first.update} ({first.build}) on "
                    "closes them")
                advice.append(
                    f"upgrade to {product} {target.cu}{also}: {self.cu_name(v)} never got "
                    f"{', '.join(missing)}{minimum}"
                )
            if own:
                best = max(
                    (r for r in self.cu_rows(v) if r.update in own and r.kind == "su"),
                    key=lambda r: r.version,
                )
                closes = sorted(
                    {f.cve for f in self.fixes if f.update in own and f.cve in needed + unknown}
                )
                advice.append(
                    f"until then, install {_named(best)} for {self.cu_name(v)}; "
                    f"it closes {', '.join(closes)}"
                )
        if unknown and exact is False:
            advice.append(
                "confirm the installed update on the server (version of ExSetup.exe); "
                "the remote build shows only the CU"
            )
        return advice


def _named(row: BuildRow) -> str:
    """'Feb26SU (15.2.1748.43, KB5074993)': an update as a download is found."""
    kb = f", {row.kb}" if row.kb else ""
    return f"{row.update} ({row.build}{kb})"


def _data_text(name: str) -> str:
    return resources.files("exhunt.intel").joinpath("data", name).read_text(encoding="utf-8")


BUILD_COLUMNS = ("product", "cu", "update", "build", "kind", "released", "kb", "source")
KINDS = ("cu", "su", "alt", "alias")
_UPDATE_NAME = re.compile(r"^(?:[A-Z][a-z]{2}\d{2}(?:SU|HU)(?:v\d)?|RU\d{1,3}|SP\d)$")
_KB = re.compile(r"^KB\d{6,8}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def build_rows(text: str) -> list[BuildRow]:
    """The rows of a build table in exchange_builds.csv's layout."""
    return [
        BuildRow(product=r["product"], cu=r["cu"], update=r["update"], build=r["build"],
                 kind=r["kind"], released=r["released"], source=r["source"],
                 kb=r.get("kb") or "")
        for r in csv.DictReader(text.splitlines())
    ]


def check_table(text: str) -> list[str]:
    """What is wrong with a build table (exchange_builds.csv's layout), one line per problem
    naming the line; [] when it can be shipped."""
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in BUILD_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [f"line 1: missing columns {', '.join(missing)}"]
    problems: list[str] = []
    seen: dict[str, tuple[int, str]] = {}
    cus: dict[tuple[int, int, int], str] = {}
    rows = list(enumerate(reader, start=2))
    for line, r in rows:
        problems += [f"line {line}: {p}" for p in _row_problems(r)]
        parsed = parse_build(r["build"] or "")
        if parsed is None:
            continue
        if r["kind"] == "cu":
            cus.setdefault(parsed[0][:3], r["cu"])
        name = f"{r['product']} {r['cu']}"  # a CU ships with its first update: same build
        if r["kind"] in ("cu", "su") and r["build"] in seen and seen[r["build"]][1] != name:
            first, other = seen[r["build"]]
            problems.append(f"line {line}: {r['build']} is also line {first} ({other})")
        seen.setdefault(r["build"], (line, name))
    for line, r in rows:
        parsed = parse_build(r["build"] or "")
        if parsed is None or r["kind"] != "su" or (r["update"] or "").startswith("RU"):
            continue  # (an update rollup of Exchange 2010 moves the third part)
        cu = cus.get(parsed[0][:3])
        if cu is None:
            problems.append(f"line {line}: no CU row for {r['build']} (a row of kind cu with "
                            f"build {format_build(parsed[0], False)}.N)")
        elif cu != r["cu"]:
            problems.append(f"line {line}: {r['build']} belongs to {cu}, not {r['cu']}")
    return problems


def _row_problems(r: dict[str, str]) -> list[str]:
    found: list[str] = []
    parsed = parse_build(r["build"] or "")
    if parsed is None or not parsed[1]:
        return [f"build {r['build']!r} is not a 4-part build number (15.2.1748.43)"]
    product = product_of(parsed[0])
    if r["product"] != product:
        found.append(f"{r['build']} is {product or 'no known product'}, not {r['product']!r}")
    if r["kind"] not in KINDS:
        found.append(f"kind {r['kind']!r} is not one of {', '.join(KINDS)}")
    if r["kind"] == "su" and r["update"] and not _UPDATE_NAME.match(r["update"]):
        found.append(f"update {r['update']!r} is not named like Feb26SU, Apr25HU or RU32")
    if r["kind"] == "cu" and r["update"]:
        found.append("a CU row names no update")
    if r["kb"] and not _KB.match(r["kb"]):
        found.append(f"kb {r['kb']!r} is not like KB5074992")
    if r["released"] and not _DATE.match(r["released"]):
        found.append(f"released {r['released']!r} is not YYYY-MM-DD")
    if not (r["source"] or "").strip():
        found.append("no source")
    return found


def table_from(builds_text: str) -> BuildTable:
    """A table from a build list in exchange_builds.csv's layout, with the shipped fixes and
    scope (to try a new update before it is added)."""
    fixes = [
        Fix(update=r["update"], cve=r["cve"], campaign=r["campaign"], source=r["source"])
        for r in csv.DictReader(_data_text("exchange_fixes.csv").splitlines())
    ]
    scope = {
        (r["product"], r["cve"]): (r["affected"] == "yes", r["source"])
        for r in csv.DictReader(_data_text("exchange_cve_scope.csv").splitlines())
    }
    return BuildTable(build_rows(builds_text), fixes, scope)


@lru_cache(maxsize=1)
def load_table() -> BuildTable:
    """Load the shipped build table (cached; the data never changes at run time)."""
    return table_from(_data_text("exchange_builds.csv"))


def explain(build: str) -> BuildExplanation:
    """Explain one build number (see BuildTable.explain)."""
    return load_table().explain(build)
