from django.db import models


class Category(models.Model):
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(max_length=200)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="products")
    price = models.DecimalField(max_digits=10, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)
    sku = models.CharField(max_length=32, null=True, blank=True, db_column="stock_keeping_unit")
    stock = models.IntegerField(default=0)
    tags = models.ManyToManyField(Tag, blank=True, related_name="products")

    class Meta:
        indexes = [models.Index(fields=["name"], name="catalog_product_name_idx")]

    def __str__(self) -> str:
        return self.name
