"""The last look before a repair writes: replay its SQL against the live schema in memory.

Until the doctor infers where the whole plan really stands, a repair can be built on a
wrong reading (a field renamed by hand makes an earlier migration look incomplete). The
statements a plan would run are replayed here against the snapshot's tables, and the plan
is refused when they would drop a live column or table that the step did not set out to
drop, rebuild a SQLite table without carrying each of its columns' values, add a NOT NULL
column without a default to a table that holds rows, or leave a NOT NULL column without a
default that the migration state has no field for (every insert through the ORM would fail).

The statements are Django's own (its schema editors' templates), so a handful of patterns
reads them; a statement the replay does not recognise changes nothing it tracks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..classify import live_has
from ..expected import Footprints
from ..snapshot import Snapshot
from ..snapshot.schema import LiveSchema
from .plan import Context, Step, data_in

_ID = r'(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`)'  # a quoted identifier, as Django quotes
_FLAGS = re.IGNORECASE | re.DOTALL
_CREATE = re.compile(rf"CREATE TABLE {_ID} \((.*)\)$", _FLAGS)
_COPY = re.compile(rf"INSERT INTO {_ID} \((.*?)\) SELECT (.*) FROM {_ID}$", _FLAGS)
_DROP_TABLE = re.compile(rf"DROP TABLE (?:IF EXISTS )?{_ID}", _FLAGS)
_RENAME_TABLE = re.compile(rf"ALTER TABLE {_ID} RENAME TO {_ID}", _FLAGS)
_ADD_COLUMN = re.compile(rf"ALTER TABLE {_ID} ADD COLUMN {_ID}(.*)$", _FLAGS)
_DROP_COLUMN = re.compile(rf"ALTER TABLE {_ID} DROP COLUMN {_ID}", _FLAGS)
_RENAME_COLUMN = re.compile(rf"ALTER TABLE {_ID} RENAME COLUMN {_ID} TO {_ID}", _FLAGS)
_CHANGE_COLUMN = re.compile(rf"ALTER TABLE {_ID} CHANGE {_ID} {_ID}", _FLAGS)
_DROP_DEFAULT = re.compile(rf"ALTER TABLE {_ID} ALTER COLUMN {_ID} DROP DEFAULT", _FLAGS)
_ANY_ID = re.compile(_ID)
_TABLE_CONSTRAINT = ("constraint", "primary", "unique", "foreign", "check")


def _name(match: re.Match[str], group: int) -> str:
    """The identifier in quoted-identifier slot `group` (1-based), unquoted."""
    double, back = match.group(2 * group - 1), match.group(2 * group)
    return double.replace('""', '"') if double is not None else back.replace("``", "`")


def _ids(text: str) -> list[str]:
    return [(m.group(1) or "").replace('""', '"') or m.group(2) for m in _ANY_ID.finditer(text)]


def split_statements(sql: str) -> list[str]:
    """Split on semicolons outside quotes and strings (PostgreSQL joins some statements)."""
    out: list[str] = []
    buf: list[str] = []
    quote = ""
    for ch in sql:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch == ";":
            out.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    out.append("".join(buf).strip())
    return [s for s in out if s and not s.startswith("--")]


def _top_level(body: str) -> list[str]:
    parts: list[str] = []
    buf: list[str] = []
    depth, quote = 0, ""
    for ch in body:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(buf).strip())
            buf = []
            continue
        buf.append(ch)
    parts.append("".join(buf).strip())
    return [p for p in parts if p]


@dataclass
class _Col:
    not_null: bool = False
    default: bool = False
    added: bool = False  # by this plan, not in the live database before it


def _column_def(definition: str) -> _Col:
    text = re.sub(r"'(?:[^']|'')*'", "''", definition).upper()
    not_null = "NOT NULL" in text or "PRIMARY KEY" in text
    return _Col(not_null=not_null, default=" DEFAULT " in f" {text} ", added=True)


@dataclass
class _Table:
    columns: dict[str, _Col]
    live: bool  # holds what the live database held (its rows), not a new empty table
    carried: dict[str, str] = field(default_factory=dict)  # column -> rebuilt table


@dataclass
class Replay:
    """Replays statements over the snapshot's tables and collects what would be harmful."""

    schema: LiveSchema
    has_rows: Callable[[str], bool]
    # Objects a step means to drop: ("table", t) / ("column", t, c), each checked for data
    # by the step itself before it was offered.
    declared: set[tuple[str, ...]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    tables: dict[str, _Table] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)
    # Names dropped or renamed away by an earlier statement: no longer the live table.
    gone: set[str] = field(default_factory=set)
    # The statements after the one being replayed (lookahead, see filled_later).
    later: list[str] = field(default_factory=list)

    def _key(self, name: str) -> str:
        return self.schema.key(name)

    def _table(self, name: str) -> _Table | None:
        key = self._key(name)
        if key in self.gone:
            return self.tables.get(key)
        if key not in self.tables:
            live = self.schema.table(name)
            if live is None:
                return None
            self.tables[key] = _Table({self._key(c): _Col() for c in live.columns}, live=True)
        return self.tables[key]

    def _refuse(self, why: str) -> None:
        if why not in self.problems:
            self.problems.append(why)

    def run(self, statements: Iterable[str]) -> list[str]:
        flat = [one for sql in statements for one in split_statements(sql)]
        for i, statement in enumerate(flat):
            self.later = flat[i + 1 :]
            self.statement(statement)
        return self.problems

    def filled_later(self, table: str, column: str) -> bool:
        """Does a later statement of the step set every row's `column` (Django's UPDATE
        after adding a column whose default the server cannot hold: TEXT on MySQL)?"""
        update = re.compile(
            rf"UPDATE\s+[`\"]?{re.escape(table)}[`\"]?\s+SET\s+[`\"]?{re.escape(column)}[`\"]?\s*=",
            re.IGNORECASE,
        )
        return any(update.match(sql) for sql in self.later)

    def statement(self, sql: str) -> None:
        if m := _CREATE.match(sql):
            columns = {}
            for part in _top_level(m.group(3)):
                if part.split(" ", 1)[0].lower() in _TABLE_CONSTRAINT:
                    continue
                names = _ids(part.split(" ", 1)[0])
                if names:
                    columns[self._key(names[0])] = _column_def(part)
            self.tables[self._key(_name(m, 1))] = _Table(columns, live=False)
            self.touched.add(self._key(_name(m, 1)))
            self.gone.discard(self._key(_name(m, 1)))
        elif m := _COPY.match(sql):
            target, source = _name(m, 1), _name(m, 3)
            src, dst = self._table(source), self._table(target)
            if src is None or dst is None:
                return
            targets = [self._key(c) for c in _ids(m.group(3))]
            exprs = _top_level(m.group(4))
            for column, expr in zip(targets, exprs, strict=False):
                used = [self._key(c) for c in _ids(expr)]
                for u in used:
                    src.carried[u] = self._key(target)
                col = dst.columns.get(column)
                if (
                    col is not None
                    and not used
                    and expr.strip().upper() == "NULL"
                    and col.not_null
                    and src.live
                    and self.has_rows(source)
                ):
                    self._refuse(
                        f"it would add NOT NULL column {source}.{column} without a default "
                        "to a table that holds rows"
                    )
                if col is not None and used:
                    col.added = all(src.columns.get(u, _Col(added=True)).added for u in used)
            dst.live = dst.live or src.live
        elif m := _DROP_TABLE.match(sql):
            name = _name(m, 1)
            table = self._table(name)
            key = self._key(name)
            if table is None:
                return
            if table.live:
                lost = [c for c, col in table.columns.items() if c not in table.carried]
                if not table.carried:
                    if ("table", key) not in self.declared:
                        self._refuse(f"it would drop table {name}, which is in the database")
                else:
                    lost = [c for c in lost if ("column", key, c) not in self.declared]
                    if lost:
                        self._refuse(
                            f"it would rebuild table {name} without carrying column(s) "
                            f"{', '.join(lost)} and their values"
                        )
            del self.tables[key]
            self.gone.add(key)
        elif m := _RENAME_TABLE.match(sql):
            old, new = self._key(_name(m, 1)), self._key(_name(m, 2))
            moved = self._table(_name(m, 1))  # a live table renamed first: load it
            if moved is not None:
                del self.tables[old]
                moved.carried = {}
                self.tables[new] = moved
                self.touched.add(new)
                self.gone.add(old)
                self.gone.discard(new)
        elif m := _ADD_COLUMN.match(sql):
            name = _name(m, 1)
            table = self._table(name)
            if table is None:
                return
            col = _column_def(m.group(5))
            column = self._key(_name(m, 2))
            # MySQL's TEXT takes no DEFAULT: Django adds the column NOT NULL (the server
            # fills the rows with '') and then sets them to the field's default, as
            # `migrate` does. Without that UPDATE the values would be invented.
            implicit = self.schema.vendor == "mysql" and self.filled_later(name, column)
            if (
                col.not_null
                and not col.default
                and not implicit
                and table.live
                and self.has_rows(name)
            ):
                self._refuse(
                    f"it would add NOT NULL column {name}.{column} without a default to a "
                    "table that holds rows"
                )
            table.columns[column] = col
            self.touched.add(self._key(name))
        elif m := _DROP_COLUMN.match(sql):
            name, column = _name(m, 1), self._key(_name(m, 2))
            table = self._table(name)
            if table is None or column not in table.columns:
                return
            if not table.columns[column].added and ("column", self._key(name), column) not in (
                self.declared
            ):
                self._refuse(f"it would drop column {name}.{column}, which is in the database")
            del table.columns[column]
        elif (m := _RENAME_COLUMN.match(sql)) or (m := _CHANGE_COLUMN.match(sql)):
            table = self._table(_name(m, 1))
            old, new = self._key(_name(m, 2)), self._key(_name(m, 3))
            if table is not None and old in table.columns:
                table.columns[new] = table.columns.pop(old)
        elif m := _DROP_DEFAULT.match(sql):
            table = self._table(_name(m, 1))
            col = table.columns.get(self._key(_name(m, 2))) if table else None
            if col is not None:
                col.default = False

    def added_required(self) -> list[tuple[str, str]]:
        """(table, column) pairs the plan adds as NOT NULL without a database default."""
        return [
            (t, c)
            for t in sorted(self.touched)
            if t in self.tables
            for c, col in self.tables[t].columns.items()
            if col.added and col.not_null and not col.default
        ]


def final_columns(snapshot: Snapshot) -> dict[str, set[str]]:
    """Per table, the columns the migration state at its leaves gives it (what the ORM
    writes once every migration is applied)."""
    schema = snapshot.schema
    fp = Footprints(snapshot.connection)
    state = snapshot.expected.state
    columns: dict[str, set[str]] = {}
    for key in state.models:
        for obj in fp.of(state, key):
            if obj[0] == "column":
                columns.setdefault(schema.key(obj[1]), set()).add(schema.key(obj[2]))
    return columns


def check_plan(ctx: Context, steps: Iterable[Step], allow_data_loss: bool) -> list[str]:
    """Why running `steps` would harm the database; empty when nothing was found."""
    connection = ctx.connection
    qn = connection.ops.quote_name
    rows: dict[str, bool] = {}

    def has_rows(table: str) -> bool:
        if table not in rows:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT 1 FROM {qn(table)} LIMIT 1")
                rows[table] = cursor.fetchone() is not None
        return rows[table]

    schema = ctx.snapshot.schema
    replay = Replay(schema, has_rows)
    problems: list[str] = []
    for step in steps:
        if not step.writes_schema:
            continue
        drops = step.drops(ctx)
        held = data_in(connection, [o for o in drops if live_has(schema, o)])
        if held and not allow_data_loss and not step.checked_data:
            data = ", ".join(f"{k} ({v})" for k, v in held.items())
            problems.append(
                f"step '{step.title}': it drops objects that hold data ({data}); pass "
                "--allow-data-loss to allow it"
            )
        replay.declared |= {
            (o[0], *(schema.key(part) for part in o[1:]))
            for o in drops
            if o[0] in ("table", "column")
        }
        before = len(replay.problems)
        statements = ctx.sql_of(step)
        unavailable = [s for s in statements if s.startswith("-- SQL not available")]
        if unavailable:
            problems.append(
                f"step '{step.title}': its SQL cannot be checked before it runs "
                f"({unavailable[0][3:]})"
            )
        replay.run(statements)
        problems.extend(f"step '{step.title}': {why}" for why in replay.problems[before:])
    if replay.touched:
        final = final_columns(ctx.snapshot)
        for table, column in replay.added_required():
            if column not in final.get(table, set()):
                problems.append(
                    f"it would leave NOT NULL column {table}.{column} without a default, "
                    "which no field of the migration state fills: every insert through the "
                    "ORM would fail"
                )
    return problems
