"""The migration graph of some apps as plain data, marked with the findings: what the HTML
report draws and `--graph APP` prints (mermaid or dot).

Built from the graph Django's loader built for the diagnosis (`snapshot.graph`): its nodes
and parent edges exactly, plus what the loader left out but the findings are about — a
migration excluded because it or a dependency cannot be placed, a dependency that does not
exist, a module that does not load, a row without a file, a squash Django does not use.
The layout is a layered one (longest path from a root), computed here: no graphviz needed.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..diagnose import Report
from ..errors import DoctorError
from ..findings import Finding, Severity
from ..keys import Key
from ..snapshot.graph import GraphSnapshot
from .safe import shown

# Where a node comes from: in Django's graph, or only in what the findings are about.
GRAPH = "graph"  # a node of the loader's graph
STANDBY = "standby"  # a squash on disk that the graph does not use (its replaced files are)
EXCLUDED = "excluded"  # on disk, left out of the graph (it or a dependency cannot be placed)
MISSING = "missing"  # a dependency that names a migration that does not exist
UNLOADABLE = "unloadable"  # a module that does not import
ROW = "row"  # a django_migrations row without a file
COLLAPSED = "collapsed"  # a straight run of unremarkable migrations, folded (collapse_runs)

SUBTITLE = {
    STANDBY: "squash, not used",
    EXCLUDED: "left out of the graph",
    MISSING: "does not exist",
    UNLOADABLE: "does not load",
    ROW: "row without a file",
}
# `unapplied` (I002) is what the node's style already says: no mark for it.
UNMARKED = {"unapplied"}


@dataclass(frozen=True)
class Node:
    app: str
    name: str
    applied: bool
    where: str = GRAPH
    marks: tuple[str, ...] = ()  # check ids, short: ("E001",)
    problem: Severity | None = None  # the worst finding on it
    replaces: tuple[Key, ...] = ()  # a squash: what it replaces
    focus: bool = True  # of the drawn apps; False: a cross-app dependency shown for context

    @property
    def key(self) -> Key:
        return (self.app, self.name)

    @property
    def style(self) -> str:
        """One of applied, unapplied, broken (an error on it), warning, missing, excluded."""
        if self.problem is not None and self.problem >= Severity.ERROR:
            return "broken"
        if self.problem is not None and self.problem >= Severity.WARNING:
            return "warning"
        if self.where == MISSING:
            return "missing"
        if self.where in (EXCLUDED, STANDBY, UNLOADABLE, ROW):
            return "excluded" if not self.applied else "applied"
        return "applied" if self.applied else "unapplied"

    @property
    def label(self) -> str:
        """The name people read (shown(): names come from files and rows)."""
        return shown(self.name if self.focus else f"{self.app}.{self.name}")

    @property
    def squash(self) -> bool:
        return bool(self.replaces) and self.where != COLLAPSED

    @property
    def subtitle(self) -> str:
        if self.where == COLLAPSED:
            return shown(f"{self.replaces[0][1]} .. {self.replaces[-1][1]}")
        if self.squash and self.where == GRAPH:
            return f"squash of {len(self.replaces)}"
        return SUBTITLE.get(self.where, "")


@dataclass(frozen=True)
class Edge:
    parent: Key  # the dependency (drawn first)
    child: Key
    kind: str = "dependency"  # or "replaces": a squash to a migration it replaces

    @property
    def cross_app(self) -> bool:
        return self.parent[0] != self.child[0]


@dataclass
class MigrationGraphView:
    apps: list[str]
    nodes: dict[Key, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def node_list(self) -> list[Node]:
        return list(self.nodes.values())

    def layers(self) -> dict[Key, int]:
        """Longest path from a root over dependency edges (Kahn's order; a cycle, which only
        excluded nodes can form, is broken at its smallest node). A squash Django does not
        use sits beside the first migration it replaces."""
        parents: dict[Key, set[Key]] = {k: set() for k in self.nodes}
        children: dict[Key, set[Key]] = {k: set() for k in self.nodes}
        for edge in self.edges:
            if edge.kind == "dependency" and edge.parent in self.nodes:
                parents[edge.child].add(edge.parent)
                children[edge.parent].add(edge.child)
        waiting = {k: len(p) for k, p in parents.items()}
        ready = [k for k, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        layer: dict[Key, int] = {}
        while len(layer) < len(self.nodes):
            if not ready:  # a cycle: take its smallest node as if its parents were done
                heapq.heappush(ready, min(k for k in self.nodes if k not in layer))
            key = heapq.heappop(ready)
            if key in layer:
                continue
            layer[key] = 1 + max((layer[p] for p in parents[key] if p in layer), default=-1)
            for child in sorted(children[key]):
                waiting[child] -= 1
                if waiting[child] == 0 and child not in layer:
                    heapq.heappush(ready, child)
        for node in self.nodes.values():
            if node.where == STANDBY and node.replaces:
                placed = [layer[r] for r in node.replaces if r in layer and r != node.key]
                if placed:
                    layer[node.key] = min(placed)
        return layer

    def rows(self) -> list[list[Key]]:
        """Nodes by layer, each layer ordered to keep edges short: the drawn apps first,
        then each node under the mean position of its parents (one barycentre sweep)."""
        layer = self.layers()
        parents: dict[Key, list[Key]] = defaultdict(list)
        for edge in self.edges:
            if edge.parent in self.nodes and edge.child in self.nodes:
                parents[edge.child].append(edge.parent)
        by_layer: dict[int, list[Key]] = defaultdict(list)
        for key, n in layer.items():
            by_layer[n].append(key)
        result: list[list[Key]] = []
        position: dict[Key, float] = {}
        for n in sorted(by_layer):
            keys = sorted(by_layer[n], key=lambda k: (not self.nodes[k].focus, k))
            fallback = {k: i for i, k in enumerate(keys)}

            def centre(key: Key, fallback: dict[Key, int] = fallback) -> tuple[float, int]:
                placed = [position[p] for p in parents[key] if p in position]
                return (sum(placed) / len(placed) if placed else fallback[key], fallback[key])

            keys.sort(key=centre)
            for i, key in enumerate(keys):
                position[key] = i
            result.append(keys)
        return result


def _marks(findings: Iterable[Finding]) -> dict[Key, list[Finding]]:
    """The findings of each migration: its own, and the ones whose evidence names it (the
    leaves of multiple-leaves, the members of a cycle, the old name of a renamed row)."""
    on: dict[Key, list[Finding]] = defaultdict(list)
    for finding in findings:
        if finding.kind in UNMARKED or not finding.app:
            continue
        keys: list[Key] = []
        if finding.migration:
            keys.append((finding.app, finding.migration))
        evidence = finding.evidence
        if finding.kind == "multiple-leaves":
            keys += [(finding.app, str(n)) for n in evidence.get("leaves", [])]
        if finding.kind == "circular-dependency":
            for label in evidence.get("cycle", []):
                app, _, name = str(label).partition(".")
                keys.append((app, name))
        if finding.kind == "renamed-migration" and evidence.get("old_name"):
            keys.append((finding.app, str(evidence["old_name"])))
        for key in dict.fromkeys(keys):
            on[key].append(finding)
    return on


def _resolve(gs: GraphSnapshot, dependency: tuple[str, str]) -> Key:
    """`__first__`/`__latest__` as Django resolves them, where it can."""
    app, name = dependency
    graph = gs.loader.graph
    if name == "__first__":
        roots = graph.root_nodes(app)
        return roots[0] if roots else (app, name)
    if name == "__latest__":
        leaves = graph.leaf_nodes(app)
        return leaves[0] if leaves else (app, name)
    return (app, name)


def build(
    gs: GraphSnapshot,
    findings: Iterable[Finding],
    apps: Iterable[str],
    *,
    dependencies: bool = True,
) -> MigrationGraphView:
    """The graph of `apps`: their nodes, the migrations of other apps they depend on
    directly (`dependencies`), every dependency edge between those, and the findings'
    marks on them."""
    focus = list(dict.fromkeys(apps))
    wanted = set(focus)
    loader = gs.loader
    graph = loader.graph
    applied = set(loader.applied_migrations)
    marks = _marks(findings)
    view = MigrationGraphView(apps=focus)

    def add(key: Key, where: str, replaces: tuple[Key, ...] = ()) -> None:
        if key in view.nodes:
            return
        on = marks.get(key, [])
        view.nodes[key] = Node(
            app=key[0],
            name=key[1],
            applied=key in applied,
            where=where,
            marks=tuple(sorted({f.id.rsplit(".", 1)[-1] for f in on})),
            problem=max((f.severity for f in on), default=None),
            replaces=replaces,
            focus=key[0] in wanted,
        )

    def squash_of(key: Key) -> tuple[Key, ...]:
        migration = loader.disk_migrations.get(key)
        replaced = getattr(migration, "replaces", None) or ()
        return tuple((str(a), str(n)) for a, n in replaced)

    own = sorted(k for k in graph.nodes if k[0] in wanted)
    for key in own:
        add(key, GRAPH, squash_of(key) if key in loader.replacements else ())
    edges: set[Edge] = set()
    for key in own:
        for parent in graph.node_map[key].parents:
            if parent.key[0] in wanted or dependencies:
                add(parent.key, GRAPH, squash_of(parent.key))
                edges.add(Edge(parent.key, key))
    # Edges among the other apps' nodes drawn for context.
    for key in list(view.nodes):
        if key[0] in wanted or key not in graph.node_map:
            continue
        for parent in graph.node_map[key].parents:
            if parent.key in view.nodes:
                edges.add(Edge(parent.key, key))
    # What the loader left out of the graph.
    missing = {md.missing for md in gs.missing_dependencies}
    for key in sorted(gs.excluded):
        migration = loader.disk_migrations.get(key)
        if key[0] not in wanted or migration is None:
            continue
        add(key, EXCLUDED, squash_of(key))
        for dependency in migration.dependencies:
            parent = _resolve(gs, dependency)
            if parent in graph.nodes or parent in gs.excluded:
                if parent[0] not in wanted and not dependencies:
                    continue
                add(parent, GRAPH if parent in graph.nodes else EXCLUDED, squash_of(parent))
            elif parent in missing:
                add(parent, MISSING)
            else:
                continue
            edges.add(Edge(parent, key))
    for key in sorted(loader.replacements):
        if key[0] in wanted and key not in view.nodes and key not in gs.excluded:
            add(key, STANDBY, squash_of(key))
            for replaced in squash_of(key):
                if replaced in view.nodes:
                    edges.add(Edge(key, replaced, "replaces"))
    for key, on in sorted(marks.items()):
        if key[0] in wanted and key not in view.nodes:
            unloadable = any(f.kind == "migration-load-error" for f in on)
            add(key, UNLOADABLE if unloadable else ROW)
    view.edges = sorted(edges, key=lambda e: (e.child, e.parent, e.kind))
    return view


# -- text formats ---------------------------------------------------------------------------

STYLES = {
    "applied": ("#e6f4ea", "#1e7e34", ""),
    "unapplied": ("#ffffff", "#6c757d", "4 3"),
    "broken": ("#fde2e1", "#c0392b", ""),
    "warning": ("#fff4d6", "#b7791f", ""),
    "missing": ("#ffffff", "#c0392b", "2 2"),
    "excluded": ("#f1f1f1", "#999999", "2 2"),
}


def _mermaid_text(text: str) -> str:
    """A name inside a quoted mermaid label: every character but letters, digits and
    `_ .,-` as an entity code (`#35;`), so no name closes the label or adds markup."""
    return "".join(c if c.isalnum() or c in "_ .,-" else f"#{ord(c)};" for c in text)


def _ids(view: MigrationGraphView) -> dict[Key, str]:
    return {key: f"n{i}" for i, key in enumerate(sorted(view.nodes))}


def _groups(view: MigrationGraphView) -> list[tuple[str, list[Node]]]:
    by_app: dict[str, list[Node]] = defaultdict(list)
    for node in view.nodes.values():
        by_app[node.app].append(node)
    order = sorted(
        by_app, key=lambda a: (a not in view.apps, view.apps.index(a) if a in view.apps else 0, a)
    )
    return [(app, sorted(by_app[app], key=lambda n: n.name)) for app in order]


def _legend(view: MigrationGraphView) -> list[str]:
    return [
        f"migration graph of {', '.join(shown(a) for a in view.apps)}"
        + (
            " and the migrations of other apps it depends on"
            if any(not n.focus for n in view.nodes.values())
            else ""
        ),
        "styles: applied, unapplied, broken (an error), warning, missing, excluded;"
        " check ids on the nodes; dashed arrows cross apps, dotted ones: a squash replaces",
    ]


def _label_lines(node: Node, text: Callable[[str], str]) -> list[str]:
    """The node's name, its subtitle and its check ids, each line escaped by `text`."""
    lines = [text(node.label)]
    if node.subtitle:
        lines.append(text(node.subtitle))
    if node.marks:
        lines.append(" ".join(node.marks))
    return lines


def _edge_lines(
    view: MigrationGraphView, ids: dict[Key, str], formats: dict[str, str]
) -> list[str]:
    """One line per edge, in the format of its kind: a squash's `replaces`, a dependency
    across apps, or within one."""
    lines = []
    for edge in view.edges:
        kind = "replaces" if edge.kind == "replaces" else "cross" if edge.cross_app else "plain"
        lines.append(formats[kind].format(a=ids[edge.parent], b=ids[edge.child]))
    return lines


def render_mermaid(view: MigrationGraphView) -> str:
    """A mermaid flowchart, as GitHub renders it in a pull request's ```mermaid block."""
    ids = _ids(view)
    out = [f"%% {line}" for line in _legend(view)]
    out.append("flowchart TB")
    for name, (fill, stroke, dash) in STYLES.items():
        extra = f",stroke-dasharray:{dash}" if dash else ""
        width = ",stroke-width:3px" if name in ("broken", "warning") else ""
        out.append(f"  classDef {name} fill:{fill},stroke:{stroke}{width}{extra},color:#111")
    for i, (app, nodes) in enumerate(_groups(view)):
        title = _mermaid_text(shown(app)) + ("" if app in view.apps else " (dependency)")
        out.append(f'  subgraph g{i}["{title}"]')
        for node in nodes:
            label = "<br/>".join(_label_lines(node, _mermaid_text))
            out.append(f'    {ids[node.key]}["{label}"]:::{node.style}')
        out.append("  end")
    out += _edge_lines(
        view,
        ids,
        {
            "replaces": "  {a} -. replaces .-> {b}",
            "cross": "  {a} -.-> {b}",
            "plain": "  {a} --> {b}",
        },
    )
    return "\n".join(out) + "\n"


def _dot_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def render_dot(view: MigrationGraphView) -> str:
    """Graphviz dot (`dot -Tsvg`), the same nodes, edges, styles and marks."""
    ids = _ids(view)
    out = [f"// {line}" for line in _legend(view)]
    out.append("digraph migrations {")
    out.append("  rankdir=TB;")
    out.append('  node [shape=box, style="rounded,filled", fontname="monospace", fontsize=11];')
    for i, (app, nodes) in enumerate(_groups(view)):
        title = _dot_text(shown(app)) + ("" if app in view.apps else " (dependency)")
        out.append(f"  subgraph cluster_{i} {{")
        out.append(f'    label="{title}";')
        for node in nodes:
            fill, stroke, dash = STYLES[node.style]
            lines = _label_lines(node, _dot_text)
            style = "rounded,filled" + (",dashed" if dash else "")
            width = ", penwidth=3" if node.style in ("broken", "warning") else ""
            peripheries = ", peripheries=2" if node.squash else ""
            label = "\\n".join(lines)
            out.append(
                f'    {ids[node.key]} [label="{label}", class="{node.style}", '
                f'style="{style}", fillcolor="{fill}", color="{stroke}"{width}{peripheries}];'
            )
        out.append("  }")
    out += _edge_lines(
        view,
        ids,
        {
            "replaces": '  {a} -> {b} [style=dotted, label="replaces", constraint=false];',
            "cross": '  {a} -> {b} [style=dashed, color="#1f6feb"];',
            "plain": "  {a} -> {b};",
        },
    )
    out.append("}")
    return "\n".join(out) + "\n"


# -- large apps -----------------------------------------------------------------------------

MIN_RUN = 6  # a straight run this long (or longer) of unremarkable migrations is folded


def _plain(node: Node) -> bool:
    return (
        node.focus
        and node.where == GRAPH
        and not node.marks
        and node.problem is None
        and not node.replaces
    )


def collapse_runs(view: MigrationGraphView, min_run: int = MIN_RUN) -> MigrationGraphView:
    """The same graph with each straight run of `min_run` or more unremarkable migrations
    (in the graph, no finding, one parent and one child of the same app, all applied or all
    unapplied) folded into one node between the run's first and last, so a long history
    does not push the findings off the page. The run's names stay in the node's `replaces`."""
    parents: dict[Key, list[Edge]] = defaultdict(list)
    children: dict[Key, list[Edge]] = defaultdict(list)
    for edge in view.edges:
        parents[edge.child].append(edge)
        children[edge.parent].append(edge)

    def link(key: Key) -> bool:
        node = view.nodes[key]
        ins, outs = parents[key], children[key]
        return (
            _plain(node)
            and len(ins) == 1
            and len(outs) == 1
            and all(e.kind == "dependency" and not e.cross_app for e in ins + outs)
        )

    seen: set[Key] = set()
    folds: list[list[Key]] = []
    for key in sorted(view.nodes):
        if key in seen or not link(key):
            continue
        # Walk back to the start of the straight run, then forward to its end.
        start = key
        while True:
            parent = parents[start][0].parent
            if parent in seen or not link(parent) or parent == key:
                break
            if view.nodes[parent].applied != view.nodes[key].applied:
                break
            start = parent
        run = [start]
        while True:
            child = children[run[-1]][0].child
            if child in run or not link(child):
                break
            if view.nodes[child].applied != view.nodes[key].applied:
                break
            run.append(child)
        seen.update(run)
        if len(run) >= min_run:
            folds.append(run[1:-1])
    if not folds:
        return view
    nodes = dict(view.nodes)
    edges = list(view.edges)
    for hidden in folds:
        first, last = hidden[0], hidden[-1]
        app = first[0]
        key = (app, f"{first[1]} .. {last[1]}")
        for k in hidden:
            del nodes[k]
        nodes[key] = Node(
            app=app,
            name=f"{len(hidden)} migrations",
            applied=view.nodes[first].applied,
            where=COLLAPSED,
            replaces=tuple(hidden),
        )
        inside = set(hidden)
        before = next(e.parent for e in parents[first])
        after = next(e.child for e in children[last])
        edges = [e for e in edges if e.parent not in inside and e.child not in inside]
        edges += [Edge(before, key), Edge(key, after)]
    return MigrationGraphView(
        apps=view.apps, nodes=nodes, edges=sorted(edges, key=lambda e: (e.child, e.parent, e.kind))
    )


def render_app_graph(report: Report, app: str, fmt: str = "mermaid") -> str:
    """`--graph APP`: the app's graph and its direct dependencies, in mermaid or dot."""
    if report.snapshot is None:
        raise DoctorError("This report has no migration graph to draw.")
    view = build(report.snapshot.graph, report.findings, [app])
    if not any(node.focus for node in view.nodes.values()):
        raise DoctorError(f"App {app!r} has no migrations to draw.")
    return render_dot(view) if fmt == "dot" else render_mermaid(view)
