r"""The GRU time loops with hand-written adjoints (`jax.custom_vjp`), each function beside
its equations.

`recurrence` *is* `jaxgru._core.loop.forward` and `stepwise` *is* `jaxgru._core.loop.over_chunks`
(the same functions, the same results); they differ only in how they are differentiated.
Autodiff of `lax.scan` turns the per-step weight gradient into a small
``(U, B) @ (B, 3U)`` matmul accumulated in the loop carry at every step; `recurrence`'s
reverse loop does only what is inherently sequential, and the weight cotangents are
single matmuls over the ``T·B`` rows after it. `stepwise`'s forward pass projects each
step's own inputs; its reverse loop accumulates the weight cotangents step by step
instead. `jaxgru._core.runner.run` chooses between them.

Notation (per step, all ``(B, U)``): σ the recurrent activation, φ the activation, ⊙
elementwise, ``h`` the state entering the step, ``δ = ∂L/∂h'`` the cotangent of the new
state, ``U_k`` the recurrent kernel's gate-``k`` block ``(U, U)``, ``m_k`` its recurrent
dropout mask (or 1), ``h_k = h ⊙ m_k``, ``xi_k`` the input side ``x W_k + b_k``, ``dA_k``
the cotangent of gate ``k``'s pre-activation. Where each equation is used:

* the recurrence, partials, reverse step and weight cotangents of each convention:
  `_reset_after_adjoint` and `_reset_before_adjoint`;
* how σ′ and φ′ are obtained (the elementwise probe): `_partials`, checked by `supports`;
* the mask and reset selects around the reverse step: `_reverse_step`;
* the recurrent weight cotangents: `_kernel_gradient`; the stepwise loop's: `_stepwise_bwd`.

Residuals: the states ``(T, B, U)`` and three ``(T, B, U)`` gate terms
(`gates.recurrent_stepper`: ``a_z, a_r`` and ``c_h`` or ``a_h``), plus
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

from jaxgru._core import gates
from jaxgru._core.cell import GRUCell
from jaxgru._core.dropout import DropoutMasks
from jaxgru._core.loop import Carry, LoopOptions, Steps, forward, over_chunks
from jaxgru.types import Params

__all__ = ["supports", "recurrence", "stepwise"]

# (∂L/∂h, ∂L/∂repeated output or None, ∂L/∂reset state or None): the reverse loops' carry
_ReverseCarry = tuple[jax.Array, "jax.Array | None", "jax.Array | None"]


def supports(cell: GRUCell) -> bool:
    """Whether the cell's activations are elementwise, which the fused backward assumes
    (`_partials`).

    Every Keras activation is; a custom callable is probed once on a ``(B, U)``-shaped
    (2-D) array (its Jacobian at a few points must be diagonal). Cells that fail the
    probe, or whose activation cannot run on the probe at all, are differentiated by
    autodiff instead.
    """
    return all(_is_elementwise(fn) for fn in (cell.activation_fn, cell.recurrent_activation_fn))


_PROBE = ((-2.1, -0.7, 0.0), (0.4, 1.3, 2.9))  # (B, U) = (2, 3): states are 2-D


@functools.cache
def _is_elementwise(fn: Callable[[jax.Array], jax.Array]) -> bool:
    """Whether ``fn``'s Jacobian at `_PROBE` is diagonal (and ``fn`` runs on a 2-D array)."""
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


# --------------------------------------------------------------------------- sequence adjoint
recurrence = jax.custom_vjp(forward, nondiff_argnums=(0, 4, 5, 6))
recurrence.__doc__ = r"""`jaxgru._core.loop.forward` itself (same arguments, same results), differentiated by
`_recurrence_bwd`: `jaxgru._core.runner.run` passes it to `jaxgru._core.loop.over_chunks` as the
recurrence of each chunk."""


def _recurrence_fwd(cell: GRUCell, weights: gates.RecurrentWeights, carry: Carry, steps: Steps,
                    options: LoopOptions, keep_residuals: bool,
                    project: Callable[[jax.Array], gates.GateInputs] | None) -> tuple[tuple, tuple]:
    del keep_residuals, project  # the chunks' loop calls it with forward's defaults
    outputs, final, residual_arrays = forward(cell, weights, carry, steps, options, keep_residuals=True)
    assert residual_arrays is not None
    states, terms, _ = residual_arrays
    # reset_after's candidate keeps its input side separate (hh = φ(xi_h + r ⊙ c_h))
    xi_h = steps.inputs.h if isinstance(steps.inputs, gates.GateInputs) and cell.reset_after else None
    residuals = (weights, carry.state, steps.reset_state, xi_h, steps.mask, steps.resets,
                 steps.dropout_masks.recurrent, states, terms)
    return (outputs, final, None), residuals


def _recurrence_bwd(cell: GRUCell, options: LoopOptions, keep_residuals: bool,
                    project: Callable[[jax.Array], gates.GateInputs] | None, residuals: tuple,
                    cotangents: tuple) -> tuple:
    r"""The sequence adjoint: one reverse `lax.scan` of `_reverse_step` over the steps'
    partials (computed for all ``T`` steps at once, off the sequential path), then the
    cotangents of the inputs' projections and of the recurrent weights over all steps at
    once (`_Adjoint.cotangents`, single matmuls over the ``T·B`` rows):

    .. math::

        \partial L/\partial xi_{k,t} = dA_{k,t}, \qquad
        \partial L/\partial U_k = \textstyle\sum_t h_{k,t}^\top dA_{k,t}, \qquad
        \partial L/\partial br_k = \textstyle\sum_{t,b} dA_{k,t}

    (per convention: `_reset_after_adjoint`, `_reset_before_adjoint`). Autodiff of the
    projection outside the loop turns ``∂L/∂xi`` into ``∂L/∂W = Xᵀ dXi`` in one matmul.
    """
    del keep_residuals, project
    weights, h_start, reset_state, xi_h, mask, resets, recurrent_masks, states, terms = residuals
    d_outputs, d_final, _ = cotangents
    h_in = _step_input_states(h_start, reset_state, states, resets)
    adjoint = _adjoint_builder(cell, weights, recurrent_masks)(h_in, xi_h, terms)
    loop_carry, emitted = lax.scan(functools.partial(_reverse_step, adjoint.step, mask is not None, options),
                                   _reverse_init(d_final, mask, resets), (d_outputs, adjoint.partials, mask, resets),
                                   reverse=True, unroll=options.unroll)
    d_xi, d_weight_blocks = adjoint.cotangents(emitted)
    d_weights = jax.tree.map(lambda d, w: d.astype(w.dtype), d_weight_blocks.joined(), weights)
    d_inputs = gates.GateInputs(*(d.astype(terms[0].dtype) for d in d_xi))
    d_carry, d_reset_state = _carry_cotangents(loop_carry, mask, h_start, reset_state)
    return d_weights, d_carry, Steps(d_inputs, None, None, d_reset_state, DropoutMasks())


recurrence.defvjp(_recurrence_fwd, _recurrence_bwd)


# --------------------------------------------------------------------------- stepwise adjoint
stepwise = jax.custom_vjp(over_chunks, nondiff_argnums=(0, 1, 5))
stepwise.__doc__ = """`jaxgru._core.loop.over_chunks` itself (same arguments, same results), differentiated by
`_stepwise_bwd`, the loop whose every step projects its own inputs: its forward pass
(`_stepwise_fwd`) is `jaxgru._core.loop.forward` computing every step's `gates.project` of its
``x_t`` (``steps.inputs`` ``(T, B, D)``) before the recurrent matmul. Not differentiated, it
runs `over_chunks`'s ``options.time_chunk`` steps at a time (1: by every step of one loop),
the faster forward pass where it is not followed by this backward pass."""


def _stepwise_fwd(recurrence: Callable[..., tuple], cell: GRUCell, params: Params, carry: Carry, steps: Steps,
                  options: LoopOptions) -> tuple[tuple[jax.Array, Carry], tuple]:
    del recurrence  # the chunks' recurrence when not differentiated
    input_masks, recurrent_masks = steps.dropout_masks
    outputs, final, residual_arrays = forward(
        cell, gates.recurrent_weights(cell, params), carry, steps, options,
        keep_residuals=True, project=gates.projection(cell, params, input_masks))
    assert residual_arrays is not None
    states, terms, xi_h = residual_arrays
    residuals = (params, carry.state, steps.reset_state, steps.per_step(), input_masks, recurrent_masks, states,
                 terms, xi_h)
    return (outputs, final), residuals


def _stepwise_bwd(recurrence: Callable[..., tuple], cell: GRUCell, options: LoopOptions, residuals: tuple,
                  cotangents: tuple[jax.Array, Carry]) -> tuple:
    r"""The stepwise adjoint: one reverse loop whose step ``t``, from that step's own
    residuals, computes its partials and `_reverse_step` (the equations of
    `_reset_after_adjoint` / `_reset_before_adjoint` on ``(B, U)`` arrays), then adds its
    share of every weight cotangent to the loop carry:

    .. math::

        \partial L/\partial U_k &\mathrel{+}= h_{k,t}^\top dA_{k,t}, \qquad
        \partial L/\partial br_k \mathrel{+}= \textstyle\sum_b dA_{k,t}, \\
        \partial L/\partial W_k &\mathrel{+}= x_{k,t}^\top dXi_{k,t}, \qquad
        \partial L/\partial b_k \mathrel{+}= \textstyle\sum_b dXi_{k,t}, \qquad
        \partial L/\partial x_t = \textstyle\sum_k m^x_k \odot (dXi_{k,t} W_k^\top)

    with ``x_{k,t} = x_t ⊙ m^x_k`` the inputs as gate ``k``'s projection reads them
    (input dropout masks ``m^x``, `gates.project`; its `jax.vjp` gives the last three),
    ``dXi_{k,t} = ∂L/∂xi_{k,t}``. The sums run in `gates.accumulation_dtype`, per gate
    block, joined into the params' layout once after the loop (`_params_cotangents`). No
    ``(T, B, ·)`` array of cotangents is stored, and each step's operands are read while
    they are in cache; ``∂L/∂x_t`` is emitted per step (and dropped by XLA when the inputs
    need no gradient).
    """
    del recurrence
    params, h_start, reset_state, (inputs, mask, resets), input_masks, recurrent_masks, states, terms, xi_h = residuals
    d_outputs, d_final = cotangents
    weights = gates.recurrent_weights(cell, params)
    acc = gates.accumulation_dtype(weights.kernel.dtype)
    # the projection's weights per gate block in `acc`, so that its VJP's x_tᵀ dXi_t is accumulated there
    input_weights = gates.input_weights(cell, {name: params[name].astype(acc) for name in ("kernel", "bias")
                                               if name in params})
    h_in = _step_input_states(h_start, reset_state, states, resets)
    adjoint_at = _adjoint_builder(cell, weights, recurrent_masks)  # the kernel's blocks, sliced once
    masked = mask is not None

    def body(carry: tuple, step: tuple) -> tuple[tuple, jax.Array]:
        loop_carry, (d_input_weights, d_weights) = carry
        x_t, h_t, terms_t, xi_h_t, d_out_t, mask_t, resets_t = step
        adjoint = adjoint_at(h_t, xi_h_t, terms_t)  # this step's partials
        loop_carry, emitted = _reverse_step(adjoint.step, masked, options, loop_carry,
                                            (d_out_t, adjoint.partials, mask_t, resets_t))
        d_xi, d_weights_t = adjoint.cotangents(emitted)
        _, project_vjp = jax.vjp(lambda w, x: gates.project(cell, w, x, input_masks), input_weights, x_t)
        d_input_weights_t, d_x_t = project_vjp(gates.GateInputs(*(d.astype(terms_t[0].dtype) for d in d_xi)))
        sums = jax.tree.map(lambda total, d: total + d.astype(acc), (d_input_weights, d_weights),
                            (d_input_weights_t, d_weights_t))
        return (loop_carry, sums), d_x_t

    zeros = (jax.tree.map(lambda a: jnp.zeros(a.shape, acc), input_weights), _WeightBlocks.zeros(weights, acc))
    (loop_carry, (d_input_weights, d_weights)), d_x = lax.scan(
        body, (_reverse_init(d_final, mask, resets), zeros),
        (inputs, h_in, terms, xi_h, d_outputs, mask, resets), reverse=True, unroll=options.unroll)
    d_params = _params_cotangents(cell, params, d_input_weights, d_weights)
    d_carry, d_reset_state = _carry_cotangents(loop_carry, mask, h_start, reset_state)
    return d_params, d_carry, Steps(d_x, None, None, d_reset_state, DropoutMasks())


stepwise.defvjp(_stepwise_fwd, _stepwise_bwd)


def _params_cotangents(cell: GRUCell, params: Params, d_input: gates.InputWeights,
                       d_recurrent: _WeightBlocks) -> Params:
    """The per-gate-block sums of `_stepwise_bwd` in the params' layout and dtypes:
    ``kernel (D, 3U)``, ``recurrent_kernel (U, 3U)`` and ``bias``: the input side's
    ``(3U,)``, or for reset_after ``(2, 3U)`` with the input side in row 0 and the
    recurrent side in row 1."""
    def joined(blocks: tuple[jax.Array, ...], like: jax.Array) -> jax.Array:
        return jnp.concatenate(blocks, axis=-1).astype(like.dtype)

    d_params = {"kernel": joined(d_input.kernel, params["kernel"]),
                "recurrent_kernel": joined(d_recurrent.kernel, params["recurrent_kernel"])}
    if d_input.bias is not None:
        bias = params["bias"]
        d_params["bias"] = (jnp.stack([joined(d_input.bias, bias[0]), joined(d_recurrent.bias, bias[1])])
                            if d_recurrent.bias is not None else joined(d_input.bias, bias))
    return d_params


# --------------------------------------------------------------------------- per-convention adjoints
def _step_input_states(h_start: jax.Array, reset_state: jax.Array | None, states: jax.Array,
                       resets: jax.Array | None) -> jax.Array:
    """``h_t``, the state each step computed from ``(T, B, U)``: the state after the
    previous step (``h_start`` for the first), or the reset state where a step resets."""
    h_in = jnp.concatenate([h_start[None], states[:-1]], axis=0)
    if resets is None:
        return h_in
    assert reset_state is not None  # given whenever there are resets
    return jnp.where(resets[:, :, None], reset_state[None], h_in)


class _Adjoint(NamedTuple):
    """One convention's reverse step and what it needs, over any leading axes: the
    ``(T, B, U)`` arrays of a sequence, or one step's ``(B, U)``.

    ``partials``: the arrays the reverse step reads (scanned over for a sequence);
    ``step(δ, partials_t) -> (∂L/∂h, emitted_t)``; ``cotangents(emitted)`` -> ``(∂L/∂xi,
    ∂L/∂weights)`` from what the steps emitted (stacked for a sequence), summed over every
    leading axis; the weights' cotangents as `_WeightBlocks`, in
    `gates.accumulation_dtype` (the caller joins and casts them once summed).
    """

    partials: tuple[jax.Array, ...]
    step: Callable[[jax.Array, tuple[jax.Array, ...]], tuple[jax.Array, Any]]
    cotangents: Callable[[Any], tuple[tuple[jax.Array, ...], _WeightBlocks]]


def _reset_after_adjoint(cell: GRUCell, weights: gates.RecurrentWeights, recurrent_masks: jax.Array | None,
                         project_back: Callable[[tuple[jax.Array, ...]], jax.Array], h_in: jax.Array,
                         xi_h: jax.Array | None, terms: tuple[jax.Array, ...]) -> _Adjoint:
    r"""reset_after=True. The recurrence (`gates.reset_after_new_state`):

    .. math::

        a_z &= xi_z + h_z U_z + br_z, \quad a_r = xi_r + h_r U_r + br_r, \quad
        c_h = h_h U_h + br_h, \\
        z &= σ(a_z), \quad r = σ(a_r), \quad g = xi_h + r \odot c_h, \quad hh = φ(g), \quad
        h' = z \odot h + (1 - z) \odot hh.

    The partials (σ′, φ′ by `_partials`):

    .. math::

        \partial h'/\partial a_z &= (h - hh) \odot σ'(a_z), \qquad
        \partial h'/\partial a_r = (1 - z) \odot φ'(g) \odot c_h \odot σ'(a_r), \\
        \partial h'/\partial c_h &= (1 - z) \odot φ'(g) \odot r, \qquad
        \partial h'/\partial xi_h = (1 - z) \odot φ'(g), \qquad
        \partial h'/\partial h \,|_\text{direct} = z.

    The reverse step (``dC_h`` in the place of the candidate's ``dA_h``; `_back_projection`):

    .. math::

        dA_k = δ \odot \partial h'/\partial a_k \;(k = z, r), \quad
        dC_h = δ \odot \partial h'/\partial c_h, \quad
        \partial L/\partial h = δ \odot z + \textstyle\sum_{k=z,r,h} m_k \odot (dA_k U_k^\top).

    The cotangents (summed over steps and rows; `_kernel_gradient`):

    .. math::

        \partial L/\partial xi_{z,r} = dA_{z,r}, \quad
        \partial L/\partial xi_h = δ \odot \partial h'/\partial xi_h, \quad
        \partial L/\partial U_k = \textstyle\sum h_k^\top dA_k, \quad
        \partial L/\partial br_k = \textstyle\sum dA_k.
    """
    assert xi_h is not None  # reset_after keeps the candidate's input side
    a_z, a_r, c_h = terms
    dh_da_z, dh_da_r, dh_dxi_h, dh_dc_h, dh_dh = _partials(functools.partial(gates.reset_after_new_state, cell),
                                                           a_z, a_r, xi_h, c_h, h_in)

    def step(delta: jax.Array, partials: tuple[jax.Array, ...]) -> tuple[jax.Array, tuple]:
        dh_da_z, dh_da_r, dh_dc_h, dh_dh = partials
        d_a = (delta * dh_da_z, delta * dh_da_r, delta * dh_dc_h)  # dA_z, dA_r, dC_h
        return delta * dh_dh + project_back(d_a), (delta, d_a)

    def cotangents(emitted: tuple) -> tuple[tuple[jax.Array, ...], _WeightBlocks]:
        delta, d_a = emitted
        d_xi = (d_a[0], d_a[1], delta * dh_dxi_h)
        d_kernel = _kernel_gradient(weights.kernel, h_in, recurrent_masks, d_a)
        d_bias = None
        if weights.bias is not None:  # ∂L/∂br = Σ dA over every leading axis
            d_bias = tuple(jnp.sum(d, axis=tuple(range(d.ndim - 1))) for d in d_a)
        return d_xi, _WeightBlocks(d_kernel, d_bias)

    return _Adjoint((dh_da_z, dh_da_r, dh_dc_h, dh_dh), step, cotangents)


def _reset_before_adjoint(cell: GRUCell, weights: gates.RecurrentWeights, recurrent_masks: jax.Array | None,
                          project_back: Callable[[tuple[jax.Array, ...]], jax.Array], candidate_kernel: jax.Array,
                          h_in: jax.Array, xi_h: jax.Array | None, terms: tuple[jax.Array, ...]) -> _Adjoint:
    r"""reset_after=False. The recurrence, in two elementwise stages around the candidate's
    matmul (`gates.reset_gate_inputs`, then `gates.reset_before_new_state`):

    .. math::

        a_z &= xi_z + h_z U_z, \quad a_r = xi_r + h_r U_r, \quad z = σ(a_z), \quad r = σ(a_r), \\
        a_h &= xi_h + (r \odot h_h) U_h, \quad hh = φ(a_h), \quad h' = z \odot h + (1 - z) \odot hh.

    The partials (σ′, φ′ by `_partials`):

    .. math::

        \partial h'/\partial a_h &= (1 - z) \odot φ'(a_h), \quad
        \partial h'/\partial z = h - hh, \quad \partial z/\partial a_z = σ'(a_z), \\
        \partial (r \odot h_h)/\partial a_r &= h_h \odot σ'(a_r), \quad
        \partial (r \odot h_h)/\partial h = r \odot m_h, \quad
        \partial h'/\partial h \,|_\text{direct} = z.

    The reverse step (`_back_projection` over z and r):

    .. math::

        dA_h &= δ \odot \partial h'/\partial a_h, \quad d(r \odot h_h) = dA_h U_h^\top, \quad
        dA_z = δ \odot (h - hh) \odot σ'(a_z), \quad
        dA_r = d(r \odot h_h) \odot h_h \odot σ'(a_r), \\
        \partial L/\partial h &= δ \odot z + d(r \odot h_h) \odot r \odot m_h
        + \textstyle\sum_{k=z,r} m_k \odot (dA_k U_k^\top).

    The cotangents (summed over steps and rows; `_kernel_gradient`):

    .. math::

        \partial L/\partial xi_k = dA_k \;(k = z, r, h), \quad
        \partial L/\partial U_{z,r} = \textstyle\sum h_{z,r}^\top dA_{z,r}, \quad
        \partial L/\partial U_h = \textstyle\sum (r \odot h_h)^\top dA_h.
    """
    del xi_h  # the candidate's input side is inside a_h
    a_z, a_r, a_h = terms
    h_h = gates.candidate_state(h_in, recurrent_masks)
    (z, rh), reset_gate_vjp = jax.vjp(functools.partial(gates.reset_gate_inputs, cell), a_z, a_r, h_h)
    ones, zeros = jnp.ones_like(z), jnp.zeros_like(z)
    dz_da_z = reset_gate_vjp((ones, zeros))[0]
    _, drh_da_r, drh_dh_h = reset_gate_vjp((zeros, ones))
    drh_dh = drh_dh_h if recurrent_masks is None else drh_dh_h * recurrent_masks[2]
    dh_da_h, dh_dz, dh_dh = _partials(functools.partial(gates.reset_before_new_state, cell), a_h, z, h_in)

    def step(delta: jax.Array, partials: tuple[jax.Array, ...]) -> tuple[jax.Array, tuple]:
        dh_da_h, dh_dz, dz_da_z, drh_da_r, drh_dh, dh_dh = partials
        d_a_h = delta * dh_da_h
        d_rh = gates.matmul(d_a_h, candidate_kernel.T)
        d_a_zr = (delta * dh_dz * dz_da_z, d_rh * drh_da_r)
        return delta * dh_dh + d_rh * drh_dh + project_back(d_a_zr), (d_a_zr, d_a_h)

    def cotangents(emitted: tuple) -> tuple[tuple[jax.Array, ...], _WeightBlocks]:
        d_a_zr, d_a_h = emitted
        d_kernel = _kernel_gradient(weights.kernel, h_in, recurrent_masks, d_a_zr, (rh, d_a_h))
        return (*d_a_zr, d_a_h), _WeightBlocks(d_kernel, None)

    return _Adjoint((dh_da_h, dh_dz, dz_da_z, drh_da_r, drh_dh, dh_dh), step, cotangents)


def _back_projection(kernel: jax.Array, recurrent_masks: jax.Array | None, units: int,
                     gate_count: int) -> Callable[[tuple[jax.Array, ...]], jax.Array]:
    r"""``dA -> Σ_k m_k ⊙ (dA_k U_kᵀ)`` over the first ``gate_count`` gates: the cotangent
    of ``h`` through its matmuls (one matmul ``[dA_z, dA_r, …] [U_z, U_r, …]ᵀ`` without
    recurrent dropout masks)."""
    if recurrent_masks is None:
        h_kernel_t = kernel[:, :gate_count * units].T
        return lambda d_a: gates.matmul(jnp.concatenate(d_a, axis=-1), h_kernel_t)
    blocks = jnp.split(kernel, 3, axis=1)
    masks, blocks = recurrent_masks[:gate_count], blocks[:gate_count]
    return lambda d_a: sum(m * gates.matmul(d, k.T) for m, d, k in zip(masks, d_a, blocks, strict=True))


def _adjoint_builder(cell: GRUCell, weights: gates.RecurrentWeights,
                     recurrent_masks: jax.Array | None) -> Callable[..., _Adjoint]:
    """``(h_in, xi_h, terms) -> _Adjoint``: the cell's convention's adjoint over the steps
    of ``h_in`` (``(T, B, U)``, or one step's ``(B, U)``). The kernel blocks its reverse
    step multiplies by are sliced here, once, so that a loop building each step's adjoint
    (`_stepwise_bwd`) reads them as loop constants instead of slicing the kernel at every
    step."""
    units = cell.units
    if cell.reset_after:
        project_back = _back_projection(weights.kernel, recurrent_masks, units, gate_count=3)
        return functools.partial(_reset_after_adjoint, cell, weights, recurrent_masks, project_back)
    project_back = _back_projection(weights.kernel, recurrent_masks, units, gate_count=2)
    candidate_kernel = weights.kernel[:, 2 * units:]
    return functools.partial(_reset_before_adjoint, cell, weights, recurrent_masks, project_back, candidate_kernel)


# --------------------------------------------------------------------------- masks and resets
def _reverse_init(d_final: Carry, mask: jax.Array | None, resets: jax.Array | None) -> _ReverseCarry:
    """The reverse loop's initial carry ``(∂L/∂h, ∂L/∂repeated output, ∂L/∂reset state)``
    from the final carry's cotangent (without a mask the final carried output is the
    final state)."""
    d_reset = None if resets is None else jnp.zeros_like(d_final.state)
    if mask is not None:
        return d_final.state, d_final.output, d_reset
    return d_final.state + d_final.output, None, d_reset


def _reverse_step(adjoint_step: Callable[[jax.Array, Any], tuple[jax.Array, Any]], masked: bool,
                  options: LoopOptions, carry: _ReverseCarry, inputs: tuple) -> tuple[_ReverseCarry, Any]:
    r"""One step of the reverse loop: undoes `jaxgru._core.loop.forward`'s selects around
    ``adjoint_step(δ, partials_t) -> (∂L/∂h, emitted_t)``.

    The carry holds ``g = ∂L/∂h`` of the state leaving the step, plus (with a mask) ``p``,
    the cotangent of the output a masked step repeats, and (with resets) ``s``, the reset
    state's running sum; ``inputs``: ``(o_t = ∂L/∂output_t, partials_t, k_t, s_t)``. With
    ``k_t`` the step mask (1 without one), ``s_t`` the reset flag and
    ``ĝ = adjoint_step``'s ``∂L/∂h``:

    .. math::

        δ_t &= k_t \odot (g + o_t + p), \qquad
        g \leftarrow ĝ(δ_t) + (1 - k_t) \odot g, \qquad
        p \leftarrow (1 - k_t) \odot (o_t + p) \;(0 \text{ with zero\_output\_for\_mask}), \\
        s &\leftarrow s + s_t \odot g, \qquad g \leftarrow (1 - s_t) \odot g, \qquad
        p \leftarrow (1 - s_t) \odot p.

    A masked step carries the state (``δ = 0``; the next step's cotangent passes through)
    and its output's cotangent flows to the previous step's output; a reset step's input
    state is the reset state, so its cotangent goes there and none flows to the previous
    step.
    """
    dh_next, d_repeated, d_reset = carry
    d_out, partials, mask, resets = inputs
    dtype = dh_next.dtype
    if not masked:
        dh_in, emitted = adjoint_step(dh_next + d_out, partials)
    else:
        # forward: output = mask ? h_new : fallback;  h_next = mask ? h_new : h_in
        assert d_repeated is not None
        mask = mask[:, None]
        zeros = jnp.zeros_like(dh_next)
        d_out = d_out + d_repeated
        dh_in, emitted = adjoint_step(jnp.where(mask, dh_next + d_out, zeros), partials)
        dh_in = dh_in + jnp.where(mask, zeros, dh_next)
        d_repeated = zeros if options.zero_output_for_mask else jnp.where(mask, zeros, d_out)
    if resets is not None:  # forward: h_in = resets ? reset_state : h;  previous = resets ? 0 : previous
        assert d_reset is not None
        restart = resets[:, None]
        d_reset = d_reset + jnp.where(restart, dh_in, 0.0)
        dh_in = jnp.where(restart, 0.0, dh_in)
        if d_repeated is not None:
            d_repeated = jnp.where(restart, 0.0, d_repeated)
    return (dh_in.astype(dtype), d_repeated, d_reset), emitted


def _carry_cotangents(loop_carry: _ReverseCarry, mask: jax.Array | None, h_start: jax.Array,
                      reset_state: jax.Array | None) -> tuple[Carry, jax.Array | None]:
    """The reverse loop's final carry as the cotangents of the initial `Carry` and of
    the reset state."""
    d_state, d_repeated, d_reset = loop_carry
    d_output = d_repeated if (mask is not None and d_repeated is not None) else jnp.zeros_like(d_state)
    if d_reset is not None:
        assert reset_state is not None
        d_reset = d_reset.astype(reset_state.dtype)
    return Carry(d_state, d_output.astype(h_start.dtype)), d_reset


# --------------------------------------------------------------------------- partials and weights
def _partials(fn: Callable[..., jax.Array], *args: jax.Array) -> tuple[jax.Array, ...]:
    r"""The elementwise partial derivatives ``∂fn/∂args[i]`` of ``fn``'s single output, for
    an elementwise ``fn`` (each output element depends on the same element of each
    input): its vector-Jacobian product with a cotangent of ones,

    .. math::

        \bigl(\mathbf{1}^\top \tfrac{\partial f}{\partial a_i}\bigr)_j
        = \textstyle\sum_l \tfrac{\partial f_l}{\partial a_{i,j}}
        = \tfrac{\partial f_j}{\partial a_{i,j}} \quad\text{(the Jacobian is diagonal)}.

    This is how σ′ and φ′ enter the adjoints, for every activation alike (sigmoid:
    ``σ(1 − σ)``, tanh: ``1 − φ²``, the rest whatever JAX differentiates them to). The rule
    holds only for elementwise activations: every Keras activation is, and `supports`
    probes a custom one (a non-diagonal Jacobian sends the cell to autodiff).
    """
    out, fn_vjp = jax.vjp(fn, *args)
    return fn_vjp(jnp.ones_like(out))


def _kernel_gradient(kernel: jax.Array, h_in: jax.Array, recurrent_masks: jax.Array | None,
                     d_a: tuple[jax.Array, ...],
                     candidate: tuple[jax.Array, jax.Array] | None = None) -> tuple[jax.Array, ...]:
    r"""``∂L/∂U`` as its three ``(U, U)`` gate blocks, in `gates.accumulation_dtype`: per
    gate, its matmul input transposed times ``dA``, contracted over every leading axis
    (one matmul over the ``T·B`` rows of a sequence, or one step's ``B``):

    .. math::

        \partial L/\partial U_k = \textstyle\sum (h \odot m_k)^\top dA_k

    ``candidate``: ``(r ⊙ h_h, dA_h)`` for reset_after=False, whose candidate multiplies
    ``r ⊙ h_h`` instead."""
    acc = gates.accumulation_dtype(kernel.dtype)

    def contract(a: jax.Array, d: jax.Array) -> jax.Array:  # (T, B, U)ᵀ (T, B, N) or (B, U)ᵀ (B, N) -> (U, N)
        spec = "tbu,tbn->un" if a.ndim == 3 else "bu,bn->un"
        return jnp.einsum(spec, a.astype(kernel.dtype), d, preferred_element_type=acc)

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
    def zeros(cls, weights: gates.RecurrentWeights, dtype: Any) -> _WeightBlocks:
        def blocks(w: jax.Array | None) -> tuple[jax.Array, ...] | None:
            return None if w is None else tuple(jnp.split(jnp.zeros(w.shape, dtype), 3, axis=-1))

        kernel = blocks(weights.kernel)
        assert kernel is not None
        return cls(kernel, blocks(weights.bias))

    def joined(self) -> gates.RecurrentWeights:
        """As ``kernel (U, 3U)`` and ``bias (3U,)`` (or None)."""
        return gates.RecurrentWeights(jnp.concatenate(self.kernel, axis=-1),
                                      None if self.bias is None else jnp.concatenate(self.bias))
