"""One self-contained HTML file: the summary, the findings grouped by app with evidence and
fix commands, and each affected app's migration graph as inline SVG.

Nothing is fetched: no script, no stylesheet, font or image from elsewhere, so the file opens
offline, in a CI artifact viewer or from a mail attachment, and prints. Every name (rows,
tables, files: anything) is shown() and then HTML-escaped; element ids are numbers, never
names. Only apps with a finding (other than `unapplied`) and the apps named on the command
line are drawn, each with the migrations of other apps it depends on directly, and long
straight runs of unremarkable migrations folded (graph.collapse_runs), so a large project
stays readable.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import django

from .. import __version__
from ..diagnose import Report
from ..findings import Finding, Severity
from .graph import UNMARKED, Edge, MigrationGraphView, Node, build, collapse_runs
from .safe import shown
from .text import format_value, summary_line

CHAR = 7.2  # px per character of the 12px monospace the nodes use
NODE_H = 40
GAP_X = 26
GAP_Y = 38
PAD = 18
MAX_CHARS = 40  # longer names are cut in the box; the full name is its tooltip and title
SEVERITY_CLASS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
  margin: 0; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 12px; font-family: ui-monospace, Menlo, Consolas, monospace; }
h3 { font-size: 15px; margin: 0 0 6px; font-weight: 600; }
code, pre, .mono { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace;
  font-size: 13px; }
header, section, nav { background: #fff; border: 1px solid #dde1e6; border-radius: 8px;
  padding: 18px 20px; margin-bottom: 18px; }
.summary { font-weight: 600; margin: 6px 0; }
.meta { color: #5f6b7a; font-size: 13px; margin: 4px 0 0; }
.counts { display: flex; gap: 12px; margin: 14px 0 4px; padding: 0; list-style: none; }
.counts li { border-radius: 6px; padding: 8px 14px; min-width: 110px; border: 1px solid; }
.counts b { display: block; font-size: 24px; line-height: 1.1; }
.error { color: #a4281d; } .warning { color: #8a5a00; } .info { color: #1b5e8c; }
.counts .error { background: #fdecea; border-color: #f3b7b1; }
.counts .warning { background: #fff6dd; border-color: #f0d48a; }
.counts .info { background: #e8f2fb; border-color: #b6d4ee; }
.ok { color: #1e7e34; font-weight: 600; }
nav ul { margin: 0; padding-left: 18px; columns: 3; }
nav a { color: #1f4f8a; }
.finding { border-left: 4px solid #ccc; padding: 10px 14px; margin: 12px 0; background: #fafbfc;
  border-radius: 0 6px 6px 0; break-inside: avoid; }
.finding.error { border-left-color: #c0392b; }
.finding.warning { border-left-color: #d4a017; }
.finding.info { border-left-color: #3b82c4; }
.finding p, .finding dl { color: #1d1d1f; }
.badge { display: inline-block; border-radius: 4px; padding: 0 6px; color: #fff;
  font: 600 12px/20px ui-monospace, Menlo, Consolas, monospace; }
.badge.error { background: #c0392b; } .badge.warning { background: #b7791f; }
.badge.info { background: #3b82c4; }
.kind { color: #3c4650; font-family: ui-monospace, Menlo, Consolas, monospace; }
.target { color: #1d1d1f; background: #eef1f4; padding: 1px 5px; border-radius: 4px; }
.known { color: #6b7785; font-weight: normal; font-size: 13px; }
.message { margin: 6px 0; overflow-wrap: anywhere; }
dl.evidence { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px;
  margin: 6px 0; font-size: 13px; }
dl.evidence dt { color: #5f6b7a; } dl.evidence dd { margin: 0; overflow-wrap: anywhere; }
.fix { margin-top: 8px; }
.fix p { margin: 0 0 4px; color: #1e6b30; }
pre.cmd { background: #1f2430; color: #e6edf3; padding: 8px 12px; border-radius: 6px;
  margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
ul.unapplied { margin: 4px 0 0; padding-left: 20px; columns: 2; font-size: 13px; }
ul.unapplied li.finding { border: none; background: none; padding: 0; margin: 2px 0; }
figure { margin: 0 0 10px; overflow-x: auto; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { color: #5f6b7a; font-size: 12px; margin-top: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 8px 16px; font-size: 12px; color: #3c4650;
  margin: 8px 0 0; padding: 0; list-style: none; }
.legend span { display: inline-block; width: 22px; height: 12px; vertical-align: -1px;
  margin-right: 5px; border: 2px solid; border-radius: 3px; }
svg text { font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.node rect.box { stroke-width: 1.5; }
.node text.name { font-size: 12px; fill: #1d1d1f; }
.node text.sub { font-size: 10px; fill: #5f6b7a; }
.node.other text.name { fill: #5f6b7a; }
.s-applied rect.box, .legend .s-applied { fill: #e6f4ea; background: #e6f4ea; stroke: #1e7e34;
  border-color: #1e7e34; }
.s-unapplied rect.box, .legend .s-unapplied { fill: #fff; background: #fff; stroke: #6c757d;
  border-color: #6c757d; stroke-dasharray: 4 3; border-style: dashed; }
.s-broken rect.box, .legend .s-broken { fill: #fde2e1; background: #fde2e1; stroke: #c0392b;
  border-color: #c0392b; stroke-width: 3; }
.s-warning rect.box, .legend .s-warning { fill: #fff4d6; background: #fff4d6; stroke: #b7791f;
  border-color: #b7791f; stroke-width: 3; }
.s-missing rect.box, .legend .s-missing { fill: #fff; background: #fff; stroke: #c0392b;
  border-color: #c0392b; stroke-dasharray: 2 2; border-style: dotted; }
.s-excluded rect.box, .legend .s-excluded { fill: #f1f1f1; background: #f1f1f1;
  stroke: #999; border-color: #999; stroke-dasharray: 2 2; border-style: dotted; }
.node rect.inner { fill: none; stroke: #555; stroke-width: 1; }
.node rect.mark { fill: #c0392b; } .node rect.mark.warning { fill: #b7791f; }
.node rect.mark.info { fill: #3b82c4; }
.node text.mark { font-size: 10px; font-weight: 700; fill: #fff; }
.edge { fill: none; stroke: #6b7785; stroke-width: 1.3; }
.edge.cross { stroke: #1f6feb; stroke-dasharray: 6 4; }
.edge.replaces { stroke: #8a8f98; stroke-dasharray: 1 4; stroke-linecap: round; }
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  header, section, nav { border: none; padding: 0; margin-bottom: 14px; }
  section.app { break-before: auto; }
  figure { overflow: visible; }
  pre.cmd { background: #fff; color: #000; border: 1px solid #999; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"""

LEGEND = [
    ("applied", "applied"),
    ("unapplied", "not applied"),
    ("broken", "an error on it"),
    ("warning", "a warning on it"),
    ("missing", "does not exist"),
    ("excluded", "left out of the graph / no file"),
]


def esc(value: object) -> str:
    """A name made visible (shown) and inert in HTML."""
    return html.escape(shown(value), quote=True)


# -- SVG ------------------------------------------------------------------------------------


@dataclass
class Box:
    node: Node
    x: float
    y: float
    w: float
    layer: int

    @property
    def cx(self) -> float:
        return self.x + self.w / 2


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1] + "…"


def _width(node: Node) -> float:
    chars = max(len(_cut(node.label)), len(_cut(node.subtitle)) * 0.85, 12)
    return round(chars * CHAR + 24 + (len(" ".join(node.marks)) * 3 if node.marks else 0))


def layout(view: MigrationGraphView) -> tuple[dict[tuple[str, str], Box], float, float]:
    """Pixel boxes for the layered order graph.rows() gives: each layer a centred row."""
    rows = view.rows()
    widths = [sum(_width(view.nodes[k]) for k in row) + GAP_X * (len(row) - 1) for row in rows]
    total = max(widths, default=0) + 2 * PAD
    boxes: dict[tuple[str, str], Box] = {}
    for n, (row, width) in enumerate(zip(rows, widths, strict=True)):
        x = (total - width) / 2
        y = PAD + 10 + n * (NODE_H + GAP_Y)
        for key in row:
            w = _width(view.nodes[key])
            boxes[key] = Box(view.nodes[key], x, y, w, n)
            x += w + GAP_X
    height = PAD * 2 + 10 + len(rows) * (NODE_H + GAP_Y) - GAP_Y
    return boxes, total, height


def _curve(
    x1: float, y1: float, c1: tuple[float, float], c2: tuple[float, float], x2: float, y2: float
) -> str:
    return f"M{x1:.1f},{y1:.1f} C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {x2:.1f},{y2:.1f}"


def _edge_path(a: Box, b: Box) -> str:
    """A curve from the dependency's bottom to the dependent's top (side to side when a
    squash Django does not use points at what it replaces on its own layer)."""
    if b.layer > a.layer:
        x1, y1, x2, y2 = a.cx, a.y + NODE_H, b.cx, b.y
        bend = (y2 - y1) / 2
        return _curve(x1, y1, (x1, y1 + bend), (x2, y2 - bend), x2, y2)
    if b.layer < a.layer:
        x1, y1, x2, y2 = a.cx, a.y, b.cx, b.y + NODE_H
        bend = (y1 - y2) / 2
        return _curve(x1, y1, (x1, y1 - bend), (x2, y2 + bend), x2, y2)
    left = a.x + a.w <= b.x
    x1 = a.x + a.w if left else a.x
    x2 = b.x if left else b.x + b.w
    y = a.y + NODE_H / 2
    middle = (x1 + x2) / 2
    return _curve(x1, y, (middle, y - 14), (middle, y - 14), x2, y)


def _edge(edge: Edge, boxes: dict[tuple[str, str], Box], marker: str) -> str:
    a, b = boxes[edge.parent], boxes[edge.child]
    css = "edge" + (" replaces" if edge.kind == "replaces" else " cross" if edge.cross_app else "")
    end = "" if edge.kind == "replaces" else f' marker-end="url(#{marker})"'
    what = (
        "replaces" if edge.kind == "replaces" else "is a dependency of"
    )  # the tooltip reads as a sentence
    title = f"{edge.parent[0]}.{edge.parent[1]} {what} {edge.child[0]}.{edge.child[1]}"
    return f'<path class="{css}" d="{_edge_path(a, b)}"{end}><title>{esc(title)}</title></path>'


def _node(box: Box, severity: Severity | None) -> str:
    node = box.node
    x, y, w = box.x, box.y, box.w
    classes = f"node s-{node.style}" + ("" if node.focus else " other")
    full = f"{node.app}.{node.name}"
    tip = [full, node.style]
    if node.subtitle:
        tip.append(node.subtitle)
    if node.squash:
        tip.append("replaces " + ", ".join(f"{a}.{n}" for a, n in node.replaces))
    if node.marks:
        tip.append(" ".join(node.marks))
    parts = [
        f'<g class="{classes}" data-node="{esc(full)}" data-style="{node.style}"'
        f' data-marks="{" ".join(node.marks)}">',
        f"<title>{esc(' · '.join(tip))}</title>",
        f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{NODE_H}" rx="6"/>',
    ]
    if node.squash:
        parts.append(
            f'<rect class="inner" x="{x + 3:.1f}" y="{y + 3:.1f}" width="{w - 6:.1f}"'
            f' height="{NODE_H - 6}" rx="4"/>'
        )
    name_y = y + (16 if node.subtitle else 24)
    parts.append(
        f'<text class="name" x="{x + 12:.1f}" y="{name_y:.1f}">{esc(_cut(node.label))}</text>'
    )
    if node.subtitle:
        parts.append(
            f'<text class="sub" x="{x + 12:.1f}" y="{y + 31:.1f}">'
            f"{html.escape(_cut(node.subtitle))}</text>"
        )
    if node.marks:
        text = " ".join(node.marks)
        bw = len(text) * 6.4 + 10
        level = SEVERITY_CLASS.get(severity or Severity.ERROR, "error")
        parts.append(
            f'<rect class="mark {level}" x="{x + w - bw + 6:.1f}" y="{y - 9:.1f}"'
            f' width="{bw:.1f}" height="16" rx="3"/>'
            f'<text class="mark" x="{x + w - bw + 11:.1f}" y="{y + 3:.1f}">{text}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def render_svg(view: MigrationGraphView, number: int) -> str:
    """The graph as an inline <svg> (`number` keeps its marker id unique in the page)."""
    boxes, width, height = layout(view)
    marker = f"arrow-{number}"
    out = [
        f'<svg class="graph" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}"'
        f' height="{height:.0f}" role="img" aria-labelledby="graph-title-{number}">',
        f'<title id="graph-title-{number}">migration graph of {esc(", ".join(view.apps))}</title>',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
        ' markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0,0 L10,5 L0,10 z" fill="#6b7785"/></marker></defs>',
    ]
    out += [_edge(e, boxes, marker) for e in view.edges]
    out += [_node(b, b.node.problem) for b in boxes.values()]
    out.append("</svg>")
    return "\n".join(out)


# -- the page -------------------------------------------------------------------------------


def _finding(finding: Finding, number: int) -> str:
    level = SEVERITY_CLASS[finding.severity]
    code = finding.id.rsplit(".", 1)[-1]
    head = [
        f'<span class="badge {level}">{code}</span>',
        f'<span class="kind">{finding.kind}</span>',
    ]
    if finding.migration:
        head.append(f'<code class="target">{esc(finding.target)}</code>')
    if finding.known:
        head.append('<span class="known">known, in the baseline</span>')
    out = [
        f'<article class="finding {level}" id="finding-{number}" data-id="{finding.id}"'
        f' data-kind="{finding.kind}" data-target="{esc(finding.target)}">',
        f"<h3>{' '.join(head)}</h3>",
        f'<p class="message">{esc(finding.message)}</p>',
    ]
    evidence = [
        (key, value) for key, value in finding.evidence.items() if value not in (None, [], {}, "")
    ]
    if evidence:
        out.append('<dl class="evidence">')
        for key, value in evidence:
            out.append(
                f"<dt>{esc(key.replace('_', ' '))}</dt><dd>{esc(format_value(key, value))}</dd>"
            )
        out.append("</dl>")
    if finding.fix.summary or finding.fix.commands:
        out.append('<div class="fix">')
        if finding.fix.summary:
            out.append(f"<p><strong>Fix:</strong> {esc(finding.fix.summary)}</p>")
        out += [f'<pre class="cmd">$ {esc(c)}</pre>' for c in finding.fix.commands]
        out.append("</div>")
    out.append("</article>")
    return "\n".join(out)


def _unapplied(findings: list[Finding], start: int) -> str:
    items = [
        f'<li class="finding info" id="finding-{start + i}" data-id="{f.id}"'
        f' data-kind="{f.kind}" data-target="{esc(f.target)}"><code>{esc(f.migration or "")}'
        "</code></li>"
        for i, f in enumerate(findings)
    ]
    return (
        f'<h3><span class="badge info">I002</span> <span class="kind">unapplied</span> '
        f"{len(findings)} not applied yet, nothing of them present</h3>"
        f'<ul class="unapplied">{"".join(items)}</ul>'
    )


def _legend() -> str:
    items = "".join(f'<li><span class="s-{s}"></span>{text}</li>' for s, text in LEGEND)
    return (
        f'<ul class="legend">{items}<li>— dependency, <b style="color:#1f6feb">- -</b> across '
        "apps, <b>···</b> a squash replaces; the check ids are on the nodes; a double border is "
        "a squash</li></ul>"
    )


def drawn_apps(report: Report, also: Iterable[str] = ()) -> list[str]:
    """The apps whose graph the page draws: every app with a finding other than `unapplied`,
    and the apps asked for."""
    apps = {f.app for f in report.findings if f.app and f.kind not in UNMARKED}
    return sorted(apps | set(also))


def render_html(report: Report, *, apps: Iterable[str] = (), collapse: bool = True) -> str:
    """The report as one HTML document. `apps`: draw these apps' graphs too (the command
    passes its app labels); `collapse`: fold long straight runs of plain migrations."""
    groups: dict[str, list[Finding]] = defaultdict(list)
    for finding in report.findings:
        groups[finding.app or ""].append(finding)
    drawn = drawn_apps(report, apps)
    sections = sorted(set(groups) | set(drawn), key=lambda a: (a == "", a))
    gs = report.snapshot.graph if report.snapshot is not None else None

    title = f"migration_doctor: database {report.database!r} ({report.vendor})"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="migration_doctor">',
        f"<title>{esc(title)}</title>",
        f"<style>{CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        "<header>",
        "<h1>migration_doctor report</h1>",
        f'<p class="summary">{esc(summary_line(report))}</p>',
        f'<p class="meta">Django {esc(django.get_version())} · migration_doctor {__version__}'
        f" · {report.queries} catalog queries · read only</p>",
        '<ul class="counts">'
        f'<li class="error"><b>{len(report.errors)}</b>errors</li>'
        f'<li class="warning"><b>{len(report.warnings)}</b>warnings</li>'
        f'<li class="info"><b>{len(report.infos)}</b>infos</li></ul>',
    ]
    for position in report.positions:
        out.append(f'<p class="position">{esc(position.describe())}</p>')
    if report.deploy:
        if report.pending:
            items = "".join(f"<li><code>{esc(n)}</code></li>" for n in report.pending)
            out.append(f"<p>migrate will apply {len(report.pending)}:</p><ol>{items}</ol>")
        else:
            out.append("<p>migrate has nothing to apply.</p>")
    if not report.findings:
        out.append('<p class="ok">No findings: rows, migration files and schema agree.</p>')
    out.append("</header>")
    if len(sections) > 1:
        links = []
        for i, app in enumerate(sections):
            found = groups.get(app, [])
            worst = max((f.severity for f in found), default=None)
            level = f' class="{SEVERITY_CLASS[worst]}"' if worst is not None else ""
            links.append(
                f'<li><a href="#app-{i}"{level}>{esc(app or "(project)")}</a> ({len(found)})</li>'
            )
        out.append(f"<nav><h3>Apps</h3><ul>{''.join(links)}</ul></nav>")
    number = 0
    for i, app in enumerate(sections):
        found = groups.get(app, [])
        out.append(f'<section class="app" id="app-{i}" data-app="{esc(app)}">')
        out.append(f"<h2>{esc(app or '(project)')}</h2>")
        if app and app in drawn and gs is not None:
            view = build(gs, report.findings, [app])
            if collapse:
                view = collapse_runs(view)
            if view.nodes:
                out.append("<figure>")
                out.append(render_svg(view, i))
                out.append(
                    f"<figcaption>The migrations of {esc(app)}"
                    + (
                        " and the ones of other apps they depend on"
                        if any(not n.focus for n in view.nodes.values())
                        else ""
                    )
                    + ", dependencies first. Hover a node for its full name.</figcaption>"
                )
                out.append(_legend())
                out.append("</figure>")
        if not found:
            out.append('<p class="ok">No findings.</p>')
        plain = [f for f in found if f.kind not in UNMARKED]
        for finding in plain:
            out.append(_finding(finding, number))
            number += 1
        unapplied = [f for f in found if f.kind in UNMARKED]
        if unapplied:
            out.append(_unapplied(unapplied, number))
            number += len(unapplied)
        out.append("</section>")
    out += ["</main>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
