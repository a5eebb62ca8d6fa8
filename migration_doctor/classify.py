"""Pure classification: a Snapshot in, findings out. No database access here."""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Iterable

from django.db.backends.base.base import BaseDatabaseWrapper

from .expected import Key, MigrationEffect, Obj, collapse, describe
from .findings import Finding, Fix
from .ledger import LEDGER_TABLE
from .snapshot import Snapshot
from .snapshot.graph import LoadError
from .snapshot.rows import recorder_table
from .snapshot.schema import LiveSchema

MANAGE = "python manage.py"


# -- Django's own words, per backend -------------------------------------------------------


def exists_error(vendor: str, obj: Obj) -> str:
    """The error `migrate` raises when it tries to create what is already there."""
    if obj[0] == "table":
        return {
            "postgresql": f'relation "{obj[1]}" already exists',
            "mysql": f"(1050, \"Table '{obj[1]}' already exists\")",
        }.get(vendor, f"table {obj[1]!r} already exists".replace("'", '"'))
    if obj[0] == "column":
        return {
            "postgresql": f'column "{obj[2]}" of relation "{obj[1]}" already exists',
            "mysql": f"(1060, \"Duplicate column name '{obj[2]}'\")",
        }.get(vendor, f"duplicate column name: {obj[2]}")
    return {
        "postgresql": f'relation "{obj[2]}" already exists',
        "mysql": f"(1061, \"Duplicate key name '{obj[2]}'\")",
    }.get(vendor, f"index {obj[2]} already exists")


def missing_error(vendor: str, obj: Obj) -> str:
    """The error a query or a later migration raises when the object is missing."""
    if obj[0] == "table":
        return {
            "postgresql": f'relation "{obj[1]}" does not exist',
            "mysql": f"(1146, \"Table '<db>.{obj[1]}' doesn't exist\")",
        }.get(vendor, f"no such table: {obj[1]}")
    if obj[0] == "column":
        return {
            "postgresql": f"column {obj[1]}.{obj[2]} does not exist",
            "mysql": f"(1054, \"Unknown column '{obj[1]}.{obj[2]}' in 'field list'\")",
        }.get(vendor, f"no such column: {obj[1]}.{obj[2]}")
    return f"constraint {obj[2]} does not exist"


# -- helpers --------------------------------------------------------------------------------


def live_has(schema: LiveSchema, obj: Obj) -> bool:
    if obj[0] == "table":
        return schema.has_table(obj[1])
    if obj[0] == "column":
        return schema.has_column(obj[1], obj[2])
    return schema.has_constraint(obj[1], obj[2])


def _names(objs: Iterable[Obj]) -> list[str]:
    return [describe(o) for o in objs]


def sql_literal(value: str, vendor: str = "") -> str:
    """A string literal for SQL shown to people (what runs is always parameterised)."""
    if vendor == "mysql":  # backslash is an escape character in MySQL strings
        value = value.replace("\\", "\\\\")
    return "'" + value.replace("'", "''") + "'"


def delete_row_sql(connection: BaseDatabaseWrapper, app: str, name: str) -> str:
    qn, v = connection.ops.quote_name, connection.vendor
    return (
        f"DELETE FROM {qn(recorder_table())} WHERE {qn('app')} = {sql_literal(app, v)} "
        f"AND {qn('name')} = {sql_literal(name, v)};"
    )


def insert_row_sql(
    connection: BaseDatabaseWrapper, app: str, name: str, applied: str | None = None
) -> str:
    """`applied`: a timestamp to show, else the database's CURRENT_TIMESTAMP."""
    qn, v = connection.ops.quote_name, connection.vendor
    when = sql_literal(applied, v) if applied else "CURRENT_TIMESTAMP"
    return (
        f"INSERT INTO {qn(recorder_table())} ({qn('app')}, {qn('name')}, {qn('applied')}) "
        f"VALUES ({sql_literal(app, v)}, {sql_literal(name, v)}, {when});"
    )


def _reproduce(err: LoadError) -> tuple[str, ...]:
    """The command that shows the same error on its own (names may start with a digit)."""
    if err.error.startswith("BadMigrationError"):
        return ()
    if err.error.startswith("SyntaxError") and err.file:
        return (f"python -m py_compile {err.file}",)
    return (f"python -c \"import importlib; importlib.import_module('{err.module}')\"",)


class Classifier:
    def __init__(self, snapshot: Snapshot):
        self.s = snapshot
        self.vendor = snapshot.vendor
        self.schema = snapshot.schema
        self.loader = snapshot.graph.loader
        self.graph = snapshot.graph.graph
        self.expected = snapshot.expected
        self.effects = snapshot.expected.effects
        self.recorded = snapshot.recorded
        self.applied: set[Key] = set(self.loader.applied_migrations)
        self.findings: list[Finding] = []
        # Objects the applied migrations leave behind, in plan order.
        self.expected_live: set[Obj] = set()
        self.position = {key: i for i, key in enumerate(self.expected.plan)}
        # plan positions at which each object is removed again
        self.removed_at: dict[Obj, list[int]] = defaultdict(list)
        # ... and at which it is created
        self.created_at: dict[Obj, list[int]] = defaultdict(list)
        for i, key in enumerate(self.expected.plan):
            for obj in self.effects[key].removes:
                self.removed_at[obj].append(i)
            for obj in self.effects[key].creates:
                self.created_at[obj].append(i)
        for key in self.expected.plan:
            if key in self.applied:
                effect = self.effects[key]
                self.expected_live -= set(effect.removes)
                self.expected_live |= set(effect.creates)

    # -- state of one migration's effect against the live schema -----------------------

    def progress(self, effect: MigrationEffect) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(done, not done, explained by applied migrations) for an unapplied migration.

        An absent object that a later migration removes again proves nothing: the database
        may simply be past that later migration (contenttypes.0001 creates a column that
        0002 drops). Likewise an object this migration removes is only "done" by being
        absent when it would otherwise be there (see _removal_shows).
        """
        done: list[Obj] = []
        todo: list[Obj] = []
        explained: list[Obj] = []
        here = self.position.get(effect.key, -1)
        for obj in effect.creates:
            if obj in self.expected_live:
                explained.append(obj)
            elif live_has(self.schema, obj):
                done.append(obj)
            elif not any(i > here for i in self.removed_at.get(obj, ())):
                todo.append(obj)
        for obj in effect.removes:
            if not self.schema.has_table(obj[1]) and obj[0] != "table":
                continue  # the table itself is absent: nothing to tell from the column
            if live_has(self.schema, obj):
                todo.append(obj)
            elif self._removal_shows(obj, here):
                done.append(obj)
        return done, todo, explained

    def _removal_shows(self, obj: Obj, here: int) -> bool:
        """Whether `obj` being absent shows that the migration at `here` removed it.

        Only if something else says it existed: applied migrations leave it behind, or the
        unapplied migration that creates it has left the rest of its schema. On a database
        that never got that far, a DeleteModel's table is absent because it was never
        created (wagtaildocs.0012 creates UploadedDocument, 0013 deletes it).
        """
        if obj in self.expected_live:
            return True
        earlier = [i for i in self.created_at.get(obj, ()) if i < here]
        if not earlier:
            return False
        creator = self.expected.plan[max(earlier)]
        if creator in self.applied:
            return False  # an applied migration removed it since: not this one's doing
        return any(o != obj and live_has(self.schema, o) for o in self.effects[creator].creates)

    def run(self) -> list[Finding]:
        self.loading()
        self.history()
        self.migrations()
        self.leaves()
        self.squashes()
        self.stale()
        self.duplicates()
        self.disabled()
        self.untracked()
        self.provenance()
        return self.findings

    def provenance(self) -> None:
        """Say where the ledger shows a row was written by an earlier repair."""
        if not self.s.ledger:
            return
        for finding in self.findings:
            if not (finding.app and finding.migration):
                continue
            key = (finding.app, finding.migration)
            entry = self.s.recorded_by_doctor(key) if key in self.recorded else None
            if entry is None:
                continue
            said = f"migration_doctor on {entry.created:%Y-%m-%d %H:%M} ({entry.kind} fix)"
            finding.evidence["recorded_by"] = said
            if finding.kind == "missing-schema":
                finding.message += (
                    f" The row was recorded by {said}: that earlier fake is the likely cause."
                )

    def add(self, *args: object, **kwargs: object) -> None:
        self.findings.append(Finding(*args, **kwargs))  # type: ignore[arg-type]

    # -- graph problems ----------------------------------------------------------------

    def loading(self) -> None:
        gs = self.s.graph
        for err in gs.load_errors:
            where = f"{err.file}:{err.line}" if err.file and err.line else (err.file or err.module)
            self.add(
                "migration-load-error",
                err.app,
                err.migration,
                f"The migration module {err.module} does not load: {err.error}. Every "
                f"migrate and makemigrations stops here with the same exception.",
                {"module": err.module, "file": err.file, "line": err.line, "error": err.error},
                Fix(
                    f"Correct {where}, then run the doctor again.",
                    _reproduce(err),
                ),
            )
        for md in gs.missing_dependencies:
            app, name = md.missing
            # Only migrations that made it into the graph: never the migration itself or
            # anything that depends on it (that would suggest a cycle).
            candidates = sorted(n for a, n in self.graph.nodes if a == app)
            nearest = difflib.get_close_matches(name, candidates, n=1, cutoff=0.0)
            evidence: dict[str, object] = {
                "dependency": f"{app}.{name}",
                "app_has_migrations": app in self.loader.migrated_apps,
                "existing": candidates[-5:],
            }
            if md.replaced_by:
                evidence["replaced_by"] = [f"{a}.{n}" for a, n in md.replaced_by]
            if app not in self.loader.migrated_apps and app not in self.loader.unmigrated_apps:
                summary = (
                    f"App {app!r} is not installed: add it to INSTALLED_APPS or drop the "
                    "dependency."
                )
            elif nearest:
                summary = (
                    f"Point the dependency at an existing migration, e.g. "
                    f"({app!r}, {nearest[0]!r})."
                )
                evidence["nearest"] = f"{app}.{nearest[0]}"
            else:
                summary = f"App {app!r} has no migrations: remove the dependency or create them."
            self.add(
                "missing-dependency",
                md.origin[0],
                md.origin[1],
                f"Migration {md.origin[0]}.{md.origin[1]} depends on {app}.{name}, which does "
                f"not exist. Django says: NodeNotFoundError: Migration "
                f"{md.origin[0]}.{md.origin[1]} dependencies reference nonexistent parent node "
                f"('{app}', '{name}').",
                {**evidence, "file": self._file(md.origin)},
                Fix(summary),
            )
        for cycle in gs.cycles:
            chain = " -> ".join(f"{a}.{n}" for a, n in cycle)
            self.add(
                "circular-dependency",
                cycle[0][0],
                cycle[0][1],
                f"These migrations depend on each other in a circle: {chain}. Django says: "
                f"CircularDependencyError: {', '.join(f'{a}.{n}' for a, n in cycle)}.",
                {"cycle": [f"{a}.{n}" for a, n in cycle], "files": [self._file(k) for k in cycle]},
                Fix(
                    "Remove one of the dependencies (often a cross-app FK: move it into a later "
                    "migration of one app)."
                ),
            )

    def _file(self, key: Key) -> str | None:
        migration = self.loader.disk_migrations.get(key)
        if migration is None:
            return None
        import sys

        module = sys.modules.get(type(migration).__module__)
        return getattr(module, "__file__", None)

    # -- rows vs graph -----------------------------------------------------------------

    def history(self) -> None:
        applied_raw = self.recorded
        for key in sorted(applied_raw):
            if key not in self.graph.nodes:
                continue
            for parent_node in sorted(self.graph.node_map[key].parents, key=lambda n: n.key):
                parent = parent_node.key
                if parent in applied_raw or parent in self.applied:
                    continue
                if self._all_replaced_applied(parent, applied_raw):
                    continue
                self._inconsistent(key, parent)

    def _all_replaced_applied(self, key: Key, applied: set[Key]) -> bool:
        """A squash counts as applied when everything it replaces is (recursively)."""
        migration = self.loader.replacements.get(key)
        if migration is None:
            return False
        return all(
            tuple(r) in applied or self._all_replaced_applied(tuple(r), applied)  # type: ignore[arg-type]
            for r in migration.replaces
        )

    def _inconsistent(self, child: Key, parent: Key) -> None:
        effect = self.effects.get(parent)
        done, todo, _ = self.progress(effect) if effect else ([], [], [])
        present = bool(effect and effect.checkable and not todo)
        if not (effect and effect.checkable):
            state = "not checkable"  # AlterField, RunPython...: re-applying is the safe way
        else:
            state = "present" if present else ("partial" if done else "absent")
        evidence = {
            "recorded": f"{child[0]}.{child[1]}",
            "not_recorded": f"{parent[0]}.{parent[1]}",
            "dependency_schema": state,
            "present": _names(done),
            "missing": _names(todo),
        }
        if present:
            fix = Fix(
                f"{parent[0]}.{parent[1]}'s schema is present: record it.",
                (insert_row_sql(self.s.connection, *parent), f"{MANAGE} migrate"),
            )
        else:
            fix = Fix(
                f"Un-record {child[0]}.{child[1]}, apply {parent[0]}.{parent[1]} for real, "
                f"then re-record {child[0]}.{child[1]} (never truncate django_migrations).",
                (
                    delete_row_sql(self.s.connection, *child),
                    f"{MANAGE} migrate {parent[0]} {parent[1]}",
                    f"{MANAGE} migrate {child[0]} {child[1]} --fake",
                ),
            )
        self.add(
            "inconsistent-history",
            child[0],
            child[1],
            f"{child[0]}.{child[1]} is recorded as applied but its dependency "
            f"{parent[0]}.{parent[1]} is not. Django says: InconsistentMigrationHistory: "
            f"Migration {child[0]}.{child[1]} is applied before its dependency "
            f"{parent[0]}.{parent[1]} on database '{self.s.alias}'.",
            evidence,
            fix,
        )

    # -- rows vs schema, per migration -----------------------------------------------------

    def migrations(self) -> None:
        for key in self.expected.plan:
            effect = self.effects[key]
            if key in self.s.graph.forced_squashes:
                continue  # squash-partial handles it
            if key in self.applied:
                self._applied(key, effect)
            else:
                self._unapplied(key, effect)

    def _applied(self, key: Key, effect: MigrationEffect) -> None:
        missing = [
            o for o in effect.creates if o in self.expected_live and not live_has(self.schema, o)
        ]
        if not missing:
            return
        present = [o for o in effect.creates if o in self.expected_live and o not in missing]
        shown = collapse(missing)
        app, name = key
        if not present:
            fix = Fix(
                f"Nothing of {app}.{name} is in the database: un-record it and apply it again.",
                (
                    delete_row_sql(self.s.connection, app, name),
                    f"{MANAGE} migrate {app} {name}",
                ),
            )
        else:
            fix = Fix(
                f"Re-create only the missing part ({', '.join(_names(shown))}): run the "
                f"statements for it from `sqlmigrate {app} {name}`, nothing else.",
                (f"{MANAGE} sqlmigrate {app} {name}",),
            )
        self.add(
            "missing-schema",
            app,
            name,
            f"{app}.{name} is recorded as applied, but {', '.join(_names(shown))} "
            f"{'is' if len(shown) == 1 else 'are'} missing. Queries and later migrations fail "
            f"with: {missing_error(self.vendor, shown[0])}.",
            {"missing": _names(missing), "present": _names(present)},
            fix,
        )

    def _unapplied(self, key: Key, effect: MigrationEffect) -> None:
        app, name = key
        done, todo, explained = self.progress(effect)
        evidence: dict[str, object] = {"present": _names(done), "missing": _names(todo)}
        if explained:
            evidence["created_by_applied_migrations"] = _names(explained)
        if effect.opaque:
            evidence["unverifiable_operations"] = list(effect.opaque)
        if not done:
            self.add(
                "unapplied",
                app,
                name,
                f"{app}.{name} is not applied yet"
                + (" and none of its schema is present." if todo else ".")
                + (
                    f" Its {', '.join(effect.opaque)} cannot be checked."
                    if effect.opaque and not todo
                    else ""
                ),
                evidence,
                Fix("Apply it.", (f"{MANAGE} migrate {app} {name}",)),
            )
            return
        created = [o for o in done if o in effect.creates]
        first = created[0] if created else done[0]
        # Operations run in order: an opaque one after the last present change may or may
        # not have run (MySQL keeps the DDL before a failing RunSQL/RunPython).
        done_set = set(done)
        last_done = max(
            (op.index for op in effect.operations if done_set & {*op.creates, *op.removes}),
            default=-1,
        )
        unknown = [
            op.description for op in effect.operations if op.opaque and op.index > last_done
        ]
        if unknown and not todo:
            evidence["not_known_to_have_run"] = unknown
        if not todo and not unknown:
            flag = "--fake-initial" if effect.initial else "--fake"
            note = (
                f" Faking skips {', '.join(effect.opaque)}: run that code by hand if its data "
                "matters."
                if effect.opaque
                else ""
            )
            self.add(
                "table-exists",
                app,
                name,
                f"{app}.{name} is not recorded, but everything it creates is already in the "
                f"database ({', '.join(_names(collapse(done))[:4])}"
                f"{'…' if len(collapse(done)) > 4 else ''}). `migrate` fails with: "
                f"{exists_error(self.vendor, first)}.",
                evidence,
                Fix(
                    f"Record it without running it.{note}",
                    (f"{MANAGE} migrate {app} {name} {flag}",),
                ),
            )
            return
        sqlite_note = (
            " On SQLite `migrate` may instead rebuild the table without error and silently "
            "discard the values already stored in the present column(s)."
            if self.vendor == "sqlite"
            else ""
        )
        missing_part = ", ".join(_names(todo)) or (
            f"{', '.join(unknown)}, which may or may not have run"
        )
        self.add(
            "partially-applied",
            app,
            name,
            f"{app}.{name} is not recorded, but part of it is in the database "
            f"({', '.join(_names(done))}) and part is not ({missing_part}). "
            f"Databases without transactional DDL (MySQL, MariaDB) keep the first operations "
            f"of a migration that failed halfway. `migrate` fails with: "
            f"{exists_error(self.vendor, first)}.{sqlite_note}",
            evidence,
            Fix(
                "Complete the missing operations (their statements from `sqlmigrate`), then "
                "record the migration; or roll the present part back if it holds no data, then "
                "migrate.",
                (
                    f"{MANAGE} sqlmigrate {app} {name}",
                    f"{MANAGE} migrate {app} {name} --fake",
                ),
            ),
        )

    # -- graph shape -------------------------------------------------------------------

    def leaves(self) -> None:
        for app, names in sorted(self.loader.detect_conflicts().items()):
            self.add(
                "multiple-leaves",
                app,
                None,
                f"App {app!r} has {len(names)} leaf migrations ({', '.join(names)}). Django says: "
                f"Conflicting migrations detected; multiple leaf nodes in the migration graph: "
                f"({', '.join(names)} in {app}).",
                {"leaves": names},
                Fix("Write a merge migration.", (f"{MANAGE} makemigrations --merge {app}",)),
            )

    def squashes(self) -> None:
        for key in sorted(self.loader.replacements):
            if key not in self.graph.nodes:
                continue
            targets = self.loader.resolved_replaces(key)
            recorded = [t for t in targets if t in self.recorded]
            gone = [t for t in targets if t not in self.loader.disk_migrations]
            app, name = key
            if key in self.s.graph.forced_squashes:
                effect = self.effects[key]
                done, todo, _ = self.progress(effect)
                self.add(
                    "squash-partial",
                    app,
                    name,
                    f"{app}.{name} replaces {len(targets)} migrations; {len(recorded)} of them "
                    f"are recorded and the files of {len(gone)} were deleted, so Django can use "
                    f"neither the squash nor the originals. Django says: NodeNotFoundError "
                    f"(\"Django tried to replace migration ... but wasn't able to because some "
                    f'of the replaced migrations are already applied") or '
                    f'"lazy reference ... isn\'t installed".',
                    {
                        "recorded": [f"{a}.{n}" for a, n in recorded],
                        "not_recorded": [f"{a}.{n}" for a, n in targets if (a, n) not in recorded],
                        "deleted_files": [f"{a}.{n}" for a, n in gone],
                        "present": _names(done),
                        "missing": _names(todo),
                    },
                    Fix(
                        "Restore the deleted files from version control, migrate, then delete "
                        "them again; or apply the remaining part of the squash by hand and "
                        "record it.",
                        (
                            f"git log --diff-filter=D --name-only -- '*/{app}/migrations/*'",
                            f"{MANAGE} migrate {app}",
                        ),
                    ),
                )
            elif targets and len(recorded) == len(targets):
                on_disk = [t for t in targets if t in self.loader.disk_migrations]
                self.add(
                    "squash-ready",
                    app,
                    name,
                    f"Every migration {app}.{name} replaces is applied on this database. Once "
                    f"every other environment is there too, the squash can become a normal "
                    f"migration.",
                    {
                        "replaced": [f"{a}.{n}" for a, n in targets],
                        "replaced_files_on_disk": [f"{a}.{n}" for a, n in on_disk],
                    },
                    Fix(
                        f"Delete the replaced files, point their dependents at {name}, and "
                        f"remove `replaces` from {name}.",
                        tuple(f"rm {self._file(t)}" for t in on_disk if self._file(t)),
                    ),
                )

    def stale(self) -> None:
        replaced: set[Key] = set()
        for key in self.loader.replacements:
            replaced.update(self.loader.resolved_replaces(key))
            replaced.update(tuple(r) for r in self.loader.replacements[key].replaces)  # type: ignore[misc]
        broken = {(e.app, e.migration) for e in self.s.graph.load_errors}
        disabled = self.s.graph.disabled_apps
        by_app: dict[str, list[Key]] = defaultdict(list)
        for row in self.s.rows:
            key = row.key
            if (
                key in self.loader.disk_migrations
                or key in replaced
                or key in broken
                or row.app in disabled
            ):
                continue
            by_app[row.app].append(key)

        # MySQL's default collations compare without case and trailing spaces: a statement
        # naming `0001_INITIAL` would also delete the real `0001_initial`. Such rows are
        # deleted by id, never by name (nor by `migrate --prune`, which deletes by name).
        def folded(k: Key) -> Key:
            return (k[0].lower().rstrip(), k[1].lower().rstrip())

        real = {
            folded(k) for k in self.recorded if k not in {x for v in by_app.values() for x in v}
        }
        real |= {folded(k) for k in self.loader.disk_migrations}
        qn = self.s.connection.ops.quote_name
        for app, keys in sorted(by_app.items()):
            installed = app in self.loader.migrated_apps
            for key in sorted(set(keys)):
                ids = sorted(r.id for r in self.s.rows if r.key == key)
                if self.vendor == "mysql" and folded(key) in real:
                    cmds: tuple[str, ...] = (
                        f"DELETE FROM {qn(recorder_table())} WHERE {qn('id')} IN "
                        f"({', '.join(map(str, ids))});",
                    )
                elif installed:
                    cmds = (f"{MANAGE} migrate {app} --prune",)
                else:
                    cmds = (delete_row_sql(self.s.connection, *key),)
                self.add(
                    "stale-record",
                    app,
                    key[1],
                    f"django_migrations records {app}.{key[1]}, but "
                    + (
                        "no such migration file exists"
                        if installed
                        else f"app {app!r} is not installed (or has no migrations)"
                    )
                    + ". `showmigrations` hides such rows; they mislead anyone reading the table "
                    "and can collide with a future migration of the same name.",
                    {
                        "row_applied": next(
                            (
                                r.applied.isoformat()
                                for r in self.s.rows
                                if r.key == key and r.applied
                            ),
                            None,
                        ),
                        "app_installed": installed,
                        "ids": ids,
                    },
                    Fix("Delete the row.", cmds),
                )

    def duplicates(self) -> None:
        ids: dict[Key, list[int]] = defaultdict(list)
        for row in self.s.rows:
            ids[row.key].append(row.id)
        qn = self.s.connection.ops.quote_name
        for (app, name), found in sorted(ids.items()):
            if len(found) < 2:
                continue
            keep, extra = min(found), sorted(found)[1:]
            self.add(
                "duplicate-record",
                app,
                name,
                f"django_migrations has {len(found)} rows for {app}.{name} (ids "
                f"{', '.join(map(str, sorted(found)))}); a restored dump or a hand-made INSERT "
                "does this. Django keeps one of them silently, and `migrate --fake` backwards "
                "deletes them all at once.",
                {"ids": sorted(found), "keep": keep},
                Fix(
                    f"Keep the first row (id {keep}), delete the others.",
                    (
                        f"DELETE FROM {qn(recorder_table())} WHERE {qn('id')} IN "
                        f"({', '.join(map(str, extra))});",
                    ),
                ),
            )

    def disabled(self) -> None:
        for app in sorted(self.s.graph.disabled_apps):
            rows = sorted(n for a, n in self.recorded if a == app)
            if not rows:
                continue
            self.add(
                "migrations-disabled",
                app,
                None,
                f"MIGRATION_MODULES disables migrations for {app!r}, yet {len(rows)} rows are "
                f"recorded for it. They are left alone: this is usually a test setting.",
                {"rows": rows},
                Fix("Nothing to do unless the setting is a mistake."),
            )

    def untracked(self) -> None:
        from django.apps import apps

        key = self.schema.key  # folded and truncated as the server stores names
        known = {key(t) for t in self.expected.tables}
        for model in apps.get_models(include_auto_created=True):
            known.add(key(model._meta.db_table))
        known.add(key(recorder_table()))
        known.add(key(LEDGER_TABLE))
        extra = []
        for name, live in sorted(self.schema.tables.items()):
            if key(name) in known:
                continue
            extra.append({"table": name, "kind": live.kind, "columns": len(live.columns)})
        if extra:
            self.add(
                "untracked-table",
                None,
                None,
                f"{len(extra)} table(s) in the database belong to no model or migration: "
                f"{', '.join(str(e['table']) for e in extra[:8])}"
                f"{'…' if len(extra) > 8 else ''}. "
                "RunSQL and other tools create tables legitimately; listed for information.",
                {"tables": extra},
                Fix("Nothing to do if they are expected."),
            )


def classify(snapshot: Snapshot) -> list[Finding]:
    return Classifier(snapshot).run()
