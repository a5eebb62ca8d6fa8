"""`--format html`: one self-contained page, read back with html.parser and drawn by a real
headless Chromium (the distribution's package).

The page must hold every finding of the report, its graphs must be the apps' real graphs
with the findings' ids on the nodes, it must reference nothing outside itself (no script, no
stylesheet, image or font from elsewhere), hostile names must stay text, and a browser must
draw something on the screen, not a blank page.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from migration_doctor.diagnose import diagnose
from migration_doctor.render.html import render_html
from migration_doctor.render.safe import shown
from migration_doctor.render.text import summary_line

from . import helpers as h
from .conftest import REQUIRE_DB
from .reliability.test_escaping import (  # noqa: F401  (fixtures)
    DIRECTORY,
    HOSTILE_APP,
    MIGRATION,
    ROW_NAMES,
    TABLE,
    assert_inert,
    hostile,
    package,
    raw_controls,
)

# Every element the renderer writes; a name that became markup would add another.
OWN_TAGS = {
    "html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p",
    "ul", "ol", "li", "b", "strong", "nav", "a", "section", "figure", "figcaption", "svg",
    "defs", "marker", "path", "g", "rect", "text", "span", "article", "code", "dl", "dt",
    "dd", "div", "pre",
}  # fmt: skip


class Page(HTMLParser):
    """Tags, attributes and text of a page, for the assertions."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [a for _, a in self.tags if name in a.get("class", "").split()]


run = h.doctor


def break_it(alias: str) -> None:
    """The demo's breaks: rows deleted by hand, a migration half applied, a dependency
    un-recorded, a row of a deleted file, a stray table."""
    h.migrate(alias)
    h.unrecord(alias, "orders", "0002_order_note")
    h.unrecord(alias, "orders", "0003_order_default_notes")
    h.unrecord(alias, "catalog", "0003_product_sku_stock")
    h.remove_field(alias, "catalog.Product", "stock")
    h.unrecord(alias, "admin", "0002_logentry_remove_auto_add")
    h.record(alias, "catalog", "0004_product_barcode")
    h.sql(alias, f"CREATE TABLE {h.qn(alias, 'legacy_audit_log')} (id integer PRIMARY KEY)")


def assert_every_finding_listed(page: Page, findings: list[Any]) -> None:
    listed = Counter((a["data-id"], a["data-target"]) for a in page.with_class("finding"))
    assert listed == Counter((f.id, shown(f.target)) for f in findings)


def test_every_finding_and_graph_is_on_the_page(fresh_db: str) -> None:
    break_it(fresh_db)
    status, out = run(fresh_db, "--format", "html")
    assert status == 1  # the exit status of the diagnosis, whatever the format
    report = diagnose(fresh_db)
    page = Page(out)
    assert_every_finding_listed(page, report.findings)
    ids = {f.id.rsplit(".", 1)[1] for f in report.findings}
    assert {"E001", "E002", "E003", "W001"} <= ids
    # Each app with a finding has its graph: the loader's nodes, marked with the findings.
    sections = [a for t, a in page.tags if t == "section"]
    assert {s["data-app"] for s in sections} >= {"orders", "catalog", "admin"}
    nodes = {a["data-node"]: a for a in page.with_class("node")}
    graph = report.snapshot.graph.loader.graph  # type: ignore[union-attr]
    for app in ("orders", "catalog", "admin"):
        assert {f"{a}.{n}" for a, n in graph.nodes if a == app} <= set(nodes)
    assert nodes["orders.0002_order_note"]["data-marks"] == "E001"
    assert nodes["orders.0002_order_note"]["data-style"] == "broken"
    assert nodes["catalog.0003_product_sku_stock"]["data-marks"] == "E002"
    assert nodes["admin.0003_logentry_add_action_flag_choices"]["data-marks"] == "E003"
    assert nodes["admin.0002_logentry_remove_auto_add"]["data-style"] == "unapplied"
    assert nodes["catalog.0001_initial"]["data-style"] == "applied"
    # The row without a file, and orders' dependency on catalog (another app), are drawn.
    assert nodes["catalog.0004_product_barcode"]["data-marks"] == "W001"
    assert "catalog.0001_initial" in nodes and "auth.0001_initial" in nodes
    cross = [a for _, a in page.tags if "cross" in a.get("class", "").split()]
    assert cross, "no cross-app edge drawn"
    assert summary_line(report) in "".join(page.text)


def test_nothing_outside_the_file_is_referenced(fresh_db: str) -> None:
    break_it(fresh_db)
    _, out = run(fresh_db, "--format", "html")
    page = Page(out)
    assert out.startswith("<!DOCTYPE html>")
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            if name in {"src", "href", "xlink:href", "action", "poster", "data", "srcset"}:
                assert value.startswith("#"), (tag, name, value)  # in-page anchors only
            assert not value.lstrip().lower().startswith(("http:", "https:", "//", "data:"))
            if name == "marker-end":
                assert value.startswith("url(#"), value
            if name == "style":
                assert "url(" not in value and "@import" not in value
    css = "".join(page.styles)
    assert css.strip() and "@import" not in css and "url(" not in css and "@font-face" not in css
    assert "http://" not in css and "https://" not in css


def test_hostile_names_stay_text(hostile: str) -> None:  # noqa: F811
    status, out = run(hostile, "--format", "html")
    assert status == 1
    assert_inert(out)  # no raw control or bidi character, no workflow command, no ##[
    page = Page(out)
    assert {t for t, _ in page.tags} <= OWN_TAGS
    report = diagnose(hostile)
    assert_every_finding_listed(page, report.findings)
    targets = {a["data-target"] for a in page.with_class("finding")}
    for name in ROW_NAMES:
        assert shown(f"catalog.{name}") in targets
    assert shown(f"catalog.{MIGRATION}") in targets
    assert shown(HOSTILE_APP) in {a["data-app"] for _, a in page.tags if "data-app" in a}
    text = "".join(page.text)
    assert shown(TABLE) in text
    assert "[bold red]markup[/]" in text
    # The hostile migration is a node of catalog's graph (marked), its rows are too.
    nodes = {a["data-node"]: a for a in page.with_class("node")}
    assert nodes[shown(f"catalog.{MIGRATION}")]["data-marks"] == "E001"
    assert nodes[shown(f"catalog.{ROW_NAMES[0]}")]["data-marks"] == "W001"
    assert raw_controls("".join(a for _, attrs in page.tags for a in attrs.values())) == []


def test_long_histories_are_folded(fresh_db: str, migration_package: Any) -> None:
    """A long straight run of unremarkable migrations is one node; the finding stays."""
    sources = h.app_migration_sources("catalog")
    previous = "0003_product_sku_stock"
    for i in range(4, 16):
        name = f"{i:04d}_step"
        sources[name] = (
            "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
            f"    dependencies = [('catalog', {previous!r})]\n    operations = []\n"
        )
        previous = name
    migration_package("catalog", sources)
    h.migrate(fresh_db)
    h.unrecord(fresh_db, "catalog", "0015_step")
    h.record(fresh_db, "catalog", "0099_gone")  # a finding, so that catalog is drawn
    report = diagnose(fresh_db)
    page = Page(render_html(report))
    nodes = {a["data-node"]: a for a in page.with_class("node")}
    assert "catalog.0001_initial" in nodes and "catalog.0015_step" in nodes
    assert nodes["catalog.0099_gone"]["data-marks"] == "W001"
    folded = [n for n in nodes if n.startswith("catalog.") and "migrations" in n]
    assert len(folded) == 1, sorted(nodes)
    assert "catalog.0008_step" not in nodes
    whole = Page(render_html(report, collapse=False))
    assert "catalog.0008_step" in {a["data-node"] for a in whole.with_class("node")}


# -- the browser ----------------------------------------------------------------------------


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB/RGBA PNG (what Chromium writes),
    decoded with zlib alone."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = chunk
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return width, height, [bytes(r) for r in rows]


def colours(rows: list[bytes], bpp: int) -> Counter[bytes]:
    seen: Counter[bytes] = Counter()
    for row in rows:
        for i in range(0, len(row), bpp):
            seen[row[i : i + 3]] += 1
    return seen


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        reason = "chromium is not installed (apt-get install -y chromium)"
        if REQUIRE_DB:
            pytest.fail(reason + " (MIGRATION_DOCTOR_REQUIRE_DB=1)")
        pytest.skip(reason)
    return found


def screenshot(page: Path, png: Path, tmp_path: Path) -> bytes:
    browser = chromium()
    done = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
            "--window-size=1200,1600", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=180,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert png.is_file(), done.stdout + done.stderr
    return png.read_bytes()


def test_a_real_browser_draws_the_report(fresh_db: str, tmp_path: Path) -> None:
    break_it(fresh_db)
    _, out = run(fresh_db, "--format", "html")
    page = tmp_path / "report.html"
    page.write_text(out, encoding="utf-8")
    data = screenshot(page, tmp_path / "report.png", tmp_path)
    width, height, rows = png_pixels(data)
    assert (width, height) == (1200, 1600)
    bpp = len(rows[0]) // width
    seen = colours(rows, bpp)
    _, most = seen.most_common(1)[0]
    assert len(seen) > 50, f"only {len(seen)} colours: a blank page"
    assert most < 0.95 * width * height, "almost every pixel is the background"
    # The error count's box, the badges and the broken nodes use the error colours.
    reds = sum(n for c, n in seen.items() if c[0] > 150 and c[1] < 90 and c[2] < 80)
    assert reds > 200, "nothing drawn in the error colour"


def test_the_decoder_sees_a_blank_page_as_blank(tmp_path: Path) -> None:
    """The check above can fail: an empty page decodes to a single colour."""
    page = tmp_path / "blank.html"
    page.write_text("<!DOCTYPE html><html><body></body></html>")
    width, _, rows = png_pixels(screenshot(page, tmp_path / "blank.png", tmp_path))
    seen = colours(rows, len(rows[0]) // width)
    assert len(seen) == 1
