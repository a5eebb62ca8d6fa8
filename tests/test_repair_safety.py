"""States an adversarial run found the repair mishandling, each on every backend.

- A dry run (and the guard's replay) collected a plan's SQL by running its operations with
  a collecting schema editor: a RunPython ran for real and its writes committed.
- A proxy model shares its concrete model's table: re-creating what that table lost used
  the proxy (no fields) and failed, or created an empty table.
- The rows of an app taken out of INSTALLED_APPS were deleted while its tables stayed:
  putting the app back then made `migrate` fail on tables that exist.
- MariaDB: completing an AddField(TextField(default="")) was refused although it is the
  exact SQL `migrate` runs (MySQL's TEXT takes no DEFAULT; Django fills the rows after).
- The SQL printed for a re-created table left out its deferred statements (foreign keys,
  indexes), which ran unseen.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from migration_doctor.diagnose import diagnose

from . import helpers as h
from .test_graph_findings import catalog_with, migration_source

AFTER_0003 = [("catalog", "0003_product_sku_stock")]

FILL = """\
from django.db import migrations, models


def fill(apps, schema_editor):
    Category = apps.get_model("catalog", "Category")
    db = schema_editor.connection.alias
    Category.objects.using(db).create(name="made by the data migration", slug="made")


class Migration(migrations.Migration):
    dependencies = [("catalog", "0003_product_sku_stock")]
    operations = [
        migrations.AddField("product", "note", models.CharField(max_length=20, default="")),
        migrations.RunPython(fill, migrations.RunPython.noop),
        migrations.AddField("product", "extra", models.CharField(max_length=20, default="")),
    ]
"""


def add_column(alias: str, table: str, definition: str) -> None:
    h.sql(alias, f"ALTER TABLE {h.qn(alias, table)} ADD COLUMN {definition}")


def categories(alias: str) -> list[tuple[Any, ...]]:
    return sorted(h.sql(alias, "SELECT id, name, slug FROM catalog_category"))


def test_a_dry_run_never_runs_the_projects_python(fresh_db: str, migration_package) -> None:
    migration_package("catalog", catalog_with(**{"0004_fill": FILL}))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    h.sql(fresh_db, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    add_column(fresh_db, "catalog_product", "note varchar(20) DEFAULT '' NOT NULL")
    before = categories(fresh_db)
    _, out = h.fix(fresh_db, "--dry-run", "--only", "partially-applied")
    assert "-- Raw Python operation: runs Python, not shown as SQL" in out, out
    assert "Nothing was changed (--dry-run)." in out
    assert categories(fresh_db) == before  # the RunPython never ran
    # The real repair (allowed with --only: a RunPython cannot be proven) runs it once.
    status, out = h.fix(fresh_db, "--only", "partially-applied")
    assert status == 0, out
    assert [c[1] for c in categories(fresh_db)] == ["Tea", "made by the data migration"]
    assert diagnose(fresh_db).find("partially-applied") == []


PROXY = migration_source(
    AFTER_0003,
    "        migrations.CreateModel(\n"
    "            name='ProductProxy', fields=[], options={'proxy': True},\n"
    "            bases=('catalog.product',),\n"
    "        ),\n"
    "        migrations.AddIndex(\n"
    "            'product', models.Index(fields=['price', 'stock'], name='prod_name_idx'),\n"
    "        ),\n",
)


def test_a_proxy_model_does_not_hide_its_concrete_models_table(
    fresh_db: str, migration_package
) -> None:
    migration_package("catalog", catalog_with(**{"0004_proxy": PROXY}))
    h.migrate(fresh_db, "catalog")
    connection = connections[fresh_db]
    with connection.schema_editor() as editor:
        editor.execute(
            editor._delete_index_sql(
                connection_model(fresh_db, "catalog", "Product"), "prod_name_idx"
            )
        )
    [finding] = diagnose(fresh_db).find("missing-schema")
    assert finding.migration == "0004_proxy"
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "prod_name_idx" in indexes(fresh_db, "catalog_product")
    assert diagnose(fresh_db).find("missing-schema") == []


def connection_model(alias: str, app: str, name: str) -> Any:
    from django.apps import apps

    return apps.get_model(app, name)


def indexes(alias: str, table: str) -> set[str]:
    connection = connections[alias]
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, table))


def test_rows_of_an_uninstalled_app_whose_tables_remain_are_kept(fresh_db: str) -> None:
    h.migrate(fresh_db)
    h.sql(fresh_db, f"CREATE TABLE {h.qn(fresh_db, 'blog_post')} (id integer PRIMARY KEY)")
    h.record(fresh_db, "blog", "0001_initial")
    h.record(fresh_db, "newsletter", "0001_initial")  # no table left: a row of nothing
    report = diagnose(fresh_db)
    blog = report.find("stale-record", "blog", "0001_initial")[0]
    assert blog.evidence["tables_left"] == ["blog_post"]
    assert "its tables are still there (blog_post)" in blog.message
    gone = report.find("stale-record", "newsletter", "0001_initial")[0]
    assert "tables_left" not in gone.evidence
    status, out = h.fix(fresh_db, "--fail-on", "never")
    assert status == 0, out
    assert "app 'blog' is not installed but its tables are still there (blog_post)" in out
    assert ("blog", "0001_initial") in h.recorded(fresh_db)  # kept for when it comes back
    assert ("newsletter", "0001_initial") not in h.recorded(fresh_db)


TEXT_BODY = migration_source(
    AFTER_0003,
    "        migrations.AddField(\n"
    "            'product', 'title', models.CharField(max_length=50, null=True),\n"
    "        ),\n"
    "        migrations.AddField('product', 'body', models.TextField(default='')),\n",
)


def test_completing_a_text_field_with_a_default_on_a_table_with_rows(
    fresh_db: str, migration_package
) -> None:
    """Half applied (MariaDB keeps the first DDL of a failed migration): `title` is there,
    `body` is not. Completing it is what `migrate` would run, on every backend."""
    migration_package("catalog", catalog_with(**{"0004_text": TEXT_BODY}))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    h.sql(fresh_db, "INSERT INTO catalog_category (name, slug) VALUES ('Tea', 'tea')")
    h.sql(
        fresh_db,
        "INSERT INTO catalog_product (name, price, created_at, category_id, stock, "
        "stock_keeping_unit) SELECT 'Sencha', 4.5, '2024-05-01 10:00:00', id, 7, 'SEN-1' "
        "FROM catalog_category",
    )
    add_column(fresh_db, "catalog_product", "title varchar(50) NULL")
    assert len(diagnose(fresh_db).find("partially-applied")) == 1
    status, out = h.fix(fresh_db)
    assert status == 0, out
    assert "Refused" not in out
    assert h.sql(fresh_db, "SELECT name, title, body FROM catalog_product") == [
        ("Sencha", None, "")
    ]
    assert diagnose(fresh_db).find("partially-applied") == []


def test_a_recreated_tables_deferred_statements_are_shown(fresh_db: str) -> None:
    """The plan's SQL is the editor's whole output, collected after it closed: a table's
    foreign keys and indexes (deferred until then) are shown and replayed too."""
    h.migrate(fresh_db)
    h.drop_table(fresh_db, "catalog_product_tags")
    _, out = h.fix(fresh_db, "--dry-run", "-v", "2")
    assert 'CREATE TABLE "catalog_product_tags"'.replace('"', quote(fresh_db)) in out, out
    vendor = connections[fresh_db].vendor
    if vendor != "sqlite":  # SQLite declares them inline
        assert "FOREIGN KEY" in out, out
    if vendor == "postgresql":  # InnoDB indexes a foreign key by itself
        assert "CREATE INDEX" in out, out


def quote(alias: str) -> str:
    return "`" if connections[alias].vendor == "mysql" else '"'


@pytest.mark.parametrize(
    "args, message",
    [
        (["migration_doctor_fix", "--lock-timeout", "-5"], "invalid number of seconds value"),
        (["migration_doctor_fix", "--lock-timeout", "nan"], "invalid number of seconds value"),
        (["migration_doctor_migrate", "nosuchapp"], "No installed app with label 'nosuchapp'."),
    ],
)
def test_bad_input_is_one_line_and_status_2(fresh_db: str, args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as refused:
        call_command(*args, database=fresh_db, stdout=io.StringIO(), stderr=io.StringIO())
    assert refused.value.returncode == 2
    assert message in str(refused.value)


def test_a_baseline_into_a_directory_is_refused_in_one_line(fresh_db: str, tmp_path) -> None:
    h.migrate(fresh_db)
    where = tmp_path / "here"
    where.mkdir()
    for target in (str(where), f"{where}/baselines/"):
        with pytest.raises(CommandError) as refused:
            call_command(
                "migration_doctor", "--skip-import-watch", "--write-baseline", target,
                database=fresh_db, stdout=io.StringIO(),
            )  # fmt: skip
        assert refused.value.returncode == 2
        assert str(refused.value).endswith("it is a directory.")
    assert list(where.iterdir()) == []  # nothing written, no directory made


def test_json_of_a_dry_run_describes_python_without_running_it(
    fresh_db: str, migration_package
) -> None:
    migration_package("catalog", catalog_with(**{"0004_fill": FILL}))
    h.migrate(fresh_db, "catalog", "0003_product_sku_stock")
    add_column(fresh_db, "catalog_product", "note varchar(20) DEFAULT '' NOT NULL")
    out = io.StringIO()
    call_command(
        "migration_doctor_fix",
        "--dry-run",
        "--only",
        "partially-applied",
        "--format",
        "json",
        database=fresh_db,
        stdout=out,
    )  # fmt: skip  (exit 0: what the real run would leave passes --fail-on error)
    steps = json.loads(out.getvalue())["steps"]
    assert any("-- Raw Python operation" in line for s in steps for line in s["sql"]), steps
    assert categories(fresh_db) == []
