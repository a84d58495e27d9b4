"""Property test of the contacts reader: any rows in, each row either used or rejected with a
reason, nothing raised, and no refused address ever becomes a contact."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exhunt.cases.contacts import EMAIL, import_contacts
from exhunt.store.db import Store
from exhunt.store.models import Contact, Reject

cell = st.one_of(st.text(max_size=40), st.sampled_from([
    "192.0.2.0/24", "2001:db8::/48", "10.0.0.1", "a@b.example", "x@y.example;z@w.example",
    "evil@x.example\r\nBcc: all@x.example", "<script>", "", "192.0.2.0 - 192.0.2.9",
    "192.0.2.9-192.0.2.0", "10.0.0.0/8, 2001:db8::/32", "Jane <a@b.example>, c@d.example",
    "<evil@x.example>\r\n<b@y.example>", "a@b.example <c@d.example>"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(cell, cell, cell, cell, cell), max_size=8))
def test_any_contacts_rows(rows: list[tuple[str, str, str, str, str]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["network", "org", "country", "sector", "email"])
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "contacts.csv"
        path.write_text(out.getvalue(), encoding="utf-8", errors="surrogatepass")
        store = Store(f"sqlite:///{Path(tmp) / 'c.db'}")
        result = import_contacts(store, path)
        with store.session() as s:
            emails = s.scalars(sa.select(Contact.email)).all()
            rejects = s.scalar(sa.select(sa.func.count()).select_from(Reject))
        store.close()
    assert result.rejected == rejects
    assert all(EMAIL.match(e) for e in emails)
    assert result.rows >= result.rejected
