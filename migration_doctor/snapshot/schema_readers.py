"""One reader per backend: the whole schema in a fixed handful of catalog queries.

Every reader issues the same number of SELECTs whatever the number of tables (SQLite 4,
PostgreSQL 3, MySQL/MariaDB 4), so a 500-table schema costs what a 5-table one does. (One
exception, SQLite with a broken view: see read_sqlite.) Names
are always data (parameters or catalog values), never spliced into SQL, because broken
databases are exactly where odd table names turn up. Nothing here writes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper

from .schema import Column, ForeignKey, Index, LiveSchema, Table

PRIMARY_INDEX = "__primary__"  # SQLite has no name for the primary key; Django uses this one


class _Queries:
    """Run statements on one cursor and count them, so LiveSchema.queries is exact."""

    def __init__(self, cursor: Any) -> None:
        self.cursor = cursor
        self.count = 0

    def fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        self.count += 1
        self.cursor.execute(sql, params)
        return list(self.cursor.fetchall())


def _text(value: Any) -> str:
    """Catalog values as str: some MySQL servers hand information_schema text back as bytes."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "surrogateescape")
    return str(value)


def _known(tables: dict[str, Table], name: str) -> Table | None:
    """The table a catalog row belongs to; tolerate case drift (MySQL lower_case_table_names)."""
    table = tables.get(name)
    if table is None:
        wanted = name.lower()
        table = next((t for n, t in tables.items() if n.lower() == wanted), None)
    return table


_FkRow = tuple[str, Any, str | None, str, str, str | None]


def _group_foreign_keys(rows: Iterable[_FkRow]) -> dict[str, list[ForeignKey]]:
    """(table, key, name, column, ref table, ref column) rows in key order -> FKs by table.

    A None ref column (SQLite `REFERENCES parent` without columns) becomes "" and is
    resolved by the caller.
    """
    grouped: dict[tuple[str, Any], tuple[str | None, str, list[str], list[str]]] = {}
    for table_name, key, name, column, ref_table, ref_column in rows:
        entry = grouped.setdefault((table_name, key), (name, ref_table, [], []))
        entry[2].append(column)
        entry[3].append(ref_column or "")
    by_table: dict[str, list[ForeignKey]] = {}
    for (table_name, _key), (name, ref_table, cols, ref_cols) in grouped.items():
        fk = ForeignKey(name, tuple(cols), ref_table, tuple(ref_cols))
        by_table.setdefault(table_name, []).append(fk)
    return by_table


def _add_foreign_keys(tables: dict[str, Table], rows: Iterable[_FkRow]) -> None:
    for table_name, fks in _group_foreign_keys(rows).items():
        table = _known(tables, table_name)
        if table is not None:
            table.foreign_keys.extend(fks)


# --------------------------------------------------------------------------------------
# SQLite
# --------------------------------------------------------------------------------------

# Columns of ordinary tables, and the list of every object. Views and virtual tables get
# no columns here: pragma_table_xinfo on a view whose table was dropped (or a virtual
# table whose module is missing) aborts the *whole* statement, so they have their own.
# {list} is pragma_table_list's type ("shadow" for a virtual table's storage) where SQLite
# has it (3.37+), else NULL.
_SQLITE_OBJECTS = """
SELECT m.name, m.type, m.rootpage, m.sql, {list}, c.name, c.type, c."notnull", c.pk, c.hidden,
       c.dflt_value
FROM sqlite_master AS m
LEFT JOIN pragma_table_xinfo(
    CASE WHEN m.type = %s AND m.rootpage > 0 THEN m.name END, %s
) AS c{join}
WHERE m.type IN (%s, %s) AND m.name NOT LIKE %s ESCAPE %s
ORDER BY m.name, c.cid
"""
_SQLITE_TABLE_LIST = {
    "list": "tl.type",
    "join": "\nLEFT JOIN pragma_table_list(m.name) AS tl ON tl.schema = %s",
}
_SQLITE_NO_TABLE_LIST = {"list": "NULL", "join": ""}

# Before SQLite 3.37 (no pragma_table_list), the shadow tables of the virtual table modules
# SQLite ships, by name: <virtual table>_<suffix>.
_SHADOW_SUFFIXES = {
    "fts5": ("data", "idx", "content", "docsize", "config"),
    "fts4": ("content", "segments", "segdir", "docsize", "stat"),
    "fts3": ("content", "segments", "segdir", "docsize", "stat"),
    "rtree": ("node", "parent", "rowid"),
    "rtree_i32": ("node", "parent", "rowid"),
    "geopoly": ("node", "parent", "rowid"),
}
_USING = re.compile(r"\bUSING\s+([\w]+)", re.IGNORECASE)

_SQLITE_VIEW_COLUMNS = """
SELECT m.name, c.name, c.type, c."notnull", c.pk, c.hidden
FROM sqlite_master AS m
JOIN pragma_table_xinfo(m.name, %s) AS c
WHERE (m.type = %s OR (m.type = %s AND m.rootpage = 0)) AND m.name NOT LIKE %s ESCAPE %s
ORDER BY m.name, c.cid
"""

_SQLITE_ONE_OBJECT_COLUMNS = """
SELECT c.name, c.type, c."notnull", c.pk, c.hidden
FROM pragma_table_xinfo(%s, %s) AS c
ORDER BY c.cid
"""

_SQLITE_INDEXES = """
SELECT m.name, il.name, il."unique", il.origin, il.partial, ii.name
FROM sqlite_master AS m
JOIN pragma_index_list(m.name, %s) AS il
LEFT JOIN pragma_index_info(il.name, %s) AS ii
WHERE m.type = %s AND m.name NOT LIKE %s ESCAPE %s
ORDER BY m.name, il.name, ii.seqno
"""

_SQLITE_FOREIGN_KEYS = """
SELECT m.name, fk.id, fk."from", fk."table", fk."to"
FROM sqlite_master AS m
JOIN pragma_foreign_key_list(m.name, %s) AS fk
WHERE m.type = %s AND m.name NOT LIKE %s ESCAPE %s
ORDER BY m.name, fk.id, fk.seq
"""

_NOT_INTERNAL = ("sqlite\\_%", "\\")  # LIKE pattern and ESCAPE: skip sqlite_sequence & co.

# Tokens of a CREATE TABLE statement: enough to find CONSTRAINT <name> <kind> at the top
# level without being fooled by string literals, comments or CHECK expressions.
_TOKEN = re.compile(
    r"""
    (?P<skip>\s+|--[^\n]*|/\*.*?(?:\*/|\Z))
    |(?P<ident>"(?:[^"]|"")*"|`(?:[^`]|``)*`|\[[^\]]*\]|'(?:[^']|'')*')
    |(?P<word>(?:[^\W\d]|[^\x00-\x7f])(?:[\w$]|[^\x00-\x7f])*)
    |(?P<punct>[(),])
    |(?P<other>\d[\w.]*|.)
    """,
    re.VERBOSE | re.DOTALL,
)
_TABLE_CONSTRAINT_STARTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


@dataclass
class _SqliteNames:
    """Constraint names SQLite keeps only in the CREATE TABLE text."""

    checks: list[str] = field(default_factory=list)
    uniques: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    foreign_keys: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


def _unquote(token: str) -> str:
    if token[:1] in "\"'`" and len(token) >= 2:
        quote = token[0]
        return token[1:-1].replace(quote * 2, quote)
    if token[:1] == "[" and token.endswith("]"):
        return token[1:-1]
    return token


def _tokens(sql: str) -> list[tuple[str, str]]:
    out = []
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        if kind != "skip":
            out.append((kind, match.group()))
    return out


def _split_top_level(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """Split on commas at depth 0 of `tokens` (the inside of one pair of parentheses)."""
    items: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for kind, value in tokens:
        if kind == "punct" and value == "(":
            depth += 1
        elif kind == "punct" and value == ")":
            depth -= 1
        if kind == "punct" and value == "," and depth == 0:
            items.append([])
        else:
            items[-1].append((kind, value))
    return [item for item in items if item]


def _parenthesised(tokens: list[tuple[str, str]], start: int) -> list[tuple[str, str]]:
    """Tokens inside the parentheses opening at or after `start` (empty if none)."""
    while start < len(tokens) and tokens[start] != ("punct", "("):
        if tokens[start][0] != "word" or tokens[start][1].upper() != "KEY":
            return []  # FOREIGN KEY (...): skip KEY; anything else means no list here
        start += 1
    depth = 0
    for end in range(start, len(tokens)):
        if tokens[end] == ("punct", "("):
            depth += 1
        elif tokens[end] == ("punct", ")"):
            depth -= 1
            if depth == 0:
                return tokens[start + 1 : end]
    return tokens[start + 1 :]


def _column_list(tokens: list[tuple[str, str]]) -> tuple[str, ...]:
    """`a, "b" COLLATE nocase DESC` -> ("a", "b"): the first token of each item."""
    return tuple(_unquote(item[0][1]) for item in _split_top_level(tokens))


def _parse_sqlite_create(sql: str | None) -> _SqliteNames:
    """Find the names of CHECK, UNIQUE and FOREIGN KEY constraints in a CREATE TABLE."""
    names = _SqliteNames()
    tokens = _tokens(sql or "")
    opening = next((i for i, t in enumerate(tokens) if t == ("punct", "(")), len(tokens))
    body = _parenthesised(tokens, opening)
    for item in _split_top_level(body):
        first = item[0]
        column = None
        if not (first[0] == "word" and first[1].upper() in _TABLE_CONSTRAINT_STARTS):
            column = _unquote(first[1])
        depth = 0
        for pos, (kind, value) in enumerate(item):
            if kind == "punct":
                depth += {"(": 1, ")": -1}.get(value, 0)
                continue
            if depth or kind != "word" or value.upper() != "CONSTRAINT" or pos + 2 >= len(item):
                continue
            name = _unquote(item[pos + 1][1])
            what = item[pos + 2][1].upper() if item[pos + 2][0] == "word" else ""
            if what == "CHECK":
                names.checks.append(name)
            elif what == "UNIQUE":
                if column is not None:  # column-level: x text CONSTRAINT n UNIQUE
                    names.uniques.append((name, (column,)))
                else:
                    names.uniques.append((name, _column_list(_parenthesised(item, pos + 3))))
            elif what == "FOREIGN":
                names.foreign_keys.append((name, _column_list(_parenthesised(item, pos + 3))))
            elif what == "REFERENCES" and column is not None:
                names.foreign_keys.append((name, (column,)))
    return names


def _sqlite_column(row: Sequence[Any]) -> Column | None:
    """A table_xinfo row (name, type, notnull, pk, hidden[, dflt_value]) as a Column, or None.

    hidden 1 is a virtual table's hidden column; 2 and 3 are generated columns, which are
    real. A rowid alias (INTEGER PRIMARY KEY) is reported nullable but never holds NULL.
    """
    name, type_, notnull, pk, hidden, *default = row
    if name is None or hidden == 1:
        return None
    filled: bool | None = None  # views' columns: not known
    if default:
        # A DEFAULT, a generated column, or the rowid alias that SQLite fills itself.
        integer_key = pk and (type_ or "").lower() == "integer"
        filled = default[0] is not None or hidden in (2, 3) or bool(integer_key)
    return Column(name, (type_ or "").lower(), null=not notnull and not pk, default=filled)


def _same_columns(a: Sequence[str], b: Sequence[str]) -> bool:
    return [c.lower() for c in a] == [c.lower() for c in b]


def _shadows_by_name(modules: dict[str, str], tables: dict[str, Table]) -> list[str]:
    """Shadow tables of SQLite's own virtual table modules, where SQLite cannot say (< 3.37)."""
    folded = {name.lower(): name for name, t in tables.items() if t.kind == "table"}
    found = []
    for virtual, module in modules.items():
        for suffix in _SHADOW_SUFFIXES.get(module, ()):
            name = folded.get(f"{virtual}_{suffix}".lower())
            if name is not None:
                found.append(name)
    return found


def read_sqlite(connection: BaseDatabaseWrapper) -> LiveSchema:
    """SQLite: sqlite_master joined with the table-valued pragma functions.

    Four statements, plus one per view or virtual table only when one of them is broken.
    """
    schema = LiveSchema(vendor=connection.vendor, case_insensitive=True)
    tables = schema.tables
    pks: dict[str, list[tuple[int, str]]] = {}
    create_sql: dict[str, str] = {}  # ordinary tables only
    no_storage: list[str] = []  # views and virtual tables

    def add_column(table: str, row: Sequence[Any]) -> None:
        column = _sqlite_column(row)
        if column is not None:
            tables[table].columns[column.name] = column
            if row[3]:
                pks.setdefault(table, []).append((row[3], column.name))

    library = getattr(connection, "Database", None)  # the sqlite3 module Django uses
    table_list = getattr(library, "sqlite_version_info", (0,)) >= (3, 37)
    objects_sql = _SQLITE_OBJECTS.format(
        **(_SQLITE_TABLE_LIST if table_list else _SQLITE_NO_TABLE_LIST)
    )
    modules: dict[str, str] = {}  # virtual table -> module, for _shadows_by_name
    with connection.cursor() as cursor:
        q = _Queries(cursor)
        for name, kind, rootpage, sql, listed, *column in q.fetch(
            objects_sql,
            ["table", "main", *(["main"] if table_list else []), "table", "view", *_NOT_INTERNAL],
        ):
            if name not in tables:
                # A virtual table (FTS5, R*Tree...) is a "table" without storage of its own;
                # its shadow tables (x_data, x_idx...) are its storage, ordinary otherwise.
                virtual = kind == "table" and not rootpage
                if kind == "view" or virtual:
                    kind = "virtual" if virtual else "view"
                else:
                    kind = "shadow" if listed == "shadow" else "table"
                tables[name] = Table(name, kind=kind)
                if kind in ("view", "virtual"):
                    no_storage.append(name)
                    using = _USING.search(sql or "") if virtual else None
                    if using:
                        modules[name] = using.group(1).lower()
                else:
                    create_sql[name] = sql or ""
            add_column(name, column)
        if not table_list:
            for shadow in _shadows_by_name(modules, tables):
                tables[shadow].kind = "shadow"

        try:
            rows = q.fetch(_SQLITE_VIEW_COLUMNS, ["main", "view", "table", *_NOT_INTERNAL])
        except DatabaseError:
            # One broken view (its table dropped) or a virtual table whose module is not
            # loaded aborts the joined statement: only then read them one at a time, so
            # the others still get their columns; the broken ones are left without.
            for name in no_storage:
                try:
                    for row in q.fetch(_SQLITE_ONE_OBJECT_COLUMNS, [name, "main"]):
                        add_column(name, row)
                except DatabaseError:
                    continue
        else:
            for name, *xinfo in rows:
                if name in tables:
                    add_column(name, xinfo)

        for name, pairs in pks.items():
            cols = tuple(col for _, col in sorted(pairs))
            tables[name].indexes[PRIMARY_INDEX] = Index(PRIMARY_INDEX, cols, True, True)

        unique_autoindexes: dict[str, list[Index]] = {}
        for table_name, index_name, unique, origin, partial, column in q.fetch(
            _SQLITE_INDEXES, ["main", "main", "table", *_NOT_INTERNAL]
        ):
            # origin "pk" is the primary key's own autoindex: it is __primary__ already.
            if origin == "pk" or table_name not in tables:
                continue
            table = tables[table_name]
            index = table.indexes.get(index_name)
            if index is None:
                index = table.indexes[index_name] = Index(
                    index_name, (), unique=bool(unique), plain=not partial
                )
                if origin == "u":
                    unique_autoindexes.setdefault(table_name, []).append(index)
            # A NULL column name is an expression (cid -2) or the rowid (cid -1).
            index.columns += (column or "",)

        fk_rows = q.fetch(_SQLITE_FOREIGN_KEYS, ["main", "table", *_NOT_INTERNAL])
        schema.queries = q.count

    fks = _group_foreign_keys((t, key, None, col, rt, rc) for t, key, col, rt, rc in fk_rows)
    folded = {t.lower(): t for t in tables}
    for name, sql in create_sql.items():
        table = tables[name]
        names = _parse_sqlite_create(sql)
        table.checks.update(names.checks)
        # `CONSTRAINT "x" UNIQUE (...)` is reported as sqlite_autoindex_*: file it under
        # its real name too, so a Django UniqueConstraint can be found by name.
        for constraint, cols in names.uniques:
            backing = next(
                (i for i in unique_autoindexes.get(name, []) if _same_columns(i.columns, cols)),
                None,
            )
            table.indexes.setdefault(
                constraint, Index(constraint, backing.columns if backing else cols, unique=True)
            )
        for fk in fks.get(name, []):
            fk.name = next(
                (n for n, c in names.foreign_keys if _same_columns(c, fk.columns)), None
            )
            # REFERENCES names the parent as the DDL spelled it: use the table's own case.
            parent = tables.get(folded.get(fk.ref_table.lower(), ""))
            if parent is not None:
                fk.ref_table = parent.name
            if "" in fk.ref_columns:
                # `REFERENCES parent` without columns means the parent's primary key.
                primary = parent.indexes.get(PRIMARY_INDEX) if parent else None
                fk.ref_columns = primary.columns if primary else ()
            table.foreign_keys.append(fk)
    return schema


# --------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------

# Relations the connection resolves by bare name: visible on the search path, not in the
# system schemas, not temporary, not a child partition. {where} is that last condition, or
# (read_postgresql_schemas) membership of the schemas asked for.
_PG_RELATION_FILTER = """
    t.relkind = ANY(%s::"char"[])
    AND NOT t.relispartition
    AND t.relpersistence <> 't'
    AND n.nspname <> ALL(%s::text[])
    AND {where}
"""
_PG_VISIBLE = "pg_catalog.pg_table_is_visible(t.oid)"
_PG_IN_SCHEMAS = "n.nspname = ANY(%s::text[])"
_PG_KINDS = ["r", "p", "v", "m", "f"]
_PG_SYSTEM_SCHEMAS = ["pg_catalog", "information_schema", "pg_toast"]

_PG_COLUMNS = f"""
SELECT n.nspname::text, t.relname::text, t.relkind::text, a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''
FROM pg_catalog.pg_class AS t
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_attribute AS a
    ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE {_PG_RELATION_FILTER}
ORDER BY n.nspname, t.relname, a.attnum
"""

# Key columns only (INCLUDE columns are not part of the key); attnum 0 is an expression.
# Plain: a btree without predicate whose operator classes are the default ones (not the
# `varchar_pattern_ops` of the `_like` index Django adds beside a varchar db_index). The
# non-default operator classes are one uncorrelated array, computed once for the query
# (a per-index subquery cost seconds over a fleet's 170,000 indexes).
_PG_INDEXES = f"""
SELECT n.nspname::text, t.relname::text, i.relname::text, x.indisunique, x.indisprimary,
       x.indisvalid,
       x.indpred IS NULL AND am.amname = 'btree' AND NOT (x.indclass::oid[] && ARRAY(
           SELECT o.oid FROM pg_catalog.pg_opclass AS o WHERE NOT o.opcdefault
       )),
       ARRAY(
           SELECT COALESCE(a.attname::text, '')
           FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
           LEFT JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = x.indrelid AND a.attnum = k.attnum
           WHERE k.ord <= x.indnkeyatts
           ORDER BY k.ord
       )
FROM pg_catalog.pg_index AS x
JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
JOIN pg_catalog.pg_am AS am ON am.oid = i.relam
JOIN pg_catalog.pg_class AS t ON t.oid = x.indrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
WHERE {_PG_RELATION_FILTER}
ORDER BY n.nspname, t.relname, i.relname
"""

# conparentid <> 0 rows are the per-partition clones PostgreSQL adds for a foreign key
# that references a partitioned table: the parent row already describes it.
_PG_CONSTRAINTS = f"""
SELECT n.nspname::text, t.relname::text, c.conname::text, c.contype::text, f.relname::text,
       ARRAY(
           SELECT a.attname::text
           FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = c.conrelid AND a.attnum = k.attnum
           ORDER BY k.ord
       ),
       ARRAY(
           SELECT a.attname::text
           FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = c.confrelid AND a.attnum = k.attnum
           ORDER BY k.ord
       )
FROM pg_catalog.pg_constraint AS c
JOIN pg_catalog.pg_class AS t ON t.oid = c.conrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = t.relnamespace
LEFT JOIN pg_catalog.pg_class AS f ON f.oid = c.confrelid
WHERE c.contype = ANY(%s::"char"[]) AND c.conparentid = 0 AND {_PG_RELATION_FILTER}
ORDER BY n.nspname, t.relname, c.conname
"""


def _pg_schema(connection: BaseDatabaseWrapper) -> LiveSchema:
    return LiveSchema(
        vendor=connection.vendor,
        case_insensitive=False,
        max_identifier_bytes=connection.ops.max_name_length(),
    )


def _read_pg(
    connection: BaseDatabaseWrapper, where: str, params: Sequence[Any], one: bool
) -> dict[str, LiveSchema]:
    """The three catalog queries under one filter: a LiveSchema per PostgreSQL schema, or
    (`one`) everything in one LiveSchema under the key ''."""
    found: dict[str, LiveSchema] = {}

    def tables_of(nspname: str) -> dict[str, Table]:
        key = "" if one else nspname
        if key not in found:
            found[key] = _pg_schema(connection)
        return found[key].tables

    relation = [_PG_KINDS, _PG_SYSTEM_SCHEMAS, *params]
    with connection.cursor() as cursor:
        q = _Queries(cursor)
        for nsp, name, kind, column, type_, notnull, default in q.fetch(
            _PG_COLUMNS.format(where=where), relation
        ):
            tables = tables_of(nsp)
            table = tables.get(name)
            if table is None:
                table = tables[name] = Table(name, kind="view" if kind in ("v", "m") else "table")
            if column is not None:
                table.columns[column] = Column(
                    column, type_.lower(), null=not notnull, default=bool(default)
                )

        for nsp, name, index, unique, primary, valid, plain, columns in q.fetch(
            _PG_INDEXES.format(where=where), relation
        ):
            tables = tables_of(nsp)
            if name in tables:
                tables[name].indexes[index] = Index(
                    index,
                    tuple(columns or ()),
                    bool(unique),
                    bool(primary),
                    bool(valid),
                    bool(plain),
                )

        for nsp, name, conname, contype, ref_table, cols, ref_cols in q.fetch(
            _PG_CONSTRAINTS.format(where=where), [["f", "c"], *relation]
        ):
            table = tables_of(nsp).get(name)
            if table is None:
                continue
            if contype == "c":
                table.checks.add(conname)
            else:
                fk = ForeignKey(conname, tuple(cols or ()), ref_table, tuple(ref_cols or ()))
                table.foreign_keys.append(fk)
    for schema in found.values():
        schema.queries = q.count
    return found


def read_postgresql(connection: BaseDatabaseWrapper) -> LiveSchema:
    """PostgreSQL: pg_catalog, restricted to what the search path makes visible."""
    schema = _read_pg(connection, _PG_VISIBLE, (), one=True).get("")
    if schema is None:
        schema = _pg_schema(connection)
        schema.queries = 3
    return schema


def read_postgresql_schemas(
    connection: BaseDatabaseWrapper, schemas: Sequence[str]
) -> dict[str, LiveSchema]:
    """PostgreSQL: the named schemas (a schema-per-tenant fleet) in the same three catalog
    queries, whatever their number; one LiveSchema per name, tables unqualified as each
    schema's own search path would show them. Each LiveSchema counts the three queries."""
    found = _read_pg(connection, _PG_IN_SCHEMAS, [list(schemas)], one=False)
    result = {}
    for name in schemas:
        result[name] = found.get(name) or _pg_schema(connection)
        result[name].queries = 3
    return result


# --------------------------------------------------------------------------------------
# MySQL / MariaDB
# --------------------------------------------------------------------------------------

# TABLES and COLUMNS as one UNION, not a JOIN: MariaDB cannot push DATABASE() through a
# join on information_schema and would scan every database on the server.
_MYSQL_OBJECTS = """
SELECT 0 AS part, TABLE_NAME AS table_name, TABLE_TYPE AS table_type,
       NULL AS column_name, ENGINE AS column_type, NULL AS is_nullable, 0 AS position,
       0 AS has_default
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = DATABASE()
UNION ALL
SELECT 1 AS part, TABLE_NAME AS table_name, NULL AS table_type,
       COLUMN_NAME AS column_name, COLUMN_TYPE AS column_type,
       IS_NULLABLE AS is_nullable, ORDINAL_POSITION AS position,
       COLUMN_DEFAULT IS NOT NULL OR EXTRA LIKE '%%auto_increment%%'
           OR EXTRA LIKE '%%GENERATED%%' AS has_default
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = DATABASE()
"""

# COLUMN_NAME is NULL for a MySQL 8 functional key part. A prefix (SUB_PART) or a FULLTEXT
# or SPATIAL index does not serve what a plain index on the column does.
_MYSQL_INDEXES = """
SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, NON_UNIQUE AS non_unique,
       COLUMN_NAME AS column_name,
       SUB_PART IS NULL AND INDEX_TYPE NOT IN ('FULLTEXT', 'SPATIAL') AS plain
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX
"""

_MYSQL_FOREIGN_KEYS = """
SELECT TABLE_NAME AS table_name, CONSTRAINT_NAME AS constraint_name,
       COLUMN_NAME AS column_name, REFERENCED_TABLE_NAME AS referenced_table_name,
       REFERENCED_COLUMN_NAME AS referenced_column_name
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL
ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION
"""

# TABLE_CONSTRAINTS rather than CHECK_CONSTRAINTS: the latter has no TABLE_NAME on MySQL
# 8 (MariaDB names checks per table, so the table is needed), and servers without CHECK
# support simply return no rows here instead of failing on a missing table.
_MYSQL_CHECKS = """
SELECT TABLE_NAME AS table_name, CONSTRAINT_NAME AS constraint_name
FROM information_schema.TABLE_CONSTRAINTS
WHERE TABLE_SCHEMA = DATABASE() AND CONSTRAINT_TYPE = %s
"""


def read_mysql(connection: BaseDatabaseWrapper) -> LiveSchema:
    """MySQL/MariaDB: information_schema for the connection's current database."""
    schema = LiveSchema(vendor=connection.vendor, case_insensitive=True)
    tables = schema.tables
    with connection.cursor() as cursor:
        q = _Queries(cursor)
        rows = q.fetch(_MYSQL_OBJECTS, [])
        columns = []
        for part, name, kind, column, type_, nullable, position, default in rows:
            name = _text(name)
            if part == 0:  # column_type holds the table's storage engine here
                tables[name] = Table(name, kind="view" if _text(kind) == "VIEW" else "table")
                tables[name].engine = _text(type_) if type_ is not None else None
            else:
                columns.append(
                    (name, int(position), _text(column), _text(type_), nullable, default)
                )
        for name, _pos, column, type_, nullable, default in sorted(columns, key=lambda c: c[:2]):
            table = _known(tables, name)
            if table is not None:
                table.columns[column] = Column(
                    column, type_.lower(), _text(nullable) == "YES", default=bool(int(default))
                )

        for name, index, non_unique, column, plain in q.fetch(_MYSQL_INDEXES, []):
            table = _known(tables, _text(name))
            if table is None:
                continue
            index = _text(index)
            entry = table.indexes.get(index)
            if entry is None:
                primary = index == "PRIMARY"
                entry = table.indexes[index] = Index(index, (), not int(non_unique), primary)
            entry.columns += ("" if column is None else _text(column),)
            entry.plain = entry.plain and bool(int(plain))

        _add_foreign_keys(
            tables,
            (
                (_text(t), _text(c), _text(c), _text(col), _text(rt), _text(rc))
                for t, c, col, rt, rc in q.fetch(_MYSQL_FOREIGN_KEYS, [])
            ),
        )

        for name, check in q.fetch(_MYSQL_CHECKS, ["CHECK"]):
            table = _known(tables, _text(name))
            if table is not None:
                table.checks.add(_text(check))
        schema.queries = q.count
    return schema


READERS: dict[str, Callable[[BaseDatabaseWrapper], LiveSchema]] = {
    "sqlite": read_sqlite,
    "postgresql": read_postgresql,
    "mysql": read_mysql,
}


def introspect(connection: BaseDatabaseWrapper) -> LiveSchema:
    """Read every table, column, index and constraint visible to `connection`."""
    reader = READERS.get(connection.vendor)
    if reader is None:
        raise NotImplementedError(f"migration_doctor does not support {connection.vendor!r}")
    return reader(connection)
