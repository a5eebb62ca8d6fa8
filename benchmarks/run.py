"""Benchmark: one full diagnosis against `manage.py showmigrations` on a generated project.

    python benchmarks/run.py --backend postgres --apps 100 --migrations 30 --pairs 5
    python benchmarks/run.py --backend all            # sqlite, postgres and mysql in turn

For each size (1/4, 1/2 and all of --apps, each app with --migrations migrations) the
runner generates the project (benchmarks/generate.py) into benchmarks/.cache/, creates and
migrates its database once (cached: the database name, or the SQLite file, carries the hash
of the generated files, and a marker written after `migrate` succeeded records the row
count that is checked again before reuse), then runs `manage.py showmigrations` and
`manage.py migration_doctor --format json` alternately as child processes, measuring each
one's wall time and peak RSS (from wait4's rusage of that child). One more diagnosis runs in
a child process that counts the SQL statements it issues with connection.execute_wrapper.
Nothing about the doctor is cached between runs: each timed diagnosis is a fresh process.

Targets (issue 5), checked on the full size: doctor wall time <= 1.25 x showmigrations
(median of the pairs), peak RSS <= 1.3 x showmigrations, <= 12 SQL statements, and a healthy
project produces no error and no warning.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "testproject"))

import generate  # noqa: E402

CACHE = HERE / ".cache"
BACKENDS = ("sqlite", "postgres", "mysql")
TIME_TARGET = 1.25
MEMORY_TARGET = 1.3
STATEMENT_TARGET = 12

COUNT_STATEMENTS = """
import json
import django

django.setup()
from django.db import connections
from migration_doctor.diagnose import diagnose

seen = []


def spy(execute, sql, params, many, context):
    seen.append(sql)
    return execute(sql, params, many, context)


with connections["default"].execute_wrapper(spy):
    report = diagnose("default")
print(json.dumps({
    "statements": seen,
    "summary": report.as_dict()["summary"],
    "findings": [f"{f.id} {f.kind} {f.app}.{f.migration}" for f in report.findings][:20],
    "plan": len(report.snapshot.expected.plan),
    "live_tables": len(report.snapshot.schema.tables),
}))
"""

PROFILE = """
import cProfile
import pstats
import sys
import django

django.setup()
from migration_doctor.diagnose import diagnose

profiler = cProfile.Profile()
profiler.enable()
diagnose("default")
profiler.disable()
pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)
"""


@dataclass
class Run:
    seconds: float  # wall time
    cpu: float  # user + system time, the child's own and its children's
    max_rss_kb: int  # peak RSS of the largest single process (wait4)
    tree_rss_kb: int  # peak of the summed RSS of the process and its children (sampled)
    returncode: int
    stdout: bytes


SHOW = "showmigrations"
DOCTOR = "migration_doctor"
DOCTOR_NO_WATCH = "migration_doctor --skip-import-watch"


@dataclass
class Result:
    backend: str
    apps: int
    migrations: int
    manifest: dict[str, object]
    runs: dict[str, list[Run]] = field(default_factory=dict)
    count: dict[str, object] = field(default_factory=dict)

    def median(self, command: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.runs[command])

    def ratio(self, command: str, attr: str) -> float:
        return self.median(command, attr) / self.median(SHOW, attr)

    @property
    def statements(self) -> int:
        return len(self.count["statements"])  # type: ignore[arg-type]

    @property
    def summary(self) -> dict[str, int]:
        return self.count["summary"]  # type: ignore[return-value]


# -- child processes --------------------------------------------------------------------------


def _tree_rss_kb(pid: int) -> int:
    """Summed VmRSS of `pid` and its descendants, from /proc (0 where it is not readable)."""
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return total


def measure(cmd: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Wall time, CPU time and peak memory of one child process and what it starts.

    wait4 gives the child's own rusage (its CPU includes the children it waited for; its
    ru_maxrss is that of the largest single process). Processes running side by side add
    up, so the summed RSS of the process tree is also sampled from /proc every 10 ms.
    """
    peak = [0]
    done = threading.Event()

    def sample(pid: int) -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], _tree_rss_kb(pid))

    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        sampler = threading.Thread(target=sample, args=(proc.pid,), daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        return Run(
            seconds,
            usage.ru_utime + usage.ru_stime,
            usage.ru_maxrss,
            max(peak[0], usage.ru_maxrss),
            proc.returncode,
            out.read(),
        )


def child_env(backend: str, db: str) -> dict[str, str]:
    env = dict(os.environ)
    env["MIGRATION_DOCTOR_DB"] = backend
    env["DJANGO_SETTINGS_MODULE"] = "benchproject.settings"
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if backend == "sqlite":
        env["MIGRATION_DOCTOR_SQLITE"] = db
    else:
        env["MIGRATION_DOCTOR_DB_NAME"] = db
    return env


# -- project and database cache ---------------------------------------------------------------


def project(apps: int, migrations: int, models: int, seed: int) -> tuple[Path, dict[str, object]]:
    files = generate.render(apps, migrations, models, seed)
    manifest = json.loads(files["manifest.json"])
    dest = CACHE / "projects" / f"a{apps}-m{migrations}-{manifest['hash']}"
    if not (dest / "manifest.json").exists():
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        generate.write(tmp, files)
        tmp.rename(dest)
    return dest, manifest


def _server(backend: str, sql: str, db: str | None = None) -> list[tuple[object, ...]]:
    from testproject.settings import database

    cfg = database(backend, db or ("postgres" if backend == "postgres" else ""))
    if backend == "postgres":
        import psycopg

        with psycopg.connect(
            host=cfg["HOST"],
            port=cfg["PORT"],
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname=cfg["NAME"],
            autocommit=True,
        ) as conn:
            cur = conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []
    import MySQLdb

    conn = MySQLdb.connect(
        host=cfg["HOST"],
        port=int(cfg["PORT"]),
        user=cfg["USER"],
        password=cfg["PASSWORD"],
        database=cfg["NAME"] or "",
    )
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = list(cur.fetchall()) if cur.description else []
        conn.commit()  # MySQLdb does not autocommit: a DELETE would be rolled back
        return rows
    finally:
        conn.close()


def _row_count(backend: str, db: str) -> int | None:
    """Rows of django_migrations in the cached database, None when there is no database."""
    try:
        if backend == "sqlite":
            import sqlite3

            if not Path(db).exists():
                return None
            with sqlite3.connect(db) as conn:
                return int(conn.execute("SELECT COUNT(*) FROM django_migrations").fetchone()[0])
        return int(_server(backend, "SELECT COUNT(*) FROM django_migrations", db)[0][0])  # type: ignore[arg-type]
    except Exception:
        return None


def _drop(backend: str, db: str) -> None:
    if backend == "sqlite":
        Path(db).unlink(missing_ok=True)
    elif backend == "postgres":
        _server(backend, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    else:
        _server(backend, f"DROP DATABASE IF EXISTS `{db}`")


def database(backend: str, path: Path, manifest: dict[str, object], fresh: bool) -> str:
    """The migrated database of this project, migrating it only when no valid cache exists."""
    key = str(manifest["hash"])
    if backend == "sqlite":
        (CACHE / "sqlite").mkdir(parents=True, exist_ok=True)
        db = str(CACHE / "sqlite" / f"mdbench_{key}.sqlite3")
    else:
        db = f"mdbench_{key}"
    marker = CACHE / "migrated" / f"{backend}-{key}.json"
    if not fresh and marker.exists():
        rows = json.loads(marker.read_text())["rows"]
        if _row_count(backend, db) == rows:
            return db
    marker.unlink(missing_ok=True)
    _drop(backend, db)
    if backend == "postgres":
        _server(backend, f'CREATE DATABASE "{db}"')
    elif backend == "mysql":
        _server(backend, f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4")
    print(f"  migrating {path.name} on {backend} (once; cached afterwards)...", flush=True)
    start = time.perf_counter()
    run = measure(
        [sys.executable, "manage.py", "migrate", "-v", "0"], path, child_env(backend, db)
    )
    if run.returncode:
        sys.exit(f"migrate failed:\n{run.stdout.decode(errors='replace')}")
    print(f"  migrated in {time.perf_counter() - start:.0f} s", flush=True)
    rows = _row_count(backend, db)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"rows": rows}))
    return db


# -- one size ---------------------------------------------------------------------------------


def bench(
    backend: str, apps: int, migrations: int, models: int, seed: int, pairs: int, fresh: bool
) -> Result:
    path, manifest = project(apps, migrations, models, seed)
    db = database(backend, path, manifest, fresh)
    env = child_env(backend, db)
    py = sys.executable
    commands = {
        SHOW: [py, "manage.py", "showmigrations"],
        DOCTOR: [py, "manage.py", "migration_doctor", "--format", "json"],
    }
    help_text = measure([py, "manage.py", "migration_doctor", "--help"], path, env).stdout
    if b"--skip-import-watch" in help_text:  # what the import-time watch costs
        commands[DOCTOR_NO_WATCH] = [*commands[DOCTOR], "--skip-import-watch"]
    # Warm-up: compiles the .pyc files of thousands of migrations and fills the OS caches.
    for cmd in commands.values():
        run = measure(cmd, path, env)
        if run.returncode not in (0, 1):
            sys.exit(f"{' '.join(cmd[1:])} failed:\n{run.stdout.decode(errors='replace')}")
    result = Result(backend, apps, migrations, manifest, {name: [] for name in commands})
    names = list(commands)
    for i in range(pairs):
        # Alternate: each command goes first, second (and third) equally often.
        for name in names[i % len(names) :] + names[: i % len(names)]:
            result.runs[name].append(measure(commands[name], path, env))
    count = measure([py, "-c", COUNT_STATEMENTS], path, env)
    if count.returncode:
        sys.exit(f"statement count failed:\n{count.stdout.decode(errors='replace')}")
    result.count = json.loads(count.stdout.decode().strip().splitlines()[-1])
    return result


def profile(backend: str, apps: int, migrations: int, models: int, seed: int) -> None:
    path, manifest = project(apps, migrations, models, seed)
    db = database(backend, path, manifest, fresh=False)
    run = measure([sys.executable, "-c", PROFILE], path, child_env(backend, db))
    print(run.stdout.decode(errors="replace"))


# -- report -----------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def table(results: list[Result], pairs: int) -> str:
    lines = [
        f"Median of {pairs} alternating runs of each command. Wall and CPU time (user + system, "
        "children included) of the whole process; peak RSS of the largest process, and of the "
        "process tree summed (sampled). Ratios are to showmigrations.",
        "",
        "| backend | apps x migrations | command | wall | ratio | CPU | ratio | peak RSS | "
        "ratio | tree RSS | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        for name in r.runs:

            def cell(attr: str, unit: str, scale: float = 1.0, fmt: str = ".2f") -> str:
                value = f"{r.median(name, attr) / scale:{fmt}} {unit}"  # noqa: B023
                ratio = "" if name == SHOW else f"{r.ratio(name, attr):.2f}"  # noqa: B023
                return f"{value} | {ratio}"

            lines.append(
                f"| {r.backend} | {r.apps} x {r.migrations} | `{name}` | "
                f"{cell('seconds', 's')} | {cell('cpu', 's')} | "
                f"{cell('max_rss_kb', 'MB', 1024, '.0f')} | "
                f"{cell('tree_rss_kb', 'MB', 1024, '.0f')} |"
            )
    lines += [
        "",
        "| backend | apps x migrations | migrations in plan | live tables | SQL statements | "
        "errors / warnings / infos |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        s = r.summary
        lines.append(
            f"| {r.backend} | {r.apps} x {r.migrations} | {r.count['plan']} | "
            f"{r.count['live_tables']} | {r.statements} | "
            f"{s['errors']} / {s['warnings']} / {s['infos']} |"
        )
    return "\n".join(lines)


def checks(results: list[Result]) -> list[str]:
    out = []
    by_backend: dict[str, list[Result]] = {}
    for r in results:
        by_backend.setdefault(r.backend, []).append(r)
    for backend, rs in by_backend.items():
        full = max(rs, key=lambda r: r.apps)
        healthy = all(r.summary["errors"] == 0 and r.summary["warnings"] == 0 for r in rs)
        statements = max(r.statements for r in rs)
        out.append(
            f"{backend}: statements {statements} <= {STATEMENT_TARGET} "
            f"{verdict(statements <= STATEMENT_TARGET)}; "
            f"no error/warning {verdict(healthy)}"
        )
        for name in full.runs:
            if name == SHOW:
                continue
            t, m = full.ratio(name, "seconds"), full.ratio(name, "max_rss_kb")
            tree = full.ratio(name, "tree_rss_kb")
            out.append(
                f"{backend}: `{name}` time {t:.2f} <= {TIME_TARGET} {verdict(t <= TIME_TARGET)}; "
                f"memory {m:.2f} <= {MEMORY_TARGET} {verdict(m <= MEMORY_TARGET)} "
                f"(process tree {tree:.2f} {verdict(tree <= MEMORY_TARGET)})"
            )
        for name in full.runs:
            per_size = ", ".join(
                f"{r.apps * r.migrations}: {r.median(name, 'seconds'):.2f} s"
                for r in sorted(rs, key=lambda r: r.apps)
            )
            out.append(f"{backend}: `{name}` wall time by project migrations: {per_size}")
        for r in rs:
            if r.summary["errors"] or r.summary["warnings"]:
                out.append(f"  {r.backend} {r.apps}x{r.migrations}: {r.count['findings']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "all"], default="sqlite")
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--migrations", type=int, default=30, help="per app (default 30)")
    parser.add_argument("--models", type=int, default=5, help="per app (default 5)")
    parser.add_argument(
        "--pairs", type=int, default=5, help="alternating runs of each command (default 5)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sizes", default="0.25,0.5,1", help="fractions of --apps to run (default 0.25,0.5,1)"
    )
    parser.add_argument("--fresh", action="store_true", help="re-migrate cached databases")
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of one diagnosis (full size)"
    )
    args = parser.parse_args()
    backends = BACKENDS if args.backend == "all" else (args.backend,)
    if args.profile:
        for backend in backends:
            profile(backend, args.apps, args.migrations, args.models, args.seed)
        return
    sizes = sorted({max(1, round(args.apps * float(f))) for f in args.sizes.split(",")})
    results = []
    for backend in backends:
        for apps in sizes:
            print(f"{backend}: {apps} apps x {args.migrations} migrations", flush=True)
            results.append(
                bench(
                    backend,
                    apps,
                    args.migrations,
                    args.models,
                    args.seed,
                    args.pairs,
                    args.fresh,
                )
            )
    print()
    print(table(results, args.pairs))
    print()
    print("\n".join(checks(results)))


if __name__ == "__main__":
    main()
