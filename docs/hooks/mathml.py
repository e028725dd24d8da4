"""MkDocs hook: every formula rendered to MathML when the site is built.

``pymdownx.arithmatex`` (generic mode) leaves TeX in ``<span class="arithmatex">\\(...\\)</span>``
and ``<div class="arithmatex">\\[...\\]</div>``; this hook replaces each with the MathML that
``latex2mathml`` (pure Python, in the ``docs`` extra) converts it to. Browsers draw MathML
natively, so the pages need no script and no network: the site reads the same offline.
A formula the converter cannot read fails the build, naming the page and the formula.

Notebook pages (mkdocs-jupyter) keep their TeX as ``$...$`` and ``$$...$$`` and carry a
MathJax loader with no source and a diagram loader that fetches from a CDN; there the
math is converted the same way (outside code and scripts) and both loaders are dropped.
"""

import html
import re

from latex2mathml.converter import convert

# latex2mathml reads align* (a table of aligned rows) but not aligned, its inline twin.
_ALIASES = {"{aligned}": "{align*}"}
_MATH = re.compile(r'<(span|div) class="arithmatex">\\([(\[])(.*?)\\[)\]]</\1>', re.DOTALL)


def _tex(source: str) -> str:
    tex = html.unescape(source).strip()
    for name, alias in _ALIASES.items():
        tex = tex.replace(name, alias)
    return tex


def _mathml(match: re.Match, page) -> str:
    display = "block" if match.group(2) == "[" else "inline"
    tex = _tex(match.group(3))
    try:
        return convert(tex, display=display)
    except Exception as error:  # the converter raises several types; say where it failed
        raise ValueError(f"{page.file.src_path}: cannot render the formula {tex!r}: {error}") from error


def on_page_content(content, page, config, files):
    return _MATH.sub(lambda match: _mathml(match, page), content)


_NOTEBOOK_MATHJAX = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.DOTALL)
_REMOTE_LOADER = re.compile(r"<script\b[^>]*>(?:(?!</script>).)*?https?://(?:(?!</script>).)*?</script>", re.DOTALL)
_VERBATIM = re.compile(r"(<(script|style|pre|code)\b.*?</\2>)", re.DOTALL)
_DOLLARS = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$", re.DOTALL)


def _dollar_math(match: re.Match, page) -> str:
    block = match.group(1) is not None
    tex = _tex(match.group(1) if block else match.group(2))
    try:
        return convert(tex, display="block" if block else "inline")
    except Exception as error:
        raise ValueError(f"{page.file.src_path}: cannot render the formula {tex!r}: {error}") from error


def on_post_page(output, page, config):
    if not page.file.src_path.endswith(".ipynb"):
        return output
    output = _REMOTE_LOADER.sub("", _NOTEBOOK_MATHJAX.sub("", output))
    head, body_tag, body = output.partition("<body")
    parts = _VERBATIM.split(body)
    # split() with two groups yields [text, verbatim, tag name, text, ...]: convert the text only
    for index in range(0, len(parts), 3):
        parts[index] = _DOLLARS.sub(lambda match: _dollar_math(match, page), parts[index])
    return head + body_tag + "".join(part for index, part in enumerate(parts) if index % 3 != 2)
