"""The heavy reference libraries (TensorFlow, tf_keras, torch) and Keras 3, imported when a
test first uses them rather than when pytest collects its file.

Importing TensorFlow with tf_keras costs a process about 470 MB over JAX, torch about
180 MB. Every pytest-xdist worker collects every test file, so a top-level import in one
file would load them into every worker. Test files name them here instead::

    from references import HEAVY, keras, tf

    @HEAVY
    def test_against_keras():
        keras.layers.GRUCell(4)  # tf_keras is imported here, on the first attribute

and the tests that use TensorFlow, tf_keras or torch carry ``HEAVY``, the xdist group that
keeps them on one worker (``--dist loadgroup``): the other worker never loads them.
conftest.py fails the collection of a file that imports one of them at the top, and a test
outside ``HEAVY`` that imports one. Keras 3 (on JAX, conftest.py) imports TensorFlow
wherever it is installed (``keras.utils.set_random_seed``, ``Model.fit``, its own test
case), so the tests that run its models and layers are in ``HEAVY`` too (every test under
``keras_jax/``, conftest.py). Keras 3 itself is loaded in every worker: Keras's own test
files, run against `jaxgru.keras.GRU` as upstream wrote them, import it at the top.
"""

import importlib
from types import ModuleType

import pytest

__all__ = ["CHILDREN", "HEAVY", "HEAVY_MODULES", "keras", "keras3", "lazy", "tf", "torch"]

# Imported by none of the test files at collection, and by no test outside HEAVY
# (conftest.py checks both).
HEAVY_MODULES = ("tensorflow", "tf_keras", "torch")

# The xdist group of every test that imports one of HEAVY_MODULES, itself or through Keras 3.
HEAVY = pytest.mark.xdist_group("heavy")

# The xdist group of the tests that start memory-heavy child processes (notebook kernels,
# the multi-process launches, a TensorFlow interpreter, the demo's command line: 0.5-1.3 GB
# each): one worker runs them one after another, so that the run's memory holds the two
# workers and one set of children, never two. xdist hands out the largest work units
# first (--loadscope-reorder, its default): HEAVY (hundreds of tests) goes to one worker,
# CHILDREN (about fifteen) to the other, which runs them while it is still lean.
CHILDREN = pytest.mark.xdist_group("children")


class _Lazy:
    """A module imported on first attribute access (``keras.layers`` imports tf_keras)."""

    def __init__(self, name: str):
        self.__dict__["_name"] = name

    def _module(self) -> ModuleType:
        return importlib.import_module(self.__dict__["_name"])

    def __getattr__(self, attribute: str):
        if attribute.startswith("_"):
            # What pytest looks for on every name of a test module (__test__, fixture
            # markers) must not import the library; no test reads a private name of one.
            raise AttributeError(attribute)
        return getattr(self._module(), attribute)

    def __repr__(self) -> str:
        return f"<module {self.__dict__['_name']!r}, imported on first use>"


def lazy(name: str) -> _Lazy:
    """The module ``name`` (a dotted name), imported when one of its attributes is first read."""
    return _Lazy(name)


tf = lazy("tensorflow")
keras = lazy("tf_keras")  # the reference Keras 2
keras3 = lazy("keras")  # on JAX (conftest.py)
torch = lazy("torch")
