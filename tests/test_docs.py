"""The documentation site stays true: its Python runs and its API reference names real objects.

* Every ```python block of every page under docs/ runs alone, in a fresh namespace of its
  own (code_blocks.py), as a reader pastes it into a fresh interpreter.
* Every ``::: name`` directive (mkdocstrings) names an importable object, and every name an
  explicit ``members:`` option lists exists on it.
* Every name in ``jaxgru.__all__`` is documented by one of those directives.
"""

import importlib
import re
from pathlib import Path

import pytest

from code_blocks import assert_blocks_run_alone, fenced_blocks, uses_heavy_references
from references import HEAVY

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md") if "notebooks" not in path.relative_to(DOCS).parts)
CODE_PAGES = [page for page in PAGES if fenced_blocks(page.read_text(encoding="utf-8"), "python")]
DIRECTIVE = re.compile(r"^::: *([\w.]+)[ \t]*\n((?:(?:[ \t]+[^\n]*)?\n)*)", re.MULTILINE)
MEMBERS = re.compile(r"^[ \t]+members:[ \t]*\[([^\]]*)\]", re.MULTILINE)


def directives() -> list[tuple[Path, str, list[str] | None]]:
    """``(page, identifier, explicit members or None)`` for every ``::: identifier`` in docs/."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in DIRECTIVE.finditer(text):
            members = MEMBERS.search(match.group(2))
            names = None if members is None else [name.strip() for name in members.group(1).split(",")
                                                   if name.strip()]
            found.append((page, match.group(1), names))
    return found


def resolve(identifier: str):
    """The object a dotted name points to: the longest importable module file, then
    attributes, as mkdocstrings reads the source: a module without a file (``jaxgru.rnn``
    of earlier releases, kept in ``sys.modules`` for its deprecation) is not one, so
    ``jaxgru.rnn`` is the function."""
    parts = identifier.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and not module_name.startswith(error.name):
                raise  # the module exists but one of its own imports is missing
            continue
        if getattr(obj, "__file__", None) is None:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part)
        return obj
    raise ModuleNotFoundError(identifier)


def test_pages_exist():
    assert PAGES, "docs/ has no pages"
    assert any(fenced_blocks(page.read_text(encoding="utf-8"), "python") for page in PAGES), \
        "docs/ has no ```python blocks to check"


@pytest.mark.parametrize("page", [pytest.param(page, marks=[HEAVY] if uses_heavy_references(page) else [])
                                  for page in CODE_PAGES], ids=[str(page.relative_to(DOCS)) for page in CODE_PAGES])
def test_python_blocks_run_alone(page):
    assert_blocks_run_alone(page)


def test_api_directives_resolve():
    found = directives()
    assert found, "docs/ has no ::: directives"
    problems = []
    for page, identifier, members in found:
        where = f"{page.relative_to(ROOT)}: ::: {identifier}"
        try:
            obj = resolve(identifier)
        except (ImportError, AttributeError) as error:
            problems.append(f"{where}: {type(error).__name__}: {error}")
            continue
        for name in members or []:
            if not hasattr(obj, name):
                problems.append(f"{where}: no member {name!r}")
    assert not problems, "\n".join(problems)


def test_every_public_name_is_documented():
    import jaxgru

    documented = set()
    for _, identifier, members in directives():
        try:
            obj = resolve(identifier)
        except (ImportError, AttributeError):
            continue  # reported by test_api_directives_resolve
        documented.add(id(obj))
        documented.update(id(getattr(obj, name)) for name in members or [] if hasattr(obj, name))
    missing = [name for name in jaxgru.__all__ if id(getattr(jaxgru, name)) not in documented]
    assert not missing, f"names in jaxgru.__all__ without a ::: directive in docs/: {missing}"


@pytest.mark.parametrize("identifier, expected", [
    ("jaxgru.rnn", "function"),        # not the deprecated module of that name
    ("jaxgru.interop.torch", "module"),
    ("jaxgru.GRUCell.init", "function"),
    ("jaxgru.interop.torch.from_torch", "function"),
])
def test_resolve(identifier, expected):
    assert type(resolve(identifier)).__name__ == expected
