"""jaxgru.nnx.Bidirectional against jaxgru.bidirectional and tf_keras.layers.Bidirectional."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from helpers import randomize_nnx
from keras_reference import params_of, randomize
from layer_reference import H0, ROW_MASK, B, D, T, U, X, assert_close
from references import HEAVY, keras, tf

import jaxgru
from jaxgru import nnx as jn

LAYER_FLAGS = ("return_sequences", "return_state", "time_major")


def split_options(options):
    """(layer flags, cell options) of a dict of GRU constructor arguments."""
    flags = {k: v for k, v in options.items() if k in LAYER_FLAGS}
    return flags, {k: v for k, v in options.items() if k not in LAYER_FLAGS}


# ---------------------------------------------------------------------------- against jaxgru.bidirectional


@pytest.mark.parametrize("merge_mode,options,backward_options,mask,initial_state", [
    *[(mode, dict(return_sequences=True, return_state=True), dict(reset_after=False), ROW_MASK, (H0, -H0))
      for mode in ("concat", "sum", "ave", "mul", None)],
    ("concat", dict(return_state=True, reset_after=False), None, ROW_MASK, (-H0, H0)),  # last outputs
    ("sum", dict(), dict(implementation=1, activation="relu"), None, None),
    ("ave", dict(return_sequences=True, time_major=True), dict(use_bias=False, reset_after=False), ROW_MASK.T, None),
])
def test_matches_bidirectional(merge_mode, options, backward_options, mask, initial_state):
    flags, cell_options = split_options(options)
    rngs = nnx.Rngs(0)
    backward = None if backward_options is None else jn.GRU(D, U, **flags, **backward_options, rngs=rngs)
    layer = jn.Bidirectional(jn.GRU(D, U, **options, rngs=rngs), merge_mode, backward, rngs=rngs)
    randomize_nnx(layer, 3)
    inputs = jnp.swapaxes(X, 0, 1) if flags.get("time_major") else X
    result = layer(inputs, mask=mask, initial_state=initial_state)

    cells = (jaxgru.GRUCell(U, **cell_options), jaxgru.GRUCell(U, **(backward_options or cell_options)))
    params = nnx.to_pure_dict(nnx.state(layer, nnx.Param))  # the layout jaxgru.bidirectional takes
    outputs, states = jaxgru.bidirectional(
        cells, params, inputs, merge_mode=merge_mode, mask=mask, initial_state=initial_state,
        return_sequences=flags.get("return_sequences", False), time_major=flags.get("time_major", False))
    if flags.get("return_state"):
        jax.tree.map(assert_close, result, (outputs, states))
    else:
        jax.tree.map(assert_close, result, outputs)


@HEAVY
def test_matches_tf_keras_bidirectional():
    keras_layer = keras.layers.Bidirectional(keras.layers.GRU(U, return_sequences=True, return_state=True),
                                             merge_mode="mul")
    keras_layer(np.asarray(X))
    randomize(keras_layer, 11)
    weights = keras_layer.get_weights()  # the forward layer's three, then the backward layer's
    rngs = nnx.Rngs(0)
    layer = jn.Bidirectional(jn.GRU(D, U, return_sequences=True, return_state=True, rngs=rngs), "mul", rngs=rngs)
    state = nnx.state(layer, nnx.Param)
    nnx.replace_by_pure_dict(state, {"forward": params_of(weights[:3]), "backward": params_of(weights[3:])})
    nnx.update(layer, state)

    outputs, (final_fw, final_bw) = layer(X, mask=ROW_MASK, initial_state=(H0, -H0))
    expected = keras_layer(np.asarray(X), mask=np.asarray(ROW_MASK), initial_state=[tf.constant(H0), tf.constant(-H0)])
    for actual, reference in zip((outputs, final_fw, final_bw), expected):
        assert_close(actual, reference.numpy(), atol=1e-5)


def test_default_backward_layer_is_a_fresh_copy():
    rngs = nnx.Rngs(0)
    forward = jn.GRU(D, U, return_sequences=True, reset_after=False, kernel_regularizer="l2", rngs=rngs)
    layer = jn.Bidirectional(forward, merge_mode="sum", rngs=rngs)
    backward = layer.backward
    assert layer.forward is forward  # the given layer is used, params included
    assert isinstance(backward, jn.GRU) and backward.cell == forward.cell
    assert (backward.in_features, backward.return_sequences, backward.go_backwards) == (D, True, False)
    assert not np.allclose(backward.kernel[...], forward.kernel[...])  # Keras: new weights
    l2 = 0.01 * (jnp.sum(forward.kernel[...] ** 2) + jnp.sum(backward.kernel[...] ** 2))
    assert_close(jn.penalty(layer), l2)


# ---------------------------------------------------------------------------- dropout


def dropout_layer(seed):
    """Both directions with dropout (different rates), the pair of outputs (merge_mode=None)."""
    rngs = nnx.Rngs(seed)
    return jn.Bidirectional(
        jn.GRU(D, U, return_sequences=True, dropout=0.3, recurrent_dropout=0.4, rngs=rngs), None,
        jn.GRU(D, U, return_sequences=True, dropout=0.5, rngs=rngs), rngs=rngs)


def test_dropout_is_keyed_by_the_dropout_stream():
    layer = dropout_layer(0)
    cells, params = (layer.forward.cell, layer.backward.cell), layer.weights()
    plain = jaxgru.bidirectional(cells, params, X, merge_mode=None)[0]

    key = jax.random.key(1)
    keyed = layer(X, rngs=key)  # training by default, as nnx.Dropout
    jax.tree.map(assert_close, keyed, jaxgru.bidirectional(cells, params, X, merge_mode=None, rng=key,
                                                           training=True)[0])
    for direction in range(2):  # one key, split: masks in both directions
        assert not np.allclose(keyed[direction], plain[direction])
    jax.tree.map(np.testing.assert_array_equal, layer(X, rngs=key), keyed)  # the same key
    assert not np.allclose(layer(X, rngs=jax.random.key(2))[0], keyed[0])  # another key
    jax.tree.map(np.testing.assert_array_equal, layer(X, rngs=nnx.Rngs(dropout=3)), layer(X, rngs=nnx.Rngs(dropout=3)))

    next_key = nnx.clone(layer).rngs()  # the key the wrapper's own stream gives next
    first, second = layer(X), layer(X)  # its own stream: new masks at each call
    jax.tree.map(assert_close, first, jaxgru.bidirectional(cells, params, X, merge_mode=None, rng=next_key,
                                                           training=True)[0])
    assert not np.allclose(first[1], second[1])
    jax.tree.map(np.testing.assert_array_equal, dropout_layer(0)(X), first)  # the same seed, the same masks

    jax.tree.map(assert_close, layer(X, deterministic=True), plain)
    layer.eval()
    jax.tree.map(assert_close, layer(X), plain)
    assert not np.allclose(nnx.view(layer, deterministic=False)(X)[1], plain[1])
    layer.train()
    assert not np.allclose(layer(X)[1], plain[1])


# ---------------------------------------------------------------------------- training, penalty, constrain


class Tagger(nnx.Module):
    """Per-step regression that needs both directions: y_t = x_{t-1, 0} + x_{t+1, 1}."""

    def __init__(self, rngs):
        options = dict(return_sequences=True, rngs=rngs)
        self.bi = jn.Bidirectional(
            jn.GRU(2, 8, recurrent_regularizer="l1", **options), "concat",
            jn.GRU(2, 8, kernel_regularizer="l2", recurrent_constraint="non_neg", **options), rngs=rngs)
        self.dense = nnx.Linear(16, 1, rngs=rngs)

    def __call__(self, x):
        return self.dense(self.bi(x))[..., 0]


def tagging_task(seed, batch=32, steps=6):
    x = jax.random.normal(jax.random.key(seed), (batch, steps, 2))
    pad = jnp.zeros((batch, 1))
    y = jnp.concatenate([pad, x[:, :-1, 0]], 1) + jnp.concatenate([x[:, 1:, 1], pad], 1)
    return x, y


def test_penalty_and_constrain_cover_both_directions():
    model = Tagger(nnx.Rngs(0))
    randomize_nnx(model, 5)
    forward, backward = model.bi.forward.weights(), model.bi.backward.weights()
    expected = 0.01 * jnp.sum(jnp.abs(forward["recurrent_kernel"])) + 0.01 * jnp.sum(backward["kernel"] ** 2)
    assert_close(nnx.jit(jn.penalty)(model), expected, atol=1e-5)
    grads = nnx.grad(jn.penalty)(model)
    assert_close(grads.bi.forward.recurrent_kernel[...], 0.01 * jnp.sign(forward["recurrent_kernel"]))
    assert_close(grads.bi.backward.kernel[...], 0.02 * backward["kernel"])

    nnx.jit(jn.constrain)(model)
    assert_close(model.bi.backward.recurrent_kernel[...], np.maximum(backward["recurrent_kernel"], 0))
    jax.tree.map(np.testing.assert_array_equal, model.bi.forward.weights(), forward)


def test_train_step_under_nnx_jit():
    model = Tagger(nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(3e-2), wrt=nnx.Param)
    x, y = tagging_task(0)

    def loss_fn(model):
        return jnp.mean((model(x) - y) ** 2) + jn.penalty(model)

    @nnx.jit
    def train_step(model, optimizer):
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        jn.constrain(model)
        return loss

    before = jax.tree.map(np.asarray, model.bi.weights())
    first = loss_fn(model)
    for _ in range(40):
        train_step(model, optimizer)
    assert loss_fn(model) < first / 5
    for direction in ("forward", "backward"):
        assert not np.allclose(getattr(model.bi, direction).kernel[...], before[direction]["kernel"])
    assert np.all(model.bi.backward.recurrent_kernel[...] >= 0)


# ---------------------------------------------------------------------------- errors


def test_bad_input_errors():
    rngs = nnx.Rngs(0)
    gru = jn.GRU(D, U, rngs=rngs)
    with pytest.raises(ValueError, match="merge_mode"):
        jn.Bidirectional(gru, "max", rngs=rngs)
    with pytest.raises(ValueError, match="layer: expected go_backwards=False"):
        jn.Bidirectional(jn.GRU(D, U, go_backwards=True, rngs=rngs), rngs=rngs)
    with pytest.raises(ValueError, match="backward_layer: expected go_backwards=False"):
        jn.Bidirectional(gru, backward_layer=jn.GRU(D, U, go_backwards=True, rngs=rngs), rngs=rngs)
    with pytest.raises(ValueError, match="backward_layer: return_sequences=True differs"):
        jn.Bidirectional(gru, backward_layer=jn.GRU(D, U, return_sequences=True, rngs=rngs), rngs=rngs)
    with pytest.raises(ValueError, match="backward_layer: in_features=2 differs"):
        jn.Bidirectional(gru, backward_layer=jn.GRU(2, U, rngs=rngs), rngs=rngs)
    with pytest.raises(TypeError, match="layer: expected a jaxgru.nnx.GRU"):
        jn.Bidirectional(jn.GRUCell(D, U, rngs=rngs), rngs=rngs)
    with pytest.raises(TypeError, match="backward_layer"):
        jn.Bidirectional(gru, backward_layer=nnx.RNN(jn.GRUCell(D, U, rngs=rngs)), rngs=rngs)
    with pytest.raises(TypeError, match="rngs"):
        jn.Bidirectional(gru, rngs=jax.random.key(0))
    layer = jn.Bidirectional(jn.GRU(D, U, dropout=0.5, rngs=rngs), rngs=rngs)
    with pytest.raises(ValueError, match=r"inputs: expected \(\*batch, T, D\)"):
        layer(X[0, 0])
    with pytest.raises(ValueError, match="initial_state"):
        layer(X, initial_state=H0)
    with pytest.raises(TypeError, match="rngs"):
        layer(X, rngs=3)
    assert layer(X).shape == (B, 2 * U) and layer(X[:, :T - 1]).shape == (B, 2 * U)
