"""A hot lookup whose SQL the ORM builds once, not on every call.

Compiling a queryset with `select_related` costs Django more than the database takes to
answer it (about 0.6 ms for the API key's lookup with its organization and bearer,
against 0.1 ms of PostgreSQL). `PreparedLookup` keeps what the ORM compiled for one
connection (the SQL, its converters and its related-object populators) and on each call
only runs the SQL with the new value and builds fresh model instances with the ORM's own
machinery, exactly as iterating the queryset would (django.db.models.query.ModelIterable).
It relies on the compiler's `select` / `klass_info` and `get_related_populators`, which
Django has kept stable for years; tests compare its objects with the queryset's.

On PostgreSQL the statement is also prepared on the server (psycopg's `prepare=True`):
planning its joins costs PostgreSQL about 0.3 ms, three times what running it costs,
and a prepared statement is planned once per connection. Django's cursors bind
parameters on the client and never prepare, so the lookup opens a server-binding cursor,
wrapped like Django's own (query logging, execute wrappers). Behind a pooler in
transaction mode that cannot keep prepared statements (PgBouncer before 1.21), set
`IAMPORTAL_DB_PREPARED_STATEMENTS=0`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, Generic, TypeVar

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators

M = TypeVar("M", bound=Model)

# Stands for the looked-up value while the SQL is compiled; never sent to the database.
_PLACEHOLDER = "\x00prepared-lookup\x00"


class _Compiled:
    __slots__ = (
        "compiler",
        "converters",
        "init_list",
        "params",
        "populators",
        "slot",
        "span",
        "sql",
    )

    def __init__(self, queryset: QuerySet[Any], alias: str) -> None:
        compiler = queryset.query.get_compiler(using=alias)
        sql, params = compiler.as_sql()  # also fills compiler.select and klass_info
        slots = [index for index, param in enumerate(params) if param == _PLACEHOLDER]
        if len(slots) != 1:
            raise ValueError("the queryset must use the looked-up value exactly once")
        self.sql, self.params, self.slot = sql, list(params), slots[0]
        self.compiler = compiler
        self.converters = compiler.get_converters([s[0] for s in compiler.select])
        fields = compiler.klass_info["select_fields"]
        start, end = fields[0], fields[-1]
        self.span = (start, end + 1)
        self.init_list = [column[0].target.attname for column in compiler.select[start : end + 1]]
        # Populators only read what they computed here, so one set serves every call.
        self.populators = get_related_populators(compiler.klass_info, compiler.select, alias)


class _Preparing:
    """A psycopg cursor whose `execute` prepares its statement on the server."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._last: tuple[str, Any] = ("", None)

    def execute(self, sql: str, params: Any = None) -> Any:
        self._last = (sql, params)
        return self._cursor.execute(sql, params, prepare=True)

    @property
    def _query(self) -> SimpleNamespace:
        """The statement with its values, for Django's query log (read only when logging:
        psycopg keeps no such text for a prepared statement)."""
        import psycopg

        sql, params = self._last
        return SimpleNamespace(
            query=psycopg.ClientCursor(self._cursor.connection).mogrify(sql, params).encode()
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)


def _cursor(connection: BaseDatabaseWrapper) -> CursorWrapper:
    """A cursor that prepares its statements on PostgreSQL; Django's own elsewhere (SQLite's
    driver keeps its recent statements prepared by itself)."""
    if connection.vendor != "postgresql" or not settings.DATABASE_PREPARED_STATEMENTS:
        return connection.cursor()
    import psycopg  # PostgreSQL's driver, only needed here when it is the database

    connection.close_if_health_check_failed()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    with connection.wrap_database_errors:
        cursor = _Preparing(psycopg.Cursor(connection.connection))
    if connection.queries_logged:
        return connection.make_debug_cursor(cursor)
    return connection.make_cursor(cursor)


class PreparedLookup(Generic[M]):
    """`lookup(value)`: the one row of `build(value)` as a model instance (with its
    `select_related` objects), or None. `build` must return a queryset of at most one row
    that uses `value` once, as a query parameter."""

    def __init__(self, build: Callable[[str], QuerySet[M]]) -> None:
        self._build = build
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def _for(self, alias: str) -> _Compiled:
        connection = connections[alias]
        key = (alias, connection.vendor)
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = self._compiled[key] = _Compiled(self._build(_PLACEHOLDER), alias)
        return compiled

    def __call__(self, value: str, *, using: str = "default") -> M | None:
        row = self.row(value, using=using)
        return None if row is None else self.build(row, using=using)

    def row(self, value: str, *, using: str = "default") -> tuple[Any, ...] | None:
        """The row for `value`, converted to Python values: a cache may keep it and
        `build` fresh instances from it on every use."""
        compiled = self._for(using)
        params = list(compiled.params)
        params[compiled.slot] = value
        with _cursor(connections[using]) as cursor:
            cursor.execute(compiled.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        if compiled.converters:
            row = next(iter(compiled.compiler.apply_converters([row], compiled.converters)))
        return tuple(row)

    def value(self, row: tuple[Any, ...], attname: str, *, using: str = "default") -> Any:
        """The main model's field `attname` in a `row`, without building it."""
        compiled = self._for(using)
        return row[compiled.span[0] + compiled.init_list.index(attname)]

    def build(self, row: tuple[Any, ...], *, using: str = "default") -> M:
        """Fresh model instances (with their `select_related` objects) from a `row`."""
        compiled = self._for(using)
        start, end = compiled.span
        model: type[M] = compiled.compiler.klass_info["model"]
        instance = model.from_db(using, compiled.init_list, row[start:end])
        for populator in compiled.populators:
            populator.populate(row, instance)
        return instance
