"""Checks the built documentation site (the HTML ``mkdocs build`` writes) for rendering faults.

Usage: ``python docs/check_site.py SITE_DIR``; exits 1 and lists every fault, page by page.

It fails on:

* a parameter row of an API table listed as *required* although the signature above it
  gives that parameter a default, a row naming several parameters at once
  (``activation, recurrent_activation``), or a row without a type;
* a literal ``::`` in prose (an RST literal-block marker that Markdown does not read);
* a private name: a private class (``_JaxgruModule``, ``_CellOptions``) or a private
  module (``jaxgru._gates``) anywhere on a page, code included;
* a script, stylesheet or font loaded from ``http(s)://`` (the site must read offline);
* TeX left unrendered in prose: ``$$``, ``\\(``, ``\\[``, ``\\begin{`` or ``$...$`` around a
  TeX command, or a TeX ``&`` alignment mark left as a MathML symbol.

Only the standard library is used, so it runs wherever ``mkdocs build`` ran.
"""

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

PRIVATE_NAME = re.compile(r"(?<![\w.])_[A-Z][A-Za-z0-9]+\b|\bjaxgru(?:\.[A-Za-z]\w*)*\._[a-z]\w*")
RAW_MATH = re.compile(r"\$\$|\\\(|\\\[|\\begin\{|\$(?=[^$\s])[^$]*?\\[A-Za-z]+[^$]*?\$")
SCRIPT_URL = re.compile(r"[\"'`](?:https?:)?//[^\"'`\s]+[\"'`]")
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
VERBATIM = {"code", "pre", "script", "style", "math"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Page(HTMLParser):
    """Collects the faults of one page while it is parsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.faults: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (tag, class) of every open element
        self.signature = ""  # the text of the latest API signature
        self.in_signature = 0  # stack depth of the signature's div, 0 when outside one
        self.table_header: list[str] = []
        self.row: list[str] | None = None
        self.cell: list[str] | None = None
        self.in_header = False

    # ------------------------------------------------------------------ structure
    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        classes = attributes.get("class") or ""
        self._check_remote(tag, attributes)
        if tag in VOID:
            return
        self.stack.append((tag, classes))
        if tag == "div" and "doc-signature" in classes.split():
            self.in_signature = len(self.stack)
            self.signature = ""
        elif tag == "thead":
            self.in_header, self.table_header = True, []
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th") and self.row is not None:
            self.cell = []

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif tag == "tr" and self.row is not None:
            if self.in_header:
                self.table_header = self.row
            else:
                self._check_parameter_row(self.row)
            self.row = None
        elif tag == "thead":
            self.in_header = False
        while self.stack:  # tolerate unclosed elements, as browsers do
            open_tag, _ = self.stack.pop()
            if len(self.stack) < self.in_signature:
                self.in_signature = 0
            if open_tag == tag:
                break

    def handle_data(self, data):
        if self.stack and self.stack[-1][0] == "script":
            for url in SCRIPT_URL.findall(data):
                self.faults.append(f"<script> fetches from the network: {url}")
        if self.in_signature:
            self.signature += data
        if self.cell is not None:
            self.cell.append(data)
        for name in PRIVATE_NAME.findall(data):
            self.faults.append(f"private name {name!r}")
        if self.stack and self.stack[-1][0] == "mi" and data.strip() in ("&", "\\"):
            self.faults.append(f"math with a TeX alignment mark left as a symbol: {data.strip()!r}")
        if not any(tag in VERBATIM for tag, _ in self.stack):
            if "::" in data:
                self.faults.append(f"literal '::' in {' '.join(data.split())[:80]!r}")
            if RAW_MATH.search(data):
                self.faults.append(f"unrendered math in {' '.join(data.split())[:80]!r}")

    # ------------------------------------------------------------------ checks
    def _check_remote(self, tag, attributes):
        source = None
        if tag == "script":
            source = attributes.get("src")
        elif tag == "link" and {"stylesheet", "preload", "modulepreload", "preconnect"} & set(
                (attributes.get("rel") or "").split()):
            source = attributes.get("href")
        elif tag == "style" or tag == "img":
            source = attributes.get("src")
        if source and REMOTE.match(source):
            self.faults.append(f"<{tag}> loaded from the network: {source}")

    def _check_parameter_row(self, row):
        header = [name.lower() for name in self.table_header]
        if header[:2] != ["name", "type"] or len(row) != len(header):
            return
        name, kind = row[0], row[1]
        if "," in name:
            self.faults.append(f"parameter row {name!r} documents several parameters at once")
        if not kind:
            self.faults.append(f"parameter row {name!r} has no type")
        if "default" in header and row[header.index("default")] == "required":
            bare = name.lstrip("*")
            if re.search(rf"(?<![\w.]){re.escape(bare)}\s*(?::[^=,()]*(?:\[[^\]]*\])?[^=,()]*)?=", self.signature):
                self.faults.append(f"parameter row {name!r} says required, but the signature gives a default")

    def handle_startendtag(self, tag, attrs):
        self._check_remote(tag, dict(attrs))


def check_page(path: Path) -> list[str]:
    """The faults of one HTML page."""
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return sorted(set(page.faults))


def check_site(site: Path) -> dict[str, list[str]]:
    """``{page: faults}`` for every page of the built site that has any."""
    pages = sorted(site.rglob("*.html"))
    if not pages:
        raise FileNotFoundError(f"{site}: no HTML pages (run mkdocs build first)")
    found = {str(path.relative_to(site)): check_page(path) for path in pages}
    return {page: faults for page, faults in found.items() if faults}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python docs/check_site.py SITE_DIR", file=sys.stderr)
        return 2
    faults = check_site(Path(argv[0]))
    for page, page_faults in faults.items():
        print(f"{page}:")
        for fault in page_faults:
            print(f"  {fault}")
    if faults:
        print(f"check_site: {sum(map(len, faults.values()))} faults on {len(faults)} pages")
        return 1
    print("check_site: no faults")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
