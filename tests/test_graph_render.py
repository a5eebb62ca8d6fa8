"""`--graph APP` (mermaid and dot) against the graph Django's own loader builds.

The project: catalog with its three migrations, a squash of them, two branches after the
third and a merge of the branches; orders depends on catalog (another app) and on the user
model (auth). Each output is parsed back into nodes, edges and marks and compared with
`MigrationLoader(connection)`: the same nodes (the app's and the other apps' migrations it
depends on directly), the same dependency edges, applied exactly where Django says, squashes
with what they replace, and the findings' ids on their nodes.
"""

from __future__ import annotations

import importlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from django.db.migrations.loader import MigrationLoader

from migration_doctor.diagnose import diagnose
from migration_doctor.render.graph import build, collapse_runs, render_mermaid

from . import helpers as h
from .test_graph_findings import SQUASH, SQUASH_NAME

Key = tuple[str, str]


def empty(*dependencies: Key) -> str:
    deps = "".join(f"        {d!r},\n" for d in dependencies)
    return (
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        f"    dependencies = [\n{deps}    ]\n    operations = []\n"
    )


BRANCHES = {
    "0004_branch_a": empty(("catalog", "0003_product_sku_stock")),
    "0004_branch_b": empty(("catalog", "0003_product_sku_stock")),
}
MERGE = {"0005_merge": empty(("catalog", "0004_branch_a"), ("catalog", "0004_branch_b"))}


@pytest.fixture
def catalog(migration_package: Any) -> Any:
    """catalog's package: the bundled files and the squash, `extra` files; returns its
    directory (files written there later are loaded by the next diagnosis)."""

    def make(**extra: str) -> Path:
        sources = {**h.app_migration_sources("catalog"), SQUASH_NAME: SQUASH, **extra}
        return Path(importlib.import_module(migration_package("catalog", sources)).__path__[0])

    return make


# -- reading the outputs back ---------------------------------------------------------------


class Parsed:
    def __init__(self) -> None:
        self.nodes: dict[Key, dict[str, Any]] = {}
        self.edges: set[tuple[Key, Key]] = set()
        self.cross: set[tuple[Key, Key]] = set()
        self.replaces: set[tuple[Key, Key]] = set()


def _key(app: str, label: str, focus: str) -> Key:
    first = label.split("<br/>")[0].split("\\n")[0]
    return (app, first if app == focus else first.removeprefix(f"{app}."))


def _node(
    parsed: Parsed, ids: dict[str, Key], node_id: str, app: str, label: str, sep: str,
    style: str, focus: str,
) -> dict[str, Any]:  # fmt: skip
    """Record one node of either output: its style, its check ids, its label's lines."""
    parts = label.split(sep)
    key = _key(app, label, focus)
    ids[node_id] = key
    marks = [p for p in parts[1:] if re.fullmatch(r"([EWI]\d{3} ?)+", p)]
    node = {"style": style, "marks": marks[0].split() if marks else [], "lines": parts[1:]}
    parsed.nodes[key] = node
    return node


def _edge(
    parsed: Parsed, ids: dict[str, Key], a: str, b: str, replaces: bool, cross: bool
) -> None:
    edge = (ids[a], ids[b])
    if replaces:
        parsed.replaces.add(edge)
        return
    parsed.edges.add(edge)
    if cross:
        parsed.cross.add(edge)


def parse_mermaid(text: str, focus: str) -> Parsed:
    parsed, ids, app = Parsed(), {}, ""
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r'subgraph g\d+\["([^"]*)"\]', line):
            app = m.group(1).removesuffix(" (dependency)")
        elif m := re.fullmatch(r'(n\d+)\["([^"]*)"\]:::(\w+)', line):
            _node(parsed, ids, m.group(1), app, m.group(2), "<br/>", m.group(3), focus)
        elif m := re.fullmatch(r"(n\d+) (-->|-\.->|-\. replaces \.->) (n\d+)", line):
            kind = m.group(2)
            _edge(parsed, ids, m.group(1), m.group(3), "replaces" in kind, kind == "-.->")
    return parsed


def parse_dot(text: str, focus: str) -> Parsed:
    parsed, ids, app = Parsed(), {}, ""
    for line in text.splitlines():
        line = line.strip()
        if m := re.fullmatch(r'label="([^"]*)";', line):
            app = m.group(1).removesuffix(" (dependency)")
        elif m := re.match(r'(n\d+) \[label="([^"]*)", class="(\w+)"', line):
            node = _node(parsed, ids, m.group(1), app, m.group(2), "\\n", m.group(3), focus)
            node["squash"] = "peripheries=2" in line
        elif m := re.fullmatch(r"(n\d+) -> (n\d+)( \[.*\])?;", line):
            attrs = m.group(3) or ""
            _edge(
                parsed, ids, m.group(1), m.group(2), 'label="replaces"' in attrs, "dashed" in attrs
            )
    return parsed


def graph_of(alias: str, app: str, fmt: str) -> Parsed:
    out = io.StringIO()
    call_command("migration_doctor_graph", app, "--format", fmt, database=alias, stdout=out)
    text = out.getvalue()
    return parse_mermaid(text, app) if fmt == "mermaid" else parse_dot(text, app)


# -- what Django's loader says --------------------------------------------------------------


def expected(alias: str, app: str) -> tuple[set[Key], set[tuple[Key, Key]], MigrationLoader]:
    loader = MigrationLoader(connections[alias])  # Django's, reading django_migrations
    graph = loader.graph
    own = {k for k in graph.nodes if k[0] == app}
    nodes = own | {p.key for k in own for p in graph.node_map[k].parents}
    edges = {(p.key, k) for k in nodes for p in graph.node_map[k].parents if p.key in nodes}
    return nodes, edges, loader


def marks_of(alias: str) -> dict[Key, set[str]]:
    marks: dict[Key, set[str]] = {}
    for f in diagnose(alias).findings:
        if f.kind == "unapplied" or not f.app:
            continue
        code = f.id.rsplit(".", 1)[1]
        names = [f.migration] if f.migration else []
        names += f.evidence.get("leaves", []) if f.kind == "multiple-leaves" else []
        for name in names:
            marks.setdefault((f.app, name), set()).add(code)
    return marks


def check(alias: str, app: str, fmt: str) -> Parsed:
    parsed = graph_of(alias, app, fmt)
    nodes, edges, loader = expected(alias, app)
    standby = {k for k in loader.replacements if k[0] == app and k not in loader.graph.nodes}
    assert set(parsed.nodes) == nodes | standby
    assert parsed.edges == edges
    assert parsed.cross == {e for e in edges if e[0][0] != e[1][0]}
    assert parsed.replaces == {
        (k, tuple(r)) for k in standby for r in loader.replacements[k].replaces if r in nodes
    }
    marks = marks_of(alias)
    applied = set(loader.applied_migrations)
    for key, node in parsed.nodes.items():
        assert set(node["marks"]) == marks.get(key, set()), key
        if node["marks"] and any(m[0] in "EW" for m in node["marks"]):
            assert node["style"] in ("broken", "warning"), key
        elif key in standby:
            assert node["style"] == "excluded", key  # not in Django's graph
        else:
            assert node["style"] == ("applied" if key in applied else "unapplied"), key
        migration = loader.disk_migrations[key]
        if key in loader.graph.nodes and migration.replaces:
            assert f"squash of {len(migration.replaces)}" in node["lines"], key
        if key in standby:
            assert "squash, not used" in node["lines"], key
    return parsed


FORMATS = ["mermaid", "dot"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_squash_in_use_merge_and_cross_app(fresh_db: str, catalog: Any, fmt: str) -> None:
    catalog(**BRANCHES, **MERGE)
    h.migrate(fresh_db)
    parsed = check(fresh_db, "catalog", fmt)
    squash = ("catalog", SQUASH_NAME)
    assert squash in parsed.nodes  # the squash is the graph's node, the originals are not
    assert ("catalog", "0002_tags") not in parsed.nodes
    merge = ("catalog", "0005_merge")
    assert {p for p, c in parsed.edges if c == merge} == {
        ("catalog", "0004_branch_a"),
        ("catalog", "0004_branch_b"),
    }
    orders = check(fresh_db, "orders", fmt)
    # orders.0001 depends on catalog.0001_initial, which Django remapped to the squash.
    assert (squash, ("orders", "0001_initial")) in orders.cross
    assert ("auth", "0001_initial") in orders.nodes


@pytest.mark.parametrize("fmt", FORMATS)
def test_squash_half_recorded_uses_the_originals(fresh_db: str, catalog: Any, fmt: str) -> None:
    """Django uses the replaced migrations and leaves the squash out; the graph shows it
    beside them, and the finding on the third one."""
    catalog(**BRANCHES, **MERGE)
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", SQUASH_NAME)
    h.unrecord(fresh_db, "catalog", "0003_product_sku_stock")
    parsed = check(fresh_db, "catalog", fmt)
    assert ("catalog", "0002_tags") in parsed.nodes
    assert parsed.nodes[("catalog", "0003_product_sku_stock")]["marks"] == ["E001"]
    assert parsed.nodes[("catalog", SQUASH_NAME)]["style"] == "excluded"
    check(fresh_db, "orders", fmt)


@pytest.mark.parametrize("fmt", FORMATS)
def test_two_leaves_are_marked(fresh_db: str, catalog: Any, fmt: str) -> None:
    package = catalog()
    h.migrate(fresh_db)  # migrate refuses two leaves: the second branch comes after
    for name, source in BRANCHES.items():
        (package / f"{name}.py").write_text(source)
    parsed = check(fresh_db, "catalog", fmt)
    for leaf in ("0004_branch_a", "0004_branch_b"):
        assert parsed.nodes[("catalog", leaf)]["marks"] == ["E005"]


def test_what_the_loader_left_out_is_drawn(fresh_db: str, migration_package: Any) -> None:
    """A dependency on a migration that does not exist: Django cannot build the graph at all;
    the doctor's leaves the dependent out, and the drawing shows both."""
    module = migration_package("catalog", h.app_migration_sources("catalog"))
    h.migrate(fresh_db)
    source = empty(("catalog", "0003_product_sku_stock"), ("orders", "0099_x"))
    package = Path(importlib.import_module(module).__path__[0])
    (package / "0004_needs_ghost.py").write_text(source)
    report = diagnose(fresh_db)
    view = build(report.snapshot.graph, report.findings, ["catalog"])  # type: ignore[union-attr]
    needs = view.nodes[("catalog", "0004_needs_ghost")]
    assert (needs.where, needs.marks, needs.style) == ("excluded", ("E007",), "broken")
    ghost = view.nodes[("orders", "0099_x")]
    assert (ghost.where, ghost.style) == ("missing", "missing")
    parents = {e.parent for e in view.edges if e.child == needs.key}
    assert parents == {("catalog", "0003_product_sku_stock"), ("orders", "0099_x")}
    text = render_mermaid(view)
    assert "left out of the graph<br/>E007" in text and ":::missing" in text


def test_layers_are_longest_paths(fresh_db: str, catalog: Any) -> None:
    catalog(**BRANCHES, **MERGE)
    h.migrate(fresh_db)
    report = diagnose(fresh_db)
    view = build(report.snapshot.graph, report.findings, ["orders"])  # type: ignore[union-attr]
    layer = view.layers()
    for edge in view.edges:
        assert layer[edge.child] > layer[edge.parent]
    for key in view.nodes:
        parents = [layer[e.parent] for e in view.edges if e.child == key]
        assert layer[key] == (max(parents) + 1 if parents else 0)
    assert collapse_runs(view) is view  # nothing long enough to fold


def test_bad_graph_arguments_are_one_line_exit_2(fresh_db: str) -> None:
    h.migrate(fresh_db)
    cases = [
        (["nope"], "No installed app with label 'nope'"),
        (["migration_doctor"], "has no migrations to draw"),
        (["catalog", "--format", "text"], "invalid choice: 'text'"),
        (["catalog", "orders"], "unrecognized arguments: orders"),
        (["catalog", "--fix"], "unrecognized arguments: --fix"),
        (["catalog", "--fail-on", "warning"], "unrecognized arguments: --fail-on"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as raised:
            call_command("migration_doctor_graph", *args, database=fresh_db, stdout=io.StringIO())
        assert raised.value.returncode == 2, args
        assert message in str(raised.value) and "\n" not in str(raised.value), args
