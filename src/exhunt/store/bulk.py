"""Many rows into the store at once, through the driver's executemany: SQLAlchemy Core's
executemany spends more time building each row's parameters than the database spends storing
them. Used where ingest writes tens of thousands of rows per file."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.orm import Session

from exhunt.store.models import Base

T = TypeVar("T")
CHUNK = 500  # rows per IN (...) query; both databases accept this comfortably


def core(model: type[Base]) -> Table:
    """The Core table of a model (bulk inserts without per-row ORM bookkeeping)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _driver_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> tuple[str, list[tuple[object, ...]]] | None:
    """(parameter marker, rows converted for the driver), or None for a driver whose
    parameter style is not positional. Each column's bind conversion (SQLite keeps datetimes
    as text) is looked up once and applied only where the dialect has one."""
    dialect = session.connection().dialect
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        return None
    converters = [_fast(table.c[c].type.dialect_impl(dialect).bind_processor(dialect))
                  for c in columns]
    convert: list[tuple[int, Callable[[Any], Any], dict[object, object]]] = [
        (i, f, {}) for i, f in enumerate(converters) if f is not None]
    if not convert:
        return marker, [tuple(r) for r in rows]
    out: list[tuple[object, ...]] = []
    for row in rows:
        values = list(row)
        for i, f, memo in convert:  # feeds repeat timestamps: convert each distinct one once
            value = values[i]
            if value is not None:
                done = memo.get(value)
                if done is None:
                    done = memo[value] = f(value)
                values[i] = done
        out.append(tuple(values))
    return marker, out


_PROBE = datetime(2021, 3, 2, 23, 59, 58, 123456)


def _fast(convert: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """SQLite stores a naive datetime as 'YYYY-MM-DD HH:MM:SS.ffffff', which the C-level
    isoformat writes several times faster than the dialect's Python formatter; used only when
    both give the same text (checked here), and only for naive datetimes."""
    if convert is None:
        return None
    try:
        same = convert(_PROBE) == _PROBE.isoformat(" ", "microseconds")
    except (TypeError, ValueError, AttributeError):
        same = False
    if not same:
        return convert

    def iso_or_dialect(value: Any) -> Any:
        if type(value) is datetime and value.tzinfo is None:
            return value.isoformat(" ", "microseconds")
        return convert(value)

    return iso_or_dialect


def bulk_insert(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    """INSERT many rows (values in `columns` order) straight through the driver's
    executemany: Core's executemany spends more time building each row's parameters than the
    database spends storing them."""
    if not rows:
        return
    prepared = _driver_rows(session, table, columns, rows)
    if prepared is None:  # another parameter style: let Core do it
        for part in chunks(rows, 5000):
            session.execute(insert(table), [dict(zip(columns, r, strict=True)) for r in part])
        return
    marker, values = prepared
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
           f"VALUES ({', '.join([marker] * len(columns))})")
    for batch in chunks(values, 5000):
        session.connection().exec_driver_sql(sql, list(batch))


def bulk_update(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    """UPDATE table SET columns WHERE id = ..., one executemany; each row holds the new
    values in `columns` order, then the id."""
    if not rows:
        return
    prepared = _driver_rows(session, table, [*columns, "id"], rows)
    if prepared is None:
        statement = (update(table).where(table.c.id == bindparam("row_id"))
                     .values({c: bindparam("new_" + c) for c in columns}))
        params = [{"row_id": r[-1], **{"new_" + c: v for c, v in zip(columns, r, strict=False)}}
                  for r in rows]
        for part in chunks(params, 5000):
            session.connection().execute(statement, list(part))
        return
    marker, values = prepared
    quote = session.connection().dialect.identifier_preparer.quote
    sql = (f"UPDATE {quote(table.name)} SET {', '.join(f'{quote(c)} = {marker}' for c in columns)}"
           f" WHERE {quote('id')} = {marker}")
    for batch in chunks(values, 5000):
        session.connection().exec_driver_sql(sql, list(batch))


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
