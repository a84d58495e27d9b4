"""Many rows into the store at once, through the driver's executemany: SQLAlchemy Core's
executemany spends more time building each row's parameters than the database spends storing
them. Used where ingest writes tens of thousands of rows per file."""

from __future__ import annotations

import functools
import gc
import sqlite3
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Select,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from exhunt.store.models import Base

T = TypeVar("T")
AnySelect = Select[*tuple[Any, ...]]  # a SELECT of any columns
CHUNK = 500  # rows per IN (...) query; both databases accept this comfortably


def core(model: type[Base]) -> Table:
    """The Core table of a model (bulk inserts without per-row ORM bookkeeping)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def _driver_rows(
    session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[object]]
) -> tuple[str, Sequence[Sequence[object]]] | None:
    """(parameter marker, rows converted for the driver), or None for a driver whose
    parameter style is not positional. Each column's bind conversion is looked up once and
    applied only where the dialect has one; SQLite's datetimes are left to the C-level adapter
    registered below, which writes the same text."""
    dialect = session.connection().dialect
    marker = {"qmark": "?", "format": "%s", "pyformat": "%s"}.get(dialect.paramstyle)
    if marker is None:
        return None
    converters = [_needed(table.c[c].type.dialect_impl(dialect).bind_processor(dialect),
                          dialect.name) for c in columns]
    convert = [(i, f) for i, f in enumerate(converters) if f is not None]
    if not convert:
        return marker, rows
    out: list[tuple[object, ...]] = []
    for row in rows:
        values = list(row)
        for i, f in convert:
            if values[i] is not None:
                values[i] = f(values[i])
        out.append(tuple(values))
    return marker, out


_PROBE = datetime(2021, 3, 2, 23, 59, 58, 123456)
# SQLite keeps a naive datetime as 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's form): the C-level
# isoformat, called by the driver itself, writes it several times faster than a Python loop
# calling the dialect's formatter. Every column holds naive UTC (models.utcnow).
_SQLITE_DATETIME = functools.partial(datetime.isoformat, sep=" ", timespec="microseconds")


def _needed(convert: Callable[[Any], Any] | None, dialect: str) -> Callable[[Any], Any] | None:
    """The bind conversion still to run in Python (None when the driver does it)."""
    if convert is None or dialect != "sqlite":
        return convert
    try:
        same = convert(_PROBE) == _SQLITE_DATETIME(_PROBE)
    except (TypeError, ValueError, AttributeError):
        same = False
    if not same:
        return convert
    sqlite3.register_adapter(datetime, _SQLITE_DATETIME)
    return None


def driver_times(session: Session, times: pa.ChunkedArray) -> list[Any]:
    """Arrow timestamps (naive UTC, microseconds) as the driver takes them for a DateTime
    column: on SQLite the very text SQLAlchemy writes, made by Arrow's cast without a Python
    call per value; elsewhere datetimes."""
    dialect = session.connection().dialect
    processor = DateTime().dialect_impl(dialect).bind_processor(dialect)
    if (dialect.name == "sqlite" and times.type == pa.timestamp("us")
            and _needed(processor, dialect.name) is None):
        return pc.cast(times, pa.string()).to_pylist()  # type: ignore[no-any-return]
    return times.to_pylist()  # type: ignore[no-any-return]


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
        session.connection().exec_driver_sql(sql, batch if isinstance(batch, list) else
                                             list(batch))


def bulk_update(session: Session, table: Table, columns: Sequence[str],
                rows: Sequence[Sequence[object]], *, given: Collection[str] = (),
                unset: Collection[str] = ()) -> None:
    """UPDATE table SET columns WHERE id = ..., one executemany; each row holds the new
    values in `columns` order, then the id. A column in `given` is set only where the new
    value is not NULL; one in `unset` only where the stored value is NULL."""
    if not rows:
        return
    prepared = _driver_rows(session, table, [*columns, "id"], rows)
    if prepared is None:
        def new(c: str) -> ColumnElement[Any]:
            value: ColumnElement[Any] = bindparam("new_" + c)
            return (func.coalesce(value, table.c[c]) if c in given else
                    func.coalesce(table.c[c], value) if c in unset else value)
        statement = (update(table).where(table.c.id == bindparam("row_id"))
                     .values({c: new(c) for c in columns}))
        params = [{"row_id": r[-1], **{"new_" + c: v for c, v in zip(columns, r, strict=False)}}
                  for r in rows]
        for part in chunks(params, 5000):
            session.connection().execute(statement, list(part))
        return
    marker, values = prepared
    quote = session.connection().dialect.identifier_preparer.quote

    def assign(c: str) -> str:
        value = (f"COALESCE({marker}, {quote(c)})" if c in given else
                 f"COALESCE({quote(c)}, {marker})" if c in unset else marker)
        return f"{quote(c)} = {value}"
    sql = (f"UPDATE {quote(table.name)} SET {', '.join(assign(c) for c in columns)}"
           f" WHERE {quote('id')} = {marker}")
    for batch in chunks(values, 5000):
        session.connection().exec_driver_sql(sql, batch if isinstance(batch, list) else
                                             list(batch))


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterable[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def fetch_rows(session: Session, query: AnySelect) -> Iterator[tuple[Any, ...]]:
    """The query's rows as plain tuples, read through the driver: SQLAlchemy's per-row result
    processing costs more than the read when a file touches tens of thousands of hosts.
    SQLite's datetime text is parsed back by the C-level fromisoformat."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    # the driver's own cursor, on the session's connection (so inside its transaction), read
    # in batches: iterating SQLAlchemy's result costs a Python call per row
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), _positional(compiled, dialect.paramstyle))
        times = [i for i, column in enumerate(query.selected_columns)
                 if isinstance(column.type, DateTime)] if dialect.name == "sqlite" else []
        while batch := cursor.fetchmany(10_000):
            if not times:
                yield from batch
                continue
            yield from _parsed_times(batch, times)
    finally:
        cursor.close()


def _parsed_times(batch: Sequence[tuple[Any, ...]], times: list[int]
                  ) -> Iterator[tuple[Any, ...]]:
    parse = datetime.fromisoformat
    for row in batch:
        values = list(row)
        for i in times:
            if values[i] is not None:
                values[i] = parse(values[i])
        yield tuple(values)


def fetch_table(session: Session, query: AnySelect, schema: pa.Schema) -> pa.Table:
    """The query's rows as an Arrow table of `schema` (its fields in the query's column
    order). (A second SQLite library in the process, such as ADBC's, must not read the store
    instead: SQLite's POSIX locks are per process, and one copy closing the file drops the
    other's locks.)"""
    rows = list(fetch_rows(session, query))
    if not rows:
        return schema.empty_table()
    return pa.Table.from_arrays([pa.array(values, field.type) for values, field in zip(
        zip(*rows, strict=True), schema, strict=True)], schema=schema)


def _positional(compiled: Any, paramstyle: str) -> tuple[Any, ...] | dict[str, Any]:
    params = compiled.construct_params()
    if paramstyle in ("qmark", "format", "numeric"):
        return tuple(params[name] for name in compiled.positiontup)
    return dict(params)


def in_parts(session: Session, query: AnySelect, column: ColumnElement[Any],
             keys: Sequence[object]) -> list[AnySelect]:
    """`query` restricted to `keys` of `column`: one pass over the whole table when the keys are
    a quarter of it or more (it beats many IN lists; callers keep only their keys), else one
    query per chunk of keys."""
    if not keys:
        return []
    table = column.table
    rows = session.scalar(select(func.count()).select_from(table)) or 0
    if len(keys) * 4 >= rows:
        return [query]
    return [query.where(column.in_(part)) for part in chunks(keys)]


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a file's rows are built: they form no cycles,
    and its passes over the growing lists of row objects cost a fifth of a large ingest."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
