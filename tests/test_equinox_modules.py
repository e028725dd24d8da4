"""jaxgru.equinox modules against the functional core, and under Equinox's transforms."""

import functools
import os
import tempfile

import equinox as eqx
import helpers
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jaxgru
from jaxgru import equinox as je

B, T, D, U = 2, 5, 3, 4
KEY = jax.random.key(0)
X = jax.random.normal(jax.random.key(1), (B, T, D))
H0 = 0.3 * jax.random.normal(jax.random.key(2), (B, U))
MASK = jnp.array([[True] * T, [True, True, True, False, False]])

# the modules against the functional core: within 1e-6 absolute, 1e-5 relative
assert_close = functools.partial(helpers.assert_close, rtol=1e-5)


def randomized(module, seed=3):
    """``module`` with N(0, 0.5) params (non-zero biases)."""
    params, static = eqx.partition(module, eqx.is_inexact_array)
    return eqx.combine(jax.tree.map(jnp.asarray, helpers.randomized(params, seed)), static)


# ---------------------------------------------------------------------------- construction


@pytest.mark.parametrize("options", [{}, {"reset_after": False}, {"use_bias": False}])
def test_params_are_the_functional_params(options):
    cell = jaxgru.GRUCell(U, **options)
    gru = je.GRU(D, U, key=KEY, **options)
    assert gru.cell == cell
    expected = cell.init(KEY, D)
    assert set(gru.weights()) == set(expected) == set(gru.params)
    assert_close(gru.weights(), expected)
    assert (gru.bias is None) == (not cell.use_bias)
    assert (gru.input_size, gru.units) == (D, U)
    again = je.GRU.from_params(cell, expected, return_sequences=False)
    assert again.cell == cell and not again.return_sequences
    assert_close(again.weights(), expected)
    assert je.GRU(D, key=KEY, cell=cell).cell == cell
    key_fw, key_bw = jax.random.split(KEY)
    layer = je.Bidirectional(D, U, key=KEY, **options)
    assert_close(layer.weights(), {"forward": cell.init(key_fw, D), "backward": cell.init(key_bw, D)})


def test_dtype_is_the_params_dtype():
    cell = je.GRUCell(D, U, key=KEY, dtype=jnp.bfloat16)
    assert {w.dtype for w in jax.tree.leaves(cell.weights())} == {jnp.dtype(jnp.bfloat16)}


# ---------------------------------------------------------------------------- parity


@pytest.mark.parametrize("options", [
    {},
    {"reset_after": False, "return_sequences": False},
    {"use_bias": False, "go_backwards": True, "zero_output_for_mask": True},
    {"time_major": True, "unroll": 2},
])
def test_gru_matches_rnn(options):
    layer_names = ("return_sequences", "go_backwards", "time_major", "zero_output_for_mask", "unroll")
    layer = {k: v for k, v in options.items() if k in layer_names}
    cell_options = {k: v for k, v in options.items() if k not in layer_names}
    gru = randomized(je.GRU(D, U, key=KEY, **layer, **cell_options))
    x, mask = (jnp.swapaxes(X, 0, 1), MASK.T) if layer.get("time_major") else (X, MASK)
    got = gru(x, initial_state=H0, mask=mask)
    expected = jaxgru.rnn(gru.cell, gru.weights(), x, initial_state=H0, mask=mask, **layer)
    assert_close(got, expected)
    assert isinstance(got, tuple) and got[1].shape == (B, U)


@pytest.mark.parametrize("batched", [False, True])
def test_cell_matches_step(batched):
    cell = randomized(je.GRUCell(D, U, key=KEY, reset_after=False))
    x, h = (X[:, 0], H0) if batched else (X[0, 0], H0[0])
    expected, _ = cell.cell.step(cell.weights(), h, x)
    got = cell(x, h)
    assert got.shape == h.shape
    assert_close(got, expected)


@pytest.mark.parametrize("merge_mode", ["concat", None])
def test_bidirectional_matches_bidirectional(merge_mode):
    layer = randomized(je.Bidirectional(D, U, key=KEY, merge_mode=merge_mode))
    assert set(layer.weights()) == {"forward", "backward"}
    got = layer(X, mask=MASK, initial_state=(H0, -H0))
    expected = jaxgru.bidirectional(layer.forward.cell, layer.weights(), X, merge_mode=merge_mode, mask=MASK,
                                    initial_state=(H0, -H0))
    assert_close(got, expected)
    wrapped = je.Bidirectional.from_params(jaxgru.GRUCell(U), layer.weights(), merge_mode=merge_mode)
    assert_close(wrapped(X, mask=MASK, initial_state=(H0, -H0)), expected)


def test_bidirectional_with_two_cells():
    layer = je.Bidirectional(D, U, key=KEY, backward_cell=jaxgru.GRUCell(U + 1, reset_after=False))
    assert layer.forward.cell == jaxgru.GRUCell(U) and layer.backward.cell.units == U + 1
    assert layer.weights()["backward"]["recurrent_kernel"].shape == (U + 1, 3 * (U + 1))
    outputs, (final_fw, final_bw) = eqx.filter_eval_shape(layer, X)
    assert outputs.shape == (B, T, 2 * U + 1) and final_fw.shape == (B, U) and final_bw.shape == (B, U + 1)
    with pytest.raises(ValueError, match="backward_cell: merge_mode='sum' needs equal units"):
        je.Bidirectional(D, U, key=KEY, merge_mode="sum", backward_cell=jaxgru.GRUCell(U + 1))


# ---------------------------------------------------------------------------- vmap, jit, grad


def test_unbatched_under_vmap_equals_batched():
    gru = randomized(je.GRU(D, U, key=KEY))
    assert_close(jax.jit(jax.vmap(lambda x, m, h: gru(x, mask=m, initial_state=h)))(X, MASK, H0),
                 gru(X, mask=MASK, initial_state=H0))
    bi = randomized(je.Bidirectional(D, U, key=KEY, merge_mode="sum"))
    assert_close(eqx.filter_jit(eqx.filter_vmap(lambda x, m: bi(x, mask=m)))(X, MASK), bi(X, mask=MASK))
    cell = randomized(je.GRUCell(D, U, key=KEY))
    assert_close(jax.vmap(cell)(X[:, 0], H0), cell(X[:, 0], H0))


def test_filter_jit_and_filter_grad_match_the_functional_gradient():
    gru = randomized(je.GRU(D, U, key=KEY, return_sequences=False))

    @eqx.filter_jit
    @eqx.filter_grad
    def grad(model, x):
        return jnp.sum(jax.vmap(model)(x)[0] ** 2)

    def functional_loss(params):
        return jnp.sum(jaxgru.rnn(gru.cell, params, X, return_sequences=False)[0] ** 2)

    grads = grad(gru, X)
    assert isinstance(grads, je.GRU)
    assert_close(grads.weights(), jax.jit(jax.grad(functional_loss))(gru.weights()), atol=1e-5)
    # a module without dropout also runs as a traced jax.jit argument
    assert_close(jax.jit(lambda m, x: m(x))(gru, X), gru(X))


def test_training_reduces_the_loss():
    class Model(eqx.Module):
        gru: je.GRU
        head: eqx.nn.Linear

        def __init__(self, key):
            k1, k2 = jax.random.split(key)
            self.gru = je.GRU(1, 8, key=k1, return_sequences=False)
            self.head = eqx.nn.Linear(8, 1, key=k2)

        def __call__(self, x):  # one sequence (T, 1) -> a scalar
            last, _ = self.gru(x)
            return self.head(last)[0]

    xs = jax.random.normal(jax.random.key(5), (32, 8, 1))
    ys = jnp.mean(xs[:, :, 0], axis=1)  # the running mean of the sequence

    def loss_fn(model, x, y):
        return jnp.mean((jax.vmap(model)(x) - y) ** 2)

    model = Model(jax.random.key(4))
    optimizer = optax.adam(3e-2)
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def train_step(model, opt_state):
        loss, grads = eqx.filter_value_and_grad(loss_fn)(model, xs, ys)
        updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    losses = []
    for _ in range(30):
        model, opt_state, loss = train_step(model, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0], losses


def test_serialise_round_trip():
    model = [randomized(je.Bidirectional(D, U, key=KEY, dropout=0.25)), randomized(je.GRUCell(D, U, key=KEY))]
    model = eqx.nn.inference_mode(model)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.eqx")
        eqx.tree_serialise_leaves(path, model)
        like = [je.Bidirectional(D, U, key=jax.random.key(9), dropout=0.25), je.GRUCell(D, U, key=jax.random.key(9))]
        loaded = eqx.tree_deserialise_leaves(path, like)
    assert jax.tree.structure(loaded) == jax.tree.structure(model)
    assert loaded[0].inference and loaded[0].forward.inference
    assert_close(loaded[0].weights(), model[0].weights())
    assert_close(loaded[1].weights(), model[1].weights())
    assert_close(loaded[0](X), model[0](X))


# ---------------------------------------------------------------------------- dropout


GRU_DROPOUT = randomized(je.GRU(D, U, key=KEY, dropout=0.3, recurrent_dropout=0.2))


def test_dropout_is_keyed_and_inference_disables_it():
    gru = GRU_DROPOUT
    k1, k2 = jax.random.key(11), jax.random.key(12)
    first = gru(X, key=k1)
    assert_close(gru(X, key=k1), first)
    assert not np.allclose(gru(X, key=k2)[0], first[0])
    assert_close(first, jaxgru.rnn(gru.cell, gru.weights(), X, rng=k1, training=True))
    deterministic = jaxgru.rnn(gru.cell, gru.weights(), X)
    assert not np.allclose(first[0], deterministic[0])
    frozen = eqx.nn.inference_mode(gru)
    assert frozen.inference and not gru.inference
    assert_close(frozen(X), deterministic)
    assert_close(frozen(X, key=k1, inference=False), first)
    assert_close(eqx.nn.inference_mode(frozen, value=False)(X, key=k1), first)


def test_dropout_per_example_under_vmap():
    gru = GRU_DROPOUT
    keys = jax.random.split(jax.random.key(7), B)
    outputs, finals = jax.jit(jax.vmap(lambda x, k: gru(x, key=k)))(X, keys)
    for i in range(B):
        assert_close((outputs[i], finals[i]), gru(X[i], key=keys[i]))
    assert not np.allclose(outputs[0], gru(X, key=keys[0])[0][0])  # not the batched call's masks


def test_bidirectional_dropout_follows_the_wrapper():
    layer = randomized(je.Bidirectional(D, U, key=KEY, recurrent_dropout=0.3))
    k = jax.random.key(13)
    expected = jaxgru.bidirectional(layer.forward.cell, layer.weights(), X, rng=k, training=True)
    assert_close(layer(X, key=k), expected)
    frozen = eqx.nn.inference_mode(layer)
    assert frozen.forward.inference and frozen.backward.inference
    assert not np.allclose(frozen(X)[0], expected[0])


def test_cell_with_one_key_per_sequence_equals_rnn():
    cell = randomized(je.GRUCell(D, U, key=KEY, dropout=0.3, recurrent_dropout=0.3))
    x, h = X[0], H0[0]  # one sequence: the masks have no batch axis
    k = jax.random.key(17)

    @eqx.filter_jit
    def scan(cell, x, h, k):
        def body(state, xt):
            state = cell(xt, state, key=k)
            return state, state

        final, outputs = jax.lax.scan(body, h, jnp.moveaxis(x, -2, 0))
        return jnp.moveaxis(outputs, 0, -2), final

    expected = jaxgru.rnn(cell.cell, cell.weights(), x, initial_state=h, rng=k, training=True)
    assert_close(scan(cell, x, h, k), expected)
    assert_close(cell(x[..., 0, :], h, inference=True), cell.cell.step(cell.weights(), h, x[..., 0, :])[0])


# ---------------------------------------------------------------------------- penalty / constrain


def test_penalty_sums_every_module():
    options = {"kernel_regularizer": "l2", "recurrent_regularizer": {"class_name": "L1", "config": {"l1": 0.1}}}
    model = {"rnn": randomized(je.Bidirectional(D, U, key=KEY, **options)),
             "cell": randomized(je.GRUCell(D, U, key=KEY, bias_regularizer="l2"), seed=8),
             "head": eqx.nn.Linear(2 * U, 1, key=KEY)}
    expected = (model["rnn"].forward.cell.penalty(model["rnn"].forward.weights())
                + model["rnn"].backward.cell.penalty(model["rnn"].backward.weights())
                + model["cell"].cell.penalty(model["cell"].weights()))
    assert float(expected) > 0
    value, grads = eqx.filter_jit(eqx.filter_value_and_grad(je.penalty))(model)
    assert_close(value, expected)
    assert float(jnp.abs(grads["rnn"].forward.kernel).sum()) > 0
    assert float(je.penalty(eqx.nn.Linear(2, 2, key=KEY))) == 0.0


def test_constrain_returns_a_constrained_model():
    cell_config = jaxgru.GRUCell(U, kernel_constraint="non_neg", recurrent_constraint="max_norm",
                                 bias_constraint={"class_name": "MaxNorm", "config": {"max_value": 0.1}})
    gru = randomized(je.GRU(D, key=KEY, cell=cell_config))
    model = [gru, randomized(je.Bidirectional(D, key=KEY, cell=cell_config)), eqx.nn.Linear(2, 2, key=KEY)]
    constrained = je.constrain(model)
    assert jax.tree.structure(constrained) == jax.tree.structure(model)
    assert_close(constrained[0].weights(), cell_config.constrain(gru.weights()))
    assert_close(constrained[1].weights()["backward"], cell_config.constrain(model[1].backward.weights()))
    assert float(jnp.min(constrained[0].kernel)) >= 0 > float(jnp.min(gru.kernel))
    assert_close(constrained[2].weight, model[2].weight)
    assert_close(je.constrain(gru).weights(), constrained[0].weights())


# ---------------------------------------------------------------------------- errors


def test_missing_key_with_dropout_is_a_clear_error():
    gru = je.GRU(D, U, key=KEY, dropout=0.2)
    with pytest.raises(ValueError, match="key: dropout is active"):
        gru(X)
    with pytest.raises(ValueError, match="key:"):
        je.GRUCell(D, U, key=KEY, recurrent_dropout=0.2)(X[:, 0], H0)
    with pytest.raises(ValueError, match="key:"):
        je.Bidirectional(D, U, key=KEY, dropout=0.2)(X)
    with pytest.raises(TypeError, match="key:"):
        gru(X, key=0)
    gru(X, inference=True)  # no key needed
    je.GRU(D, U, key=KEY)(X)  # nor without dropout


def test_bad_inputs_name_the_argument():
    gru = je.GRU(D, U, key=KEY)
    with pytest.raises(ValueError, match="inputs: expected feature dimension 3"):
        gru(jnp.zeros((B, T, D + 1)))
    with pytest.raises(ValueError, match="inputs:"):
        gru(jnp.zeros((D,)))
    with pytest.raises(ValueError, match="initial_state:"):
        gru(X, initial_state=jnp.zeros((B, U + 1)))
    cell = je.GRUCell(D, U, key=KEY)
    with pytest.raises(ValueError, match="x: expected last dimension 3"):
        cell(jnp.zeros((D + 1,)), jnp.zeros((U,)))
    with pytest.raises(ValueError, match="state: expected shape"):
        cell(jnp.zeros((D,)), jnp.zeros((B, U)))


def test_bad_options_name_the_argument():
    with pytest.raises(TypeError, match="inference:"):
        je.GRU(D, U, key=KEY)(X, inference="no")
    with pytest.raises(TypeError, match="inference:"):
        je.GRU(D, U, key=KEY, inference=1)
    with pytest.raises(TypeError, match="key:"):
        je.GRU(D, U, key=None)
    with pytest.raises(ValueError, match="input_size:"):
        je.GRUCell(0, U, key=KEY)
    with pytest.raises(TypeError, match="units:"):
        je.GRU(D, key=KEY)
    with pytest.raises(TypeError, match="cell:"):
        je.GRU(D, key=KEY, cell=jaxgru.GRUCell(U), dropout=0.1)
    with pytest.raises(ValueError, match="units:"):
        je.GRU(D, U + 1, key=KEY, cell=jaxgru.GRUCell(U))
    with pytest.raises(TypeError, match="return_sequences:"):
        je.GRU(D, U, key=KEY, return_sequences="yes")
    with pytest.raises(ValueError, match="merge_mode:"):
        je.Bidirectional(D, U, key=KEY, merge_mode="max")
    with pytest.raises(ValueError, match="params\\['kernel'\\]"):
        je.GRU.from_params(jaxgru.GRUCell(U), {"kernel": jnp.zeros((D, U)), "recurrent_kernel": jnp.zeros((U, 3 * U))})
    with pytest.raises(TypeError, match="inference: the module's inference field is a traced value"):
        jax.jit(lambda m, x: m(x, key=KEY))(je.GRU(D, U, key=KEY, dropout=0.2), X)
