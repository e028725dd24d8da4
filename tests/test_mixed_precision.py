"""Mixed precision: bfloat16 params and inputs, float32 accumulation and state.

The policy (`jaxgru._core.gates`): matmul operands are cast to the weights' dtype and
accumulate in float32 (``preferred_element_type``); the gate arithmetic runs in float32;
the new state keeps the dtype of the state passed in. Passing a float32
``initial_state`` with bfloat16 params and inputs therefore keeps the recurrence in
float32 and rounds only the matmul operands to bfloat16. The reference is the float32
forward on the original (unrounded) float32 params and inputs.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru

B, T, D, U = 4, 1000, 8, 32


def relative_error(value, reference):
    """||value - reference|| / ||reference|| (Frobenius norm over the whole array)."""
    value, reference = np.asarray(value, np.float32), np.asarray(reference, np.float32)
    return float(np.linalg.norm(value - reference) / np.linalg.norm(reference))


@pytest.fixture(scope="module", params=[True, False], ids=["reset_after", "reset_before"])
def forward(request):
    cell = jaxgru.GRUCell(U, reset_after=request.param)
    return cell, jax.jit(lambda params, x, h0: jaxgru.rnn(cell, params, x, initial_state=h0))


def params_with_update_bias(cell, update_bias):
    """Keras-initialised params with the update gate's bias set to ``update_bias``: at 4,
    z ≈ 0.98 and the state integrates its inputs over ~50 steps (long memory)."""
    params = cell.init(jax.random.key(0), D)
    params["bias"] = params["bias"].at[..., :U].set(update_bias)
    return params


@pytest.mark.parametrize("update_bias", [0.0, 4.0], ids=["default_init", "long_memory"])
def test_bf16_forward_with_float32_state_within_1e_2_of_float32_over_1000_steps(forward, update_bias):
    cell, run = forward
    params = params_with_update_bias(cell, update_bias)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(B, T, D)), jnp.float32)
    outputs32, final32 = run(params, x, jnp.zeros((B, U), jnp.float32))
    bf16_params = jax.tree.map(lambda w: w.astype(jnp.bfloat16), params)
    outputs, final = run(bf16_params, x.astype(jnp.bfloat16), jnp.zeros((B, U), jnp.float32))
    assert outputs.dtype == final.dtype == jnp.float32
    assert relative_error(outputs, outputs32) < 1e-2
    assert relative_error(final, final32) < 1e-2
    # The error does not grow along the sequence: the last 100 steps are as close as the first.
    assert relative_error(outputs[:, -100:], outputs32[:, -100:]) < 1e-2


def test_float32_state_is_what_keeps_long_memory_accurate(forward):
    """With z ≈ 0.98 a bfloat16 state (8-bit mantissa) loses the small ``(1 − z) ⊙ hh``
    updates to rounding at every step; the float32 state keeps them."""
    cell, run = forward
    params = params_with_update_bias(cell, 4.0)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(B, T, D)), jnp.float32)
    outputs32, _ = run(params, x, jnp.zeros((B, U), jnp.float32))
    bf16_params = jax.tree.map(lambda w: w.astype(jnp.bfloat16), params)
    with_float32_state, _ = run(bf16_params, x.astype(jnp.bfloat16), jnp.zeros((B, U), jnp.float32))
    with_bf16_state, final = run(bf16_params, x.astype(jnp.bfloat16), jnp.zeros((B, U), jnp.bfloat16))
    assert final.dtype == jnp.bfloat16
    assert 2 * relative_error(with_float32_state, outputs32) < relative_error(with_bf16_state, outputs32)


@pytest.mark.parametrize("time_chunk", [None, 1], ids=["projected", "stepwise"])
@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_bf16_gradients_within_1e_2_of_float32_over_1000_steps(reset_after, time_chunk):
    """The default (fused) backward sums the weight gradients over all T*B rows in one
    float32-accumulated matmul (step by step, with ``time_chunk=1``: into float32 sums),
    so bfloat16 params train with float32-quality gradients (autodiff of the scan instead
    adds up ``dU`` in bfloat16, step by step)."""
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    params = cell.init(jax.random.key(0), D)
    x = jnp.asarray(np.random.default_rng(1).normal(size=(B, T, D)), jnp.float32)

    @jax.jit
    def grads(params, x):
        def loss(params):
            outputs, _ = jaxgru.rnn(cell, params, x, initial_state=jnp.zeros((B, U), jnp.float32),
                                    time_chunk=time_chunk)
            return jnp.mean(outputs ** 2)
        return jax.grad(loss)(params)

    reference = grads(params, x)
    bf16 = grads(jax.tree.map(lambda w: w.astype(jnp.bfloat16), params), x.astype(jnp.bfloat16))
    for name in params:
        assert bf16[name].dtype == jnp.bfloat16
        assert relative_error(bf16[name], reference[name]) < 1e-2, name
