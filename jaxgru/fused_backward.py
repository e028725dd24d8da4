"""The GRU recurrence with a hand-written backward pass (a `jax.custom_vjp`).

`fused_scan_recurrence` computes exactly what `jaxgru.rnn.scan_recurrence` computes (same
arguments, same forward arithmetic: both call `jaxgru.gates`) and differs only in how it
is differentiated. Autodiff of `lax.scan` turns the per-step weight gradient into a small
``(U, B) @ (B, 3U)`` matmul accumulated in the loop carry at every step; here the loop does
only what is inherently sequential:

* forward: the scan of `gates.recurrent_step_with_preactivations`, keeping the states
  ``H`` ``(T, B, U)`` and three ``(T, B, U)`` gate terms: the pre-activations of z and r
  (input side, recurrent matmul and bias summed) and the candidate's recurrent term
  (reset_after, whose candidate also needs ``xi_h``) or its pre-activation (otherwise).
  The backward pass recomputes no matmul, and keeps 4 (reset_after) or 3 sequence
  arrays besides ``H`` where input sides and matmul outputs apart would be 6;
* before the backward loop, for all steps at once: the partial derivatives of the
  elementwise gate functions (`gates.reset_after_gates`; `gates.reset_gate_inputs` and
  `gates.candidate_update` for reset_after=False), each the `jax.vjp` of the gate function
  with a cotangent of ones. One rule serves every activation and both conventions, and
  the transcendental work leaves the sequential path. This assumes elementwise
  activations (every Keras activation is; `supports` checks a custom one);
* backward: one reverse scan whose carry is only ``dh`` ``(B, U)`` (plus, with a mask, the
  cotangent of the carried previous output). Per step: products of ``dh`` with the
  partials and one ``dM_t @ Uᵀ``; reset_after=False has a second matmul inside the step,
  ``(r ⊙ h_h) U_h``, so its step is two elementwise stages around ``dQ_t @ U_hᵀ``;
* after the loop: the weight gradients as single large matmuls over all timesteps,
  ``dU = H_prevᵀ dM`` contracted over ``(T, B)`` (per gate on the dropout-masked states
  with recurrent dropout; ``(r ⊙ h)ᵀ dQ`` for the reset_after=False candidate) and
  ``db = Σ dM``.

The input projection stays outside: gradients flow to the three ``(T, B, U)`` input-side
pre-activations ``xi`` and autodiff of `gates.project_inputs` turns them into
``dW = Xᵀ dXi`` in one matmul. Every gate adds ``xi`` to a recurrent term, so ``dXi``
is the loop's ``dM`` for z and r (and ``dQ`` for the reset_after=False candidate): the
backward pass computes no separate input-side partials for them. Dropout masks and the
step mask get zero cotangents.

Higher-order reverse mode (the gradient of a gradient) works: the backward pass is itself
ordinary differentiable JAX. Forward mode (`jax.jvp`, `jax.jacfwd`) does not, as for every
`jax.custom_vjp`; use ``backward="autodiff"`` for it.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax import lax

from jaxgru import gates
from jaxgru.cell import GRUCell


def supports(cell: GRUCell) -> bool:
    """Whether the cell's activations are elementwise, which the fused backward assumes.

    Every Keras activation is; a custom callable is probed once on a ``(B, U)``-shaped
    (2-D) array (its Jacobian at a few points must be diagonal). Cells that fail the
    probe, or whose activation cannot run on the probe at all, are differentiated by
    autodiff instead.
    """
    return all(_is_elementwise(fn) for fn in (cell.activation_fn, cell.recurrent_activation_fn))


_PROBE = ((-2.1, -0.7, 0.0), (0.4, 1.3, 2.9))  # (B, U) = (2, 3): states are 2-D


@functools.lru_cache(maxsize=None)
def _is_elementwise(fn) -> bool:
    with jax.ensure_compile_time_eval():
        probe = jnp.array(_PROBE, jnp.float32)
        try:
            jacobian = jax.jacrev(fn)(probe)
        except Exception:  # any failure on a 2-D input: leave the activation to autodiff
            return False
        size = probe.size
        if jnp.shape(jacobian) != (*probe.shape, *probe.shape):
            return False
        jacobian = jnp.reshape(jacobian, (size, size))
        return bool(jnp.all((jacobian == 0) | jnp.eye(size, dtype=bool)))


def fused_scan_recurrence(cell: GRUCell, weights: gates.RecurrentWeights, h0: jax.Array, xi: gates.GateInputs,
                          recurrent_masks: Optional[jax.Array], step_mask: Optional[jax.Array],
                          zero_output_for_mask: bool, unroll: int = 1, initial_output: Optional[jax.Array] = None):
    """`jaxgru.rnn.scan_recurrence` with the hand-written backward pass described above.

    Args:
      weights: recurrent kernel ``(U, 3U)`` and recurrent bias ``(3U,)`` or None.
      h0: ``(B, U)``. xi: three ``(T, B, U)``. recurrent_masks: ``(3, B, U)`` or None.
      step_mask: ``(T, B)`` booleans or None.
      initial_output: ``(B, U)``, the output a masked first step repeats (zeros when None).

    Returns:
      ``(outputs (T, B, U), last_output (B, U), final_state (B, U))`` with Keras's mask
      semantics, as `scan_recurrence`.
    """
    if initial_output is None:
        initial_output = jnp.zeros_like(h0)
    return _recurrence(cell, bool(zero_output_for_mask), unroll, weights, h0, initial_output,
                       gates.GateInputs(*xi), recurrent_masks, step_mask)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _recurrence(cell, zero_output_for_mask, unroll, weights, h0, output0, xi, recurrent_masks, step_mask):
    outputs, last_output, final_state, _, _ = _forward(cell, zero_output_for_mask, unroll, weights, h0, output0,
                                                       xi, recurrent_masks, step_mask, keep_residuals=False)
    return outputs, last_output, final_state


def _recurrence_fwd(cell, zero_output_for_mask, unroll, weights, h0, output0, xi, recurrent_masks, step_mask):
    outputs, last_output, final_state, states, terms = _forward(
        cell, zero_output_for_mask, unroll, weights, h0, output0, xi, recurrent_masks, step_mask,
        keep_residuals=True)
    # reset_after's candidate keeps its input side separate (hh = φ(xi_h + r ⊙ c_h))
    xi_h = xi.h if cell.reset_after else None
    residuals = (weights, h0, xi_h, recurrent_masks, step_mask, states, terms)
    return (outputs, last_output, final_state), residuals


def _forward(cell, zero_output_for_mask, unroll, weights, h0, output0, xi, recurrent_masks, step_mask,
             keep_residuals):
    """The scan. Returns ``(outputs, last_output, final_state, states, terms)``; the
    residuals ``states`` (every step's new state, ``(T, B, U)``) and ``terms``
    (`gates.recurrent_step_with_preactivations`'s three ``(T, B, U)``) only with
    ``keep_residuals``, else None. Per-gate residuals rather than one ``(T, B, 3U)``
    array: on XLA:CPU a buffer above glibc's 32 MiB mmap threshold is page-faulted anew
    on every call."""

    def step(h, xi_t):
        h_new, terms = gates.recurrent_step_with_preactivations(cell, weights, h, gates.GateInputs(*xi_t),
                                                                   recurrent_masks)
        return h_new, (terms if keep_residuals else None)

    if step_mask is None:
        def body(h, xi_t):
            h_new, terms = step(h, xi_t)
            return h_new, (h_new, terms)

        h_last, (outputs, terms) = lax.scan(body, h0, tuple(xi), unroll=unroll)
        return outputs, h_last, h_last, (outputs if keep_residuals else None), terms

    def masked_body(carry, inputs):
        h, previous_output = carry
        xi_t, keep = inputs
        keep = keep[:, None]
        h_new, terms = step(h, xi_t)
        fallback = jnp.zeros_like(h_new) if zero_output_for_mask else previous_output
        output = jnp.where(keep, h_new, fallback)
        h_next = jnp.where(keep, h_new, h)
        return (h_next, output), (output, h_next if keep_residuals else None, terms)

    (h_last, last_output), (outputs, states, terms) = lax.scan(
        masked_body, (h0, output0), (tuple(xi), step_mask), unroll=unroll)
    return outputs, last_output, h_last, states, terms


def _recurrence_bwd(cell, zero_output_for_mask, unroll, residuals, cotangents):
    weights, h0, xi_h, recurrent_masks, step_mask, states, terms = residuals
    d_outputs, d_last_output, d_final_state = cotangents
    kernel, bias = weights
    units = cell.units
    h_prev = jnp.concatenate([h0[None], states[:-1]], axis=0)
    # Gates whose matmul multiplies (a masked) h: all three for reset_after, z and r otherwise.
    h_kernel = kernel[:, :(3 if cell.reset_after else 2) * units]
    candidate_kernel = kernel[:, 2 * units:]

    def back_project(dm):
        """``∂L/∂h`` through the matmuls of ``h``: ``Σ_k mask_k ⊙ (dm_k U_kᵀ)``, one matmul
        without masks. Returns it and ``dm``."""
        if recurrent_masks is None:
            return gates.matmul(jnp.concatenate(dm, axis=-1), h_kernel.T), dm
        blocks = jnp.split(kernel, 3, axis=1)
        return sum(mask * gates.matmul(d, k.T) for mask, d, k in zip(recurrent_masks, dm, blocks)), dm

    # Partial derivatives of the elementwise gate stages for all steps at once (off the
    # sequential path); the loop only multiplies cotangents by them.
    if cell.reset_after:
        a_z, a_r, c_h = terms
        p_z, p_r, p_xi_h, p_c, p_h = _partials(functools.partial(gates.reset_after_gates, cell),
                                               a_z, a_r, xi_h, c_h, h_prev)

        def step(dh_new, partials):
            p_m, p_h = partials
            dh_m, dm = back_project(tuple(dh_new * p for p in p_m))
            return dh_new * p_h + dh_m, (dh_new, dm)

        per_step = ((p_z, p_r, p_c), p_h)
    else:
        a_z, a_r, a_h = terms
        h_h = gates.candidate_state(h_prev, recurrent_masks)
        (z, rh), first_vjp = jax.vjp(functools.partial(gates.reset_gate_inputs, cell), a_z, a_r, h_h)
        ones, zeros = jnp.ones_like(z), jnp.zeros_like(z)
        p_mz = first_vjp((ones, zeros))[0]  # z's partial
        _, p_mr, p_hh = first_vjp((zeros, ones))  # (r ⊙ h_h)'s partials
        if recurrent_masks is not None:
            p_hh = p_hh * recurrent_masks[2]
        p_q, p_z, p_h = _partials(functools.partial(gates.candidate_update, cell), a_h, z, h_prev)

        def step(dh_new, partials):
            p_q, p_z, p_mz, p_mr, p_hh, p_h = partials
            dq = dh_new * p_q
            d_rh = gates.matmul(dq, candidate_kernel.T)
            dh_m, dm_zr = back_project((dh_new * p_z * p_mz, d_rh * p_mr))
            return dh_new * p_h + d_rh * p_hh + dh_m, (dm_zr, dq)

        per_step = (p_q, p_z, p_mz, p_mr, p_hh, p_h)

    if step_mask is None:
        def body(dh, inputs):
            d_out, partials = inputs
            dh, emitted = step(dh + d_out, partials)
            return dh.astype(h0.dtype), emitted

        dh0, emitted = lax.scan(body, d_last_output + d_final_state, (d_outputs, per_step),
                                reverse=True, unroll=unroll)
        d_output0 = jnp.zeros_like(h0)  # without a mask no output is carried
    else:
        def masked_body(carry, inputs):
            # forward: output = keep ? h_new : fallback;  h_next = keep ? h_new : h
            dh_next, d_carried_output = carry
            d_out, partials, keep = inputs
            keep = keep[:, None]
            d_out = d_out + d_carried_output
            zeros = jnp.zeros_like(dh_next)
            dh, emitted = step(jnp.where(keep, dh_next + d_out, zeros), partials)
            dh = dh + jnp.where(keep, zeros, dh_next)
            d_previous_output = zeros if zero_output_for_mask else jnp.where(keep, zeros, d_out)
            return (dh.astype(h0.dtype), d_previous_output), emitted

        (dh0, d_output0), emitted = lax.scan(masked_body, (d_final_state, d_last_output),
                                             (d_outputs, per_step, step_mask), reverse=True, unroll=unroll)

    # The z and r pre-activations are sums xi + m (+ b), so ∂L/∂xi = ∂L/∂m for them; so is
    # the reset_after=False candidate's ∂L/∂xi_h = ∂L/∂q.
    if cell.reset_after:
        d_h_new, dm = emitted
        d_xi = (dm[0], dm[1], d_h_new * p_xi_h)
        d_kernel = _kernel_gradient(kernel, h_prev, recurrent_masks, dm)
    else:
        dm_zr, dq = emitted
        d_xi = (*dm_zr, dq)
        d_kernel = _kernel_gradient(kernel, h_prev, recurrent_masks, dm_zr, (rh, dq))
    d_bias = None
    if bias is not None:  # only reset_after has a recurrent bias: ∂L/∂b = Σ ∂L/∂m
        d_bias = jnp.concatenate([jnp.sum(d, axis=(0, 1)) for d in dm])
        d_bias = d_bias.astype(bias.dtype)
    d_weights = gates.RecurrentWeights(d_kernel, d_bias)
    d_xi = gates.GateInputs(*(d.astype(terms[0].dtype) for d in d_xi))
    return d_weights, dh0, d_output0.astype(h0.dtype), d_xi, None, None


def _partials(fn, *args):
    """Elementwise partial derivatives of ``fn``'s single output w.r.t. each input, for an
    elementwise ``fn`` (each output element depends on the same element of each input):
    its vector-Jacobian product with ones."""
    out, fn_vjp = jax.vjp(fn, *args)
    return fn_vjp(jnp.ones_like(out))


def _kernel_gradient(kernel, h_prev, recurrent_masks, dm, candidate=None):
    """``∂L/∂U`` ``(U, 3U)``: per gate, (its matmul input over all steps)ᵀ ``dM``, each a
    single matmul over the ``T*B`` rows. ``candidate``: ``(r ⊙ h_h, dQ)`` for reset_after=False."""
    acc = gates.accumulation_dtype(kernel.dtype)

    def contract(a, d):  # (T, B, U)ᵀ (T, B, N) -> (U, N)
        return jnp.einsum("tbu,tbn->un", a.astype(kernel.dtype), d, preferred_element_type=acc)

    masks = (None,) * len(dm) if recurrent_masks is None else recurrent_masks
    blocks = [contract(h_prev if mask is None else h_prev * mask, d) for mask, d in zip(masks, dm)]
    if candidate is not None:
        blocks.append(contract(*candidate))
    return jnp.concatenate(blocks, axis=1).astype(kernel.dtype)


_recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)
