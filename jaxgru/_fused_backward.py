r"""The GRU time loop with a hand-written backward pass (a `jax.custom_vjp`).

`recurrence` computes exactly what `jaxgru._loop.forward` computes (it *is* that scan) and
differs only in how it is differentiated. Autodiff of `lax.scan` turns the per-step
weight gradient into a small ``(U, B) @ (B, 3U)`` matmul accumulated in the loop carry
at every step; here the reverse loop does only what is inherently sequential.

Notation (per step, all ``(B, U)``; σ the recurrent activation, φ the activation, ⊙
elementwise, ``h`` the state entering the step, ``δ = ∂L/∂h'`` the cotangent of the new
state, ``U_k`` the recurrent kernel's gate-``k`` block, ``m_k`` its recurrent dropout
mask or 1):

**reset_after=True.** With ``a_z = xi_z + (h⊙m_z) U_z + br_z``, ``a_r`` alike,
``c_h = (h⊙m_h) U_h + br_h``, ``g = xi_h + r ⊙ c_h``, ``z = σ(a_z)``, ``r = σ(a_r)``,
``hh = φ(g)``, ``h' = z ⊙ h + (1 − z) ⊙ hh``:

.. math::

    \partial h'/\partial a_z &= (h - hh) \odot σ'(a_z), \qquad
    \partial h'/\partial a_r = (1 - z) \odot φ'(g) \odot c_h \odot σ'(a_r), \\
    \partial h'/\partial c_h &= (1 - z) \odot φ'(g) \odot r, \qquad
    \partial h'/\partial xi_h = (1 - z) \odot φ'(g), \qquad
    \partial h'/\partial h \,|_\text{direct} = z,

    dA_k &= δ \odot \partial h'/\partial a_k \;(k = z, r), \qquad dC_h = δ \odot \partial h'/\partial c_h, \\
    \partial L/\partial h &= δ \odot z + \textstyle\sum_k m_k \odot (dA_k U_k^\top)
    \quad (dA_h := dC_h).

**reset_after=False.** With ``a_z``, ``a_r`` as above (no recurrent bias),
``a_h = xi_h + (r ⊙ h⊙m_h) U_h``, ``hh = φ(a_h)``:

.. math::

    dA_h &= δ \odot (1 - z) \odot φ'(a_h), \qquad d(r⊙h) = dA_h U_h^\top, \\
    dA_z &= δ \odot (h - hh) \odot σ'(a_z), \qquad
    dA_r = d(r⊙h) \odot (h⊙m_h) \odot σ'(a_r), \\
    \partial L/\partial h &= δ \odot z + d(r⊙h) \odot r \odot m_h
    + \textstyle\sum_{k=z,r} m_k \odot (dA_k U_k^\top).

The step's matmul inside the candidate makes reset_after=False's reverse step two
elementwise stages around ``dA_h U_hᵀ``.

**Weights and inputs**, for all steps at once after the loop (single large matmuls over
the ``T·B`` rows): ``∂L/∂U_k = Σ_t (h_t⊙m_k)ᵀ dA_k`` (reset_before's candidate:
``Σ_t (r ⊙ h_t⊙m_h)ᵀ dA_h``), ``∂L/∂br = Σ_{t,b} [dA_z, dA_r, dC_h]``. Every gate adds
the input side ``xi_k`` to a recurrent term, so ``∂L/∂xi_k = dA_k`` (z, r, and
reset_before's candidate) and ``∂L/∂xi_h = δ ⊙ ∂h'/∂xi_h`` (reset_after); autodiff of the
projection outside turns them into ``∂L/∂W = Xᵀ dXi`` in one matmul.

**Step by step** (`stepwise_recurrence`, the loop that projects each step's own inputs,
``xi_t = x_t W + b``): the reverse loop computes each step's partials from that step's
residuals and accumulates the weight gradients in its carry, ``∂L/∂U += (h_t⊙m_k)ᵀ
dA_{k,t}``, ``∂L/∂W += (x_t⊙m_k)ᵀ dXi_{k,t}`` and the biases' sums over the batch rows
of ``dXi_t`` (input side) and ``dA_t`` (recurrent side); it emits
``∂L/∂x_t = Σ_k m_k ⊙ dXi_{k,t} W_kᵀ``. The same equations, summed step by step instead
of in one matmul over the ``T·B`` rows: at large ``B·U`` one step's matmuls are large
enough, and its operands are still in cache.

**Masks and resets.** The reverse loop undoes `jaxgru._loop.forward`'s selects: at a
masked step ``δ = 0`` and ``∂L/∂h`` passes the next step's cotangent through (the state is
carried), and the cotangent of the repeated output flows to the previous step's output;
at a reset step the cotangent of the step's input state goes to the reset state (summed
over every segment that starts from it) and none flows to the previous step.

How the partials are computed: each ``∂h'/∂·`` above is the `jax.vjp` of the elementwise
gate function (`gates.reset_after_new_state`; `gates.reset_gate_inputs` and
`gates.reset_before_new_state` for reset_after=False) with a cotangent of ones, for all steps
at once, off the sequential path (step by step: for that step, inside the reverse loop).
One rule serves every activation; it assumes elementwise activations (every Keras
activation is; `supports` checks a custom one).

Residuals: the states ``(T, B, U)`` and three ``(T, B, U)`` gate terms
(`gates.recurrent_step_with_preactivations`: ``a_z, a_r`` and ``c_h`` or ``a_h``), plus
``xi_h`` for reset_after (step by step, the forward loop emits it); no matmul is
recomputed. Per-gate arrays rather than one ``(T, B, 3U)``: on XLA:CPU a buffer above
glibc's 32 MiB mmap threshold is page-faulted anew on every call.

Higher-order reverse mode (the gradient of a gradient) works: the backward pass is itself
ordinary differentiable JAX. Forward mode (`jax.jvp`, `jax.jacfwd`) does not, as for every
`jax.custom_vjp`; use ``gradient="autodiff"`` for it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxgru import _gates as gates
from jaxgru._loop import Carry, LoopOptions, Steps, forward, over_chunks
from jaxgru.cell import GRUCell

__all__ = ["supports", "recurrence", "stepwise_recurrence"]


def supports(cell: GRUCell) -> bool:
    """Whether the cell's activations are elementwise, which the fused backward assumes.

    Every Keras activation is; a custom callable is probed once on a ``(B, U)``-shaped
    (2-D) array (its Jacobian at a few points must be diagonal). Cells that fail the
    probe, or whose activation cannot run on the probe at all, are differentiated by
    autodiff instead.
    """
    return all(_is_elementwise(fn) for fn in (cell.activation_fn, cell.recurrent_activation_fn))


_PROBE = ((-2.1, -0.7, 0.0), (0.4, 1.3, 2.9))  # (B, U) = (2, 3): states are 2-D


@functools.cache
def _is_elementwise(fn) -> bool:
    with jax.ensure_compile_time_eval():
        probe = jnp.array(_PROBE, jnp.float32)
        try:
            jacobian = jax.jacrev(fn)(probe)
        except Exception:  # any failure on a 2-D input: leave the activation to autodiff
            return False
        size = probe.size
        if np.shape(jacobian) != (*probe.shape, *probe.shape):
            return False
        jacobian = jnp.reshape(jacobian, (size, size))
        return bool(jnp.all((jacobian == 0) | jnp.eye(size, dtype=bool)))


def recurrence(cell: GRUCell, options: LoopOptions, weights: gates.RecurrentWeights, carry: Carry,
               reset_state: jax.Array | None, steps: Steps, recurrent_masks: jax.Array | None):
    """`jaxgru._loop.forward`'s ``(outputs (T, B, U), final Carry)``, differentiated by the
    adjoint in the module docstring. Arguments as `jaxgru._loop.forward`'s."""
    return _recurrence(cell, options, weights, carry, reset_state, steps, recurrent_masks)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _recurrence(cell, options, weights, carry, reset_state, steps, recurrent_masks):
    outputs, final, _ = forward(cell, weights, carry, reset_state, steps, recurrent_masks, options)
    return outputs, final


def _recurrence_fwd(cell, options, weights, carry, reset_state, steps, recurrent_masks):
    outputs, final, (states, terms, _) = forward(cell, weights, carry, reset_state, steps, recurrent_masks, options,
                                                 keep_residuals=True)
    # reset_after's candidate keeps its input side separate (hh = φ(xi_h + r ⊙ c_h))
    xi_h = steps.xi.h if cell.reset_after else None
    residuals = (weights, carry.state, reset_state, xi_h, steps.keep, steps.reset, recurrent_masks, states, terms)
    return (outputs, final), residuals


def _recurrence_bwd(cell, options, residuals, cotangents):
    weights, h_start, reset_state, xi_h, keep, reset, recurrent_masks, states, terms = residuals
    d_outputs, d_final = cotangents
    h_in = _step_input_states(h_start, reset_state, states, reset)
    adjoint = _adjoint_builder(cell, weights, recurrent_masks)(h_in, xi_h, terms)
    loop_carry, emitted = lax.scan(functools.partial(_reverse_step, adjoint.step, keep is not None, options),
                                   _reverse_init(d_final, keep, reset), (d_outputs, adjoint.partials, keep, reset),
                                   reverse=True, unroll=options.unroll)
    d_xi, d_weights = adjoint.cotangents(emitted)
    d_weights = jax.tree.map(lambda d, w: d.astype(w.dtype), d_weights.joined(), weights)
    d_xi = gates.GateInputs(*(d.astype(terms[0].dtype) for d in d_xi))
    d_carry, d_reset_state = _carry_cotangents(loop_carry, keep, h_start, reset_state)
    return d_weights, d_carry, d_reset_state, Steps(d_xi, None, None), None


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


def stepwise_recurrence(cell: GRUCell, options: LoopOptions, forward_chunk: int, params: dict, carry: Carry,
                        reset_state: jax.Array | None, steps: Steps, input_masks: jax.Array | None,
                        recurrent_masks: jax.Array | None):
    """`recurrence` for a loop that projects each step's inputs itself: ``steps.xi`` holds
    the inputs ``x`` ``(T, B, D)``, and every step computes ``gates.project`` of
    its ``x_t`` (``input_masks`` ``(3, B, D)`` or None) before its recurrent matmul.

    The reverse loop then does, per step, what `recurrence` does for all steps after its
    loop: the step's partials (from its own residuals), and the weight gradients
    ``∂L/∂U += (h_t⊙m_k)ᵀ dA_t``, ``∂L/∂W += (x_t⊙m_k)ᵀ dXi_t`` (the projection's `jax.vjp`)
    accumulated in the loop carry, so that no ``(T, B, ·)`` array of cotangents is stored
    and each step's operands are read while they are in cache. ``∂L/∂x_t = dXi_t Wᵀ`` is
    emitted per step (and dropped by XLA when the inputs need no gradient).

    Not differentiated, the same outputs are computed with the inputs projected
    ``forward_chunk`` steps at a time before their part of the loop
    (`jaxgru._loop.over_chunks`; ``1``: by every step of one loop), the faster forward
    pass where it is not followed by this backward pass. Returns ``(outputs (T, B, U),
    final Carry)``.
    """
    return _stepwise(cell, options, forward_chunk, params, carry, reset_state, steps, input_masks, recurrent_masks)


def _input_side(params: dict) -> dict:
    """The params the input projection reads."""
    return {name: value for name, value in params.items() if name in ("kernel", "bias")}


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _stepwise(cell, options, forward_chunk, params, carry, reset_state, steps, input_masks, recurrent_masks):
    weights = gates.recurrent_weights(cell, params)
    project = gates.projection(cell, params, input_masks)
    if forward_chunk == 1:
        outputs, final, _ = forward(cell, weights, carry, reset_state, steps, recurrent_masks, options,
                                    project=project)
        return outputs, final

    def run(carry, part):
        xs, keep, reset = part
        outputs, carry, _ = forward(cell, weights, carry, reset_state, Steps(project(xs), keep, reset),
                                    recurrent_masks, options)
        return carry, outputs

    return over_chunks(run, carry, tuple(steps), forward_chunk)


def _stepwise_fwd(cell, options, forward_chunk, params, carry, reset_state, steps, input_masks, recurrent_masks):
    outputs, final, (states, terms, xi_h) = forward(
        cell, gates.recurrent_weights(cell, params), carry, reset_state, steps, recurrent_masks, options,
        keep_residuals=True, project=gates.projection(cell, params, input_masks))
    residuals = (params, carry.state, reset_state, steps, input_masks, recurrent_masks, states, terms, xi_h)
    return (outputs, final), residuals


def _stepwise_bwd(cell, options, forward_chunk, residuals, cotangents):
    del forward_chunk  # the forward's layout when not differentiated
    params, h_start, reset_state, steps, input_masks, recurrent_masks, states, terms, xi_h = residuals
    d_outputs, d_final = cotangents
    weights, recurrent_vjp = jax.vjp(lambda p: gates.recurrent_weights(cell, p), params)
    acc = gates.accumulation_dtype(weights.kernel.dtype)
    # the projection's weight gradient x_tᵀ dXi_t, accumulated in `acc` like every sum here,
    # per gate block (split once, joined once after the loop)
    input_weights, input_vjp = jax.vjp(lambda p: gates.input_weights(cell, p),
                                       jax.tree.map(lambda a: a.astype(acc), _input_side(params)))
    h_in = _step_input_states(h_start, reset_state, states, reset=steps.reset)
    adjoint_at = _adjoint_builder(cell, weights, recurrent_masks)  # the kernel's blocks, sliced once

    def body(carry, inputs):
        loop_carry, (d_input_weights, d_weights) = carry
        x_t, h_t, terms_t, xi_h_t, step_inputs = inputs
        # this step's adjoint: its partials, from its own residuals, as a one-step sequence
        adjoint = adjoint_at(h_t[None], None if xi_h_t is None else xi_h_t[None], tuple(a[None] for a in terms_t))
        partials = jax.tree.map(lambda a: a[0], adjoint.partials)
        loop_carry, emitted = _reverse_step(adjoint.step, steps.keep is not None, options, loop_carry,
                                            (step_inputs[0], partials, *step_inputs[1:]))
        d_xi, d_weights_t = adjoint.cotangents(jax.tree.map(lambda a: a[None], emitted))
        _, project_vjp = jax.vjp(lambda w, x: gates.project(cell, w, x, input_masks), input_weights, x_t)
        d_input_weights_t, d_x_t = project_vjp(gates.GateInputs(*(d[0].astype(terms_t[0].dtype) for d in d_xi)))
        sums = jax.tree.map(lambda total, d: total + d.astype(acc), (d_input_weights, d_weights),
                            (d_input_weights_t, d_weights_t))
        return (loop_carry, sums), d_x_t

    zeros = (jax.tree.map(lambda a: jnp.zeros(a.shape, acc), input_weights), _WeightBlocks.zeros(weights, acc))
    (loop_carry, (d_input_weights, d_weights)), d_x = lax.scan(
        body, (_reverse_init(d_final, steps.keep, steps.reset), zeros),
        (steps.xi, h_in, terms, xi_h, (d_outputs, steps.keep, steps.reset)), reverse=True, unroll=options.unroll)
    d_weights = jax.tree.map(lambda d, w: d.astype(w.dtype), d_weights.joined(), weights)
    (d_params,) = recurrent_vjp(d_weights)
    (d_input_params,) = input_vjp(d_input_weights)
    d_params = {name: (d + d_input_params[name]).astype(d.dtype) if name in d_input_params else d
                for name, d in d_params.items()}
    d_carry, d_reset_state = _carry_cotangents(loop_carry, steps.keep, h_start, reset_state)
    return d_params, d_carry, d_reset_state, Steps(d_x, None, None), None, None


_stepwise.defvjp(_stepwise_fwd, _stepwise_bwd)


def _step_input_states(h_start: jax.Array, reset_state: jax.Array | None, states: jax.Array,
                       reset: jax.Array | None) -> jax.Array:
    """``h_t``, the state each step computed from ``(T, B, U)``: the state after the
    previous step (``h_start`` for the first), or the reset state where a step resets."""
    h_in = jnp.concatenate([h_start[None], states[:-1]], axis=0)
    if reset is None:
        return h_in
    assert reset_state is not None  # given whenever there are resets
    return jnp.where(reset[:, :, None], reset_state[None], h_in)


class _Adjoint(NamedTuple):
    """One convention's reverse step and what it needs.

    ``partials``: the per-step ``(T, B, U)`` arrays the reverse step reads (scanned over);
    ``step(δ, partials_t) -> (∂L/∂h, emitted_t)``; ``cotangents(emitted)`` -> ``(∂L/∂xi,
    ∂L/∂weights)`` from what every step emitted, stacked ``(T, B, U)``; the weights'
    cotangents as `_WeightBlocks`, in `gates.accumulation_dtype` (the caller joins and
    casts them once summed).
    """

    partials: Any
    step: Callable
    cotangents: Callable


def _reset_after_adjoint(cell, weights, recurrent_masks, project_back, h_in, xi_h, terms) -> _Adjoint:
    """reset_after=True: the reverse step is ``dA = δ ⊙ ∂h'/∂(a_z, a_r, c_h)``,
    ``∂L/∂h = δ ⊙ z + Σ_k m_k ⊙ dA_k U_kᵀ``."""
    a_z, a_r, c_h = terms
    dh_da_z, dh_da_r, dh_dxi_h, dh_dc_h, dh_dh = _partials(functools.partial(gates.reset_after_new_state, cell),
                                                           a_z, a_r, xi_h, c_h, h_in)

    def step(delta, partials):
        dh_da_z, dh_da_r, dh_dc_h, dh_dh = partials
        d_a = (delta * dh_da_z, delta * dh_da_r, delta * dh_dc_h)  # dA_z, dA_r, dC_h
        return delta * dh_dh + project_back(d_a), (delta, d_a)

    def cotangents(emitted):
        delta, d_a = emitted
        d_xi = (d_a[0], d_a[1], delta * dh_dxi_h)
        d_kernel = _kernel_gradient(weights.kernel, h_in, recurrent_masks, d_a)
        d_bias = None
        if weights.bias is not None:  # ∂L/∂br = Σ_{t,b} dA
            d_bias = tuple(jnp.sum(d, axis=(0, 1)) for d in d_a)
        return d_xi, _WeightBlocks(d_kernel, d_bias)

    return _Adjoint((dh_da_z, dh_da_r, dh_dc_h, dh_dh), step, cotangents)


def _reset_before_adjoint(cell, weights, recurrent_masks, project_back, candidate_kernel, h_in, xi_h,
                          terms) -> _Adjoint:
    """reset_after=False: ``dA_h = δ ⊙ ∂h'/∂a_h``, ``d(r⊙h) = dA_h U_hᵀ``, then z's and r's
    ``dA`` and ``∂L/∂h = δ ⊙ z + d(r⊙h) ⊙ ∂(r⊙h)/∂h + Σ_{z,r} m_k ⊙ dA_k U_kᵀ``."""
    del xi_h  # the candidate's input side is inside a_h
    a_z, a_r, a_h = terms
    h_h = gates.candidate_state(h_in, recurrent_masks)
    (z, rh), reset_gate_vjp = jax.vjp(functools.partial(gates.reset_gate_inputs, cell), a_z, a_r, h_h)
    ones, zeros = jnp.ones_like(z), jnp.zeros_like(z)
    dz_da_z = reset_gate_vjp((ones, zeros))[0]
    _, drh_da_r, drh_dh_h = reset_gate_vjp((zeros, ones))
    drh_dh = drh_dh_h if recurrent_masks is None else drh_dh_h * recurrent_masks[2]
    dh_da_h, dh_dz, dh_dh = _partials(functools.partial(gates.reset_before_new_state, cell), a_h, z, h_in)

    def step(delta, partials):
        dh_da_h, dh_dz, dz_da_z, drh_da_r, drh_dh, dh_dh = partials
        d_a_h = delta * dh_da_h
        d_rh = gates.matmul(d_a_h, candidate_kernel.T)
        d_a_zr = (delta * dh_dz * dz_da_z, d_rh * drh_da_r)
        return delta * dh_dh + d_rh * drh_dh + project_back(d_a_zr), (d_a_zr, d_a_h)

    def cotangents(emitted):
        d_a_zr, d_a_h = emitted
        d_kernel = _kernel_gradient(weights.kernel, h_in, recurrent_masks, d_a_zr, (rh, d_a_h))
        return (*d_a_zr, d_a_h), _WeightBlocks(d_kernel, None)

    return _Adjoint((dh_da_h, dh_dz, dz_da_z, drh_da_r, drh_dh, dh_dh), step, cotangents)


def _back_projection(kernel, recurrent_masks, units, gate_count):
    """``dA -> Σ_k m_k ⊙ (dA_k U_kᵀ)`` over the first ``gate_count`` gates: the cotangent
    of ``h`` through its matmuls (one matmul without recurrent dropout masks)."""
    if recurrent_masks is None:
        h_kernel_t = kernel[:, :gate_count * units].T
        return lambda d_a: gates.matmul(jnp.concatenate(d_a, axis=-1), h_kernel_t)
    blocks = jnp.split(kernel, 3, axis=1)
    masks, blocks = recurrent_masks[:gate_count], blocks[:gate_count]
    return lambda d_a: sum(m * gates.matmul(d, k.T) for m, d, k in zip(masks, d_a, blocks, strict=True))


def _adjoint_builder(cell, weights, recurrent_masks) -> Callable[..., _Adjoint]:
    """``(h_in, xi_h, terms) -> _Adjoint``: the cell's convention's adjoint over the steps
    of ``h_in`` ``(T, B, U)``. The kernel blocks its reverse step multiplies by are sliced
    here, once, so that a loop building each step's adjoint (`stepwise_recurrence`) reads
    them as loop constants instead of slicing the kernel at every step."""
    units = cell.units
    if cell.reset_after:
        project_back = _back_projection(weights.kernel, recurrent_masks, units, gate_count=3)
        return functools.partial(_reset_after_adjoint, cell, weights, recurrent_masks, project_back)
    project_back = _back_projection(weights.kernel, recurrent_masks, units, gate_count=2)
    candidate_kernel = weights.kernel[:, 2 * units:]
    return functools.partial(_reset_before_adjoint, cell, weights, recurrent_masks, project_back, candidate_kernel)


def _reverse_init(d_final: Carry, keep, reset):
    """The reverse loop's initial carry ``(∂L/∂h, ∂L/∂repeated output, ∂L/∂reset state)``
    from the final carry's cotangent (without a mask the final carried output is the
    final state)."""
    d_reset = None if reset is None else jnp.zeros_like(d_final.state)
    if keep is not None:
        return d_final.state, d_final.output, d_reset
    return d_final.state + d_final.output, None, d_reset


def _reverse_step(adjoint_step, masked: bool, options: LoopOptions, carry, inputs):
    """One step of the reverse loop: undoes `jaxgru._loop.forward`'s selects around
    ``adjoint_step(δ, partials_t) -> (∂L/∂h, emitted_t)``.

    The carry holds ``∂L/∂h`` of the state leaving the step, plus (with a mask) the
    cotangent of the repeated output and (with resets) the reset state's running sum;
    ``inputs``: ``(∂L/∂output_t, partials_t, keep_t, reset_t)``.
    """
    dh_next, d_repeated, d_reset = carry
    d_out, partials, keep_t, reset_t = inputs
    dtype = dh_next.dtype
    if not masked:
        dh_in, emitted = adjoint_step(dh_next + d_out, partials)
    else:
        # forward: output = keep ? h_new : fallback;  h_next = keep ? h_new : h_in
        keep_t = keep_t[:, None]
        zeros = jnp.zeros_like(dh_next)
        d_out = d_out + d_repeated
        dh_in, emitted = adjoint_step(jnp.where(keep_t, dh_next + d_out, zeros), partials)
        dh_in = dh_in + jnp.where(keep_t, zeros, dh_next)
        d_repeated = zeros if options.zero_output_for_mask else jnp.where(keep_t, zeros, d_out)
    if reset_t is not None:  # forward: h_in = reset ? reset_state : h;  previous = reset ? 0 : previous
        restart = reset_t[:, None]
        d_reset = d_reset + jnp.where(restart, dh_in, 0.0)
        dh_in = jnp.where(restart, 0.0, dh_in)
        if masked:
            d_repeated = jnp.where(restart, 0.0, d_repeated)
    return (dh_in.astype(dtype), d_repeated, d_reset), emitted


def _carry_cotangents(loop_carry, keep, h_start, reset_state) -> tuple[Carry, jax.Array | None]:
    """The reverse loop's final carry as the cotangents of the initial `Carry` and of
    the reset state."""
    d_state, d_repeated, d_reset = loop_carry
    d_output = d_repeated if keep is not None else jnp.zeros_like(d_state)
    if d_reset is not None:
        d_reset = d_reset.astype(reset_state.dtype)
    return Carry(d_state, d_output.astype(h_start.dtype)), d_reset


def _partials(fn, *args):
    """Elementwise partial derivatives of ``fn``'s single output w.r.t. each input, for an
    elementwise ``fn`` (each output element depends on the same element of each input):
    its vector-Jacobian product with ones."""
    out, fn_vjp = jax.vjp(fn, *args)
    return fn_vjp(jnp.ones_like(out))


def _kernel_gradient(kernel, h_in, recurrent_masks, d_a, candidate=None):
    """``∂L/∂U`` as its three ``(U, U)`` gate blocks, in `gates.accumulation_dtype`: per
    gate, (its matmul input over all steps)ᵀ ``dA``, each a single matmul over the ``T*B``
    rows. ``candidate``: ``(r ⊙ h_h, dA_h)`` for reset_after=False."""
    acc = gates.accumulation_dtype(kernel.dtype)

    def contract(a, d):  # (T, B, U)ᵀ (T, B, N) -> (U, N)
        return jnp.einsum("tbu,tbn->un", a.astype(kernel.dtype), d, preferred_element_type=acc)

    masks = (None,) * len(d_a) if recurrent_masks is None else recurrent_masks
    blocks = [contract(h_in if mask is None else h_in * mask, d) for mask, d in zip(masks[:len(d_a)], d_a, strict=True)]
    if candidate is not None:
        blocks.append(contract(*candidate))
    return tuple(blocks)


class _WeightBlocks(NamedTuple):
    """The recurrent weights' cotangents per gate block (`_Adjoint.cotangents`): three
    ``(U, U)`` kernel blocks and three ``(U,)`` bias blocks or None, so that a loop sums
    them step by step without concatenating at every step."""

    kernel: tuple[jax.Array, ...]
    bias: tuple[jax.Array, ...] | None

    @classmethod
    def zeros(cls, weights: gates.RecurrentWeights, dtype) -> _WeightBlocks:
        def blocks(w):
            return None if w is None else tuple(jnp.split(jnp.zeros(w.shape, dtype), 3, axis=-1))

        return cls(blocks(weights.kernel), blocks(weights.bias))

    def joined(self) -> gates.RecurrentWeights:
        """As ``kernel (U, 3U)`` and ``bias (3U,)`` (or None)."""
        return gates.RecurrentWeights(jnp.concatenate(self.kernel, axis=-1),
                                      None if self.bias is None else jnp.concatenate(self.bias))
