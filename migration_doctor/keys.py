"""The key of a migration everywhere in the doctor: (app label, migration name), as Django's
loader keys its graph. Its own module, below every layer that names migrations."""

Key = tuple[str, str]
