"""The public surface: what each module exports, what it imports, and the aliases."""

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import jaxgru

PACKAGE = Path(jaxgru.__file__).parent
# Modules a user imports: every one declares its public names. Modules and names with a
# leading underscore are jaxgru's internals.
PUBLIC_MODULES = sorted("jaxgru." + ".".join(p.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
                        for p in PACKAGE.rglob("*.py")
                        if p.name != "__main__.py" and not any(part.startswith("_") and part != "__init__.py"
                                                               for part in p.relative_to(PACKAGE).parts))


@pytest.mark.parametrize("module", ["jaxgru", *PUBLIC_MODULES])
def test_every_public_module_declares_names_that_exist(module):
    loaded = importlib.import_module(module)
    assert loaded.__all__ and all(hasattr(loaded, name) for name in loaded.__all__), module
    assert not [name for name in loaded.__all__ if name.startswith("_")]


def test_flax_is_linen_under_its_first_name():
    import jaxgru.flax
    import jaxgru.linen

    assert jaxgru.flax.__all__ == jaxgru.linen.__all__
    for name in jaxgru.linen.__all__:
        assert getattr(jaxgru.flax, name) is getattr(jaxgru.linen, name)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_private_name_is_imported_across_modules(path):
    """A leading underscore on a name means "this module only": no module imports
    another's private names (internal *modules* such as ``jaxgru._gates`` are shared),
    nor Flax's internal modules."""
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        package = node.module.split(".")[0]
        if package == "jaxgru" and node.module != "jaxgru":  # `from jaxgru import _gates` imports a module
            private = [alias.name for alias in node.names if alias.name.startswith("_")]
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
