"""Live schema as plain data, and the questions the classifier asks of it.

schema_readers.py fills these dataclasses from each backend's catalog (and owns
`introspect`); this module imports nothing of it, so the dependency is one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Column:
    name: str
    type: str  # as the catalog spells it, lower-cased ("character varying(100)", "int(11)")
    null: bool
    # Whether the database fills the column when an INSERT leaves it out (a DEFAULT, an
    # identity or auto-increment, a generated column); None where the reader cannot tell.
    default: bool | None = None


@dataclass
class Index:
    """An index or a unique/primary-key constraint (they are indexes on every backend)."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False
    primary: bool = False
    valid: bool = True  # False: PostgreSQL index left INVALID by CREATE INDEX CONCURRENTLY
    # False: partial, a prefix (MySQL), a non-btree method or operator class (PostgreSQL's
    # `_like` index): it does not serve every query a plain index on its columns does.
    plain: bool = True


@dataclass
class ForeignKey:
    name: str | None
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class Table:
    name: str
    # "table", "view" (PostgreSQL materialized views too), "virtual" (SQLite virtual
    # table: FTS5, R*Tree...) or "shadow" (the SQLite tables a virtual table stores its data
    # in: x_data, x_idx...). Only a "table" (or "shadow") declares its columns' types.
    kind: str = "table"
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    checks: set[str] = field(default_factory=set)  # names of CHECK constraints
    engine: str | None = None  # MySQL/MariaDB storage engine (InnoDB, MyISAM, Aria...)

    @property
    def enforces_foreign_keys(self) -> bool:
        """MyISAM, Aria, MEMORY... accept FOREIGN KEY clauses and keep nothing of them."""
        return self.engine is None or self.engine.lower() in ("innodb", "ndbcluster")

    def constraint_names(self) -> set[str]:
        names = set(self.indexes) | set(self.checks)
        names.update(fk.name for fk in self.foreign_keys if fk.name)
        return names


@dataclass
class LiveSchema:
    vendor: str
    tables: dict[str, Table] = field(default_factory=dict)
    # MySQL/MariaDB and SQLite compare identifiers case-insensitively.
    case_insensitive: bool = False
    # PostgreSQL silently truncates longer identifiers to this many bytes (NAMEDATALEN - 1):
    # a migration naming a 64-character constraint gets a 63-character one.
    max_identifier_bytes: int | None = None
    queries: int = 0

    def __post_init__(self) -> None:
        self._folded: dict[str, Table] | None = None

    def key(self, name: str) -> str:
        """`name` as the server stores and compares it (truncated, case-folded)."""
        limit = self.max_identifier_bytes
        if limit is not None and len(name) > limit // 4:
            raw = name.encode()
            if len(raw) > limit:
                # Like PostgreSQL's pg_mbcliplen: never split a multi-byte character.
                name = raw[:limit].decode("utf-8", "ignore")
        return name.lower() if self.case_insensitive else name

    def table(self, name: str) -> Table | None:
        if not self.case_insensitive:
            return self.tables.get(self.key(name))
        if self._folded is None:
            self._folded = {t.lower(): tbl for t, tbl in self.tables.items()}
        return self._folded.get(self.key(name))

    def has_table(self, name: str) -> bool:
        return self.table(name) is not None

    def column(self, table: str, column: str) -> Column | None:
        tbl = self.table(table)
        if tbl is None:
            return None
        wanted = self.key(column)
        if not self.case_insensitive:
            return tbl.columns.get(wanted)
        for name, col in tbl.columns.items():
            if name.lower() == wanted:
                return col
        return None

    def has_column(self, table: str, column: str) -> bool:
        return self.column(table, column) is not None

    def has_object(self, obj: tuple[str, ...]) -> bool:
        """("table", t) / ("column", t, c) / ("constraint", t, name[, *columns]) /
        ("unique", t, *columns) / ("index", t, *columns), as expected.py names them."""
        if obj[0] == "table":
            return self.has_table(obj[1])
        if obj[0] == "column":
            return self.has_column(obj[1], obj[2])
        if obj[0] == "unique":
            return self.has_unique(obj[1], obj[2:])
        if obj[0] == "index":
            return self.index_on(obj[1], obj[2:]) is not None
        if len(obj) > 3:  # a named index on these columns, in this order
            index = self.index_named(obj[1], obj[2])
            return index is not None and self._folded_columns(index.columns) == (
                self._folded_columns(obj[3:])
            )
        return self.has_constraint(obj[1], obj[2])

    def _folded_columns(self, columns: tuple[str, ...]) -> list[str]:
        return [self.key(c).lower() for c in columns]

    def index_named(self, table: str, name: str) -> Index | None:
        """The index of that name on `table`, whatever its columns."""
        tbl = self.table(table)
        if tbl is None:
            return None
        wanted = self.key(name)
        if not self.case_insensitive:
            return tbl.indexes.get(wanted)
        return next((i for n, i in tbl.indexes.items() if n.lower() == wanted), None)

    def name_holder(self, table: str, name: str) -> tuple[str, Index] | None:
        """(table, index) holding an index name `table` would get: the table's own, or on
        PostgreSQL and SQLite, whose index names are unique in the schema, any table's."""
        index = self.index_named(table, name)
        if index is not None:
            return table, index
        if self.vendor not in ("postgresql", "sqlite"):
            return None
        for other in sorted(self.tables):
            index = self.index_named(other, name)
            if index is not None:
                return other, index
        return None

    def has_unique(self, table: str, columns: tuple[str, ...]) -> bool:
        """A unique index or constraint (the primary key too) on exactly these columns."""
        tbl = self.table(table)
        if tbl is None:
            return False
        wanted = sorted(self.key(c).lower() for c in columns)
        return any(
            (index.unique or index.primary)
            and index.valid
            and sorted(self.key(c).lower() for c in index.columns) == wanted
            for index in tbl.indexes.values()
        )

    def index_on(self, table: str, columns: tuple[str, ...]) -> Index | None:
        """A plain, valid index on exactly these columns, in this order (a unique one too):
        Django names `db_index` and `index_together` indexes by a hash, so the database knows
        them by their columns."""
        tbl = self.table(table)
        if tbl is None:
            return None
        wanted = self._folded_columns(columns)
        return next(
            (
                index
                for index in sorted(tbl.indexes.values(), key=lambda i: i.name)
                if index.valid and index.plain and self._folded_columns(index.columns) == wanted
            ),
            None,
        )

    def has_constraint(self, table: str, name: str) -> bool:
        tbl = self.table(table)
        if tbl is None:
            return False
        names = tbl.constraint_names()
        if not self.case_insensitive:
            return self.key(name) in names
        return self.key(name) in {n.lower() for n in names}
