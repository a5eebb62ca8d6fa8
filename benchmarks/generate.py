"""Generate a Django project of N apps x M migrations for the doctor's benchmark.

    python benchmarks/generate.py DEST --apps 100 --migrations 30

Every app gets `--models` models (default 5), created over its first migrations, and a
history of realistic operations: CreateModel, AddField (char, integer, boolean, decimal,
datetime, text), ForeignKey to an earlier app's model (with the cross-app dependency), to
the same app and to AUTH_USER_MODEL (swappable dependency), ManyToManyField, AlterField,
RenameField, RemoveField, AddIndex, AddConstraint and a RunPython here and there. The
migrations are written by hand from one plan, and models.py is written from the state that
plan ends in, so `makemigrations --check` finds nothing and a migrated database is healthy:
the doctor must report no error and no warning on it. Each app also has views (a function
view and a ListView per model) and a urls.py included from the project's ROOT_URLCONF, so
the import-time watch has a real URLconf to import.

The output is deterministic (seeded): the same arguments give byte-identical files, whose
hash the runner uses to cache the migrated database.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

TESTPROJECT = Path(__file__).resolve().parent.parent / "testproject"

MODEL_NAMES = [
    "Customer", "Product", "Invoice", "Shipment", "Review", "Supplier", "Warehouse",
    "Payment", "Coupon", "Ticket", "Category", "Address", "Contract", "Employee", "Voucher",
]  # fmt: skip
SIMPLE_FIELD_NAMES = [
    "title", "code", "status", "amount", "quantity", "note", "active", "score", "label",
    "price", "weight", "slug", "priority", "due", "opened", "reference", "rank", "comment",
    "level", "flag", "summary", "budget", "region", "channel", "source",
]  # fmt: skip
SIMPLE_KINDS = ["char", "int", "bool", "decimal", "datetime", "text"]

ID_FIELD = (
    'models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")'
)


@dataclass
class FieldSpec:
    name: str
    kind: str  # char | int | bool | decimal | datetime | text | fk | user | m2m
    max_length: int = 100
    null: bool = False
    max_digits: int = 10
    to: str = ""  # "app.model" for fk/m2m
    related_name: str = ""
    locked: bool = False  # used by an index or constraint: never renamed/removed/altered

    def code(self) -> str:
        """The field as Python source, the same in a migration and in models.py."""
        null = ", null=True" if self.null else ""
        if self.kind == "char":
            return f'models.CharField(max_length={self.max_length}, default=""{null})'
        if self.kind == "int":
            return f"models.IntegerField({'null=True' if self.null else 'default=0'})"
        if self.kind == "bool":
            return "models.BooleanField(default=False)"
        if self.kind == "decimal":
            return (
                f"models.DecimalField(decimal_places=2, max_digits={self.max_digits}, null=True)"
            )
        if self.kind == "datetime":
            return "models.DateTimeField(null=True)"
        if self.kind == "text":
            return 'models.TextField(blank=True, default="")'
        if self.kind == "fk":
            return (
                f'models.ForeignKey(null=True, on_delete=models.CASCADE, related_name="'
                f'{self.related_name}", to="{self.to}")'
            )
        if self.kind == "user":
            return (
                f'models.ForeignKey(null=True, on_delete=models.SET_NULL, related_name="'
                f'{self.related_name}", to=settings.AUTH_USER_MODEL)'
            )
        if self.kind == "m2m":
            return (
                f'models.ManyToManyField(blank=True, related_name="{self.related_name}", '
                f'to="{self.to}")'
            )
        raise ValueError(self.kind)


@dataclass
class ModelSpec:
    name: str  # class name
    fields: dict[str, FieldSpec] = field(default_factory=dict)
    indexes: list[tuple[str, list[str]]] = field(default_factory=list)
    constraints: list[tuple[str, list[str]]] = field(default_factory=list)
    db_table: str | None = None

    @property
    def lower(self) -> str:
        return self.name.lower()


@dataclass
class MigrationSpec:
    name: str
    dependencies: set[tuple[str, str]] = field(default_factory=set)
    swappable: bool = False
    operations: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    initial: bool = False


@dataclass
class AppPlan:
    label: str
    models: dict[str, ModelSpec] = field(default_factory=dict)  # by lower name
    migrations: list[MigrationSpec] = field(default_factory=list)
    created_in: dict[str, str] = field(default_factory=dict)  # model lower -> migration


def _indent(text: str, n: int) -> str:
    return "\n".join((" " * n + line) if line else line for line in text.splitlines())


def _add_field(mig: MigrationSpec, model: ModelSpec, fname: str, spec: FieldSpec) -> str:
    """Append the AddField of `spec` to `mig`; returns the slug naming the migration."""
    mig.operations.append(
        "migrations.AddField(\n"
        f'    model_name="{model.lower}",\n    name="{fname}",\n    field={spec.code()},\n)'
    )
    return f"{model.lower}_{fname}"


class Planner:
    def __init__(self, apps: int, migrations: int, models: int, seed: int):
        self.n_apps = apps
        self.n_migrations = migrations
        self.n_models = models
        self.seed = seed
        self.plans: list[AppPlan] = []

    def plan(self) -> list[AppPlan]:
        for i in range(self.n_apps):
            self.plans.append(self._plan_app(i))
        return self.plans

    # -- one app ---------------------------------------------------------------------------

    def _plan_app(self, i: int) -> AppPlan:
        rng = random.Random(f"{self.seed}-{i}")
        label = f"app{i:03d}"
        app = AppPlan(label)
        names = rng.sample(MODEL_NAMES, self.n_models)
        # The first migration creates two models, the others are spread over the first half
        # of the history; every later migration adds one to three operations.
        create_at: dict[int, list[str]] = {0: names[:2]}
        rest = names[2:]
        span = max(1, self.n_migrations // 2)
        for k, name in enumerate(rest):
            at = 1 + (k * (span - 1)) // max(1, len(rest)) if span > 1 else 0
            create_at.setdefault(min(at, self.n_migrations - 1), []).append(name)
        for m in range(self.n_migrations):
            mig = MigrationSpec(name="", initial=(m == 0))
            if m > 0:
                mig.dependencies.add((label, app.migrations[-1].name))
            slug = ""
            for model_name in create_at.get(m, []):
                slug = slug or ("initial" if m == 0 else model_name.lower())
                self._create_model(app, mig, model_name, rng, i)
            if m > 0:
                n_ops = rng.choice([1, 1, 2, 2, 3]) if not create_at.get(m) else rng.choice([0, 1])
                for _ in range(n_ops):
                    s = self._random_operation(app, mig, rng, i, m)
                    slug = slug or s
            if not mig.operations:  # nothing applicable: add a plain field
                slug = slug or self._add_simple(app, mig, rng)
            mig.name = f"{m + 1:04d}_{slug or 'auto'}"[:60]
            for model_name in create_at.get(m, []):
                app.created_in[model_name.lower()] = mig.name
            app.migrations.append(mig)
        return app

    def _fresh_name(self, model: ModelSpec, rng: random.Random) -> str:
        base = rng.choice(SIMPLE_FIELD_NAMES)
        name = base
        n = 2
        while name in model.fields:
            name = f"{base}_{n}"
            n += 1
        return name

    def _create_model(
        self, app: AppPlan, mig: MigrationSpec, name: str, rng: random.Random, i: int
    ) -> None:
        model = ModelSpec(name)
        if i % 10 == 3 and not any(m.db_table for m in app.models.values()):
            model.db_table = f"bench_{app.label}_{name.lower()}"
        model.fields["name"] = FieldSpec("name", "char", max_length=120)
        for _ in range(rng.randint(2, 4)):
            fname = self._fresh_name(model, rng)
            model.fields[fname] = self._simple_spec(fname, rng)
        app.models[model.lower] = model
        lines = [f'("id", {ID_FIELD}),']
        lines += [f'("{f.name}", {f.code()}),' for f in model.fields.values()]
        options = f'\n    options={{"db_table": "{model.db_table}"}},' if model.db_table else ""
        mig.operations.append(
            "migrations.CreateModel(\n"
            f'    name="{name}",\n'
            "    fields=[\n" + _indent("\n".join(lines), 8) + "\n    ],"
            f"{options}\n)"
        )

    def _simple_spec(self, name: str, rng: random.Random) -> FieldSpec:
        kind = rng.choice(SIMPLE_KINDS)
        return FieldSpec(
            name,
            kind,
            max_length=rng.choice([50, 100, 150]),
            null=kind == "int" and rng.random() < 0.3,
            max_digits=rng.choice([8, 10, 12]),
        )

    def _pick_model(self, app: AppPlan, rng: random.Random) -> ModelSpec:
        return app.models[rng.choice(sorted(app.models))]

    def _random_operation(
        self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int
    ) -> str:
        choices = [
            ("add", 6),
            ("fk", 3),
            ("alter", 3),
            ("index", 2),
            ("rename", 2),
            ("remove", 2),
            ("m2m", 1),
            ("constraint", 1),
            ("runpython", 1),
            ("user", 1 if i % 7 == 2 else 0),
        ]
        kinds = [k for k, w in choices for _ in range(w)]
        for _ in range(10):
            kind = rng.choice(kinds)
            slug = getattr(self, f"_op_{kind}")(app, mig, rng, i, m)
            if slug is not None:
                return slug
        return self._add_simple(app, mig, rng)

    def _add_simple(self, app: AppPlan, mig: MigrationSpec, rng: random.Random) -> str:
        model = self._pick_model(app, rng)
        fname = self._fresh_name(model, rng)
        spec = self._simple_spec(fname, rng)
        model.fields[fname] = spec
        return _add_field(mig, model, fname, spec)

    def _op_add(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int) -> str:
        return self._add_simple(app, mig, rng)

    def _relation(
        self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, kind: str
    ) -> str | None:
        model = self._pick_model(app, rng)
        if i > 0 and rng.random() < 0.7:
            other = self.plans[rng.randrange(max(0, i - 20), i)]
            target = other.models[rng.choice(sorted(other.models))]
            mig.dependencies.add((other.label, other.created_in[target.lower]))
            to = f"{other.label}.{target.lower}"
        else:
            candidates = sorted(k for k in app.models if k != model.lower or kind == "fk")
            if not candidates:
                return None
            to = f"{app.label}.{rng.choice(candidates)}"
        base = to.split(".")[1] if kind == "fk" else to.split(".")[1] + "s"
        fname = base
        n = 2
        while fname in model.fields:
            fname = f"{base}_{n}"
            n += 1
        spec = FieldSpec(fname, kind, to=to, related_name=f"{app.label}_{model.lower}_{fname}")
        model.fields[fname] = spec
        return _add_field(mig, model, fname, spec)

    def _op_fk(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int) -> str:
        return self._relation(app, mig, rng, i, "fk") or self._add_simple(app, mig, rng)

    def _op_m2m(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        if sum(f.kind == "m2m" for md in app.models.values() for f in md.fields.values()) >= 2:
            return None
        return self._relation(app, mig, rng, i, "m2m")

    def _op_user(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        model = self._pick_model(app, rng)
        if "owner" in model.fields:
            return None
        spec = FieldSpec("owner", "user", related_name=f"{app.label}_{model.lower}_owned")
        model.fields["owner"] = spec
        mig.swappable = True
        mig.operations.append(
            "migrations.AddField(\n"
            f'    model_name="{model.lower}",\n    name="owner",\n    field={spec.code()},\n)'
        )
        return f"{model.lower}_owner"

    def _unlocked(
        self, app: AppPlan, rng: random.Random, kinds: tuple[str, ...]
    ) -> tuple[ModelSpec, FieldSpec] | None:
        options = [
            (md, f)
            for key in sorted(app.models)
            for md in [app.models[key]]
            for f in md.fields.values()
            if f.kind in kinds and not f.locked and f.name != "name"
        ]
        return rng.choice(options) if options else None

    def _op_alter(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        found = self._unlocked(app, rng, ("char", "int", "decimal"))
        if found is None:
            return None
        model, spec = found
        if spec.kind == "char":
            if spec.max_length > 200:
                return None
            spec.max_length += 50
        elif spec.kind == "int":
            if spec.null:
                return None
            spec.null = True
        else:
            spec.max_digits += 2
        mig.operations.append(
            "migrations.AlterField(\n"
            f'    model_name="{model.lower}",\n    name="{spec.name}",\n'
            f"    field={spec.code()},\n)"
        )
        return f"alter_{model.lower}_{spec.name}"

    def _op_rename(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        found = self._unlocked(app, rng, tuple(SIMPLE_KINDS))
        if found is None:
            return None
        model, spec = found
        new = f"{spec.name}_v{m}"
        if new in model.fields:
            return None
        del model.fields[spec.name]
        old, spec.name = spec.name, new
        model.fields[new] = spec
        mig.operations.append(
            "migrations.RenameField(\n"
            f'    model_name="{model.lower}",\n    old_name="{old}",\n    new_name="{new}",\n)'
        )
        return f"rename_{model.lower}_{old}"

    def _op_remove(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        found = self._unlocked(app, rng, (*SIMPLE_KINDS, "fk"))
        if found is None:
            return None
        model, spec = found
        del model.fields[spec.name]
        mig.operations.append(
            f'migrations.RemoveField(\n    model_name="{model.lower}",\n    name="{spec.name}",\n)'
        )
        return f"remove_{model.lower}_{spec.name}"

    def _indexable(self, model: ModelSpec) -> list[FieldSpec]:
        return [
            f
            for f in model.fields.values()
            if f.kind in ("char", "int", "bool", "datetime", "decimal") and f.name != "name"
        ]

    def _op_index(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        model = self._pick_model(app, rng)
        fields = self._indexable(model)
        if not fields or len(model.indexes) >= 3:
            return None
        chosen = rng.sample(fields, min(len(fields), rng.choice([1, 2])))
        name = f"{app.label}_{list(app.models).index(model.lower)}_{len(model.indexes)}_idx"
        cols = [f.name for f in chosen]
        for f in chosen:
            f.locked = True
        model.indexes.append((name, cols))
        mig.operations.append(
            "migrations.AddIndex(\n"
            f'    model_name="{model.lower}",\n'
            f'    index=models.Index(fields={cols!r}, name="{name}"),\n)'.replace("'", '"')
        )
        return f"{model.lower}_{name}"

    def _op_constraint(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        model = self._pick_model(app, rng)
        if model.constraints:
            return None
        chars = [
            f
            for f in model.fields.values()
            if f.kind == "char" and not f.locked and f.name != "name"
        ]
        if not chars:
            return None
        chosen = chars[0]
        chosen.locked = True
        model.fields["name"].locked = True
        name = f"{app.label}_{list(app.models).index(model.lower)}_uniq"
        cols = ["name", chosen.name]
        model.constraints.append((name, cols))
        mig.operations.append(
            "migrations.AddConstraint(\n"
            f'    model_name="{model.lower}",\n'
            f'    constraint=models.UniqueConstraint(fields={cols!r}, name="{name}"),\n)'.replace(
                "'", '"'
            )
        )
        return f"{model.lower}_{name}"

    def _op_runpython(self, app: AppPlan, mig: MigrationSpec, rng: random.Random, i: int, m: int):
        if mig.functions:
            return None
        model = self._pick_model(app, rng)
        func = f"touch_{model.lower}"
        mig.functions.append(
            f"def {func}(apps, schema_editor):\n"
            f'    model = apps.get_model("{app.label}", "{model.name}")\n'
            "    assert model._meta.db_table\n"
        )
        mig.operations.append(f"migrations.RunPython({func}, migrations.RunPython.noop)")
        return f"fill_{model.lower}"


# -- rendering --------------------------------------------------------------------------------


def render_migration(mig: MigrationSpec) -> str:
    head = ["from django.conf import settings"] if mig.swappable else []
    head.append("from django.db import migrations, models")
    deps = [f"        {dep!r}," for dep in sorted(mig.dependencies)]
    if mig.swappable:
        deps.insert(0, "        migrations.swappable_dependency(settings.AUTH_USER_MODEL),")
    body = "\n".join(head) + "\n\n\n"
    for func in mig.functions:
        body += func + "\n\n"
    body += "class Migration(migrations.Migration):\n"
    if mig.initial:
        body += "    initial = True\n\n"
    body += "    dependencies = [\n" + "\n".join(deps) + ("\n" if deps else "") + "    ]\n\n"
    body += "    operations = [\n"
    body += "".join(_indent(op, 8) + ",\n" for op in mig.operations)
    body += "    ]\n"
    return body.replace("'", '"')


def render_models(app: AppPlan) -> str:
    uses_settings = any(f.kind == "user" for m in app.models.values() for f in m.fields.values())
    out = ["from django.conf import settings"] if uses_settings else []
    out.append("from django.db import models")
    for model in app.models.values():
        out.append("\n")
        out.append(f"class {model.name}(models.Model):")
        for f in model.fields.values():
            out.append(f"    {f.name} = {f.code()}")
        meta = []
        if model.db_table:
            meta.append(f'        db_table = "{model.db_table}"')
        if model.indexes:
            meta.append("        indexes = [")
            for name, cols in model.indexes:
                meta.append(f"            models.Index(fields={cols!r}, name={name!r}),")
            meta.append("        ]")
        if model.constraints:
            meta.append("        constraints = [")
            for name, cols in model.constraints:
                meta.append(
                    f"            models.UniqueConstraint(fields={cols!r}, name={name!r}),"
                )
            meta.append("        ]")
        if meta:
            out.append("")
            out.append("    class Meta:")
            out.extend(meta)
    return ("\n".join(out) + "\n").replace("'", '"')


def render_views(app: AppPlan) -> str:
    """A view per model, the way apps write them: module-level imports of the models and of
    Django's generic views, querysets only inside the views (no import-time query)."""
    names = [m.name for m in app.models.values()]
    out = [
        "from django.http import JsonResponse",
        "from django.views.generic import ListView",
        "",
        f"from .models import {', '.join(names)}",
        "",
        "",
        "def index(request):",
        "    return JsonResponse({",
    ]
    out += [f'        "{n.lower()}": {n}.objects.count(),' for n in names]
    out += ["    })"]
    for n in names:
        out += ["", "", f"class {n}List(ListView):", f"    model = {n}", "    paginate_by = 50"]
    return "\n".join(out) + "\n"


def render_urls(app: AppPlan) -> str:
    out = ["from django.urls import path", "", "from . import views", ""]
    out.append(f'app_name = "{app.label}"')
    out.append("urlpatterns = [")
    out.append('    path("", views.index, name="index"),')
    for n in (m.name for m in app.models.values()):
        out.append(f'    path("{n.lower()}/", views.{n}List.as_view(), name="{n.lower()}-list"),')
    out.append("]")
    return "\n".join(out) + "\n"


def render_root_urls(plans: list[AppPlan]) -> str:
    out = ["from django.urls import include, path", "", "urlpatterns = ["]
    out += [f'    path("{p.label}/", include("{p.label}.urls")),' for p in plans]
    out.append("]")
    return "\n".join(out) + "\n"


SETTINGS = '''"""Generated benchmark project ({apps} apps x {migrations} migrations).

The backend comes from MIGRATION_DOCTOR_DB (sqlite, postgres, mysql) as in testproject;
MIGRATION_DOCTOR_DB_NAME names the server database, MIGRATION_DOCTOR_SQLITE the SQLite file.
"""

import os
import sys

sys.path.insert(0, {testproject!r})
from testproject.settings import database  # noqa: E402

SECRET_KEY = "benchmark-not-secret"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "migration_doctor",
{installed}
]
ROOT_URLCONF = "benchproject.urls"
BACKEND = os.environ.get("MIGRATION_DOCTOR_DB", "sqlite")
DATABASES = {{
    "default": database(
        BACKEND,
        os.environ.get("MIGRATION_DOCTOR_SQLITE", "bench.sqlite3")
        if BACKEND == "sqlite"
        else os.environ.get("MIGRATION_DOCTOR_DB_NAME", "mdbench"),
    )
}}
'''

MANAGE = """#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


def render(apps: int, migrations: int, models: int = 5, seed: int = 0) -> dict[str, str]:
    """Every file of the project, by relative path."""
    plans = Planner(apps, migrations, models, seed).plan()
    files: dict[str, str] = {
        "manage.py": MANAGE,
        "benchproject/__init__.py": "",
        "benchproject/settings.py": SETTINGS.format(
            apps=apps,
            migrations=migrations,
            testproject=str(TESTPROJECT),
            installed="\n".join(f'    "{p.label}",' for p in plans),
        ),
        "benchproject/urls.py": render_root_urls(plans),
    }
    n_fields = n_m2m = n_indexes = n_fks = 0
    for app in plans:
        files[f"{app.label}/__init__.py"] = ""
        files[f"{app.label}/migrations/__init__.py"] = ""
        files[f"{app.label}/models.py"] = render_models(app)
        files[f"{app.label}/views.py"] = render_views(app)
        files[f"{app.label}/urls.py"] = render_urls(app)
        for mig in app.migrations:
            files[f"{app.label}/migrations/{mig.name}.py"] = render_migration(mig)
        for model in app.models.values():
            n_fields += len(model.fields) + 1
            n_m2m += sum(f.kind == "m2m" for f in model.fields.values())
            n_fks += sum(f.kind in ("fk", "user") for f in model.fields.values())
            n_indexes += len(model.indexes) + len(model.constraints)
    manifest = {
        "apps": apps,
        "migrations_per_app": migrations,
        "models_per_app": models,
        "seed": seed,
        "project_migrations": apps * migrations,
        "models": sum(len(a.models) for a in plans),
        "m2m_tables": n_m2m,
        "tables": sum(len(a.models) for a in plans) + n_m2m,
        "fields": n_fields,
        "foreign_keys": n_fks,
        "indexes_and_constraints": n_indexes,
    }
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.encode() + b"\0" + files[path].encode() + b"\0")
    manifest["hash"] = digest.hexdigest()[:16]
    files["manifest.json"] = json.dumps(manifest, indent=2) + "\n"
    return files


def write(dest: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def generate(
    dest: Path, apps: int, migrations: int, models: int = 5, seed: int = 0
) -> dict[str, object]:
    files = render(apps, migrations, models, seed)
    write(dest, files)
    return json.loads(files["manifest.json"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--migrations", type=int, default=30)
    parser.add_argument("--models", type=int, default=5, help="models per app (default 5)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.models < 2 or args.models > len(MODEL_NAMES):
        parser.error(f"--models must be between 2 and {len(MODEL_NAMES)}")
    manifest = generate(args.dest, args.apps, args.migrations, args.models, args.seed)
    print(json.dumps(manifest, indent=2))


if __name__ == "__main__":
    main()
