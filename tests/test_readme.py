"""README.md stays true: its Python runs, its commands and paths name real things.

* Every ```python block runs alone, in a fresh namespace of its own, as a reader pastes it
  into a fresh interpreter (a README without any fails: there would be nothing to check).
* Every command in a ```bash block is checked for what it names: ``python -m jaxgru ...``
  arguments parse with the real command line, ``python -m MODULE`` modules exist,
  ``python -c`` code runs, ``python FILE`` and repository paths exist, and
  ``pip install -e ".[EXTRAS]"`` / ``"jaxgru[EXTRAS]"`` extras are declared in
  pyproject.toml. The quick start must include ``python -m jaxgru demo``.
* Repository paths quoted anywhere in the text (``notebooks/...``, ``examples/...``) exist.
"""

import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from code_blocks import assert_blocks_run_alone, fenced_blocks, run_alone
from jaxgru.__main__ import build_parser
from references import HEAVY

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SOURCE_DIRS = ("notebooks", "examples", "benchmarks", "jaxgru", "tests", "docs")
REPO_PATH = re.compile(rf"\b(?:{'|'.join(SOURCE_DIRS)})/[\w./-]*\w")
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}
PYTHONS = {"python", "python3"}
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")


def shell_commands(text: str) -> list[tuple[int, list[str]]]:
    """``(line, words)`` of every simple command in the ```bash blocks (split at ``&&``, ``;``, ...)."""
    commands = []
    for first_line, block in fenced_blocks(text, "bash"):
        for offset, row in logical_lines(block):
            lexer = shlex.shlex(row, posix=True, punctuation_chars=";&|")
            lexer.whitespace_split = True
            words = []
            for token in [*lexer, ";"]:
                if token in SHELL_OPERATORS:
                    if words:
                        commands.append((first_line + offset, words))
                    words = []
                elif words or not ENV_ASSIGNMENT.fullmatch(token):  # VAR=value before a command sets its environment
                    words.append(token)
    return commands


def logical_lines(block: str) -> list[tuple[int, str]]:
    """``(offset, line)`` of a shell block's lines, a line ending in a backslash joined with the next."""
    lines, start, pending = [], 0, ""
    for offset, row in enumerate(block.splitlines()):
        if not pending:
            start = offset
        if row.endswith("\\"):
            pending += row[:-1] + " "
        else:
            lines.append((start, pending + row))
            pending = ""
    if pending:
        lines.append((start, pending))
    return lines


def declared_extras() -> set[str]:
    with open(ROOT / "pyproject.toml", "rb") as file:
        return set(tomllib.load(file)["project"]["optional-dependencies"])


def requested_extras(word: str) -> set[str]:
    """The extras of ``.[a,b]`` or ``jaxgru[a,b]``; empty for any other requirement."""
    match = re.fullmatch(r"(?:\.|jaxgru)\[([\w,\s-]+)\]", word)
    return {extra.strip() for extra in match.group(1).split(",")} if match else set()


def check_command(words: list[str]) -> None:
    program, args = words[0], words[1:]
    if program in PYTHONS and args[:1] == ["-m"]:
        module, module_args = args[1], args[2:]
        assert importlib.util.find_spec(module) is not None, f"no module {module!r}"
        if module == "jaxgru":
            try:
                build_parser().parse_args(module_args)
            except SystemExit as exit_info:  # --help exits 0; a bad option exits 2
                assert exit_info.code == 0, f"python -m jaxgru rejects {module_args}"
    elif program in PYTHONS and args[:1] == ["-c"]:
        exec(compile(args[1], "<README python -c>", "exec"), {"__name__": "__readme__"})
    elif program in PYTHONS and args and args[0].endswith(".py"):
        assert (ROOT / args[0]).is_file(), f"no file {args[0]}"
    elif program == "pip" and args[:1] == ["install"]:
        for word in args[1:]:
            missing = requested_extras(word) - declared_extras()
            assert not missing, f"pyproject.toml declares no extras {sorted(missing)}"
    for word in args:
        for path in REPO_PATH.findall(word):
            assert (ROOT / path).exists(), f"no path {path}"


@HEAVY  # the README's blocks use tf_keras
def test_python_blocks_run_alone():
    assert fenced_blocks(README.read_text(encoding="utf-8"), "python"), "README.md has no ```python blocks"
    assert_blocks_run_alone(README)


def test_a_block_that_needs_another_fails(tmp_path):
    """The check itself: a name defined by an earlier block is not there; each failure is reported."""
    page = tmp_path / "page.md"
    page.write_text("```python\nimport math\nvalue = 2\n```\n\n```python\nprint(value)\n```\n\n"
                    "```python\nmath.sqrt(4)\n```\n\n```python\nimport math\nassert math.sqrt(4) == 2\n```\n")
    failures = run_alone(str(page), fenced_blocks(page.read_text(), "python"))
    assert [(line, trace.strip().splitlines()[-1]) for line, trace in failures] == [
        (7, "NameError: name 'value' is not defined"), (11, "NameError: name 'math' is not defined")]
    with pytest.raises(AssertionError, match="block at line 7 fails alone"):
        assert_blocks_run_alone(page)


def test_shell_commands_name_real_things():
    commands = shell_commands(README.read_text(encoding="utf-8"))
    assert any(words[:4] == ["python", "-m", "jaxgru", "demo"] for _, words in commands), \
        "the quick start runs `python -m jaxgru demo`"
    for line, words in commands:
        try:
            check_command(words)
        except AssertionError as error:
            raise AssertionError(f"README.md line {line}: {shlex.join(words)}: {error}") from None


def test_quoted_repository_paths_exist():
    text = README.read_text(encoding="utf-8")
    missing = sorted({path for path in REPO_PATH.findall(text) if not (ROOT / path).exists()})
    assert not missing, f"README.md names paths that do not exist: {missing}"


@pytest.mark.parametrize("row, expected", [
    ('pip install -e ".[demo]" && python -m jaxgru demo --steps 5  # comment',
     [["pip", "install", "-e", ".[demo]"], ["python", "-m", "jaxgru", "demo", "--steps", "5"]]),
    ('python -c "import jax; print(1)"; ls', [["python", "-c", "import jax; print(1)"], ["ls"]]),
    ('XLA_FLAGS=--a=1 python run.py \\\n    --n 2 &\nA=1 B=2 ls X=3', [["python", "run.py", "--n", "2"], ["ls", "X=3"]]),
])
def test_shell_command_splitting(row, expected):
    assert [words for _, words in shell_commands(f"```bash\n{row}\n```\n")] == expected
