from django.db import migrations


def fill_notes(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Order.objects.using(schema_editor.connection.alias).filter(note="").update(note="-")


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_order_note"),
    ]

    operations = [
        migrations.RunPython(fill_notes, migrations.RunPython.noop),
    ]
