from django.db import migrations, models


class Migration(migrations.Migration):
    """What makemigrations writes for Account after DEFAULT_AUTO_FIELD became BigAutoField."""

    dependencies = [("ledger", "0001_initial")]
    operations = [
        migrations.AlterField(
            model_name="account",
            name="id",
            field=models.BigAutoField(primary_key=True, serialize=False),
        ),
    ]
