"""jaxgru.linen modules against the functional core, flax's own RNN wrappers and tf_keras."""

import dataclasses

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import KeyProbe, randomized, synthetic_task
from keras_reference import params_of, randomize
from layer_reference import H0, LAYER_CASES, ROW_MASK, B, D, T, U, X, assert_close, expected_layer_output
from references import HEAVY, keras

import jaxgru
from jaxgru import linen as jf

KEYS = {"params": jax.random.key(0)}


class CellKeyProbe(jf.GRUCell):
    """A GRUCell that outputs, at each step, the data of the key it draws for dropout."""

    @nn.compact
    def __call__(self, carry, inputs):
        data = jax.random.key_data(self.make_rng("dropout"))
        return carry, jnp.broadcast_to(data, (inputs.shape[0], *data.shape))


# ---------------------------------------------------------------------------- GRUCell


@pytest.mark.parametrize("reset_after", [True, False])
def test_cell_in_nn_rnn_matches_rnn(reset_after):
    layer = nn.RNN(jf.GRUCell(U, reset_after=reset_after), return_carry=True)
    variables = layer.init(KEYS, X)
    params = randomized(variables["params"], 3)
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    assert jax.tree.map(jnp.shape, params["cell"]) == cell.param_shapes(D)
    carry, outputs = layer.apply({"params": params}, X, initial_carry=H0)
    expected, final = jaxgru.rnn(cell, params["cell"], X, initial_state=H0)
    assert_close(outputs, expected)
    assert_close(carry, final)


def test_cell_params_use_the_cell_initializers():
    variables = nn.RNN(jf.GRUCell(U, bias_initializer="ones", recurrent_initializer="identity")).init(KEYS, X)
    params = variables["params"]["cell"]
    np.testing.assert_array_equal(params["bias"], np.ones((2, 3 * U)))
    np.testing.assert_array_equal(params["recurrent_kernel"], np.eye(U, 3 * U))
    limit = np.sqrt(6 / (D + 3 * U))  # glorot_uniform over the whole (D, 3U) kernel
    assert np.abs(params["kernel"]).max() <= limit and np.abs(params["kernel"]).max() > limit / 2


def test_cell_in_nn_bidirectional_matches_bidirectional():
    layer = nn.Bidirectional(nn.RNN(jf.GRUCell(U)), nn.RNN(jf.GRUCell(U, reset_after=False)), return_carry=True)
    params = randomized(layer.init(KEYS, X)["params"], 4)
    (carry_fw, carry_bw), outputs = layer.apply({"params": params}, X)
    cells = (jaxgru.GRUCell(U), jaxgru.GRUCell(U, reset_after=False))
    functional = {"forward": params["forward_rnn"]["cell"], "backward": params["backward_rnn"]["cell"]}
    expected, (final_fw, final_bw) = jaxgru.bidirectional(cells, functional, X)
    assert_close(outputs, expected)
    assert_close(carry_fw, final_fw)
    assert_close(carry_bw, final_bw)


def test_cell_in_nn_scan_matches_rnn():
    scanned = nn.scan(jf.GRUCell, variable_broadcast="params", split_rngs={"params": False}, in_axes=1, out_axes=1)
    layer = scanned(U, name="cell")
    carry0 = jf.GRUCell(U).initialize_carry(jax.random.key(0), (B, D))
    assert carry0.shape == (B, U) and jf.GRUCell(U).num_feature_axes == 1
    params = randomized(layer.init(KEYS, carry0, X)["params"], 5)
    carry, outputs = layer.apply({"params": params}, carry0, X)
    expected, final = jaxgru.rnn(jaxgru.GRUCell(U), params, X)
    assert_close(outputs, expected)
    assert_close(carry, final)


def test_cell_dropout_in_nn_rnn_uses_one_key_per_sequence():
    options = dict(dropout=0.4, recurrent_dropout=0.3, deterministic=False)
    broadcast = {"params": False, "dropout": False}
    rngs = {"dropout": jax.random.key(7)}
    keys = nn.RNN(CellKeyProbe(U, **options), split_rngs=broadcast).apply({}, X, rngs=rngs)
    np.testing.assert_array_equal(keys, np.broadcast_to(keys[:, :1], keys.shape))  # every step: one key
    split = nn.RNN(CellKeyProbe(U, **options), split_rngs={"params": False, "dropout": True}).apply({}, X, rngs=rngs)
    assert len({tuple(k) for k in np.asarray(split[0])}) == T  # split rngs: a new key (new masks) per step

    layer = nn.RNN(jf.GRUCell(U, **options), split_rngs=broadcast)
    params = layer.init({**KEYS, **rngs}, X)["params"]
    outputs = layer.apply({"params": params}, X, rngs=rngs)
    cell = jaxgru.GRUCell(U, dropout=0.4, recurrent_dropout=0.3)
    key = jax.random.wrap_key_data(keys[0, 0])
    assert_close(outputs, jaxgru.rnn(cell, params["cell"], X, rng=key, training=True)[0])
    assert not np.allclose(outputs, jaxgru.rnn(cell, params["cell"], X)[0])


def test_cell_dropout_needs_deterministic_and_the_rng_in_the_scan():
    with pytest.raises(ValueError, match="deterministic"):
        nn.RNN(jf.GRUCell(U, dropout=0.2)).init(KEYS, X)
    # deterministic=True (attribute or call) runs without a dropout rng and without dropout
    params = nn.RNN(jf.GRUCell(U, dropout=0.2, deterministic=True)).init(KEYS, X)["params"]
    with pytest.raises(flax.errors.InvalidRngError, match="dropout"):  # nn.RNN's default split_rngs
        nn.RNN(jf.GRUCell(U, dropout=0.2, deterministic=False)).apply({"params": params}, X,
                                                                      rngs={"dropout": jax.random.key(0)})
    outputs = nn.RNN(jf.GRUCell(U, dropout=0.2, deterministic=True)).apply({"params": params}, X)
    assert_close(outputs, jaxgru.rnn(jaxgru.GRUCell(U), params["cell"], X)[0])
    cell = jf.GRUCell(U, dropout=0.2)
    carry, y = cell.apply({"params": params["cell"]}, H0, X[:, 0], deterministic=True)
    assert_close(y, jaxgru.GRUCell(U).step(params["cell"], H0, X[:, 0])[0])


# ---------------------------------------------------------------------------- GRU


@pytest.mark.parametrize("options,mask,initial_state", LAYER_CASES)
def test_gru_matches_rnn(options, mask, initial_state):
    layer = jf.GRU(U, **options)
    inputs = jnp.swapaxes(X, 0, 1) if options.get("time_major") else X
    params = randomized(layer.init(KEYS, inputs)["params"], 6)
    assert jax.tree.map(jnp.shape, params) == layer.cell.param_shapes(D)
    result = layer.apply({"params": params}, inputs, mask=mask, initial_state=initial_state)
    expected = expected_layer_output(layer.cell, params, inputs, options, mask, initial_state)
    jax.tree.map(assert_close, result, expected)


@HEAVY
def test_gru_with_keras_weights_matches_tf_keras():
    keras_layer = keras.layers.GRU(U, return_sequences=True, return_state=True, reset_after=False)
    keras_layer(np.asarray(X))
    randomize(keras_layer, 8)
    expected, expected_state = keras_layer(np.asarray(X), mask=np.asarray(ROW_MASK))
    layer = jf.GRU(U, return_sequences=True, return_state=True, reset_after=False)
    outputs, state = layer.apply({"params": params_of(keras_layer.get_weights())}, X, mask=ROW_MASK)
    assert_close(outputs, expected.numpy(), atol=1e-5)
    assert_close(state, expected_state.numpy(), atol=1e-5)


def test_gru_module_options_are_the_cell_options():
    layer = jf.GRU(U)
    for field in dataclasses.fields(jaxgru.GRUCell):
        if field.name != "units":
            assert getattr(layer, field.name) == field.default, field.name
    assert layer.cell == jaxgru.GRUCell(U)
    assert jf.GRU(U, dropout=0.3, reset_after=False).cell == jaxgru.GRUCell(U, dropout=0.3, reset_after=False)


def test_gru_dropout_is_keyed_by_the_dropout_stream():
    layer = jf.GRU(U, return_sequences=True, dropout=0.3, recurrent_dropout=0.4)
    params = layer.init(KEYS, X)["params"]

    def run(seed, deterministic=False):
        return layer.apply({"params": params}, X, deterministic=deterministic, rngs={"dropout": jax.random.key(seed)})

    key = KeyProbe().apply({}, rngs={"dropout": jax.random.key(1)})
    assert_close(run(1), jaxgru.rnn(layer.cell, params, X, rng=key, training=True)[0])  # one key per call
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.allclose(run(1), run(2))
    plain = jaxgru.rnn(layer.cell, params, X)[0]
    assert_close(run(1, deterministic=True), plain)
    assert_close(layer.apply({"params": params}, X), plain)  # deterministic by default, needs no rng


def test_bfloat16_computation():
    layer = jf.GRU(U, return_sequences=True, dtype=jnp.bfloat16)
    params = layer.init(KEYS, X)["params"]
    assert params["kernel"].dtype == jnp.float32
    outputs = layer.apply({"params": params}, X)
    assert outputs.dtype == jnp.bfloat16
    assert_close(outputs.astype(jnp.float32), jf.GRU(U, return_sequences=True).apply({"params": params}, X), atol=3e-2)
    cell = jf.GRUCell(U, param_dtype=jnp.bfloat16)
    layer = nn.RNN(cell)
    variables = layer.init(KEYS, X)
    assert variables["params"]["cell"]["kernel"].dtype == jnp.bfloat16
    assert layer.apply(variables, X).dtype == jnp.bfloat16  # the carry keeps param_dtype


# ---------------------------------------------------------------------------- Bidirectional


@pytest.mark.parametrize("merge_mode", ["concat", "mul", None])
def test_bidirectional_matches_bidirectional(merge_mode):
    layer = jf.Bidirectional(jf.GRU(U, return_sequences=True, return_state=True), merge_mode=merge_mode,
                             backward_layer=jf.GRU(U, return_sequences=True, return_state=True, reset_after=False))
    params = randomized(layer.init(KEYS, X)["params"], 9)
    assert set(params) == {"forward", "backward"}
    outputs, states = layer.apply({"params": params}, X, mask=ROW_MASK, initial_state=(H0, -H0))
    cells = (jaxgru.GRUCell(U), jaxgru.GRUCell(U, reset_after=False))
    expected, expected_states = jaxgru.bidirectional(cells, params, X, merge_mode=merge_mode, mask=ROW_MASK,
                                                     initial_state=(H0, -H0))
    jax.tree.map(assert_close, (outputs, states), (expected, expected_states))


def test_bidirectional_dropout_and_default_backward_layer():
    layer = jf.Bidirectional(jf.GRU(U, dropout=0.5))
    params = layer.init(KEYS, X)["params"]
    assert jax.tree.map(jnp.shape, params["backward"]) == jax.tree.map(jnp.shape, params["forward"])
    assert not np.allclose(params["backward"]["kernel"], params["forward"]["kernel"])
    rngs = {"dropout": jax.random.key(3)}
    key = KeyProbe().apply({}, rngs=rngs)
    outputs = layer.apply({"params": params}, X, deterministic=False, rngs=rngs)
    cell = jaxgru.GRUCell(U, dropout=0.5)
    assert_close(outputs, jaxgru.bidirectional(cell, params, X, rng=key, training=True, return_sequences=False)[0])
    assert_close(layer.apply({"params": params}, X), jaxgru.bidirectional(cell, params, X, return_sequences=False)[0])


# ---------------------------------------------------------------------------- training, serialization


class Regressor(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(1)(jf.GRU(16)(x))[:, 0]


def test_trains_with_optax_under_jit():
    model, tx = Regressor(), optax.adam(2e-2)
    x, y = synthetic_task(0)
    params = model.init(KEYS, x)["params"]
    opt_state = tx.init(params)

    def loss_fn(params):
        return jnp.mean((model.apply({"params": params}, x) - y) ** 2)

    @jax.jit
    def train_step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    first = loss_fn(params)
    for _ in range(150):
        params, opt_state, loss = train_step(params, opt_state)
    assert loss_fn(params) < first / 5


def test_params_serialize_and_restore():
    model = Regressor()
    x, _ = synthetic_task(1, batch=4)
    variables = model.init(KEYS, x)
    data = flax.serialization.to_bytes(variables)
    template = model.init({"params": jax.random.key(42)}, x)
    assert not np.allclose(model.apply(template, x), model.apply(variables, x))
    restored = flax.serialization.from_bytes(template, data)
    np.testing.assert_array_equal(model.apply(restored, x), model.apply(variables, x))


# ---------------------------------------------------------------------------- penalty, constrain


class Stack(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.RNN(jf.GRUCell(U, kernel_regularizer="l2"))(x)
        x = jf.Bidirectional(jf.GRU(U, return_sequences=True, recurrent_regularizer="l1"),
                             backward_layer=jf.GRU(U, return_sequences=True, recurrent_constraint="non_neg"))(x)
        return jf.GRU(U, kernel_constraint={"class_name": "MaxNorm", "config": {"max_value": 0.5}},
                      bias_regularizer="l2")(x)


def test_find_cells_penalty_and_constrain():
    model = Stack()
    params = randomized(model.init(KEYS, X)["params"], 10)
    cells = jf.find_cells(model, X)
    # Modules created inside a compact method belong to it (auto-named there: the two GRUs
    # given to Bidirectional are GRU_0 and GRU_1, configurations that hold no params).
    assert set(cells) == {("GRUCell_0",), ("Bidirectional_0", "forward"), ("Bidirectional_0", "backward"),
                          ("GRU_2",)}
    assert cells[("GRUCell_0",)] == jaxgru.GRUCell(U, kernel_regularizer="l2")

    l2, l1 = (lambda w: 0.01 * jnp.sum(w ** 2)), (lambda w: 0.01 * jnp.sum(jnp.abs(w)))
    expected = (l2(params["GRUCell_0"]["kernel"]) + l1(params["Bidirectional_0"]["forward"]["recurrent_kernel"])
                + l2(params["GRU_2"]["bias"]))
    assert_close(jax.jit(lambda p: jf.penalty(cells, p))(params), expected, atol=1e-5)
    grads = jax.grad(lambda p: jf.penalty(cells, p))(params)
    assert_close(grads["GRUCell_0"]["kernel"], 0.02 * params["GRUCell_0"]["kernel"])
    assert not np.any(grads["GRU_2"]["kernel"])

    constrained = jax.jit(lambda p: jf.constrain(cells, p))(params)
    backward = params["Bidirectional_0"]["backward"]
    assert_close(constrained["Bidirectional_0"]["backward"]["recurrent_kernel"],
                 np.maximum(backward["recurrent_kernel"], 0))
    kernel = params["GRU_2"]["kernel"]
    norms = np.sqrt(np.sum(np.asarray(kernel) ** 2, axis=0, keepdims=True))
    assert_close(constrained["GRU_2"]["kernel"], kernel * np.clip(norms, 0, 0.5) / (1e-7 + norms))
    unconstrained = [("GRUCell_0",), ("Bidirectional_0", "forward")]
    for path in unconstrained:
        node, original = constrained, params
        for key in path:
            node, original = node[key], original[key]
        jax.tree.map(np.testing.assert_array_equal, node, original)


def test_penalty_of_a_model_without_regularizers_is_zero():
    model = jf.GRU(U)
    params = model.init(KEYS, X)["params"]
    cells = jf.find_cells(model, X)
    assert cells == {(): jaxgru.GRUCell(U)}
    assert jf.penalty(cells, params) == 0
    jax.tree.map(np.testing.assert_array_equal, jf.constrain(cells, params), params)


# ---------------------------------------------------------------------------- errors


BAD_INPUTS = [
    pytest.param(lambda: jf.GRU(U, dropout="high"), TypeError, "dropout", id="dropout-not-a-number"),
    pytest.param(lambda: jf.GRUCell(0), ValueError, "units", id="zero-units"),
    pytest.param(lambda: jf.GRU(U, return_sequences="yes"), TypeError, "return_sequences",
                 id="return_sequences-not-a-bool"),
    pytest.param(lambda: jf.GRU(U, unroll=0), ValueError, "unroll", id="zero-unroll"),
    pytest.param(lambda: jf.GRU(U).init(KEYS, X[0, 0]), ValueError, r"inputs: expected \(\*batch, T, D\)",
                 id="inputs-without-time-axis"),
    pytest.param(lambda: jf.Bidirectional(jf.GRU(U), merge_mode="max"), ValueError, "merge_mode",
                 id="unknown-merge_mode"),
    pytest.param(lambda: jf.Bidirectional(jf.GRU(U, go_backwards=True)), ValueError, "go_backwards",
                 id="bidirectional-of-go_backwards"),
    pytest.param(lambda: jf.Bidirectional(jf.GRU(U), backward_layer=jf.GRU(U, return_sequences=True)), ValueError,
                 "return_sequences", id="bidirectional-return_sequences-differ"),
    pytest.param(lambda: jf.Bidirectional(jf.GRUCell(U)), TypeError, "layer", id="bidirectional-of-a-cell"),
    pytest.param(lambda: jf.GRU(U, dropout=0.5).apply(jf.GRU(U).init(KEYS, X), X, deterministic=False),
                 flax.errors.InvalidRngError, "dropout", id="dropout-without-rng"),
    pytest.param(lambda: jf.GRU(U).apply(jf.GRU(U).init(KEYS, X[..., :2]), X), flax.errors.ScopeParamShapeError,
                 None, id="params-of-another-input-size"),
    pytest.param(lambda: jf.find_cells(jaxgru.GRUCell(U), X), TypeError, "module", id="find_cells-of-a-cell"),
]


@pytest.mark.parametrize("call, error, match", BAD_INPUTS)
def test_bad_input_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("apply, params, match", [
    pytest.param(jf.penalty, {"GRU_2": {}}, "no entry .'GRUCell_0'", id="penalty-without-a-cells-params"),
    pytest.param(jf.constrain, {"GRUCell_0": {}}, "missing 'kernel'", id="constrain-without-a-weight"),
])
def test_penalty_and_constrain_name_what_is_missing(apply, params, match):
    cells = jf.find_cells(Stack(), X)
    with pytest.raises(ValueError, match=match):
        apply(cells, params)
