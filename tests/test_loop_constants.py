"""Every step loop reads the kernels' gate blocks as loop constants: no step slices a kernel.

XLA:CPU does not hoist a slice of a loop constant out of a `while` body, so a kernel
sliced inside a scan body is copied at every step (at small batch that was most of a
reset_before step's time, benchmarks/RESULTS.md). Checked on the traced programs: no
`slice` or `split` inside the body of a loop over steps (a scan with no scan inside)
reads one of the body's constants with a kernel's ``D`` or ``U`` rows, forward and
differentiated, for every loop jaxgru builds and for a user's `lax.scan` over
`GRUCell.step`. (A loop over chunks may slice once per chunk.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import random_params
from jax import lax

import jaxgru

B, T, D, U = 2, 6, 5, 4  # kernels (5, 12) and (4, 12); the reset_after bias (2, 12)


def _subjaxprs(params):
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if hasattr(item, "eqns"):
                yield item
            elif hasattr(getattr(item, "jaxpr", None), "eqns"):
                yield item.jaxpr


def kernel_slices_in_loops(jaxpr) -> list[str]:
    """The slices of a step loop's kernel-shaped constants (2-D, ``D`` or ``U`` rows), in
    ``jaxpr`` and every jaxpr inside it."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan" and not has_scan(eqn.params["jaxpr"].jaxpr):
            body = eqn.params["jaxpr"].jaxpr
            constants = set(body.invars[:eqn.params["num_consts"]])
            found += [f"{inner.primitive.name} of {tuple(var.aval.shape)}" for inner in body.eqns
                      if inner.primitive.name in ("slice", "split")
                      for var in inner.invars
                      if var in constants and var.aval.ndim == 2 and var.aval.shape[0] in (D, U)]
        for sub in _subjaxprs(eqn.params):
            found += kernel_slices_in_loops(sub)
    return found


def has_scan(jaxpr) -> bool:
    return any(eqn.primitive.name == "scan" or any(has_scan(sub) for sub in _subjaxprs(eqn.params))
               for eqn in jaxpr.eqns)


def traced(fn, *args):
    return jax.make_jaxpr(fn)(*args).jaxpr


CELLS = [dict(reset_after=True), dict(reset_after=False), dict(reset_after=True, use_bias=False),
         dict(reset_after=False, dropout=0.3, recurrent_dropout=0.4, implementation=1),
         dict(reset_after=True, dropout=0.3, recurrent_dropout=0.4, implementation=2)]
LOOPS = [dict(), dict(time_chunk=1), dict(time_chunk=2), dict(gradient="autodiff"),
         dict(gradient="autodiff", time_chunk=1)]


@pytest.mark.parametrize("loop", LOOPS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
@pytest.mark.parametrize("config", CELLS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_no_loop_slices_a_kernel(config, loop):
    cell = jaxgru.GRUCell(U, **config)
    params = random_params(cell, D, 0)
    x = jax.random.normal(jax.random.key(1), (B, T, D))
    mask = jnp.asarray(np.arange(T)[None, :] < np.array([[T], [T - 2]]))

    def loss(params, x):
        outputs, _ = jaxgru.rnn(cell, params, x, mask=mask, rng=jax.random.key(2), training=True, **loop)
        return jnp.sum(outputs ** 2)

    assert kernel_slices_in_loops(traced(loss, params, x)) == []
    assert kernel_slices_in_loops(traced(jax.grad(loss, argnums=(0, 1)), params, x)) == []
    assert kernel_slices_in_loops(traced(jax.grad(loss), params, x)) == []


@pytest.mark.parametrize("config", [dict(reset_after=True), dict(reset_after=True, dropout=0.3, implementation=2)])
def test_a_user_loop_over_step_does_not_slice_the_input_kernel(config):
    cell = jaxgru.GRUCell(U, **config)
    params = random_params(cell, D, 0)
    xs = jax.random.normal(jax.random.key(1), (T, B, D))
    masks = cell.dropout_masks(jax.random.key(2), B, D)

    def loss(params, xs):
        def body(h, x_t):
            h, _ = cell.step(params, h, x_t, training=True, dropout_masks=masks)
            return h, h
        return jnp.sum(lax.scan(body, jnp.zeros((B, U)), xs)[1] ** 2)

    assert kernel_slices_in_loops(traced(loss, params, xs)) == []
    assert kernel_slices_in_loops(traced(jax.grad(loss), params, xs)) == []


def test_the_check_sees_a_kernel_sliced_in_a_loop():
    kernel = jnp.ones((U, 3 * U))

    def sliced_per_step(kernel, xs):
        return lax.scan(lambda h, x_t: (h @ kernel[:, :U] + x_t, None), jnp.zeros((B, U)), xs)[0]

    assert kernel_slices_in_loops(traced(sliced_per_step, kernel, jnp.ones((T, B, U)))) == [f"slice of {(U, 3 * U)}"]
