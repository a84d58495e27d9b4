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

    @cached_property
    def version(self) -> Version:
        # Parsed once per row: the status rule compares row versions thousands of times.
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
        self.fixes_by_update: dict[str, list[Fix]] = {}
        self._carriers: dict[tuple[str, tuple[int, int]], list[BuildRow]] = {}
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
        found = self._carriers.get((update, major))
        if found is None:
            # Kept per (update, product): a scan asks the same few questions of every host.
            per_cu: dict[tuple[int, int, int], BuildRow] = {}
            for row in self.rows:
                if row.update != update or row.version[:2] != major:
                    continue
                key = row.version[:3]
                if key not in per_cu or row.version < per_cu[key].version:
                    per_cu[key] = row
            found = sorted(per_cu.values(), key=lambda r: r.version, reverse=True)
            self._carriers[(update, major)] = found
        return list(found)

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
            return ["nothing for the tracked CVEs; keep to the newest security update"]
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
            latest = max(
                (r for r in self.cu_rows(v) if r.update and r.kind == "su"),
                key=lambda r: r.version,
            )
            advice.append(
                f"install the latest security update for {product} {self.cu_name(v)} "
                f"(at least {', '.join(own)}; newest in table: {latest.update} {latest.build})"
            )
        else:
            target = self.newest_with(v[:2], missing)
            if target is not None:
                advice.append(
                    f"upgrade to {product} {target.cu} and install its latest security update "
                    f"(at least {target.update} {target.build}); {self.cu_name(v)} never got "
                    f"{', '.join(missing)}"
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
                    f"until then, install {best.update} for {self.cu_name(v)} ({best.build}); "
                    f"it closes {', '.join(closes)}"
                )
        if unknown and exact is False:
            advice.append(
                "confirm the installed update on the server (version of ExSetup.exe); "
                "the remote build shows only the CU"
            )
        return advice


def _data_text(name: str) -> str:
    return resources.files("exhunt.intel").joinpath("data", name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def load_table() -> BuildTable:
    """Load the shipped build table (cached; the data never changes at run time)."""
    rows = [
        BuildRow(
            product=r["product"],
            cu=r["cu"],
            update=r["update"],
            build=r["build"],
            kind=r["kind"],
            released=r["released"],
            source=r["source"],
        )
        for r in csv.DictReader(_data_text("exchange_builds.csv").splitlines())
    ]
    fixes = [
        Fix(update=r["update"], cve=r["cve"], campaign=r["campaign"], source=r["source"])
        for r in csv.DictReader(_data_text("exchange_fixes.csv").splitlines())
    ]
    scope = {
        (r["product"], r["cve"]): (r["affected"] == "yes", r["source"])
        for r in csv.DictReader(_data_text("exchange_cve_scope.csv").splitlines())
    }
    return BuildTable(rows, fixes, scope)


def explain(build: str) -> BuildExplanation:
    """Explain one build number (see BuildTable.explain)."""
    return load_table().explain(build)
