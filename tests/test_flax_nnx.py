"""jaxgru.nnx modules against the functional core, flax's own RNN wrappers and tf_keras."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from helpers import randomize_nnx, synthetic_task
from keras_reference import params_of, randomize
from layer_reference import H0, LAYER_CASES, ROW_MASK, D, T, U, X, assert_close, expected_layer_output
from references import HEAVY, keras

import jaxgru
from jaxgru import nnx as jn


class CellKeyProbe(jn.GRUCell):
    """A GRUCell that outputs, at each step, the data of the key it draws for dropout."""

    def __call__(self, carry, inputs):
        data = jax.random.key_data(self._dropout_key(None, None))
        return carry, jnp.broadcast_to(data, (inputs.shape[0], *data.shape))


# ---------------------------------------------------------------------------- GRUCell


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_in_nnx_rnn_matches_rnn(reset_after):
    cell = jn.GRUCell(D, U, reset_after=reset_after, rngs=nnx.Rngs(0))
    randomize_nnx(cell, 3)
    params = nnx.state(cell, nnx.Param)
    assert jax.tree.map(jnp.shape, nnx.to_pure_dict(params)) == cell.cell.param_shapes(D)
    assert isinstance(cell, nnx.RNNCellBase) and cell.num_feature_axes == 1
    carry, outputs = nnx.RNN(cell, return_carry=True)(X, initial_carry=H0)
    expected, final = jaxgru.rnn(jaxgru.GRUCell(U, reset_after=reset_after), cell.weights(), X, initial_state=H0)
    assert_close(outputs, expected)
    assert_close(carry, final)


def test_cell_params_use_the_cell_initializers():
    cell = jn.GRUCell(D, U, use_bias=False, recurrent_initializer="identity", rngs=nnx.Rngs(0))
    assert set(nnx.to_pure_dict(nnx.state(cell, nnx.Param))) == {"kernel", "recurrent_kernel"}
    np.testing.assert_array_equal(cell.recurrent_kernel[...], np.eye(U, 3 * U))
    limit = np.sqrt(6 / (D + 3 * U))  # glorot_uniform over the whole (D, 3U) kernel
    assert limit / 2 < np.abs(cell.kernel[...]).max() <= limit


def test_cell_in_nnx_bidirectional_matches_bidirectional():
    forward = jn.GRUCell(D, U, rngs=nnx.Rngs(0))
    backward = jn.GRUCell(D, U, reset_after=False, rngs=nnx.Rngs(1))
    randomize_nnx(forward, 4)
    randomize_nnx(backward, 5)
    layer = nnx.Bidirectional(nnx.RNN(forward), nnx.RNN(backward), return_carry=True)
    (carry_fw, carry_bw), outputs = layer(X)
    params = {"forward": forward.weights(), "backward": backward.weights()}
    expected, (final_fw, final_bw) = jaxgru.bidirectional((forward.cell, backward.cell), params, X)
    assert_close(outputs, expected)
    assert_close(carry_fw, final_fw)
    assert_close(carry_bw, final_bw)


def test_cell_dropout_in_nnx_rnn_uses_one_key_per_sequence():
    options = dict(dropout=0.4, recurrent_dropout=0.3)
    probe = nnx.RNN(CellKeyProbe(D, U, **options, rngs=nnx.Rngs(0)), broadcast_rngs="dropout")
    keys = probe(X)
    np.testing.assert_array_equal(keys, np.broadcast_to(keys[:, :1], keys.shape))  # every step: one key
    assert not np.array_equal(probe(X), keys)  # the next call: a new key
    per_step = nnx.RNN(CellKeyProbe(D, U, **options, rngs=nnx.Rngs(0)))(X)
    assert len({tuple(k) for k in np.asarray(per_step[0])}) == T  # without broadcast: a new key per step

    cell = jn.GRUCell(D, U, **options, rngs=nnx.Rngs(0))  # the same stream as the first probe
    outputs = nnx.RNN(cell, broadcast_rngs="dropout")(X)
    key = jax.random.wrap_key_data(keys[0, 0])
    assert_close(outputs, jaxgru.rnn(cell.cell, cell.weights(), X, rng=key, training=True)[0])
    assert not np.allclose(outputs, jaxgru.rnn(cell.cell, cell.weights(), X)[0])


# ---------------------------------------------------------------------------- GRU


@pytest.mark.parametrize("options,mask,initial_state", LAYER_CASES)
def test_gru_matches_rnn(options, mask, initial_state):
    layer = jn.GRU(D, U, **options, rngs=nnx.Rngs(0))
    randomize_nnx(layer, 6)
    inputs = jnp.swapaxes(X, 0, 1) if options.get("time_major") else X
    result = layer(inputs, mask=mask, initial_state=initial_state)
    expected = expected_layer_output(layer.cell, layer.weights(), inputs, options, mask, initial_state)
    jax.tree.map(assert_close, result, expected)


@HEAVY
def test_gru_with_keras_weights_matches_tf_keras():
    keras_layer = keras.layers.GRU(U, return_sequences=True)
    keras_layer(np.asarray(X))
    randomize(keras_layer, 8)
    layer = jn.GRU(D, U, return_sequences=True, rngs=nnx.Rngs(0))
    state = nnx.state(layer, nnx.Param)
    nnx.replace_by_pure_dict(state, params_of(keras_layer.get_weights()))
    nnx.update(layer, state)
    assert_close(layer(X, mask=ROW_MASK), keras_layer(np.asarray(X), mask=np.asarray(ROW_MASK)).numpy(), atol=1e-5)


def test_gru_dropout_toggles_like_nnx_dropout():
    layer = jn.GRU(D, U, return_sequences=True, dropout=0.3, recurrent_dropout=0.4, rngs=nnx.Rngs(0))
    plain = jaxgru.rnn(layer.cell, layer.weights(), X)[0]
    key = jax.random.key(1)
    keyed = layer(X, rngs=key)  # training by default, as nnx.Dropout
    assert_close(keyed, jaxgru.rnn(layer.cell, layer.weights(), X, rng=key, training=True)[0])
    np.testing.assert_array_equal(layer(X, rngs=key), keyed)  # the same key
    np.testing.assert_array_equal(layer(X, rngs=nnx.Rngs(dropout=1)), layer(X, rngs=nnx.Rngs(dropout=1)))
    assert not np.allclose(layer(X, rngs=jax.random.key(2)), keyed)
    first, second = layer(X), layer(X)  # its own stream: new masks at each call
    assert not np.allclose(first, second) and not np.allclose(first, plain)
    twin = jn.GRU(D, U, return_sequences=True, dropout=0.3, recurrent_dropout=0.4, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(twin(X), first)  # the same seed, the same sequence of masks
    assert_close(layer(X, deterministic=True), plain)
    layer.eval()
    assert_close(layer(X), plain)
    assert not np.allclose(nnx.view(layer, deterministic=False)(X), plain)
    layer.train()
    assert not np.allclose(layer(X), plain)


# ---------------------------------------------------------------------------- training, serialization


class Regressor(nnx.Module):
    def __init__(self, rngs):
        self.gru = jn.GRU(2, 16, rngs=rngs)
        self.dense = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.dense(self.gru(x))[:, 0]


def mse(model, x, y):
    return jnp.mean((model(x) - y) ** 2)


def test_trains_with_optax_under_jit():
    model = Regressor(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(2e-2), wrt=nnx.Param)
    x, y = synthetic_task(0)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(mse)(model, x, y)
        optimizer.update(model, grads)
        return loss

    first = mse(model, x, y)
    for _ in range(150):
        train_step(model, optimizer)
    assert mse(model, x, y) < first / 5


def test_params_serialize_and_restore():
    model = Regressor(nnx.Rngs(0))
    x, _ = synthetic_task(1, batch=4)
    data = flax.serialization.msgpack_serialize(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    restored = Regressor(nnx.Rngs(42))
    assert not np.allclose(restored(x), model(x))
    state = nnx.state(restored, nnx.Param)
    nnx.replace_by_pure_dict(state, flax.serialization.msgpack_restore(data))
    nnx.update(restored, state)
    np.testing.assert_array_equal(restored(x), model(x))


# ---------------------------------------------------------------------------- penalty, constrain


class Stack(nnx.Module):
    def __init__(self, rngs):
        self.rnn = nnx.RNN(jn.GRUCell(D, U, kernel_regularizer="l2", recurrent_constraint="non_neg", rngs=rngs))
        self.gru = jn.GRU(U, U, bias_regularizer="l1", kernel_constraint="unit_norm", rngs=rngs)
        self.dense = nnx.Linear(U, 1, rngs=rngs)

    def __call__(self, x):
        return self.dense(self.gru(self.rnn(x)))


def test_penalty_and_constrain():
    model = Stack(nnx.Rngs(0))
    randomize_nnx(model, 10)
    cell_params, gru_params = model.rnn.cell.weights(), model.gru.weights()
    expected = 0.01 * jnp.sum(cell_params["kernel"] ** 2) + 0.01 * jnp.sum(jnp.abs(gru_params["bias"]))
    assert_close(nnx.jit(jn.penalty)(model), expected, atol=1e-5)
    grads = nnx.grad(jn.penalty)(model)
    assert_close(grads.rnn.cell.kernel[...], 0.02 * cell_params["kernel"])
    assert not np.any(grads.dense.kernel[...])

    dense_kernel = model.dense.kernel[...]
    nnx.jit(jn.constrain)(model)
    assert_close(model.rnn.cell.recurrent_kernel[...], np.maximum(cell_params["recurrent_kernel"], 0))
    norms = np.sqrt(np.sum(np.asarray(gru_params["kernel"]) ** 2, axis=0, keepdims=True))
    assert_close(model.gru.kernel[...], gru_params["kernel"] / (1e-7 + norms))
    for name in ("kernel", "bias"):
        np.testing.assert_array_equal(getattr(model.rnn.cell, name)[...], cell_params[name])
    np.testing.assert_array_equal(model.dense.kernel[...], dense_kernel)
    assert jn.penalty(nnx.Linear(2, 2, rngs=nnx.Rngs(0))) == 0


# ---------------------------------------------------------------------------- errors


def test_bad_input_errors():
    with pytest.raises(TypeError, match="rngs"):
        jn.GRU(D, U, rngs=0)
    with pytest.raises(ValueError, match="in_features"):
        jn.GRUCell(0, U, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="dropout"):
        jn.GRU(D, U, dropout=None, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="time_major"):
        jn.GRU(D, U, time_major=1, rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="deterministic"):
        jn.GRU(D, U, deterministic=None, rngs=nnx.Rngs(0))
    layer = jn.GRU(D, U, dropout=0.5, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"inputs: expected \(\*batch, T, D\)"):
        layer(X[0, 0])
    with pytest.raises(ValueError, match="feature dimension"):
        layer(X[..., :2])
    with pytest.raises(TypeError, match="rngs"):
        layer(X, rngs=3)
    with pytest.raises(TypeError, match="model"):
        jn.penalty(jaxgru.GRUCell(U))
