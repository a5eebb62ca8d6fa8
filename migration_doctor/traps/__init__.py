"""Import-time traps: queries and non-daemon threads that run while Django imports a project.

Two failure modes meet users before any migration runs: a module-level query makes
``migrate`` fail on a fresh database with ``no such table``, and a non-daemon thread started
at import keeps ``manage.py`` alive forever after its work.

One way of watching: `child.ImportWatch` starts ``python -m migration_doctor`` (`watch`),
which imports the project under the `hooks` and prints the findings (`explain`) as JSON.
`frames` says where a frame comes from, `sql` what a statement touches, `threads` which
threads would keep a process alive.
"""
