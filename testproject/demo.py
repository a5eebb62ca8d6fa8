"""Break a fresh SQLite database in several real ways, then run the doctor on it.

    python testproject/demo.py            # creates testproject/demo.sqlite3, which
                                          # testproject/manage.py then reads by default

Each break is one that users meet: rows deleted by hand, a migration half applied by
MySQL, a table dropped outside Django, a row left by a deleted file, a stray table.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DB = HERE / "demo.sqlite3"  # what testproject/testproject/settings.py reads
DB = Path(os.environ.get("MIGRATION_DOCTOR_SQLITE") or DEFAULT_DB).resolve()


def main() -> int:
    sys.path[:0] = [str(HERE), str(HERE.parent)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "testproject.settings"
    os.environ["MIGRATION_DOCTOR_DB"] = "sqlite"
    os.environ["MIGRATION_DOCTOR_SQLITE"] = str(DB)
    DB.unlink(missing_ok=True)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        # 1. The row of a migration whose tables exist was deleted: "table already exists".
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'orders' AND name <> '0001_initial'"
        )
        # 2. A migration half applied (MySQL keeps the DDL that ran before an error).
        cursor.execute(
            "DELETE FROM django_migrations "
            "WHERE app = 'catalog' AND name = '0003_product_sku_stock'"
        )
        cursor.execute('ALTER TABLE "catalog_product" DROP COLUMN "stock"')
        # 3. A table dropped outside Django while its migration stays recorded.
        cursor.execute('DROP TABLE "catalog_product_tags"')
        # 4. A dependency un-recorded while the migration after it stays recorded.
        cursor.execute(
            "DELETE FROM django_migrations WHERE app = 'admin' "
            "AND name = '0002_logentry_remove_auto_add'"
        )
        # 5. Rows for a deleted migration file and for an app no longer installed.
        cursor.execute(
            "INSERT INTO django_migrations (app, name, applied) VALUES "
            "('catalog', '0004_product_barcode', '2025-03-01 10:00:00'), "
            "('newsletter', '0001_initial', '2023-06-12 08:30:00')"
        )
        # 6. A table no model accounts for.
        cursor.execute('CREATE TABLE "legacy_audit_log" (id integer primary key, line text)')
    connection.close()

    print(f"$ python testproject/manage.py migration_doctor   # on {DB.name}\n", flush=True)
    status = subprocess.call(
        [sys.executable, str(HERE / "manage.py"), "migration_doctor", *sys.argv[1:]]
    )
    print(f"\n(exit status {status}: 1 means error-level findings, as this database has.)")
    manage = f"python {shlex.quote(os.path.relpath(HERE / 'manage.py'))} migration_doctor"
    if DB != DEFAULT_DB:
        manage = f"MIGRATION_DOCTOR_SQLITE={shlex.quote(str(DB))} {manage}"
    print(
        f"\nThe broken database is {shlex.quote(os.path.relpath(DB))}. Every command of the docs "
        "works on it, for example:\n"
        f"  {manage} --fix --dry-run\n"
        f"  {manage} --fix --noinput\n"
        f"  python {shlex.quote(os.path.relpath(Path(__file__)))}   # break it again"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
