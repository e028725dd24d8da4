"""Runs the ```python blocks of a Markdown file as a reader copies them: each one alone.

All blocks of one file run in ONE child interpreter (imports are cached, so the file pays
for jax, tf_keras or torch once), each in a fresh namespace of its own: a block that uses a
name another block defined fails with ``NameError``, as it would in a fresh interpreter.
The child applies the same warning filters as pytest (``filterwarnings`` in pyproject.toml:
warnings are errors, except the listed third-party ones) and reports every failing block
with its file line and traceback.
"""

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)

_CHILD = r"""
import importlib, json, sys, traceback, warnings

request = json.load(sys.stdin)
warnings.simplefilter("error")
for entry in request["filters"]:
    action, message, category, module = (entry.split(":", 3) + ["", "", ""])[:4]
    if category:
        module_name, _, name = category.rpartition(".")
        category = getattr(importlib.import_module(module_name or "builtins"), name)
    else:
        category = Warning
    warnings.filterwarnings(action, message=message, category=category, module=module)

failures = []
for line, code in request["blocks"]:
    namespace = {"__name__": "__main__"}
    try:
        # Padded so that a traceback points at the file's own line numbers.
        exec(compile("\n" * (line - 1) + code, request["path"], "exec"), namespace)
    except BaseException:
        failures.append([line, traceback.format_exc()])
print("\n@@results@@" + json.dumps(failures))
"""


def fenced_blocks(text: str, language: str) -> list[tuple[int, str]]:
    """``(line of the block's first code line, code)`` for every ```language block."""
    return [(text.count("\n", 0, match.start(2)) + 1, match.group(2))
            for match in FENCE.finditer(text) if match.group(1) == language]


def _warning_filters() -> list[str]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return tomllib.load(file)["tool"]["pytest"]["ini_options"]["filterwarnings"]


def run_alone(path: str, blocks: list[tuple[int, str]], timeout: float = 600) -> list[tuple[int, str]]:
    """Runs every ``(line, code)`` block in a fresh namespace of one child interpreter.

    Returns ``(line, traceback)`` for each block that raised; an empty list when all ran.
    The child imports this checkout's jaxgru (the repository root leads ``PYTHONPATH``).
    """
    python_path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = dict(os.environ, PYTHONPATH=python_path, MPLBACKEND="Agg")
    request = json.dumps({"path": str(path), "blocks": blocks, "filters": _warning_filters()})
    done = subprocess.run([sys.executable, "-c", _CHILD], input=request, capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)
    head, marker, results = done.stdout.rpartition("\n@@results@@")
    if done.returncode != 0 or not marker:
        raise AssertionError(f"{path}: the child interpreter exited with status {done.returncode}:\n"
                             f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return [(line, trace) for line, trace in json.loads(results)]


def assert_blocks_run_alone(path: Path, language: str = "python") -> None:
    """Fails, naming each block's line and its traceback, unless every block of ``path`` runs alone."""
    blocks = fenced_blocks(path.read_text(encoding="utf-8"), language)
    failures = run_alone(str(path), blocks)
    name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    assert not failures, "\n".join(f"{name}, block at line {line} fails alone:\n{trace}" for line, trace in failures)
