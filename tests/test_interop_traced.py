"""Converters inside `jax.jit` and `jax.vmap`: a network initialised inside a traced
function (purejaxrl's ``jax.vmap(train)(keys)``) converts there. Traced weights in gives
`jax.Array` s out, equal to the eager conversion of the same weights (numpy in, numpy out)."""

import equinox as eqx
import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxgru
from references import HEAVY, torch

# Jitted conversions are compared bit for bit with the eager ones: both at JAX's default.
pytestmark = pytest.mark.xla_optimized

D, U = 3, 4
KEYS = jax.random.split(jax.random.key(0), 2)


def assert_traced(tree):
    for leaf in jax.tree.leaves(tree):
        assert isinstance(leaf, jax.core.Tracer), type(leaf)


def assert_numpy(tree):
    for leaf in jax.tree.leaves(tree):
        assert type(leaf) is np.ndarray, type(leaf)


def check(convert, make, to_key_input=lambda key: key):
    """``convert(make(key))`` under ``jax.jit(jax.vmap(...))`` returns traced leaves inside
    and, per key, the values of the eager conversion (numpy leaves)."""
    def traced(key):
        out = convert(make(to_key_input(key)))
        assert_traced(out)
        return out

    batched = jax.jit(jax.vmap(traced))(KEYS)
    for k, key in enumerate(KEYS):
        eager = convert(make(to_key_input(key)))
        assert_numpy(eager)
        jax.tree.map(lambda a, b, k=k: np.testing.assert_array_equal(a[k], b), batched, eager)


def test_flax_linen_both_ways():
    module = nn.GRUCell(U)

    def convert(variables):
        cell, params = jaxgru.from_flax_linen(variables)
        assert cell == jaxgru.GRUCell(U, reset_after=True)
        return params, jaxgru.to_flax_linen(params)

    check(convert, lambda key: module.init(key, jnp.zeros((1, U)), jnp.zeros((1, D))))


def test_flax_nnx():
    def convert(module):
        return jaxgru.from_flax_nnx(module)[1]

    def traced(key):
        out = convert(nnx.GRUCell(D, U, rngs=nnx.Rngs(key)))
        assert_traced(out)
        return out

    batched = jax.jit(jax.vmap(traced))(KEYS)
    module = nnx.GRUCell(D, U, rngs=nnx.Rngs(KEYS[1]))
    eager = convert(module)
    assert_numpy(eager)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[1], b), batched, eager)
    inside = nnx.jit(lambda m: convert(m))(module)  # a module passed into nnx.jit
    jax.tree.map(np.testing.assert_array_equal, inside, eager)


def test_equinox_both_ways():
    def convert(module):
        cell, params = jaxgru.from_equinox(module)
        back = jaxgru.to_equinox(params, cell)
        return params, (back.weight_ih, back.weight_hh, back.bias, back.bias_n)

    def compare(key):
        params, back = convert(eqx.nn.GRUCell(D, U, key=key))
        return params, back

    def traced(key):
        out = compare(key)
        assert_traced(out)
        return out

    batched = jax.jit(jax.vmap(traced))(KEYS)
    params, back = compare(KEYS[0])
    assert_numpy(params)  # to_equinox always holds jax.Arrays
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[0], b), batched, (params, back))


def test_haiku_both_ways():
    transformed = hk.transform(lambda x, h: hk.GRU(U)(x, h))

    def convert(params):
        cell, ours = jaxgru.from_haiku(params)
        return ours, jaxgru.to_haiku(ours, cell)

    check(convert, lambda key: transformed.init(key, jnp.zeros((1, D)), jnp.zeros((1, U))))


@HEAVY
@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_of_jax_arrays(bias):
    torch.manual_seed(0)
    state = {k: jnp.asarray(v.numpy()) for k, v in torch.nn.GRU(D, U, bias=bias).state_dict().items()}
    eager = jaxgru.from_torch({k: np.asarray(v) for k, v in state.items()})
    assert_numpy(eager)

    def traced(state):
        out = jaxgru.from_torch(state)
        assert_traced(out)
        return out

    jax.tree.map(np.testing.assert_array_equal, jax.jit(traced)(state), eager)
    stacked = {k: jnp.stack([v, 2 * v]) for k, v in state.items()}
    batched = jax.vmap(traced)(stacked)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a[1], 2 * b), batched, eager)


def test_a_vmapped_train_converts_and_runs_its_network():
    """purejaxrl's shape: ``jax.vmap(train)(keys)`` inits a flax cell inside ``train``,
    converts it and runs `jaxgru.rnn`: equal to the same network run by flax."""
    module = nn.GRUCell(U)
    x = jax.random.normal(jax.random.key(1), (2, 5, D))

    def train(key):
        variables = module.init(key, jnp.zeros((2, U)), x[:, 0])
        cell, params = jaxgru.from_flax_linen(variables)
        ours = jaxgru.rnn(cell, params, x)[0]
        theirs = nn.RNN(module).apply({"params": {"cell": variables["params"]}}, x)
        return ours, theirs

    ours, theirs = jax.jit(jax.vmap(train))(KEYS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_folded_biases_differentiate_both_keras_biases():
    """Folding Keras's two z/r biases into Flax's one is a sum: differentiated through
    `to_flax_linen`, both receive the gradient of the folded bias, also where the recurrent
    one is zero (as it is after `from_flax_linen`)."""
    cell = jaxgru.GRUCell(U, reset_after=True)
    params = cell.init(jax.random.key(1), D)
    params["bias"] = params["bias"].at[0].set(0.5).at[1].set(0.0)
    x = jax.random.normal(jax.random.key(2), (2, D))
    h = jax.random.normal(jax.random.key(3), (2, U))

    def flax_loss(params):
        new_h, _ = nn.GRUCell(U).apply({"params": jaxgru.to_flax_linen(params)}, h, x)
        return jnp.sum(jnp.sin(new_h))

    # jitted: one program each, not the backward pass op by op
    grad = jax.jit(jax.grad(flax_loss))(params)["bias"]
    expected = jax.jit(jax.grad(lambda p: jnp.sum(jnp.sin(cell.step(p, h, x)[1]))))(params)["bias"]
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    assert np.all(np.abs(grad[1, :2 * U]) > 0)
