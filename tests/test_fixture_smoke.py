from django.core.management import call_command
from django.db import connections


def test_fresh_db_migrates(fresh_db):
    call_command("migrate", database=fresh_db, verbosity=0)
    with connections[fresh_db].cursor() as cursor:
        tables = connections[fresh_db].introspection.table_names(cursor)
    assert "order_lines" in tables
