"""Helpers the test files share: random weights, closeness checks, a runner that compares a
GRU of another library with `jaxgru.rnn`, and Flax pieces and a small regression task for the
module tests."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.test_util import check_vjp

import jaxgru


def random_params(cell, input_dim, seed=0, scale=0.5, dtype=np.float32):
    """Params of ``cell`` for ``input_dim`` input features, every weight drawn from N(0, scale²)
    (biases included, so every term of the math is exercised), as numpy arrays."""
    rng = np.random.default_rng(seed)
    return {name: (scale * rng.standard_normal(shape)).astype(dtype)
            for name, shape in cell.param_shapes(input_dim).items()}


def randomized(tree, seed=0, scale=0.5):
    """``tree`` with every array (or shape struct, e.g. from `jax.eval_shape`) replaced by
    N(0, scale²) numpy values of its shape and dtype (non-zero where initializers give zeros)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda a: (scale * rng.standard_normal(np.shape(a))).astype(a.dtype), tree)


def assert_close(actual, expected, atol=1e-6, rtol=0.0):
    """Arrays, or pytrees with as many arrays, agree elementwise within ``atol + rtol * |expected|``."""
    actual, expected = jax.tree.leaves(actual), jax.tree.leaves(expected)
    assert len(actual) == len(expected), f"{len(actual)} arrays against {len(expected)}"
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), atol=atol, rtol=rtol)


# ---------------------------------------------------------------- another library's GRU against jaxgru


def run_jaxgru(cell, params, x):
    return jaxgru.rnn(cell, params, x)


@functools.partial(jax.jit, static_argnums=(0, 1))
def evaluate(run, config, args, x):
    """``run(config, args, x)``'s outputs and final state, and the gradient wrt ``x`` of a loss
    of both. Weights travel as ``args`` (not closed over), so equal configurations compile once."""
    def f(x):
        outputs, final = run(config, args, x)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(final ** 2), (outputs, final)
    (_, (outputs, final)), grad = jax.value_and_grad(f, has_aux=True)(x)
    return outputs, final, grad


def assert_matches_rnn(source, cell, params, x):
    """Outputs, final state and input gradients of ``source = (run, config, args)`` on the
    (B, T, D) ``x`` equal those of ``jaxgru.rnn(cell, params, x)``."""
    expected = evaluate(*source, x)
    got = evaluate(run_jaxgru, cell, params, x)
    batch, steps, _ = x.shape
    assert got[0].shape == (batch, steps, cell.units) and got[1].shape == (batch, cell.units)
    for a, b, tol in zip(got, expected, (1e-5, 1e-5, 1e-4)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=tol)


# ---------------------------------------------------------------- Flax modules, training


def randomize_nnx(module, seed):
    """Replaces every nnx.Param of ``module`` by N(0, 0.5²) values (non-zero biases)."""
    nnx.update(module, randomized(nnx.state(module, nnx.Param), seed))


class KeyProbe(nn.Module):
    """Returns the first key its scope draws from the "dropout" stream (as a jaxgru module at
    the same path does)."""

    @nn.compact
    def __call__(self):
        return self.make_rng("dropout")



def synthetic_task(seed, batch=64, steps=8):
    """(B, T, 2) inputs and targets: the mean over time of x[..., 0] - x[..., 1], times 3
    (needs memory of every step)."""
    x = jax.random.normal(jax.random.key(seed), (batch, steps, 2))
    return x, jnp.mean(x[..., 0] - x[..., 1], axis=1) * 3


# ---------------------------------------------------------------- finite differences


def check_vjp_jitted(f, args, **tolerances):
    """`jax.test_util.check_vjp` of ``f`` at ``args`` (what ``check_grads(f, args, order=1,
    modes=["rev"], **tolerances)`` checks: one random direction, its default ``atol``,
    ``rtol`` and ``eps`` unless given): ``f``'s VJP against finite differences of ``f``.
    ``f`` and its VJP each run as one jitted program (`jax.vjp` of a jitted ``f`` compiles
    a linearized forward pass and its transpose separately: three programs where this
    compiles two)."""
    f_jit = jax.jit(f)
    vjp_jit = jax.jit(lambda args, cotangent: jax.vjp(f, *args)[1](cotangent))

    def f_vjp(*args):
        return f_jit(*args), functools.partial(vjp_jit, args)

    check_vjp(f_jit, f_vjp, args, **tolerances)
