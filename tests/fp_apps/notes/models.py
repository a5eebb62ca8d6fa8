from django.core.validators import MinLengthValidator
from django.db import models


class Note(models.Model):
    id = models.BigAutoField(primary_key=True)
    title = models.CharField(
        max_length=80, verbose_name="headline", help_text="Shown in lists.",
        validators=[MinLengthValidator(3)],
    )  # fmt: skip
    kind = models.CharField(max_length=10, choices=[("memo", "Memo"), ("todo", "To do")])
