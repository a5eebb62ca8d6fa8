"""Migration files: the graph Django would build, with loading problems kept as data.

Django's loader stops at the first broken module, missing dependency or cycle. The doctor
needs the rest of the project diagnosed too, so this loader records each problem, leaves
the offending migrations (and whatever depends on them) out, and builds the graph again.
"""

from __future__ import annotations

import pkgutil
import sys
import traceback
from dataclasses import dataclass, field
from importlib import import_module, reload
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db.migrations.exceptions import CircularDependencyError
from django.db.migrations.graph import DummyNode, MigrationGraph
from django.db.migrations.loader import MIGRATIONS_MODULE_NAME, MigrationLoader
from django.db.migrations.migration import Migration

from ..gcpause import no_cycle_collection
from ..keys import Key


@dataclass
class LoadError:
    app: str
    migration: str | None
    module: str
    file: str | None
    line: int | None
    error: str  # "SyntaxError: invalid syntax" — the exception as Python prints it


@dataclass
class MissingDependency:
    origin: Key
    missing: Key
    # Squashes whose `replaces` include the missing node (Django's #23556 case).
    replaced_by: list[Key] = field(default_factory=list)


@dataclass
class GraphSnapshot:
    loader: DoctorLoader
    load_errors: list[LoadError]
    missing_dependencies: list[MissingDependency]
    cycles: list[list[Key]]
    # Migrations left out of the graph because they, or a dependency, could not be placed.
    excluded: set[Key]
    # Squashes kept in the graph although partly recorded, because replaced files are gone.
    forced_squashes: set[Key]
    # MIGRATION_MODULES = None for these apps.
    disabled_apps: set[str]

    @property
    def graph(self) -> MigrationGraph:
        return self.loader.graph


def _error_location(exc: BaseException, module_file: str | None) -> tuple[str | None, int | None]:
    """File and line to point the user at: the migration file's own frame when there is one."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return exc.filename, exc.lineno
    frames = traceback.extract_tb(exc.__traceback__)
    if module_file:
        for frame in reversed(frames):
            if Path(frame.filename) == Path(module_file):
                return frame.filename, frame.lineno
    own = str(Path(__file__).resolve().parent.parent)  # the doctor's frames are not the cause
    for frame in reversed(frames):
        name = frame.filename
        if "importlib" not in name and "/django/" not in name and not name.startswith(own + "/"):
            return name, frame.lineno
    return module_file, None


def _module_file(package: Any, name: str) -> str | None:
    for entry in getattr(package, "__path__", []):
        candidate = Path(entry) / f"{name}.py"
        if candidate.exists():
            return str(candidate)
    return None


class DoctorGraph(MigrationGraph):
    """Django's graph; root_nodes/leaf_nodes(app) look at that app's nodes only.

    Django's versions test every node of the project before checking its app, and the loader
    asks for an app's roots once per `swappable_dependency` (`__first__`): with thousands of
    migrations that was a visible part of loading. Same result, same order.
    """

    def root_nodes(self, app: str | None = None) -> list[Key]:
        return sorted(
            node
            for node in self.nodes
            if (not app or app == node[0])
            and all(key[0] != node[0] for key in self.node_map[node].parents)
        )

    def leaf_nodes(self, app: str | None = None) -> list[Key]:
        return sorted(
            node
            for node in self.nodes
            if (not app or app == node[0])
            and all(key[0] != node[0] for key in self.node_map[node].children)
        )


class DoctorLoader(MigrationLoader):
    """A MigrationLoader that takes recorded rows as data and survives broken modules.

    `recorded` replaces the query MigrationRecorder would make: the doctor reads the rows
    once, with its own SELECT, and every decision (which squash to use) follows Django's.
    """

    def __init__(self, recorded: set[Key]):
        self._recorded = set(recorded)
        self.load_errors: list[LoadError] = []
        self.disabled_apps: set[str] = set()
        self._excluded: set[Key] = set()
        self.forced_squashes: set[Key] = set()
        self._disk_loaded = False
        super().__init__(None, load=False)

    # -- disk ---------------------------------------------------------------------------

    def load_disk(self) -> None:
        """Django's load_disk, but a broken module becomes a LoadError, not an exception."""
        if self._disk_loaded:
            return
        self.disk_migrations: dict[Key, Migration] = {}
        self.unmigrated_apps: set[str] = set()
        self.migrated_apps: set[str] = set()
        for app_config in apps.get_app_configs():
            module_name, explicit = self.migrations_module(app_config.label)
            if module_name is None:
                self.unmigrated_apps.add(app_config.label)
                self.disabled_apps.add(app_config.label)
                continue
            was_loaded = module_name in sys.modules
            try:
                module = import_module(module_name)
            except ModuleNotFoundError as e:
                if (explicit and self.ignore_no_migrations) or (
                    not explicit and MIGRATIONS_MODULE_NAME in (e.name or "").split(".")
                ):
                    self.unmigrated_apps.add(app_config.label)
                    continue
                self._record_error(app_config.label, None, module_name, None, e)
                continue
            except Exception as e:
                self._record_error(app_config.label, None, module_name, None, e)
                continue
            if not hasattr(module, "__path__"):
                self.unmigrated_apps.add(app_config.label)
                continue
            if getattr(module, "__file__", None) is None and not isinstance(module.__path__, list):
                self.unmigrated_apps.add(app_config.label)
                continue
            if was_loaded:
                reload(module)
            self.migrated_apps.add(app_config.label)
            names = sorted(
                name
                for _, name, is_pkg in pkgutil.iter_modules(module.__path__)
                if not is_pkg and name[0] not in "_~"
            )
            for name in names:
                path = f"{module_name}.{name}"
                try:
                    migration_module = import_module(path)
                except Exception as e:
                    self._record_error(app_config.label, name, path, _module_file(module, name), e)
                    continue
                if not hasattr(migration_module, "Migration"):
                    self.load_errors.append(
                        LoadError(
                            app_config.label,
                            name,
                            path,
                            getattr(migration_module, "__file__", None),
                            None,
                            "BadMigrationError: the module has no Migration class",
                        )
                    )
                    continue
                try:
                    instance = migration_module.Migration(name, app_config.label)
                except Exception as e:
                    self._record_error(
                        app_config.label,
                        name,
                        path,
                        getattr(migration_module, "__file__", None),
                        e,
                    )
                    continue
                self.disk_migrations[app_config.label, name] = instance
        self._disk_loaded = True

    def _record_error(
        self, app: str, name: str | None, module: str, module_file: str | None, exc: BaseException
    ) -> None:
        # A half-imported module must not linger: the next import would skip the error.
        sys.modules.pop(module, None)
        file, line = _error_location(exc, module_file)
        self.load_errors.append(
            LoadError(
                app, name, module, file, line, f"{type(exc).__name__}: {exc}".splitlines()[0]
            )
        )

    # -- graph --------------------------------------------------------------------------

    def build_graph(self) -> None:
        """Django's build_graph over the recorded rows, minus the excluded migrations."""
        self.load_disk()
        # Only membership matters to the graph code; the rows themselves stay in the snapshot.
        self.applied_migrations = dict.fromkeys(self._recorded)  # type: ignore[assignment]
        self.graph = DoctorGraph()
        self.replacements = {}
        usable = {k: m for k, m in self.disk_migrations.items() if k not in self._excluded}
        for key, migration in usable.items():
            self.graph.add_node(key, migration)
            if migration.replaces:
                self.replacements[key] = migration
        for key, migration in usable.items():
            self.add_internal_dependencies(key, migration)
        for key, migration in usable.items():
            self.add_external_dependencies(key, migration)
        if getattr(self, "replace_migrations", True):
            self._progress: dict[Key, bool] = {}
            for key in list(self.replacements):
                self._replace(key)

    def _replace(self, key: Key) -> None:
        if self._progress.get(key):
            return
        self._progress[key] = False
        migration = self.replacements[key]
        for replaced in migration.replaces:
            if replaced in self.replacements and self._progress.get(replaced) is not False:
                self._replace(replaced)
        targets = self.resolved_replaces(key)
        statuses = [t in self.applied_migrations for t in targets]
        if all(statuses):
            self.applied_migrations[key] = migration
        else:
            self.applied_migrations.pop(key, None)
        files_gone = any(t not in self.disk_migrations for t in targets)
        if all(statuses) or not any(statuses):
            self.graph.remove_replaced_nodes(key, migration.replaces)
        elif files_gone:
            # Django would drop the squash and fall back to replaced files that no longer
            # exist, losing their operations. Keep the squash so its schema is known.
            self.forced_squashes.add(key)
            self.graph.remove_replaced_nodes(key, migration.replaces)
        else:
            self.graph.remove_replacement_node(key, migration.replaces)
        self._progress[key] = True

    def resolved_replaces(self, key: Key) -> list[Key]:
        """Replaced keys of a squash, nested squashes expanded (as Django 6.1 does)."""
        migration = self.disk_migrations.get(key)
        if migration is None:
            return []
        result: list[Key] = []
        for replaced in migration.replaces:
            inner = self.disk_migrations.get(replaced)
            if inner is not None and inner.replaces:
                result.extend(self.resolved_replaces(replaced))
            else:
                result.append(tuple(replaced))  # type: ignore[arg-type]
        return result


def _cycle_keys(exc: CircularDependencyError) -> list[Key]:
    keys: list[Key] = []
    for part in str(exc).split(", "):
        app, _, name = part.strip().partition(".")
        if name:
            keys.append((app, name))
    return keys


def load_graph(recorded: set[Key]) -> GraphSnapshot:
    """Load every migration file, build the graph, and keep going past what is broken."""
    with no_cycle_collection():
        return _load_graph(recorded)


def _load_graph(recorded: set[Key]) -> GraphSnapshot:
    loader = DoctorLoader(recorded)
    loader.load_disk()
    missing: list[MissingDependency] = []
    cycles: list[list[Key]] = []
    # Excluded because of their own problem; their dependents are excluded in cascade,
    # which is a consequence and not a finding of its own.
    broken: set[Key] = {(e.app, e.migration) for e in loader.load_errors if e.migration}
    for _attempt in range(len(loader.disk_migrations) + 2):
        loader.build_graph()
        dummies = [n for n in loader.graph.node_map.values() if isinstance(n, DummyNode)]
        if dummies:
            reverse: dict[Key, list[Key]] = {}
            for key, migration in loader.replacements.items():
                for replaced in migration.replaces:
                    reverse.setdefault(tuple(replaced), []).append(key)  # type: ignore[arg-type]
            for dummy in dummies:
                # Django keeps only one origin per missing node; report every dependent.
                dependents = [
                    k
                    for k, m in loader.disk_migrations.items()
                    if k not in loader._excluded
                    and dummy.key in {tuple(d) for d in [*m.dependencies, *m.run_before]}
                ] or [dummy.origin]
                for origin in dependents:
                    if dummy.key not in broken and dummy.key not in loader._excluded:
                        missing.append(
                            MissingDependency(origin, dummy.key, reverse.get(dummy.key, []))
                        )
                        broken.add(origin)
                    loader._excluded.add(origin)
            continue
        try:
            loader.graph.ensure_not_cyclic()
        except CircularDependencyError as exc:
            cycle = [k for k in _cycle_keys(exc) if k in loader.disk_migrations]
            if not cycle:
                raise
            # Django starts the cycle wherever its walk of a set met it (string hashes vary
            # per process): the same cycle starts at its first migration, every run.
            start = cycle.index(min(cycle))
            cycles.append(cycle[start:] + cycle[:start])
            broken.update(cycle)
            loader._excluded.update(cycle)
            continue
        break
    return GraphSnapshot(
        loader=loader,
        load_errors=loader.load_errors,
        missing_dependencies=missing,
        cycles=cycles,
        excluded=set(loader._excluded),
        forced_squashes=set(loader.forced_squashes),
        disabled_apps=set(loader.disabled_apps),
    )
