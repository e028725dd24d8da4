"""GRUCell.step under JAX transformations: jit/no-jit (chex variants), vmap, grad, dtypes."""

import itertools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from absl.testing import parameterized
from jax.test_util import check_grads

import jaxgru
from helpers import random_params
from keras_reference import keras_cell, params_of
from references import tf, HEAVY

B, D, U = 3, 4, 5
OPTIONS = [dict(), dict(reset_after=False), dict(implementation=1, dropout=0.3),
           dict(reset_after=False, dropout=0.25, recurrent_dropout=0.4)]


def example(cell, seed=0, dtype=jnp.float32):
    keys = jax.random.split(jax.random.key(seed), 2)
    params = random_params(cell, D, seed, scale=0.3, dtype=dtype)
    h = jax.random.normal(keys[0], (B, U), dtype)
    x = jax.random.normal(keys[1], (B, D), dtype)
    return params, h, x


class StepVariantsTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(*OPTIONS)
    def test_jit_and_no_jit_agree(self, **options):
        cell = jaxgru.GRUCell(U, **options)
        params, h, x = example(cell)
        training = cell.dropout > 0 or cell.recurrent_dropout > 0
        key = jax.random.key(7)
        step = self.variant(lambda p, h, x, k: cell.step(p, h, x, rng=k, training=training))
        out, state = step(params, h, x, key)
        # the reference: the step run op by op, with the same explicit masks
        masks = cell.dropout_masks(key, B, D, training=training)
        with jax.disable_jit():
            expected, _ = cell.step(params, h, x, training=training, dropout_masks=masks)
        chex.assert_trees_all_close(out, expected, atol=1e-6)
        chex.assert_trees_all_equal(out, state)
        chex.assert_shape(out, (B, U))


@pytest.mark.parametrize("options", OPTIONS, ids=str)
def test_vmap_over_a_leading_axis_equals_a_loop(options):
    cell = jaxgru.GRUCell(U, **options)
    training = cell.dropout > 0 or cell.recurrent_dropout > 0
    n = 3
    examples = [example(cell, seed) for seed in range(n)]
    keys = jax.random.split(jax.random.key(1), n)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *examples)

    def step(params, h, x, key):
        return cell.step(params, h, x, rng=key, training=training)[0]

    # params, states, inputs and keys all batched (an ensemble); then params shared
    batched = jax.vmap(step)(*stacked, keys)
    shared = jax.vmap(step, in_axes=(None, 0, 0, 0))(examples[0][0], stacked[1], stacked[2], keys)
    for i, (params, h, x) in enumerate(examples):
        np.testing.assert_allclose(batched[i], step(params, h, x, keys[i]), atol=1e-6)
        np.testing.assert_allclose(shared[i], step(examples[0][0], h, x, keys[i]), atol=1e-6)


def test_vmap_over_time_major_inputs_with_one_state():
    cell = jaxgru.GRUCell(U)
    params, h, _ = example(cell)
    xs = jax.random.normal(jax.random.key(3), (6, B, D))
    out = jax.vmap(lambda x: cell.step(params, h, x)[0])(xs)
    for t in range(6):
        np.testing.assert_allclose(out[t], cell.step(params, h, xs[t])[0], atol=1e-6)


def test_cell_is_a_static_argument_and_equal_cells_share_the_compilation():
    step = jax.jit(lambda cell, params, h, x: cell.step(params, h, x)[0], static_argnums=0)
    a = jaxgru.GRUCell(U, kernel_regularizer="l2", kernel_constraint={"class_name": "MaxNorm", "config": {}})
    b = jaxgru.GRUCell.from_config(a.get_config())
    assert a is not b
    params, h, x = example(a)
    out_a = step(a, params, h, x)
    out_b = step(b, params, h, x)
    assert step._cache_size() == 1
    np.testing.assert_array_equal(out_a, out_b)
    step(jaxgru.GRUCell(U, reset_after=False), {**params, "bias": params["bias"][0]}, h, x)
    assert step._cache_size() == 2


def test_cell_can_be_closed_over_under_jit_grad():
    cell = jaxgru.GRUCell(U, kernel_regularizer="l2")
    params, h, x = example(cell)

    @jax.jit
    def loss(params):
        out, _ = cell.step(params, h, x)
        return jnp.sum(out**2) + cell.penalty(params)

    grads = jax.grad(loss)(params)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    assert all(np.isfinite(g).all() for g in jax.tree.leaves(grads))


# ------------------------------------------------------------------ gradients
GRAD_CASES = list(itertools.product(
    [True, False],                                        # reset_after
    [1, 2],                                               # implementation
    [False, True],                                        # explicit dropout masks
    [("tanh", "sigmoid"), ("softsign", "hard_sigmoid"), ("gelu", "swish")],
))


@pytest.mark.parametrize("reset_after,implementation,dropout,activations", GRAD_CASES)
def test_gradients_match_finite_differences(x64, reset_after, implementation, dropout, activations):
    cell = jaxgru.GRUCell(U, activation=activations[0], recurrent_activation=activations[1],
                          reset_after=reset_after, implementation=implementation,
                          dropout=0.3 if dropout else 0.0, recurrent_dropout=0.2 if dropout and implementation == 1 else 0.0)
    params, h, x = example(cell, seed=implementation, dtype=jnp.float64)
    masks = cell.dropout_masks(jax.random.key(5), B, D, training=dropout, dtype=jnp.float64)

    def f(params, h, x):
        return cell.step(params, h, x, training=dropout, dropout_masks=masks)[0]

    assert f(params, h, x).dtype == jnp.float64
    check_grads(f, (params, h, x), order=1, modes=("rev",), eps=1e-6, atol=1e-6, rtol=1e-6)


def test_second_order_gradients(x64):
    cell = jaxgru.GRUCell(U, reset_after=False)
    params, h, x = example(cell, dtype=jnp.float64)
    step = jax.jit(lambda p, h, x: cell.step(p, h, x)[0])
    # order 2, reverse over reverse: the step's VJP, then the VJP of its jitted gradient
    # (of a fixed projection of the output), each against finite differences.
    check_grads(step, (params, h, x), order=1, modes=("rev",), eps=1e-5, atol=1e-5, rtol=1e-5)
    weights = jnp.linspace(-1.0, 1.0, U, dtype=jnp.float64)
    gradient = jax.jit(jax.grad(lambda p, h, x: jnp.sum(step(p, h, x) * weights), argnums=(0, 1, 2)))
    check_grads(gradient, (params, h, x), order=1, modes=("rev",), eps=1e-5, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------ dtypes
@pytest.mark.parametrize("options", OPTIONS[:2], ids=str)
def test_bfloat16_runs_and_stays_close_to_float32(options):
    cell = jaxgru.GRUCell(U, **options)
    params, h, x = example(cell)
    bf16 = lambda t: jax.tree.map(lambda a: a.astype(jnp.bfloat16), t)  # noqa: E731
    out, state = jax.jit(cell.step)(bf16(params), bf16(h), bf16(x))
    assert out.dtype == state.dtype == jnp.bfloat16
    reference, _ = cell.step(jax.tree.map(lambda a: a.astype(jnp.float32), bf16(params)),
                             bf16(h).astype(jnp.float32), bf16(x).astype(jnp.float32))
    np.testing.assert_allclose(np.asarray(out, np.float32), reference, atol=2e-2)
    assert cell.penalty(bf16(params)).dtype == jnp.float32


def test_bfloat16_params_with_float32_inputs():
    cell = jaxgru.GRUCell(U)
    params, h, x = example(cell)
    out, _ = cell.step(jax.tree.map(lambda a: a.astype(jnp.bfloat16), params), h, x)
    assert out.dtype == jnp.float32  # the state's dtype
    np.testing.assert_allclose(out, cell.step(params, h, x)[0], atol=3e-2)


@HEAVY
@pytest.mark.parametrize("reset_after", [True, False])
def test_float64_matches_keras_float64(x64, reset_after):
    kcell = keras_cell(U, D, seed=2, reset_after=reset_after, dtype="float64")
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    params = {k: v.astype(np.float64) for k, v in params_of(kcell.get_weights()).items()}
    rng = np.random.default_rng(0)
    x, h = rng.normal(size=(B, D)), rng.normal(size=(B, U))
    expected, _ = kcell(tf.constant(x), tf.constant(h))
    out, _ = cell.step(params, jnp.asarray(h), jnp.asarray(x))
    assert out.dtype == jnp.float64
    np.testing.assert_allclose(out, expected.numpy(), atol=1e-12, rtol=1e-12)
    assert cell.init(jax.random.key(0), D, dtype=jnp.float64)["kernel"].dtype == jnp.float64
