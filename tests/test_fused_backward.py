"""The fused backward pass against autodiff of the scan, and against finite differences."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from helpers import check_vjp_jitted, random_params
from jaxgru._core.adjoints import supports
from jaxgru._core.runner import default_stepwise, default_time_chunk

B, T, D, U = 3, 6, 4, 5


def problem(cell, dtype=jnp.float32, seed=0):
    """Params (non-zero biases), inputs, initial state, a mask with a fully masked row and a
    row masked at the end, and a dropout key."""
    params = random_params(cell, D, seed, scale=0.3, dtype=dtype)
    x, h0, rng = _draws(seed, dtype)
    mask = np.ones((B, T), bool)
    mask[0, :] = False
    mask[1, 1] = mask[1, -2:] = False
    return params, x, h0, jnp.asarray(mask), rng


@functools.partial(jax.jit, static_argnums=1)
def _draws(seed, dtype):
    """The inputs, initial state and dropout key of `problem`, drawn in one program."""
    keys = jax.random.split(jax.random.key(seed), 5)
    return jax.random.normal(keys[2], (B, T, D), dtype), 0.5 * jax.random.normal(keys[3], (B, U), dtype), keys[4]


def loss_fn(cell, gradient, **options):
    """A scalar loss of every output and the final state, with fixed random weights."""
    weights = jax.random.normal(jax.random.key(7), (B, T, U))

    def loss(params, x, h0, mask, rng):
        outputs, final = jaxgru.rnn(cell, params, x, initial_state=h0, mask=mask, rng=rng,
                                    gradient=gradient, **options)
        w = weights if outputs.ndim == 3 else weights[:, 0]
        return jnp.sum(outputs * w) + jnp.sum(jnp.sin(final))

    return loss


def assert_same_gradients(cell, use_mask=True, time_chunks=(None,), **options):
    """Fused and autodiff gradients agree at every ``time_chunk`` of ``time_chunks``; returns
    the ``(value, grads)`` of each fused loop and of each autodiff loop, as two lists.

    Every variant (both backward passes at every time chunk) is computed by ONE jitted
    program: XLA compiles them together in well under the sum of their separate compiles
    (four variants of one cell: about 2.4 times less compile time)."""
    params, x, h0, mask, rng = problem(cell)
    mask = mask if use_mask else None
    variants = [(chunk, gradient) for chunk in time_chunks for gradient in ("fused", "autodiff")]
    pairs = all_value_and_grads(cell, variants, **options)(params, x, h0, mask, rng)
    for chunk, (value_fused, grads_fused), (value_auto, grads_auto) in zip(time_chunks, pairs[::2], pairs[1::2],
                                                                           strict=True):
        where = f"time_chunk={chunk}"
        np.testing.assert_allclose(value_fused, value_auto, rtol=1e-6, atol=1e-6, err_msg=where)
        for g_fused, g_auto in zip(jax.tree.leaves(grads_fused), jax.tree.leaves(grads_auto), strict=True):
            assert g_fused.dtype == g_auto.dtype and g_fused.shape == g_auto.shape
            np.testing.assert_allclose(g_fused, g_auto, rtol=1e-5, atol=1e-5, err_msg=where)
        assert float(jnp.max(jnp.abs(grads_fused[0]["recurrent_kernel"]))) > 0
    return pairs[::2], pairs[1::2]


def all_value_and_grads(cell, variants, **options):
    """One jitted function of ``(params, x, h0, mask, rng)`` returning the loss's
    ``(value, grads w.r.t. params, x, h0)`` for every ``(time_chunk, gradient)`` variant."""
    fns = [jax.value_and_grad(loss_fn(cell, gradient, time_chunk=chunk, **options), argnums=(0, 1, 2))
           for chunk, gradient in variants]
    return jax.jit(lambda *args: [fn(*args) for fn in fns])


CELLS = [
    dict(reset_after=True), dict(reset_after=False),
    dict(reset_after=False, implementation=1), dict(reset_after=True, use_bias=False),
    dict(reset_after=True, dropout=0.3, recurrent_dropout=0.4),
    dict(reset_after=False, dropout=0.3, recurrent_dropout=0.4),
    dict(reset_after=True, dropout=0.3, implementation=2),
    dict(reset_after=True, activation="relu", recurrent_activation="hard_sigmoid"),
    dict(reset_after=False, activation="gelu", recurrent_activation="swish", recurrent_dropout=0.2),
    dict(reset_after=False, activation=None, recurrent_activation="softsign", use_bias=False),
]


# None: the projected loop; 1: the loop that projects every step itself, with its stepwise adjoint
LOOPS = (None, 1)


# CELLS[4] and CELLS[5] (dropout in training, both gate orders) run both loops, and a loop
# over chunks of 4 steps, in test_time_chunks_match_one_projection.
@pytest.mark.parametrize("config", CELLS[:4] + CELLS[6:], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_cell_configurations_match_autodiff(config):
    """With a mask (a fully masked row included), an initial state and dropout in training;
    both loops."""
    assert_same_gradients(jaxgru.GRUCell(U, **config), training=True, time_chunks=LOOPS)


CALLS = [
    dict(use_mask=False),
    dict(zero_output_for_mask=True),
    dict(go_backwards=True),
    dict(return_sequences=False),
    dict(return_sequences=False, zero_output_for_mask=True, go_backwards=True, use_mask=False),
]


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("call", CALLS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_call_options_match_autodiff(reset_after, call):
    """Both loops."""
    assert_same_gradients(jaxgru.GRUCell(U, reset_after=reset_after), time_chunks=LOOPS, **call)


@pytest.mark.parametrize("config", [CELLS[4], CELLS[5]], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("zero_output_for_mask", [False, True])
def test_time_chunks_match_one_projection(config, zero_output_for_mask):
    """Chunked projection (T = 6: chunks of 1, or 4 and a remainder of 2), both backward
    passes, against one projection of all steps (the default at this size: None)
    differentiated by autodiff: state, carried output and their cotangents cross the chunk
    boundaries. Both loops of test_cell_configurations_match_autodiff, for these cells."""
    assert default_time_chunk(T, B, U) == T and not default_stepwise(T, B, U)
    cell = jaxgru.GRUCell(U, **config)
    options = dict(zero_output_for_mask=zero_output_for_mask, training=True)
    chunks = (None, 1, 4)
    fused, autodiff = assert_same_gradients(cell, time_chunks=chunks, **options)
    one_projection = autodiff[0]
    for chunk, result in zip(chunks, fused, strict=True):
        for a, b in zip(jax.tree.leaves(result), jax.tree.leaves(one_projection), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5, err_msg=f"time_chunk={chunk}")


@pytest.mark.parametrize("batch,steps,chunk,stepwise", [(128, 17, 8, False), (256, 9, 4, True)])
def test_default_time_chunks_on_cpu_match_one_projection(batch, steps, chunk, stepwise):
    """At a batch and width where the CPU default chunks a sequence (C*B*U <= 2^18; here
    T = 17 runs as 8 + 8 + 1 steps, T = 9 as 4 + 4 + 1), and where differentiated it runs
    step by step instead (B*U >= 2^16), outputs and gradients equal one projection's,
    differentiated or not."""
    units = 256
    assert jax.default_backend() == "cpu" and default_time_chunk(steps, batch, units) == chunk
    assert default_stepwise(steps, batch, units) == stepwise
    cell = jaxgru.GRUCell(units)
    params = cell.init(jax.random.key(0), 2)
    x = jax.random.normal(jax.random.key(1), (batch, steps, 2))

    def loss(params, x, **options):
        outputs, final = jaxgru.rnn(cell, params, x, **options)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(final ** 2)

    @jax.jit  # one program, one compile
    def both(params, x):
        chunked = jax.value_and_grad(loss, argnums=(0, 1))(params, x)
        whole = jax.value_and_grad(functools.partial(loss, time_chunk=steps), argnums=(0, 1))(params, x)
        # not differentiated
        return (*chunked, jaxgru.rnn(cell, params, x)), (*whole, jaxgru.rnn(cell, params, x, time_chunk=steps))

    chunked, whole = both(params, x)
    for a, b in zip(jax.tree.leaves(chunked), jax.tree.leaves(whole), strict=True):
        # kernel gradients sum T*B rows, in chunks, step by step or at once: float32 rounding
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(np.abs(b).max()))


def test_default_time_chunk_projects_all_steps_on_accelerators_and_short_sequences():
    assert default_time_chunk(100, 32, 128) == 100  # 2^18 // (32*128) = 64: fewer than two chunks
    assert default_time_chunk(200, 32, 128) == 64
    assert default_time_chunk(50, 256, 256) == 4
    assert default_time_chunk(50, 256, 256, "cuda") == 50
    assert default_time_chunk(50, 256, 256, "tpu") == 50
    assert default_stepwise(50, 256, 256) and default_stepwise(50, 512, 128)  # B*U = 2^16
    assert not default_stepwise(50, 128, 256) and not default_stepwise(1, 256, 256)
    assert not default_stepwise(50, 256, 256, "cuda")


def test_unrolled_loop_matches_autodiff():
    assert_same_gradients(jaxgru.GRUCell(U, reset_after=False), unroll=2, zero_output_for_mask=True)


def test_bidirectional_matches_autodiff():
    cell = jaxgru.GRUCell(U, recurrent_dropout=0.3)
    params_fw, x, h0, mask, rng = problem(cell)
    params = {"forward": params_fw, "backward": problem(cell, seed=1)[0]}

    def loss(params, x, gradient):
        outputs, (final_fw, final_bw) = jaxgru.bidirectional(
            cell, params, x, mask=mask, initial_state=(h0, -h0), rng=rng, training=True, gradient=gradient)
        return jnp.sum(outputs * jnp.cos(outputs)) + jnp.sum(final_fw * final_bw)

    @jax.jit  # both in one program, one compile
    def grads(params, x):
        return [jax.grad(loss, argnums=(0, 1))(params, x, gradient) for gradient in ("fused", "autodiff")]

    fused, autodiff = grads(params, x)
    for g_fused, g_auto in zip(jax.tree.leaves(fused), jax.tree.leaves(autodiff), strict=True):
        np.testing.assert_allclose(g_fused, g_auto, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("reset_after,recurrent_dropout", [(False, 0.0), (True, 0.3)])
def test_fused_gradients_match_finite_differences_to_second_order(x64, reset_after, recurrent_dropout):
    """float64, against finite differences; order 2 checks the gradient of the gradient
    (reverse over reverse, through the fused backward pass)."""
    cell = jaxgru.GRUCell(U, reset_after=reset_after, recurrent_dropout=recurrent_dropout,
                          activation="softplus", recurrent_activation="sigmoid")
    params, x, h0, mask, rng = problem(cell, jnp.float64)
    loss = loss_fn(cell, "fused", training=True)
    args = (params, x, h0)
    # order 2, reverse over reverse: the loss's VJP, then the VJP of its gradient, each
    # against finite differences (check_grads(order=2, modes=["rev"]), in jitted programs).
    check_vjp_jitted(lambda p, x, h0: loss(p, x, h0, mask, rng), args)
    check_vjp_jitted(jax.grad(lambda p, x, h0: loss(p, x, h0, mask, rng), argnums=(0, 1, 2)), args)


def test_non_elementwise_activation_falls_back_to_autodiff():
    softmax = functools.partial(jax.nn.softmax, axis=-1)
    cell = jaxgru.GRUCell(U, activation=softmax)
    assert not supports(cell) and supports(jaxgru.GRUCell(U, activation="gelu"))
    assert_same_gradients(cell)


def test_unknown_gradient_mode_is_rejected():
    cell = jaxgru.GRUCell(U)
    params, x, *_ = problem(cell)
    with pytest.raises(ValueError, match=r"gradient: expected one of \('fused', 'autodiff'\), got 'manual'"):
        jaxgru.rnn(cell, params, x, gradient="manual")
