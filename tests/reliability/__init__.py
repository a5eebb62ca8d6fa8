"""Reliability and security (issue 7): bad input, read-only users, interrupted and concurrent
repairs, hostile names. Run by the normal test command on each MIGRATION_DOCTOR_DB backend."""
