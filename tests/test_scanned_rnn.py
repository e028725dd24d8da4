"""The RL user's path against flax's ``ScannedRNN`` (purejaxrl): ``nn.scan`` over
``nn.GRUCell`` with ``h = where(reset[:, None], zeros, h)`` before every step, the rollout
starting from the state carried over from the previous one. `jaxgru.rnn` with ``resets=``
and that carried ``initial_state`` (no ``reset_state``) computes the same, and
``cell.step(..., reset=)`` is one acting step of it."""

import functools

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxgru
from jaxgru import equinox as je
from jaxgru import linen as jl
from jaxgru import nnx as jn

T, B, D, U = 6, 3, 4, 5
TOLERANCE = dict(rtol=2e-5, atol=2e-6)


class ScannedRNN(nn.Module):
    """purejaxrl's recurrent core, verbatim but for the sizes."""

    @functools.partial(nn.scan, variable_broadcast="params", in_axes=0, out_axes=0, split_rngs={"params": False})
    @nn.compact
    def __call__(self, carry, x):
        ins, resets = x
        carry = jnp.where(resets[:, np.newaxis], nn.GRUCell(U, parent=None).initialize_carry(
            jax.random.key(0), ins.shape), carry)
        return nn.GRUCell(U)(carry, ins)


def rollout(seed):
    keys = jax.random.split(jax.random.key(seed), 3)
    obs = jax.random.normal(keys[0], (T, B, D))
    resets = jax.random.bernoulli(keys[1], 0.3, (T, B)).at[0, 0].set(True)
    carried = jax.random.normal(keys[2], (B, U))
    return obs, resets, carried


def loss_of(outputs, final):
    return jnp.sum(jnp.sin(outputs) * jnp.linspace(-1.0, 1.0, U)) + jnp.sum(final ** 2)


@pytest.mark.parametrize("gradient", ["fused", "autodiff"])
def test_the_default_reset_equals_scanned_rnn_with_a_carried_state(gradient):
    """Outputs, final state and the gradients of flax's params (through
    `jaxgru.from_flax_linen` inside the differentiated function), the inputs and the
    carried state."""
    obs, resets, carried = rollout(0)
    scanned = ScannedRNN()
    variables = scanned.init(jax.random.key(1), carried, (obs, resets))
    flax_params = variables["params"]["GRUCell_0"]

    def theirs(p, obs, h):
        final, outputs = scanned.apply({"params": {"GRUCell_0": p}}, h, (obs, resets))
        return loss_of(outputs, final), (outputs, final)

    def ours(p, obs, h):
        cell, params = jaxgru.from_flax_linen(p)
        outputs, final = jaxgru.rnn(cell, params, obs, initial_state=h, resets=resets, time_major=True,
                                    gradient=gradient)
        return loss_of(outputs, final), (outputs, final)

    grad = functools.partial(jax.value_and_grad, argnums=(0, 1, 2), has_aux=True)

    @jax.jit  # both, and the old behaviour below: one program
    def results(p, obs, h):
        restarted = jaxgru.rnn(*jaxgru.from_flax_linen(p), obs, initial_state=h, resets=resets, reset_state=h,
                               time_major=True)[0]
        return grad(theirs)(p, obs, h), grad(ours)(p, obs, h), restarted

    ((expected_loss, expected), expected_grads), ((loss, got), grads), restarted = results(flax_params, obs, carried)
    np.testing.assert_allclose(loss, expected_loss, **TOLERANCE)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **TOLERANCE), (got, grads), (expected, expected_grads))
    # the old behaviour, restarting from the carried state, is far from it
    assert np.max(np.abs(restarted - expected[0])) > 0.05


def test_acting_steps_with_reset_equal_where_then_step():
    """``cell.step(reset=done)`` and the reset of the linen, NNX and Equinox cells: the
    hand-written ``where`` then the step (flax's ``nn.GRUCell`` for the linen cell)."""
    obs, resets, carried = rollout(2)
    x, done = obs[0], resets[1]
    flax_cell = nn.GRUCell(U)
    flax_params = flax_cell.init(jax.random.key(3), carried, x)
    cell, params = jaxgru.from_flax_linen(flax_params)
    expected = flax_cell.apply(flax_params, jnp.where(done[:, None], 0.0, carried), x)[0]
    got = jax.jit(lambda h, x, d: cell.step(params, h, x, reset=d))(carried, x, done)[0]
    np.testing.assert_allclose(got, expected, **TOLERANCE)
    np.testing.assert_allclose(cell.step(params, carried, x, reset=done.astype(jnp.int32))[0], expected, **TOLERANCE)
    target = jnp.linspace(-0.5, 0.5, U)  # reset_state (U,) broadcast to the reset rows
    np.testing.assert_allclose(cell.step(params, carried, x, reset=done, reset_state=target)[0],
                               cell.step(params, jnp.where(done[:, None], target, carried), x)[0], **TOLERANCE)

    linen = jl.GRUCell(U)
    np.testing.assert_allclose(linen.apply({"params": params}, carried, x, reset=done)[1], expected, **TOLERANCE)
    module = jn.GRUCell(D, U, rngs=nnx.Rngs(0))
    reference = cell.step(module.weights(), jnp.where(done[:, None], 0.0, carried), x)[0]
    np.testing.assert_allclose(module(carried, x, reset=done)[1], reference, **TOLERANCE)
    equinox_cell = je.GRUCell.from_params(cell, params)
    np.testing.assert_allclose(equinox_cell(x, carried, reset=done), expected, **TOLERANCE)
    one = eqx.filter_vmap(lambda x, h, d: equinox_cell(x, h, reset=d))(x, carried, done)  # (D,) steps
    np.testing.assert_allclose(one, expected, **TOLERANCE)


@pytest.mark.parametrize("reset,reset_state,error,match", [
    (np.zeros(B, np.float32), None, TypeError, r"reset: expected booleans .*float32; for float done"),
    (np.zeros((B, 1), bool), None, ValueError, r"reset: expected shape \(3,\) \(one flag per row of x\)"),
    (None, np.zeros(U), ValueError, "reset_state: given without reset"),
    (np.zeros(B, bool), np.zeros((2, U)), ValueError, r"reset_state: expected a shape that broadcasts to"),
])
def test_bad_step_resets(reset, reset_state, error, match):
    cell = jaxgru.GRUCell(U)
    params = cell.init(jax.random.key(0), D)
    with pytest.raises(error, match=match):
        cell.step(params, jnp.zeros((B, U)), jnp.zeros((B, D)), reset=reset, reset_state=reset_state)
