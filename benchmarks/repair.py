"""Benchmark: repairing a wiped history against diagnosing it, on the generated project.

    python benchmarks/repair.py --backend postgres            # 100 apps x 30 migrations
    python benchmarks/repair.py --backend all --rounds 3

The state: every row of django_migrations deleted (a dump restored without it, a cleanup gone
wrong) while the whole schema is there, so every migration is `table-exists` and the repair
records all of them (3,002 rows on the default size). Each round wipes the rows (and the
repair ledger, so every round starts alike), times `manage.py migration_doctor --format json`,
then `manage.py migration_doctor_fix --noinput` as child processes, and checks that the repair
applied its plan without introducing anything. The database is the one benchmarks/run.py
migrated and cached; its rows are put back as they were afterwards.

Target (issue 17): the whole repair within 2x its diagnosis (median of the rounds), and its
text output grouped: a few dozen lines, not four per step.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402

TARGET = 2.0
WIPE = ["DELETE FROM django_migrations", "DELETE FROM migration_doctor_ledger"]


def _query(backend: str, db: str, sql: str) -> list[tuple[object, ...]]:
    if backend == "sqlite":
        with sqlite3.connect(db) as conn:
            return list(conn.execute(sql).fetchall())
    return bench._server(backend, sql, db)


def restore(backend: str, db: str, rows: list[tuple[object, ...]]) -> None:
    """django_migrations exactly as the cached, fully migrated database had it, and no
    ledger (the diagnosis benchmark would read thousands of repair entries)."""
    values = ", ".join(f"('{a}', '{n}', '{t}')" for a, n, t in rows)
    _query(backend, db, "DELETE FROM django_migrations")
    _query(backend, db, f"INSERT INTO django_migrations (app, name, applied) VALUES {values}")
    _query(backend, db, "DROP TABLE IF EXISTS migration_doctor_ledger")


def wipe(backend: str, db: str) -> None:
    for sql in WIPE:
        try:
            if backend == "sqlite":
                with sqlite3.connect(db) as conn:
                    conn.execute(sql)
            else:
                bench._server(backend, sql, db)
        except Exception as exc:  # the ledger table exists only after a first repair
            missing = ("no such table", "does not exist", "doesn't exist")
            if "ledger" not in sql or not any(m in str(exc) for m in missing):
                raise


def one_round(backend: str, path: Path, db: str, rows: int) -> tuple[float, float, int]:
    env = bench.child_env(backend, db)
    py = sys.executable
    wipe(backend, db)
    diagnosis = bench.measure([py, "manage.py", "migration_doctor", "--format", "json"], path, env)
    if diagnosis.returncode != 1:
        sys.exit(f"the diagnosis of the wiped history did not fail:\n{diagnosis.stdout!r}")
    found = json.loads(diagnosis.stdout)["findings"]
    with tempfile.TemporaryDirectory() as tmp:
        fix = bench.measure(
            [py, "manage.py", "migration_doctor_fix", "--noinput", "--backup", f"{tmp}/b.json"],
            path,
            env,
        )
    text = fix.stdout.decode(errors="replace")
    # Exit 1 is what remains (the last migration of a few apps ends in a RunPython the
    # schema cannot vouch for); anything the repair introduced or rolled back is a failure.
    applied = [line for line in text.splitlines() if line.startswith("Applied ")]
    if fix.returncode not in (0, 1) or not applied or "introduced" in text:
        sys.exit(f"the repair failed ({fix.returncode}):\n{text[-3000:]}")
    after = bench._row_count(backend, db)
    print(
        f"  {len(found)} findings; diagnosis {diagnosis.seconds:.2f} s, repair "
        f"{fix.seconds:.2f} s ({applied[0]} {after} of {rows} rows back), "
        f"{len(text.splitlines())} lines of output",
        flush=True,
    )
    return diagnosis.seconds, fix.seconds, len(text.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*bench.BACKENDS, "all"], default="sqlite")
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--migrations", type=int, default=30)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backends = bench.BACKENDS if args.backend == "all" else (args.backend,)
    lines = ["| backend | rows | diagnosis | repair | ratio | output lines | target |"]
    lines.append("|---|---|---|---|---|---|---|")
    ok = True
    for backend in backends:
        path, manifest = bench.project(args.apps, args.migrations, args.models, args.seed)
        db = bench.database(backend, path, manifest, fresh=False)
        rows = bench._row_count(backend, db) or 0
        print(f"{backend}: {args.apps} apps x {args.migrations} migrations, {rows} rows")
        saved = _query(backend, db, "SELECT app, name, applied FROM django_migrations")
        try:
            runs = [one_round(backend, path, db, rows) for _ in range(args.rounds)]
        finally:
            restore(backend, db, saved)
        diag = statistics.median(r[0] for r in runs)
        fix = statistics.median(r[1] for r in runs)
        ratio = fix / diag
        ok = ok and ratio <= TARGET
        lines.append(
            f"| {backend} | {rows} | {diag:.2f} s | {fix:.2f} s | {ratio:.2f}x | "
            f"{runs[-1][2]} | {bench.verdict(ratio <= TARGET)} <= {TARGET}x |"
        )
    print()
    print("\n".join(lines))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
