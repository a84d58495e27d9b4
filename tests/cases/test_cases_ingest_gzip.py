"""Reports kept compressed: a .gz is read as what it holds, bounded, and a broken one is an
error naming it while the run goes on."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import exhunt.cases.ingest as ingest_module
from exhunt.cases.ingest import Ingestor, unpacked
from exhunt.cli import app
from exhunt.errors import InputError
from exhunt.store.db import Store
from exhunt.store.models import Host

DATA = Path(__file__).resolve().parent.parent / "data" / "cases"
REPORT = DATA / "2021-05-14-scan_exchange.csv"


def test_a_compressed_report_is_the_report(db_url: str, tmp_path: Path) -> None:
    packed = tmp_path / (REPORT.name + ".gz")
    packed.write_bytes(gzip.compress(REPORT.read_bytes()))
    plain_store, packed_store = Store(db_url), Store(f"sqlite:///{tmp_path / 'p.db'}")
    plain = Ingestor(plain_store).ingest(REPORT)
    first = Ingestor(packed_store).ingest(packed)
    assert (first.kind, first.rows, first.added, first.rejected) == (
        plain.kind, plain.rows, plain.added, plain.rejected) and first.added > 0
    # the same report, compressed or not, is one piece of evidence
    assert Ingestor(packed_store).ingest(REPORT).status == "already ingested"
    assert Ingestor(plain_store).ingest(packed).status == "already ingested"
    # two members (cat a.gz b.gz) and zero padding read as one stream
    half = len(REPORT.read_bytes()) // 2
    body = REPORT.read_bytes()
    assert unpacked(gzip.compress(body[:half]) + gzip.compress(body[half:]) + b"\0" * 512,
                    "r.csv.gz") == (body, "r.csv")


def test_broken_and_bombed_files_are_errors_naming_them(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    whole = gzip.compress(REPORT.read_bytes())
    with pytest.raises(InputError, match="cut short"):
        unpacked(whole[:-20], "a.csv.gz")
    with pytest.raises(InputError, match="not a readable gzip"):
        unpacked(whole[:10] + b"\xff" * 50, "b.csv.gz")  # a reserved block type
    with pytest.raises(InputError, match="not a readable gzip"):
        unpacked(whole + b"trailing", "c.csv.gz")
    monkeypatch.setattr(ingest_module, "MAX_EXPANDED", 1 << 20)
    bomb = gzip.compress(b"0" * (8 << 20))  # 8 MB of one byte: about 8 KB packed
    with pytest.raises(InputError, match="expands to more than"):
        unpacked(bomb, "bomb.csv.gz")
    # on the command line: the broken file is named, the next one is still taken in
    (tmp_path / "bomb.csv.gz").write_bytes(bomb)
    (tmp_path / "cut.csv.gz").write_bytes(whole[:-20])
    db = f"sqlite:///{tmp_path / 'x.db'}"
    out = CliRunner().invoke(app, ["ingest", str(tmp_path / "bomb.csv.gz"),
                                   str(tmp_path / "cut.csv.gz"), str(REPORT), "--db", db])
    assert out.exit_code == 3
    said = " ".join(out.output.split())  # the error console wraps long lines
    assert "bomb.csv.gz: expands to more than" in said
    assert "cut.csv.gz: the gzip file is cut short" in said
    assert f"{REPORT}: shadowserver scan_exchange, ingested" in said
    store = Store(db)
    with store.session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Host)) > 0
    store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.integers(0, 200))
def test_any_bytes_after_the_gzip_magic(tail: bytes, cut: int) -> None:
    """Whatever follows the magic bytes: the data it holds, or an InputError; never a crash."""
    for data in (b"\x1f\x8b" + tail, gzip.compress(tail)[:cut or None],
                 zlib.compress(tail)):
        try:
            body, name = unpacked(data, "x.csv.gz")
        except InputError:
            continue
        assert isinstance(body, bytes) and name in ("x.csv", "x.csv.gz")
