"""A model with an index class that creates nothing on SQLite."""
