from django.db import migrations, models

import tests.fp_apps.archive.indexes


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Event",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("name", models.CharField(max_length=50)),
                ("created", models.DateTimeField()),
            ],
        ),
        migrations.AddIndex(
            model_name="event",
            index=tests.fp_apps.archive.indexes.PortableBrinIndex(
                fields=["created"], name="archive_event_created_brin"
            ),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(fields=["name"], name="archive_event_name_idx"),
        ),
    ]
