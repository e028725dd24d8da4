"""Gradients of `jaxgru.rnn` / `jaxgru.bidirectional` against finite differences (float64).

Only reverse mode is used (`jax.test_util.check_vjp`, what `check_grads(modes=["rev"])`
checks; second order as `jax.grad` of a function of `jax.grad`): forward mode is not part
of the runner's contract.
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import jaxgru
from helpers import check_vjp_jitted, random_params

B, T, D, U = 3, 4, 2, 3
MASK = np.array([[1, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 1]], bool)
FULLY_MASKED = np.array([[1, 1, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], bool)


def random_args(cell, dtype, seed=0):
    params = jax.tree.map(jnp.asarray, random_params(cell, D, seed, dtype=dtype))
    rng = np.random.default_rng(seed + 100)
    x = jnp.asarray(rng.normal(size=(B, T, D)), dtype)
    h0 = jnp.asarray(rng.normal(size=(B, U)), dtype)
    return params, x, h0


def sequence_fn(cell, **options):
    def run(params, x, h0):
        return jaxgru.rnn(cell, params, x, initial_state=h0, **options)
    return run


def scalar_loss(fn):
    def loss(params, x, h0):
        outputs, final = fn(params, x, h0)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(jnp.cos(final))
    return loss


CELLS = {
    "reset_after": jaxgru.GRUCell(U),
    "reset_before": jaxgru.GRUCell(U, reset_after=False),
    "reset_before-impl1-softsign": jaxgru.GRUCell(U, reset_after=False, implementation=1, activation="softsign"),
}
# same params as "reset_after"; fixed dropout masks are constants of the function
DROPOUT_CELL = jaxgru.GRUCell(U, dropout=0.3, recurrent_dropout=0.4)
DROPOUT_MASKS = jaxgru.DropoutMasks(
    inputs=np.random.default_rng(5).choice([0.0, 1 / 0.7], size=(3, B, D)),
    recurrent=np.random.default_rng(6).choice([0.0, 1 / 0.6], size=(3, B, U)))


@pytest.mark.parametrize("cell_name", list(CELLS))
def test_first_order_gradients_match_finite_differences(x64, cell_name):
    """w.r.t. params, inputs and initial state; every go_backwards x {no mask, mask} x
    return_sequences combination as one output tree (one compile)."""
    cell = CELLS[cell_name]
    runs = [sequence_fn(cell, mask=mask, go_backwards=go_backwards, return_sequences=return_sequences,
                        zero_output_for_mask=go_backwards)
            for go_backwards, mask, return_sequences in itertools.product([False, True], [None, MASK], [False, True])]
    if cell_name == "reset_after":
        runs.append(sequence_fn(DROPOUT_CELL, mask=MASK, dropout_masks=DROPOUT_MASKS, training=True))
    check_vjp_jitted(lambda params, x, h0: [run(params, x, h0) for run in runs], random_args(cell, jnp.float64))


@pytest.mark.parametrize("cell_name", ["reset_after", "reset_before-impl1-softsign"])
def test_second_order_reverse_over_reverse_matches_finite_differences(x64, cell_name):
    cell = CELLS[cell_name]
    loss = scalar_loss(sequence_fn(cell, mask=MASK, go_backwards=cell.reset_after))
    check_vjp_jitted(jax.grad(loss, argnums=(0, 1, 2)), random_args(cell, jnp.float64))


def test_bidirectional_gradients_match_finite_differences(x64):
    cell = jaxgru.GRUCell(U)
    params_fw, x, h_fw = random_args(cell, jnp.float64, seed=0)
    params_bw, _, h_bw = random_args(cell, jnp.float64, seed=1)

    def fn(params, x, states):
        return [jaxgru.bidirectional(cell, params, x, mask=MASK, initial_state=states, merge_mode=merge_mode)
                for merge_mode in ("concat", "mul")]

    check_vjp_jitted(fn, ({"forward": params_fw, "backward": params_bw}, x, (h_fw, h_bw)))


def test_fully_masked_rows_have_finite_exact_gradients():
    """float32, a row with no valid step: its state passes through untouched, so
    d final / d h0 is the identity there and its inputs get no gradient."""
    cell = jaxgru.GRUCell(U)
    params, x, h0 = random_args(cell, jnp.float32)
    losses = [scalar_loss(sequence_fn(cell, mask=FULLY_MASKED, go_backwards=go_backwards, zero_output_for_mask=True))
              for go_backwards in (False, True)]

    @jax.jit
    def gradients(params, x, h0):
        first = [jax.grad(loss, argnums=(0, 1, 2))(params, x, h0) for loss in losses]
        second = [jax.grad(lambda h: jnp.sum(jax.grad(loss, argnums=2)(params, x, h)))(h0) for loss in losses]
        return first, second

    first, second = gradients(params, x, h0)
    for g in jax.tree.leaves((first, second)):
        assert bool(jnp.all(jnp.isfinite(g)))
    for g_params, g_x, g_h0 in first:
        np.testing.assert_array_equal(g_x[1], 0.0)
        np.testing.assert_allclose(g_h0[1], -np.sin(np.asarray(h0[1])), rtol=1e-6)


def test_the_finite_difference_check_fails_a_wrong_second_order_gradient(x64):
    """The check the tests above make can fail: a sine whose VJP is right but cannot be
    differentiated again (its derivative held constant) passes at first order and fails at
    second order."""
    @jax.custom_vjp
    def sine(x):
        return jnp.sin(x)

    sine.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (lax.stop_gradient(jnp.cos(x)) * g,))
    x = (jnp.linspace(0.1, 1.0, 5),)
    check_vjp_jitted(sine, x)
    check_vjp_jitted(jax.grad(lambda x: jnp.sum(jnp.sin(x))), x)
    with pytest.raises(AssertionError, match="cotangent projection"):
        check_vjp_jitted(jax.grad(lambda x: jnp.sum(sine(x))), x)
