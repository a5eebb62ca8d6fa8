"""Pure classification: a Snapshot in, findings out. No database access here."""

from __future__ import annotations

import difflib
import re
import site
import sysconfig
from collections import defaultdict
from collections.abc import Iterable
from contextlib import suppress
from functools import lru_cache
from pathlib import Path
from shlex import quote

from django.db import models

from .conflicts import TypeConflicts, conflict_words
from .expected import MigrationEffect, Obj, collapse, column_of, describe
from .findings import MANAGE, Finding, Fix
from .keys import Key
from .ledger import LEDGER_TABLE
from .leftovers import drop_index_sql
from .position import AppPosition, schema_positions
from .recorder_sql import delete_ids_sql, delete_row_sql, insert_row_sql, rename_row_sql
from .snapshot import Snapshot
from .snapshot.graph import LoadError
from .snapshot.rows import recorder_table
from .snapshot.schema import Index, LiveSchema

# -- Django's own words, per backend -------------------------------------------------------


def exists_error(vendor: str, obj: Obj, schema: LiveSchema | None = None) -> str:
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
    if obj[0] == "unique":
        cols = ", ".join(obj[2:])
        return {
            "postgresql": f'relation "{obj[1]}_..._uniq" already exists (unique on {cols})',
            "mysql": f"(1061, \"Duplicate key name '{obj[1]}_..._uniq'\") (unique on {cols})",
        }.get(vendor, f"index {obj[1]}_..._uniq already exists (unique on {cols})")
    if obj[0] == "index":  # Django's generated name: the live index's, if there is one
        live = schema.index_on(obj[1], obj[2:]) if schema is not None else None
        obj = ("constraint", obj[1], live.name if live else f"{obj[1]}_{'_'.join(obj[2:])}_...")
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
    if obj[0] == "unique":
        return (
            f"MultipleObjectsReturned from get() once duplicate ({', '.join(obj[2:])}) values "
            f"are inserted, which {obj[1]} no longer rejects"
        )
    if obj[0] == "index":
        cols = ", ".join(obj[2:])
        slow = f"nothing at first, but lookups on ({cols}) read the whole of {obj[1]}"
        if len(obj) == 3:
            return slow
        # alter_index_together looks the index up by its columns to drop it.
        return (
            f"{slow}; a migration removing it from index_together fails with: ValueError: "
            f"Found wrong number (0) of constraints for {obj[1]}({cols})"
        )
    return f"constraint {obj[2]} does not exist"


# -- helpers --------------------------------------------------------------------------------


def _taken_words(taken: dict[Obj, tuple[str, Index]]) -> str:
    """ "the name x it gives an index on t (a, b) is taken by an index on t (b, a)", joined."""
    return "; ".join(
        f"the name {obj[2]} it gives an index on {obj[1]} ({', '.join(obj[3:])}) is taken "
        f"by an index on {table} ({', '.join(index.columns)})"
        for obj, (table, index) in taken.items()
    )


def _taken_evidence(taken: dict[Obj, tuple[str, Index]]) -> list[dict[str, object]]:
    return [
        {
            "index": index.name,
            "table": table,
            "columns": list(index.columns),
            "expected_columns": list(obj[3:]),
        }
        for obj, (table, index) in taken.items()
    ]


def _drop_holders(snapshot: Snapshot, taken: dict[Obj, tuple[str, Index]]) -> list[str]:
    """DROP INDEX for each plain index in the way, as a suggestion (a unique one may back a
    constraint: its drop is W006's business)."""
    return [
        drop_index_sql(snapshot.connection, table, index.name)
        for table, index in taken.values()
        if not index.unique and not index.primary
    ]


def live_has(schema: LiveSchema, obj: Obj) -> bool:
    return schema.has_object(obj)


def tables_of(objs: Iterable[Obj]) -> set[str]:
    return {o[1] for o in objs if o[0] == "table"}


def _names(objs: Iterable[Obj]) -> list[str]:
    return [describe(o) for o in objs]


def _reproduce(err: LoadError) -> tuple[str, ...]:
    """The command that shows the same error on its own (names may start with a digit)."""
    if err.error.startswith("BadMigrationError"):
        return ()
    if err.error.startswith("SyntaxError") and err.file:
        return (f"python -m py_compile {quote(err.file)}",)
    code = f"import importlib; importlib.import_module({err.module!r})"
    if re.fullmatch(r"[\w.]+", err.module):  # nothing the shell expands inside "..."
        return (f'python -c "{code}"',)
    return (f"python -c {quote(code)}",)


# -- whose files: the project's own apps, or installed packages ----------------------------

_INSTALL_DIRS = frozenset({"site-packages", "dist-packages"})


@lru_cache(maxsize=1)
def _installation_roots() -> tuple[Path, ...]:
    """This interpreter's standard library and installation directories."""
    roots = {sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    with suppress(AttributeError):  # site.getsitepackages is missing in some old virtualenvs
        roots.update(site.getsitepackages())
    with suppress(AttributeError):
        roots.add(site.getusersitepackages())
    return tuple(Path(r).resolve() for r in roots if r)


def _under(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


@lru_cache(maxsize=16)
def _site_packages(site_dir: str) -> dict[str, str]:
    """Top-level package -> "name version", from the *.dist-info folders of one directory.

    Only the small files an installer writes there (top_level.txt, else RECORD): asking
    importlib.metadata for every distribution costs half a second.
    """
    owners: dict[str, str] = {}
    for info in sorted(Path(site_dir).glob("*.dist-info")):
        name, _, version = info.name.removesuffix(".dist-info").partition("-")
        try:
            tops = (info / "top_level.txt").read_text().split()
        except OSError:
            try:
                record = (info / "RECORD").read_text().splitlines()
            except OSError:
                continue
            tops = [line.split("/", 1)[0] for line in record if "/" in line.split(",", 1)[0]]
        for top in tops:
            owners.setdefault(top, f"{name} {version}".strip())
    return owners


def _distribution(path: Path, module: str) -> str:
    """`wagtail 8.0.1`: the distribution installing `module` (whose file is `path`)."""
    depth = len(module.split("."))
    if not module or depth >= len(path.parts):
        return ""
    return _site_packages(str(path.parents[depth - 1])).get(module.split(".")[0], "")


def foreign_source(app: str, file: str | None, module: str = "") -> dict[str, str] | None:
    """Why the migration file `file` of `app` is not the project's own to edit; None if it is.

    The rule: a migration file is the project's own when it is not inside an installation
    directory (a `site-packages`/`dist-packages` directory or this interpreter's standard
    library and install paths, even one inside the project such as `.venv/`) and it is under
    settings.BASE_DIR, under the current directory, or in the package MIGRATION_MODULES names
    for the app (how a project takes over an app's migrations). Everything else belongs to an
    installed distribution or another checkout: what is wrong with it is reported, but no fix
    edits, deletes or writes files there. An unknown file (None) counts as the project's.
    """
    if not file:
        return None
    from django.conf import settings

    path = Path(file).resolve()
    where = str(path.parent)
    if _INSTALL_DIRS & set(path.parts) or any(_under(path, r) for r in _installation_roots()):
        package = _distribution(path, module)
        return {
            "source": "installed",
            "location": where,
            **({"package": package} if package else {}),
        }
    base = getattr(settings, "BASE_DIR", None)
    homes = [Path.cwd().resolve(), *([Path(base).resolve()] if base else [])]
    if any(_under(path, home) for home in homes):
        return None
    if getattr(settings, "MIGRATION_MODULES", {}).get(app):
        return None  # the project chose this package for the app's migrations
    return {"source": "outside the project", "location": where}


def owner_words(foreign: dict[str, str]) -> str:
    """Who the files of a foreign_source() answer belong to, in words."""
    if foreign["source"] == "installed":
        package = foreign.get("package")
        return f"the installed package {package}" if package else "an installed package"
    return "code outside the project (not under BASE_DIR or the current directory)"


def _same_migration_name(old: str, new: str) -> bool:
    """Names a renamed migration keeps something of: its number (`0004_auto_...` became
    `0004_product_barcode`) or its description (`0004_barcode` renumbered `0005_barcode`
    by a rebase)."""
    old_number, _, old_rest = old.partition("_")
    new_number, _, new_rest = new.partition("_")
    if not (old_number.isdigit() and new_number.isdigit()):
        return False
    return int(old_number) == int(new_number) or (bool(old_rest) and old_rest == new_rest)


class Classifier:
    def __init__(self, snapshot: Snapshot, positions: dict[str, AppPosition] | None = None):
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
        # Present columns of another type or NULL than an unrecorded migration creates.
        self.conflicts = TypeConflicts(snapshot, self.position, self.removed_at)
        # What the schema's position (position.py) leaves behind: the applied migrations
        # and, where the schema is ahead of the rows, the unrecorded ones up to where it
        # stands, so that what a later migration done by hand removed is not "missing"
        # from the earlier one.
        self.positions = positions if positions is not None else schema_positions(snapshot)
        self._ancestors: dict[Key, set[Key]] = {}
        # Unrecorded migrations up to each app's position, and those whose whole effect
        # the schema shows (both empty where the position is ambiguous).
        through = {(p.app, name) for p in self.positions.values() for name in p.through}
        self.shown = {(p.app, name) for p in self.positions.values() for name in p.shown}
        self.schema_live = self.expected_live
        if through:
            self.schema_live = set()
            for key in self.expected.plan:
                if key in self.applied or key in through:
                    self.schema_live -= set(self.effects[key].removes)
                    self.schema_live |= set(self.effects[key].creates)

    # -- state of one migration's effect against the live schema -----------------------

    def progress(self, effect: MigrationEffect) -> tuple[list[Obj], list[Obj], list[Obj]]:
        """(done, not done, explained by applied migrations) for an unapplied migration.

        An absent object that a later migration removes again proves nothing: the database
        may simply be past that later migration (contenttypes.0001 creates a column that
        0002 drops); a present object that a later migration creates again, likewise.
        An object this migration removes is only "done" by being absent when it would
        otherwise be there (see _removal_shows).
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
                # ... unless a later migration creates it again (0013 removes
                # invoice.label, 0020 adds a new label): the database may be past that one.
                if not any(i > here for i in self.created_at.get(obj, ())):
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
        if obj in self.expected_live or (here >= 0 and self.expected.plan[here] in self.shown):
            return True  # (or the schema's position shows this migration's whole effect)
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
        self.renames()
        self.duplicates()
        self.disabled()
        self.untracked()
        self.provenance()
        return self.findings

    def renames(self) -> None:
        """A stale row beside an unrecorded migration of the same app whose whole effect is
        present, whose dependencies are recorded (and ran before that row), and whose name
        keeps the row's number or description: the same migration under a new file name
        (renamed, or renumbered by a rebase). One finding replaces the stale row, the
        table-exists and the inconsistent histories it causes."""
        by_app: dict[str, dict[str, list[Finding]]] = defaultdict(lambda: defaultdict(list))
        for f in self.findings:
            if f.evidence.get("type_conflicts"):
                continue  # its columns differ from what it creates: not the same migration
            if f.app and f.kind in ("stale-record", "table-exists"):
                by_app[f.app][f.kind].append(f)
        for app, kinds in sorted(by_app.items()):
            stale, present = kinds["stale-record"], kinds["table-exists"]
            if len(stale) != 1 or len(present) != 1 or app not in self.loader.migrated_apps:
                continue
            old, new = stale[0], present[0]
            rows = [r for r in self.s.rows if r.key == (app, old.migration)]
            key = (app, str(new.migration))
            parents = {p.key for p in self.graph.node_map[key].parents}
            if len(rows) != 1 or rows[0].has_null or not parents <= self.applied:
                continue
            row = rows[0]
            if not _same_migration_name(str(old.migration), str(new.migration)):
                continue
            after = [r.applied for r in self.s.rows if r.key in parents and r.applied]
            if row.applied and after and row.applied < max(after):
                continue  # it ran before the new file's dependencies did: not the same one
            label = f"{app}.{new.migration}"
            absorbed = [
                f
                for f in self.findings
                if f.kind == "inconsistent-history" and f.evidence.get("not_recorded") == label
            ]
            self.findings = [f for f in self.findings if f not in (old, new, *absorbed)]
            self.add(
                "renamed-migration",
                app,
                new.migration,
                f"django_migrations records {app}.{old.migration}, which has no file, and "
                f"{label}, which is not recorded, is already in the database "
                f"({', '.join(new.evidence.get('present', [])[:4])}): the migration was "
                f"renamed. `migrate` fails with: {new.message.split('fails with: ')[-1]}"
                + (
                    f" Its recorded dependents ({', '.join(f.target for f in absorbed)}) "
                    "make Django raise InconsistentMigrationHistory."
                    if absorbed
                    else ""
                ),
                {
                    "row_id": row.id,
                    "old_name": old.migration,
                    "new_name": new.migration,
                    "row_applied": row.applied.isoformat() if row.applied else None,
                    "present": new.evidence.get("present", []),
                    "dependents": [f.target for f in absorbed],
                },
                Fix(
                    "Give the row its new name; it keeps its id and applied time.",
                    (rename_row_sql(self.s.connection, row.id, str(new.migration)),),
                ),
            )

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

    def _foreign(self, key: Key) -> dict[str, str] | None:
        """Whose migration file this is, when it is not the project's own (foreign_source)."""
        migration = self.loader.disk_migrations.get(key)
        module = type(migration).__module__ if migration is not None else ""
        return foreign_source(key[0], self._file(key), module)

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
        evidence: dict[str, object] = {
            "recorded": f"{child[0]}.{child[1]}",
            "not_recorded": f"{parent[0]}.{parent[1]}",
            "dependency_schema": state,
            "present": _names(done),
            "missing": _names(todo),
        }
        conflicts = self.conflicts.of(parent, effect, done) if effect and present else []
        if conflicts:
            evidence["type_conflicts"] = conflicts
            fix = Fix(
                f"{parent[0]}.{parent[1]}'s schema is present, but not as it creates it "
                f"({conflict_words(conflicts)}): make the column(s) what it creates, then "
                "record it; recording it as it is would leave the project broken.",
                (f"{MANAGE} sqlmigrate {quote(parent[0])} {quote(parent[1])}",),
            )
        elif present:
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
                    f"{MANAGE} migrate {quote(parent[0])} {quote(parent[1])}",
                    f"{MANAGE} migrate {quote(child[0])} {quote(child[1])} --fake",
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
            o
            for o in effect.creates
            if o in self.schema_live
            and not live_has(self.schema, o)
            and not self._named_otherwise(o)
        ]
        if not missing:
            return
        present = [o for o in effect.creates if o in self.schema_live and o not in missing]
        shown = collapse(missing)
        app, name = key
        taken = {o: t for o in missing if (t := self._name_taken(o)) is not None}
        if taken:
            fix = Fix(
                f"Drop or rename the index that holds the name (which of the two is right is "
                f"a decision: nothing is dropped for you), then re-create "
                f"{', '.join(_names(taken))} from `sqlmigrate {app} {name}`.",
                (
                    *_drop_holders(self.s, taken),
                    f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}",
                ),
            )
        elif not present:
            fix = Fix(
                f"Nothing of {app}.{name} is in the database: un-record it and apply it again.",
                (
                    delete_row_sql(self.s.connection, app, name),
                    f"{MANAGE} migrate {quote(app)} {quote(name)}",
                ),
            )
        else:
            fix = Fix(
                f"Re-create only the missing part ({', '.join(_names(shown))}): run the "
                f"statements for it from `sqlmigrate {app} {name}`, nothing else.",
                (f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}",),
            )
        self.add(
            "missing-schema",
            app,
            name,
            f"{app}.{name} is recorded as applied, but {', '.join(_names(shown))} "
            f"{'is' if len(shown) == 1 else 'are'} missing"
            + (f": {_taken_words(taken)}" if taken else "")
            + f". Queries and later migrations fail with: {missing_error(self.vendor, shown[0])}.",
            {
                "missing": _names(missing),
                "present": _names(present),
                **({"name_taken": _taken_evidence(taken)} if taken else {}),
            },
            fix,
        )

    def _superseded(
        self, key: Key, effect: MigrationEffect, later: Key, evidence: dict[str, object]
    ) -> None:
        """Nothing of it shows (later migrations changed the same objects again, or it has
        no checkable effect), but a later migration that depends on it is in the database:
        it ran, and `migrate` would run it again over what came after it."""
        app, name = key
        touched = collapse([*effect.creates, *effect.removes])
        if touched:
            evidence["changed_again_later"] = _names(touched)
        what = (
            f"what it changes ({', '.join(_names(touched)[:4])}) later migrations changed again"
            if touched
            else "nothing it does can be checked in the schema"
        )
        flag = "--fake-initial" if effect.initial else "--fake"
        self.add(
            "table-exists",
            app,
            name,
            f"{app}.{name} is not recorded, but {later[0]}.{later[1]}, which depends on it, "
            f"is in the database, so it ran before it; {what}. `migrate` would run it again "
            "over the schema the later migrations left"
            + (f" ({', '.join(effect.opaque)} included)." if effect.opaque else "."),
            evidence,
            Fix(
                "Record it without running it.",
                (f"{MANAGE} migrate {quote(app)} {quote(name)} {flag}",),
            ),
        )

    def _shown_after(self, key: Key) -> Key | None:
        """The last unrecorded migration of `key`'s app whose whole effect the schema shows,
        when it comes after `key` and depends on it (None otherwise, or when the app's
        position is ambiguous)."""
        position = self.positions.get(key[0])
        if position is None or position.ambiguous or not position.shown:
            return None
        later = (key[0], position.shown[-1])
        if self.position.get(later, -1) <= self.position.get(key, -1):
            return None
        effect = self.effects[later]
        present = (
            o for o in effect.creates if o not in self.expected_live and live_has(self.schema, o)
        )  # what progress() calls done: the same answer as its own finding's
        if self.conflicts.of(later, effect, present):
            return None  # its columns are not as it creates them: no sign that it ran
        if later not in self._ancestors:
            self._ancestors[later] = set(self.loader.graph.forwards_plan(later))
        return later if key in self._ancestors[later] else None

    def _named_otherwise(self, obj: Obj) -> bool:
        """A field index or unique constraint that is there under another name.

        Packages rewrite applied migrations: django-taggit turned 0002's AlterIndexTogether
        into a named AddIndex (and added a RenameIndex(old_fields=...) later) and 0003's
        AlterUniqueTogether into a named UniqueConstraint, so a database migrated by an older
        release holds the same index under Django's generated name. Django finds such
        indexes by their columns (RenameIndex with old_fields, AlterUniqueTogether) and no
        query fails: an index on the same columns with the same uniqueness is the object.
        Expressions, conditions and other constraints are never matched this way.
        """
        if obj[0] != "constraint":
            return False
        mkey = self.expected.tables.get(obj[1])
        table = self.schema.table(obj[1])
        if mkey is None or table is None or mkey not in self.expected.state.models:
            return False
        ms = self.expected.state.models[mkey]
        wanted = self.schema.key(obj[2])
        found = [
            c
            for c in [*ms.options.get("indexes", []), *ms.options.get("constraints", [])]
            if self.schema.key(c.name or "") == wanted
        ]
        # RenameIndex(old_fields=...) adds its index to the state again: the same one twice.
        if not found or any(other != found[0] for other in found[1:]):
            return False
        c = found[0]
        if getattr(c, "expressions", ()) or getattr(c, "condition", None) is not None:
            return False
        if isinstance(c, models.UniqueConstraint):
            unique = True
        elif type(c) is models.Index:
            unique = False
        else:
            return False
        names = [f.lstrip("-") for f in c.fields]
        if not names or any(n not in ms.fields for n in names):
            return False
        columns = [(column_of(n, ms.fields[n]) or "").lower() for n in names]
        for index in table.indexes.values():
            live = [col.lower() for col in index.columns]
            if unique and index.unique and sorted(live) == sorted(columns):
                return True
            if not unique and live == columns:
                return True
        return False

    def _name_taken(self, obj: Obj) -> tuple[str, Index] | None:
        """(table, index) holding the name of a named index that is absent: on other
        columns of its table, or (PostgreSQL, SQLite) on another table. Creating it fails."""
        if obj[0] != "constraint" or len(obj) <= 3 or live_has(self.schema, obj):
            return None
        return self.schema.name_holder(obj[1], obj[2])

    def _unapplied(self, key: Key, effect: MigrationEffect) -> None:
        app, name = key
        done, todo, explained = self.progress(effect)
        created = [o for o in done if o in effect.creates]
        gone = [o for o in done if o not in effect.creates]  # what it removes, already absent
        evidence: dict[str, object] = {"present": _names(created), "missing": _names(todo)}
        taken = {o: t for o in todo if (t := self._name_taken(o)) is not None}
        if taken:
            evidence["name_taken"] = _taken_evidence(taken)
        if gone:
            evidence["already_removed"] = _names(gone)
        if explained:
            evidence["created_by_applied_migrations"] = _names(explained)
        if effect.opaque:
            evidence["unverifiable_operations"] = list(effect.opaque)
        later = self._shown_after(key) if not todo else None
        if later is not None and (effect.opaque or not done):
            # migrate applies a migration only after its dependencies, and stops at the
            # first that fails: a later one in the database means this one ran through.
            evidence["ran_before"] = f"{later[0]}.{later[1]}"
        if not done and later is not None:
            self._superseded(key, effect, later, evidence)
            return
        if not done and not taken:
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
                Fix("Apply it.", (f"{MANAGE} migrate {quote(app)} {quote(name)}",)),
            )
            return
        # The first statement migrate runs of what is done already (or of a name taken) is
        # the one that fails.
        done_set = set(done)
        fails = done_set | set(taken)
        first_op = next(op for op in effect.operations if fails & {*op.creates, *op.removes})
        made = [o for o in first_op.creates if o in fails]
        error = (
            exists_error(self.vendor, made[0], self.schema)
            if made
            else missing_error(self.vendor, next(o for o in first_op.removes if o in done_set))
        )
        # Operations run in order: an opaque one after the last present change may or may
        # not have run (MySQL keeps the DDL before a failing RunSQL/RunPython).
        last_done = max(
            (op.index for op in effect.operations if done_set & {*op.creates, *op.removes}),
            default=-1,
        )
        unknown = [
            op.description for op in effect.operations if op.opaque and op.index > last_done
        ]
        if later is not None:
            unknown = []
        if unknown and not todo:
            evidence["not_known_to_have_run"] = unknown
        if not todo and not unknown:
            flag = "--fake-initial" if effect.initial else "--fake"
            note = (
                f" Faking skips {', '.join(effect.opaque)}: run that code by hand if its data "
                "matters."
                if effect.opaque and later is None
                else ""
            )
            if later is not None and effect.opaque:
                note = (
                    f" Its {', '.join(effect.opaque)} ran: {later[0]}.{later[1]}, which "
                    "depends on it, is in the database."
                )
            shown = _names(collapse(created)) + [f"{n} removed" for n in _names(gone)]
            columns = [o for o in created if o[0] == "column" and o[1] not in tables_of(created)]
            rebuild = (
                " On SQLite, where `migrate` rebuilds the table for a field with a default or "
                "NOT NULL, it instead succeeds and replaces the values stored in "
                f"{', '.join(_names(columns))} with the field's default."
                if self.vendor == "sqlite" and columns
                else ""
            )
            conflicts = self.conflicts.of(key, effect, created)
            if conflicts:
                evidence["type_conflicts"] = conflicts
                self.add(
                    "table-exists",
                    app,
                    name,
                    f"{app}.{name} is not recorded and what it creates is in the database "
                    f"({', '.join(shown[:4])}{'…' if len(shown) > 4 else ''}), but not as it "
                    f"creates it: {conflict_words(conflicts)}. Recording it (`migrate "
                    f"{flag}`) would leave the project broken: Django would take the column for "
                    "what the migration says, and writes of the model fail or store values it "
                    f"does not expect. `migrate` fails with: {error}.{rebuild}",
                    evidence,
                    Fix(
                        "Make the column what the migration creates (check its values first; "
                        "ALTER it by hand or in a migration), then record it with "
                        f"`migrate {app} {name} {flag}`; or, if the database is right, change "
                        "the migration and the model to match it.",
                        (f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}",),
                    ),
                )
                return
            self.add(
                "table-exists",
                app,
                name,
                f"{app}.{name} is not recorded, but everything it does is already done in the "
                f"database ({', '.join(shown[:4])}{'…' if len(shown) > 4 else ''}). `migrate` "
                f"fails with: {error}.{rebuild}",
                evidence,
                Fix(
                    f"Record it without running it.{note}",
                    (f"{MANAGE} migrate {quote(app)} {quote(name)} {flag}",),
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
        if taken and not done:
            self.add(
                "partially-applied",
                app,
                name,
                f"{app}.{name} is not recorded and none of its schema is present, but "
                f"{_taken_words(taken)}. `migrate` fails with: {error}.",
                evidence,
                Fix(
                    "Drop or rename the index that holds the name if nothing needs it (which "
                    "of the two is right is a decision: nothing is dropped for you), then "
                    "apply the migration.",
                    (
                        *_drop_holders(self.s, taken),
                        f"{MANAGE} migrate {quote(app)} {quote(name)}",
                    ),
                ),
            )
            return
        conflicts = self.conflicts.of(key, effect, created)
        if conflicts:
            evidence["type_conflicts"] = conflicts
        self.add(
            "partially-applied",
            app,
            name,
            f"{app}.{name} is not recorded, but part of it is in the database "
            f"({', '.join(_names(done))}) and part is not ({missing_part}). "
            f"Databases without transactional DDL (MySQL, MariaDB) keep the first operations "
            f"of a migration that failed halfway. `migrate` fails with: "
            f"{error}.{sqlite_note}"
            + (f" And {_taken_words(taken)}." if taken else "")
            + (
                f" And what is present is not as it creates it: {conflict_words(conflicts)}."
                if conflicts
                else ""
            ),
            evidence,
            Fix(
                "Complete the missing operations (their statements from `sqlmigrate`), then "
                "record the migration; or roll the present part back if it holds no data, then "
                "migrate."
                + (" First drop or rename the index that holds the name." if taken else "")
                + (" First make the column(s) what it creates." if conflicts else ""),
                (
                    f"{MANAGE} sqlmigrate {quote(app)} {quote(name)}",
                    f"{MANAGE} migrate {quote(app)} {quote(name)} --fake",
                ),
            ),
        )

    # -- graph shape -------------------------------------------------------------------

    def leaves(self) -> None:
        for app, names in sorted(self.loader.detect_conflicts().items()):
            message = (
                f"App {app!r} has {len(names)} leaf migrations ({', '.join(names)}). Django says: "
                f"Conflicting migrations detected; multiple leaf nodes in the migration graph: "
                f"({', '.join(names)} in {app})."
            )
            evidence: dict[str, object] = {"leaves": names}
            fix = Fix(
                "Write a merge migration.", (f"{MANAGE} makemigrations --merge {quote(app)}",)
            )
            foreign = next(filter(None, (self._foreign((app, n)) for n in names)), None)
            if foreign:
                # A merge migration written into an installed package is lost on the next
                # install and differs from what its maintainers ship.
                evidence.update(foreign)
                message += f" The migrations belong to {owner_words(foreign)}."
                fix = Fix(
                    f"Do not write a merge migration into {foreign['location']}: reinstall the "
                    "package cleanly (files left behind by an earlier release are the usual "
                    "cause) or report it to its maintainers; to resolve it in the project, copy "
                    "the app's migrations into a package of your own and point "
                    "MIGRATION_MODULES at it."
                )
            self.add("multiple-leaves", app, None, message, evidence, fix)

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
                            "git log --diff-filter=D --name-only -- "
                            + quote(f"*/{app}/migrations/*"),
                            f"{MANAGE} migrate {quote(app)}",
                        ),
                    ),
                )
            elif targets and len(recorded) == len(targets):
                on_disk = [t for t in targets if t in self.loader.disk_migrations]
                evidence: dict[str, object] = {
                    "replaced": [f"{a}.{n}" for a, n in targets],
                    "replaced_files_on_disk": [f"{a}.{n}" for a, n in on_disk],
                }
                foreign = self._foreign(key)
                if foreign:
                    evidence.update(foreign)
                    self.add(
                        "squash-ready",
                        app,
                        name,
                        f"Every migration {app}.{name} replaces is applied on this database. "
                        f"The migrations belong to {owner_words(foreign)}: turning the squash "
                        "into a normal migration is for its maintainers, in a later release.",
                        evidence,
                        Fix("Nothing to do: these files are not the project's to change."),
                    )
                    continue
                self.add(
                    "squash-ready",
                    app,
                    name,
                    f"Every migration {app}.{name} replaces is applied on this database. Once "
                    f"every other environment is there too, the squash can become a normal "
                    f"migration.",
                    evidence,
                    Fix(
                        f"Delete the replaced files, point their dependents at {name}, and "
                        f"remove `replaces` from {name}.",
                        tuple(f"rm {quote(p)}" for t in on_disk if (p := self._file(t))),
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

        if not by_app:
            return  # nothing stale (a healthy database: no name folding of every row)
        stale = {x for v in by_app.values() for x in v}
        real = {folded(k) for k in self.recorded if k not in stale}
        real |= {folded(k) for k in self.loader.disk_migrations}
        for app, keys in sorted(by_app.items()):
            installed = app in self.loader.migrated_apps
            # An app taken out of INSTALLED_APPS for a while leaves its tables: its rows are
            # right again when it comes back (Django's `migrate --prune` leaves them too).
            prefix = f"{app}_".lower()
            left = (
                []
                if installed
                else sorted(t for t in self.schema.tables if t.lower().startswith(prefix))
            )
            for key in sorted(set(keys)):
                ids = sorted(r.id for r in self.s.rows if r.key == key)
                # A NULL app or name: no `=` comparison matches the row; by id it is exact.
                null = any(r.has_null for r in self.s.rows if r.key == key)
                if null or (self.vendor == "mysql" and folded(key) in real):
                    cmds: tuple[str, ...] = (delete_ids_sql(self.s.connection, ids),)
                elif installed:
                    cmds = (f"{MANAGE} migrate {quote(app)} --prune",)
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
                    + (
                        f", while its tables are still there ({', '.join(left[:3])}"
                        + (", ..." if len(left) > 3 else "")
                        + "): if the app comes back, the row is right again and deleting it "
                        "would make `migrate` re-create tables that exist"
                        if left
                        else ""
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
                        **({"tables_left": left} if left else {}),
                    },
                    Fix("Delete the row.", cmds),
                )

    def duplicates(self) -> None:
        ids: dict[Key, list[int]] = defaultdict(list)
        for row in self.s.rows:
            ids[row.key].append(row.id)
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
                    (delete_ids_sql(self.s.connection, extra),),
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
        # Applied migrations account for what they left behind, and a table that an
        # unapplied migration drops or renames (a DeleteModel that came with a package
        # upgrade) is that migration's: its `unapplied` finding tells.
        known |= {key(o[1]) for o in self.expected_live if o[0] == "table"}
        for k in self.expected.plan:
            if k not in self.applied:
                known |= {key(o[1]) for o in self.effects[k].removes if o[0] == "table"}
        extra = []
        for name, live in sorted(self.schema.tables.items()):
            if key(name) in known or live.kind == "shadow":
                continue  # a shadow table is a virtual table's storage (SQLite FTS5, R*Tree)
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


def classify(snapshot: Snapshot, positions: dict[str, AppPosition] | None = None) -> list[Finding]:
    return Classifier(snapshot, positions).run()
