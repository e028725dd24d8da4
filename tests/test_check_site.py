"""docs/check_site.py finds each rendering fault it is meant to find, and passes clean HTML."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_site", ROOT / "docs" / "check_site.py")
check_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_site)

SIGNATURE = ('<div class="doc-signature highlight"><pre><code><span class="nf">GRUCell</span>(units: int, '
             'activation: str | None = "tanh", **options)</code></pre></div>')
TABLE = ("<table><thead><tr><th>Name</th><th>Type</th><th>Description</th><th>Default</th></tr></thead>"
         "<tbody>{rows}</tbody></table>")
ROW = "<tr class='doc-section-item'><td><code>{}</code></td><td>{}</td><td><p>text</p></td><td>{}</td></tr>"
CLEAN = ("<html><head><link rel='stylesheet' href='assets/site.css'><script src='assets/site.js'></script></head>"
         "<body>" + SIGNATURE + TABLE.format(rows=ROW.format("units", "<code>int</code>", "<em>required</em>")
                                           + ROW.format("activation", "<code>str | None</code>", "<code>'tanh'</code>"))
         + "<p>Prose with <code>x[::-1]</code> and <math><mi>z</mi></math>.</p><pre><code>a::b $$</code></pre>"
         "</body></html>")


def faults_of(html, tmp_path):
    page = tmp_path / "page.html"
    page.write_text(html, encoding="utf-8")
    return check_site.check_page(page)


def test_clean_page_passes(tmp_path):
    assert faults_of(CLEAN, tmp_path) == []


@pytest.mark.parametrize("fault, expected", [
    (SIGNATURE + TABLE.format(rows=ROW.format("activation", "<code>str</code>", "<em>required</em>")),
     "parameter row 'activation' says required, but the signature gives a default"),
    (SIGNATURE + TABLE.format(rows=ROW.format("activation, recurrent_activation", "", "<em>required</em>")),
     "parameter row 'activation, recurrent_activation' documents several parameters at once"),
    (SIGNATURE + TABLE.format(rows=ROW.format("units", "", "<em>required</em>")), "parameter row 'units' has no type"),
    ("<p>computes::</p>", "literal '::' in 'computes::'"),
    ("<p>Bases: <code>_JaxgruModule</code></p>", "private name '_JaxgruModule'"),
    ("<p>See <code>jaxgru._gates</code>.</p>", "private name 'jaxgru._gates'"),
    ("<script src='https://cdn.example.org/mathjax.js'></script>",
     "<script> loaded from the network: https://cdn.example.org/mathjax.js"),
    ("<link rel='stylesheet' href='//fonts.example.org/css'>",
     "<link> loaded from the network: //fonts.example.org/css"),
    ("<script>import('https://cdn.example.org/mermaid.mjs')</script>",
     "<script> fetches from the network: 'https://cdn.example.org/mermaid.mjs'"),
    ("<p>\\(x W_z\\)</p>", "unrendered math in '\\\\(x W_z\\\\)'"),
    ("<p>$$ z = 1 $$</p>", "unrendered math in '$$ z = 1 $$'"),
    ("<p>gate $\\sigma$ here</p>", "unrendered math in 'gate $\\\\sigma$ here'"),
    ("<math><mi>z</mi><mi>&amp;</mi><mo>=</mo></math>", "math with a TeX alignment mark left as a symbol: '&'"),
])
def test_each_fault_is_found(tmp_path, fault, expected):
    assert expected in faults_of(CLEAN.replace("</body>", fault + "</body>"), tmp_path)


def test_site_without_pages_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no HTML pages"):
        check_site.check_site(tmp_path)
