"""The public surface: what each module exports, what it imports, and the aliases."""

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import jaxgru
from jaxgru._deprecations import DEPRECATED_MODULES, FILELESS_MODULES, MOVED_NAMES
from references import HEAVY

# Importing every public module imports jaxgru.keras, which imports Keras 3 on TensorFlow.
pytestmark = HEAVY

PACKAGE = Path(jaxgru.__file__).parent
MOST_PUBLIC_NAMES = 120


def module_name(path):
    return ".".join(("jaxgru", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")


# Modules a user imports: every one declares its public names. Modules, packages and names
# with a leading underscore are jaxgru's internals; deprecated modules warn on import.
PUBLIC_MODULES = sorted(module_name(p) for p in PACKAGE.rglob("*.py")
                        if p.name != "__main__.py" and module_name(p) not in {"jaxgru", *DEPRECATED_MODULES}
                        and not any(part.startswith("_") and part != "__init__.py"
                                    for part in p.relative_to(PACKAGE).parts))


@pytest.mark.parametrize("module", ["jaxgru", *PUBLIC_MODULES])
def test_every_public_module_declares_names_that_exist(module):
    loaded = importlib.import_module(module)
    assert loaded.__all__ and all(hasattr(loaded, name) for name in loaded.__all__), module
    assert not [name for name in loaded.__all__ if name.startswith("_")]


def test_discovery_skips_private_packages_and_deprecated_modules():
    assert {"jaxgru.demo", "jaxgru.linen", "jaxgru.keras", "jaxgru.interop.onnx"} <= set(PUBLIC_MODULES)
    assert not [m for m in PUBLIC_MODULES if "._" in m or m in DEPRECATED_MODULES]
    assert (PACKAGE / "_keras_objects" / "initializers.py").exists() and (PACKAGE / "demo" / "_tasks.py").exists()


def test_the_public_surface_has_at_most_120_names():
    """Every name a user can hold: the sum of ``__all__`` over jaxgru and its public modules
    (re-exports count again), deprecated modules excluded."""
    counts = {module: len(importlib.import_module(module).__all__) for module in ["jaxgru", *PUBLIC_MODULES]}
    assert sum(counts.values()) <= MOST_PUBLIC_NAMES, counts


def test_every_deprecation_is_in_the_one_table():
    """Only jaxgru._deprecations warns DeprecationWarning; a module warns on import exactly
    when `DEPRECATED_MODULES` lists it; a module's ``__getattr__`` is the table's
    (`module_getattr`), and every `MOVED_NAMES` module has it and no longer exports the name."""
    warning_modules, getattr_modules = set(), set()
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        if path.name != "_deprecations.py":
            assert "DeprecationWarning" not in text.replace("(`DeprecationWarning`)", ""), path
        if "warn_deprecated_module(__name__)" in text:
            warning_modules.add(module_name(path))
        for node in ast.parse(text).body:  # a module-level __getattr__ is the table's
            if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
                raise AssertionError(f"{path} defines its own __getattr__")
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__getattr__" for t in node.targets):
                assert ast.unparse(node.value) == "module_getattr(__name__)", path
                getattr_modules.add(module_name(path))
    assert warning_modules == set(DEPRECATED_MODULES)
    assert set(MOVED_NAMES) - set(FILELESS_MODULES) <= getattr_modules
    for module, names in MOVED_NAMES.items():
        if module in FILELESS_MODULES:  # every name moved: a module object with the table's __getattr__
            assert not (PACKAGE / f"{module.split('.')[-1]}.py").exists(), module
            assert not hasattr(sys.modules[module], "__all__"), module
            continue
        assert module in PUBLIC_MODULES or module in DEPRECATED_MODULES, module
        with warnings.catch_warnings():  # a deprecated module warns on import
            warnings.simplefilter("ignore", DeprecationWarning)
            exported = importlib.import_module(module).__all__
        assert not set(names) & set(exported), module


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_imported_across_modules(path):
    """A leading underscore on a name means "this module only": no module imports
    another's private names (internal *modules* such as ``jaxgru._core.gates`` are shared),
    nor Flax's internal modules."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        package = node.module.split(".")[0]
        if package == "jaxgru":  # `from jaxgru.demo import _tasks` imports a module, not a name
            folder = PACKAGE.joinpath(*node.module.split(".")[1:])
            private = [name for name in (alias.name for alias in node.names)
                       if name.startswith("_") and not name.startswith("__")  # __version__ is public
                       and not (folder / f"{name}.py").exists() and not (folder / name).is_dir()]
            assert not private, f"{path.name} imports {private} from {node.module}"
        if package == "flax":
            assert node.module in ("flax", "flax.linen"), f"{path.name} imports from Flax's internal {node.module}"


def loaded_modules(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    return set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())


def test_import_jaxgru_needs_only_jax_and_numpy():
    loaded = loaded_modules("import jaxgru")
    heavy = {"flax", "optax", "equinox", "haiku", "onnx", "onnxruntime", "torch", "tensorflow", "keras", "tf_keras"}
    assert not heavy & loaded


def test_nnx_and_equinox_modules_do_not_load_the_linen_modules():
    assert "jaxgru.linen" not in loaded_modules("import jaxgru.nnx")
    assert not {"jaxgru.linen", "jaxgru.nnx", "flax"} & loaded_modules("import jaxgru.equinox")
