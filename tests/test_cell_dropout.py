"""Keyed dropout masks: statistics, determinism, and how `step` uses them (Keras's rules)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from references import keras, HEAVY

B, D, U = 64, 48, 40


@HEAVY
@pytest.mark.parametrize("rate,recurrent_rate", [(0.3, 0.0), (0.0, 0.6), (0.25, 0.5)])
def test_mask_statistics_like_keras(rate, recurrent_rate):
    cell = jaxgru.GRUCell(U, dropout=rate, recurrent_dropout=recurrent_rate)
    masks = cell.dropout_masks(jax.random.key(0), B, D, training=True)
    layer = keras.layers.GRUCell(U, dropout=rate, recurrent_dropout=recurrent_rate)
    keras_masks = (layer.get_dropout_mask_for_cell(np.zeros((B, D), np.float32), training=True, count=3),
                   layer.get_recurrent_dropout_mask_for_cell(np.zeros((B, U), np.float32), training=True, count=3))
    for mask, keras_mask, r, last in zip(masks, keras_masks, (rate, recurrent_rate), (D, U)):
        if r == 0:
            assert mask is None and keras_mask is None
            continue
        mask, keras_mask = np.asarray(mask), np.stack([m.numpy() for m in keras_mask])
        assert mask.shape == keras_mask.shape == (3, B, last) and mask.dtype == np.float32
        for m in (mask, keras_mask):
            assert set(np.unique(m)) == {0.0, np.float32(1 / (1 - r))}
            n = m.size
            assert abs(np.mean(m == 0) - r) < 5 * np.sqrt(r * (1 - r) / n)
        # the three gates get independent masks
        assert not np.array_equal(mask[0], mask[1]) and not np.array_equal(mask[1], mask[2])


def test_same_key_same_masks_different_key_different_masks():
    cell = jaxgru.GRUCell(U, dropout=0.5, recurrent_dropout=0.5)
    a, b, c = (cell.dropout_masks(jax.random.key(k), B, D) for k in (1, 1, 2))
    for kind in ("inputs", "recurrent"):
        np.testing.assert_array_equal(getattr(a, kind), getattr(b, kind))
        assert not np.array_equal(getattr(a, kind), getattr(c, kind))


@pytest.mark.parametrize("options", [dict(dropout=0.4), dict(dropout=0.3, recurrent_dropout=0.3),
                                     dict(recurrent_dropout=0.5, reset_after=False),
                                     dict(dropout=0.4, implementation=1)], ids=str)
def test_step_with_key_equals_step_with_masks_from_that_key(options):
    cell = jaxgru.GRUCell(U, **options)
    params = cell.init(jax.random.key(0), D)
    x = jax.random.normal(jax.random.key(1), (B, D))
    h = jax.random.normal(jax.random.key(2), (B, U))
    key = jax.random.key(3)
    with_key, _ = cell.step(params, h, x, rng=key, training=True)
    with_masks, _ = cell.step(params, h, x, dropout_masks=cell.dropout_masks(key, B, D, training=True), training=True)
    np.testing.assert_array_equal(with_key, with_masks)
    inference, _ = cell.step(params, h, x)
    assert not np.allclose(with_key, inference)  # it does drop
    other, _ = cell.step(params, h, x, rng=jax.random.key(4), training=True)
    assert not np.allclose(with_key, other)


def test_training_false_never_drops():
    cell = jaxgru.GRUCell(U, dropout=0.5, recurrent_dropout=0.5)
    params = cell.init(jax.random.key(0), D)
    x = jax.random.normal(jax.random.key(1), (B, D))
    h = jax.random.normal(jax.random.key(2), (B, U))
    clean, _ = cell.step(params, h, x)
    masks = cell.dropout_masks(jax.random.key(3), B, D)
    for kwargs in (dict(rng=jax.random.key(3)), dict(dropout_masks=masks), dict(rng=jax.random.key(3), dropout_masks=masks)):
        np.testing.assert_array_equal(cell.step(params, h, x, training=False, **kwargs)[0], clean)
    assert cell.dropout_masks(jax.random.key(3), B, D, training=False) == jaxgru.DropoutMasks(None, None)


@HEAVY
@pytest.mark.parametrize("rate,clipped,active", [(-0.5, 0.0, False), (0.0, 0.0, False), (0.5, 0.5, True),
                                                 (1.0, 1.0, False), (3.0, 1.0, False)])
def test_rates_are_clipped_and_only_0_to_1_exclusive_drops(rate, clipped, active):
    if rate >= 1:  # clipped to "no dropout" as Keras does, but likely a typo for a percentage
        with pytest.warns(UserWarning, match=f"dropout={rate!r}: a rate of 1 or more") as record:
            cell = jaxgru.GRUCell(U, dropout=rate, recurrent_dropout=rate)
        assert len(record) == 2 and record[0].filename == __file__  # points at the caller's line
    else:
        cell = jaxgru.GRUCell(U, dropout=rate, recurrent_dropout=rate)
    layer = keras.layers.GRUCell(U, dropout=rate, recurrent_dropout=rate)
    assert cell.dropout == cell.recurrent_dropout == layer.dropout == clipped
    assert cell.implementation == layer.implementation  # clipped 0 keeps 2; any other forces 1
    masks = cell.dropout_masks(jax.random.key(0), 2, 3)
    assert (masks.inputs is not None) == active
    if clipped < 1:  # tf_keras's own mask maker fails on rate 1.0 (its call then never uses it)
        keras_mask = layer.get_dropout_mask_for_cell(np.ones((2, 3), np.float32), training=True)
        assert (keras_mask is not None) == active
    params = cell.init(jax.random.key(0), 3)
    x, h = jnp.ones((2, 3)), jnp.ones((2, U))
    # rate 1.0 (like 0.0) means no dropout, and needs no key
    if not active:
        np.testing.assert_array_equal(cell.step(params, h, x, training=True)[0], cell.step(params, h, x)[0])


def test_training_with_dropout_and_no_key_raises():
    cell = jaxgru.GRUCell(U, dropout=0.2)
    params = cell.init(jax.random.key(0), D)
    with pytest.raises(ValueError, match="rng"):
        cell.step(params, jnp.zeros((B, U)), jnp.ones((B, D)), training=True)


def test_masks_for_a_kind_whose_rate_is_off_are_rejected():
    cell = jaxgru.GRUCell(U, dropout=0.3)  # no recurrent dropout, implementation 2
    params = cell.init(jax.random.key(0), D)
    other = jaxgru.GRUCell(U, dropout=0.3, recurrent_dropout=0.3).dropout_masks(jax.random.key(0), B, D)
    with pytest.raises(ValueError, match=r"masks\.recurrent.*recurrent_dropout=0\.0"):
        cell.step(params, jnp.zeros((B, U)), jnp.ones((B, D)), training=True, dropout_masks=other)


def test_implementation_2_uses_only_the_first_input_mask():
    cell = jaxgru.GRUCell(U, dropout=0.5)
    params = cell.init(jax.random.key(0), D)
    x, h = jax.random.normal(jax.random.key(1), (B, D)), jnp.zeros((B, U))
    masks = cell.dropout_masks(jax.random.key(2), B, D)
    out, _ = cell.step(params, h, x, training=True, dropout_masks=masks)
    changed = masks._replace(inputs=masks.inputs.at[1:].set(1.0))
    np.testing.assert_array_equal(cell.step(params, h, x, training=True, dropout_masks=changed)[0], out)
    np.testing.assert_allclose(cell.step(params, h, x * masks.inputs[0])[0], out, atol=1e-6)
