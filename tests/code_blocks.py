"""Runs the ```python blocks of a Markdown file as a reader copies them: each one alone.

Every block runs in this test process, in a fresh namespace of its own: a block that uses
a name another block defined fails with ``NameError``, as it would in a fresh interpreter.
What the blocks share is what an interpreter caches, the imported modules (so a page pays
for jax, tf_keras or torch once per test process, not once per page) and JAX's compiled
programs; what a block may change for the whole process is put back after it, so that no
block sees another's: ``jax.config`` (a block may turn on float64), ``os.environ``,
``sys.path``, the working directory (the repository root while blocks run), Keras 3's
dtype policy, and open matplotlib figures. Warnings are the test's (pytest's
``filterwarnings``: errors, except the listed third-party ones). Every failing block is
reported with its file line and traceback.

The test process has eight CPU devices and compiles with XLA's backend optimizations off
(conftest.py), where a reader's has one device and JAX's defaults: a block that uses
`jaxgru.parallel` must work with either, and a block's printed numbers may differ from the
reader's in the last bit.
"""

import contextlib
import os
import re
import sys
import traceback
from pathlib import Path

import jax

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
# A page whose blocks import TensorFlow (tf_keras, SavedModel), torch or Keras 3 (which
# imports TensorFlow where it is installed) runs in the xdist group that keeps them on one
# worker (references.HEAVY).
HEAVY_IMPORTS = re.compile(r"\b(tensorflow|tf_keras|torch)\b|^\s*(import|from)\s+(keras|jaxgru\.keras)\b"
                           r"|^\s*from\s+jaxgru\s+import\s+keras\b", re.MULTILINE)


def fenced_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """``(line of the block's first code line, code)`` for every ```language block."""
    return [(text.count("\n", 0, match.start(2)) + 1, match.group(2))
            for match in FENCE.finditer(text) if match.group(1) == language]


def uses_heavy_references(path: Path) -> bool:
    """Whether a page's python blocks import TensorFlow, tf_keras, torch or Keras 3."""
    return any(HEAVY_IMPORTS.search(code) for _, code in fenced_blocks(path.read_text(encoding="utf-8"), "python"))


@contextlib.contextmanager
def _process_state_restored():
    """Puts back, on exit, what a block may change for the whole process."""
    config = dict(jax.config.values)
    environ, path, cwd = dict(os.environ), list(sys.path), os.getcwd()
    keras = sys.modules.get("keras")
    policy = keras.config.dtype_policy() if keras is not None else None
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        # Only what changed: unsetting a variable while a library's thread reads the
        # environment can crash the process.
        for name in set(os.environ) - set(environ):
            del os.environ[name]
        for name, value in environ.items():
            if os.environ.get(name) != value:
                os.environ[name] = value
        for name, value in config.items():
            if jax.config.values.get(name) != value:
                jax.config.update(name, value)
        if policy is not None:
            keras.config.set_dtype_policy(policy)
        if "matplotlib.pyplot" in sys.modules:
            sys.modules["matplotlib.pyplot"].close("all")


def run_alone(path: str, blocks: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Runs every ``(line, code)`` block in a fresh namespace, in this process.

    Returns ``(line, traceback)`` for each block that raised; an empty list when all ran.
    """
    failures = []
    for line, code in blocks:
        namespace = {"__name__": "__main__"}
        with _process_state_restored():
            try:
                # Padded so that a traceback points at the file's own line numbers.
                exec(compile("\n" * (line - 1) + code, path, "exec"), namespace)
            except (Exception, SystemExit):  # a block's sys.exit() is its failure, not the test's end
                failures.append((line, traceback.format_exc()))
        namespace.clear()
    return failures


def assert_blocks_run_alone(path: Path, language: str = "python") -> None:
    """Fails, naming each block's line and its traceback, unless every block of ``path`` runs alone."""
    blocks = fenced_blocks(path.read_text(encoding="utf-8"), language)
    failures = run_alone(str(path), blocks)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    assert not failures, "\n".join(f"{name}, block at line {line} fails alone:\n{trace}" for line, trace in failures)
