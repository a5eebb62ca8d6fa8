"""A project's own `makemigrations` whose autodetector ignores cosmetic field attributes."""
