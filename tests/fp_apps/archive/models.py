from django.db import models

from .indexes import PortableBrinIndex


class Event(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=50)
    created = models.DateTimeField()

    class Meta:
        indexes = [
            PortableBrinIndex(fields=["created"], name="archive_event_created_brin"),
            models.Index(fields=["name"], name="archive_event_name_idx"),
        ]
