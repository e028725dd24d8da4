"""Deprecations keep old code working for one release, with a DeprecationWarning: renamed
keywords (``masks=`` is ``dropout_masks=``, ``backward=`` is ``gradient=``), names that left
a public module (`MOVED_NAMES`) and modules that go (`DEPRECATED_MODULES`)."""

import importlib
import sys
import warnings

import jax
import numpy as np
import pytest

import jaxgru
from jaxgru._deprecations import DEPRECATED_MODULES, MOVED_NAMES

CELL = jaxgru.GRUCell(4, dropout=0.3, recurrent_dropout=0.2)
PARAMS = CELL.init(jax.random.key(0), 3)
X = jax.random.normal(jax.random.key(1), (2, 5, 3))
MASKS = CELL.dropout_masks(jax.random.key(2), 2, 3)


def test_rnn_masks_is_dropout_masks():
    with pytest.warns(DeprecationWarning, match=r"masks= is deprecated .* use dropout_masks= instead"):
        old = jaxgru.rnn(CELL, PARAMS, X, training=True, masks=MASKS)
    new = jaxgru.rnn(CELL, PARAMS, X, training=True, dropout_masks=MASKS)
    unmasked = jaxgru.rnn(CELL, PARAMS, X, training=True, rng=jax.random.key(9))
    np.testing.assert_array_equal(old[0], new[0])
    assert not np.allclose(old[0], unmasked[0])  # the masks were used, not ignored


def test_step_masks_is_dropout_masks():
    h = np.zeros((2, 4), np.float32)
    with pytest.warns(DeprecationWarning, match="use dropout_masks= instead"):
        old = CELL.step(PARAMS, h, X[:, 0], training=True, masks=MASKS)
    np.testing.assert_array_equal(old[0], CELL.step(PARAMS, h, X[:, 0], training=True, dropout_masks=MASKS)[0])


@pytest.mark.parametrize("runner", ["rnn", "bidirectional"])
def test_backward_is_gradient(runner):
    cell = jaxgru.GRUCell(4)
    params = cell.init(jax.random.key(0), 3)
    if runner == "bidirectional":
        params = {"forward": params, "backward": params}
    fn = getattr(jaxgru, runner)
    with pytest.warns(DeprecationWarning, match="backward= is deprecated .* use gradient= instead"):
        old = jax.grad(lambda p: fn(cell, p, X, backward="autodiff")[0].sum())(params)
    new = jax.grad(lambda p: fn(cell, p, X, gradient="autodiff")[0].sum())(params)
    for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.warns(DeprecationWarning):
        with pytest.raises(ValueError, match="gradient: expected one of"):
            fn(cell, params, X, backward="manual")


def test_old_and_new_name_together_is_an_error():
    with pytest.raises(TypeError, match="masks, dropout_masks: masks= is the deprecated name of dropout_masks="):
        jaxgru.rnn(CELL, PARAMS, X, training=True, masks=MASKS, dropout_masks=MASKS)
    with pytest.raises(TypeError, match="backward, gradient"):
        jaxgru.rnn(CELL, PARAMS, X, gradient="autodiff", backward="fused")


def test_the_warning_points_at_the_callers_line():
    with pytest.warns(DeprecationWarning) as record:
        jaxgru.rnn(CELL, PARAMS, X, backward="fused")
    assert record[0].filename == __file__


@pytest.mark.parametrize(("module", "name"), [(m, n) for m, names in MOVED_NAMES.items() for n in names],
                         ids=lambda x: x)
def test_moved_name_warns_and_is_its_home(module, name):
    home_module, _, attribute = MOVED_NAMES[module][name][0].partition(":")
    home = getattr(importlib.import_module(home_module), attribute)
    with warnings.catch_warnings():  # a deprecated module (jaxgru.stacked) warns on import
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = importlib.import_module(module)
    with pytest.warns(DeprecationWarning, match=rf"^{module}\.{name} is deprecated") as record:
        old = getattr(loaded, name)
    assert old is home
    assert record[0].filename == __file__
    with pytest.raises(AttributeError, match=f"has no attribute 'no_such_{name}'"):
        getattr(loaded, f"no_such_{name}")


@pytest.mark.parametrize("module", sorted(DEPRECATED_MODULES))
def test_deprecated_module_warns_once_on_import(module, monkeypatch):
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{module} is deprecated") as record:
        loaded = importlib.import_module(module)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module(module) is loaded  # imported once: no second warning
    replacement = {"jaxgru.flax": "jaxgru.linen", "jaxgru.demo_tasks": "jaxgru.demo._tasks",
                   "jaxgru.cell": "jaxgru._core.cell", "jaxgru.dropout": "jaxgru._core.dropout",
                   "jaxgru.stacked": "jaxgru._core.stacked"}[module]
    assert loaded.__all__
    for name in loaded.__all__:
        assert getattr(loaded, name) is getattr(importlib.import_module(replacement), name)


def test_deprecated_module_warning_points_at_the_import(monkeypatch):
    monkeypatch.delitem(sys.modules, "jaxgru.flax", raising=False)
    with pytest.warns(DeprecationWarning, match="import jaxgru.linen instead") as record:
        import jaxgru.flax  # noqa: F401
    assert record[0].filename == __file__
