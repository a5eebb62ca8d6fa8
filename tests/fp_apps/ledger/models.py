from django.db import models


class Account(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=50)


class Entry(models.Model):
    id = models.AutoField(primary_key=True)  # its own key unchanged: the table is not rebuilt
    account = models.ForeignKey(Account, on_delete=models.CASCADE)
    amount = models.IntegerField()
