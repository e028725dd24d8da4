"""Renamed keywords keep working for one release, with a DeprecationWarning that names
the new keyword: ``masks=`` is ``dropout_masks=`` and ``backward=`` is ``gradient=``."""

import jax
import numpy as np
import pytest

import jaxgru

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
