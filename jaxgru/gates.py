"""The GRU gate arithmetic shared by `GRUCell.step` and the sequence runner.

Gate order is Keras's [z, r, h] (update, reset, candidate) as column blocks of
``kernel (D, 3U)`` and ``recurrent_kernel (U, 3U)``. With σ the recurrent activation and
φ the activation:

reset_after=False (one input-side bias ``b``)::

    z  = σ(x W_z + b_z + h U_z)
    r  = σ(x W_r + b_r + h U_r)
    hh = φ(x W_h + b_h + (r ⊙ h) U_h)

reset_after=True (input bias ``bi = bias[0]``, recurrent bias ``br = bias[1]``)::

    z  = σ(x W_z + bi_z + h U_z + br_z)
    r  = σ(x W_r + bi_r + h U_r + br_r)
    hh = φ(x W_h + bi_h + r ⊙ (h U_h + br_h))

    h' = z ⊙ h + (1 − z) ⊙ hh

The input side (`project_inputs`) does not depend on ``h``, so the runner computes it for
every timestep at once before its loop; only `recurrent_step` runs per step.

Precision: matmul operands are cast to the weight's dtype and accumulate in at least
float32 (``preferred_element_type``); the gate arithmetic runs in that accumulation
dtype; the new state is returned in the dtype of the state passed in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from jaxgru.cell import GRUCell


class GateInputs(NamedTuple):
    """Input-side pre-activations ``x W_k + b_k``, one ``(..., U)`` array per gate."""

    z: jax.Array
    r: jax.Array
    h: jax.Array


class RecurrentWeights(NamedTuple):
    """``kernel``: recurrent kernel ``(U, 3U)``; ``bias``: recurrent bias ``(3U,)``
    (reset_after with a bias) or ``None``."""

    kernel: jax.Array
    bias: Optional[jax.Array]


def accumulation_dtype(dtype) -> jnp.dtype:
    """float32 for 16- and 32-bit weights, float64 for float64 weights."""
    return jnp.promote_types(dtype, jnp.float32)


def matmul(a: jax.Array, w: jax.Array) -> jax.Array:
    """``a @ w`` with ``a`` cast to ``w``'s dtype, accumulated in `accumulation_dtype`."""
    return jnp.matmul(a.astype(w.dtype), w, preferred_element_type=accumulation_dtype(w.dtype))


def input_bias(cell: GRUCell, params: dict) -> Optional[jax.Array]:
    """The bias added on the input side, ``(3U,)``, or None without a bias."""
    if not cell.use_bias:
        return None
    return params["bias"][0] if cell.reset_after else params["bias"]


def recurrent_weights(cell: GRUCell, params: dict) -> RecurrentWeights:
    bias = params["bias"][1] if (cell.use_bias and cell.reset_after) else None
    return RecurrentWeights(params["recurrent_kernel"], bias)


def _blocks(a: jax.Array, units: int) -> list[jax.Array]:
    return [a[..., k * units:(k + 1) * units] for k in range(a.shape[-1] // units)]


def project_inputs(cell: GRUCell, params: dict, x: jax.Array,
                   input_masks: Optional[jax.Array] = None) -> GateInputs:
    """Input-side pre-activations for ``x`` of shape ``(..., D)``.

    ``input_masks`` ``(3, B, D)`` (or None) broadcast against ``x``'s trailing ``(B, D)``,
    so ``x`` may carry a leading time axis ``(T, B, D)``. Implementation 1 multiplies ``x``
    by one mask per gate before three matmuls; otherwise (2, or legacy 0 as tf_keras's
    GRUCell computes it) one fused matmul on ``x * input_masks[0]``.
    """
    kernel = params["kernel"]
    if input_masks is not None and cell.implementation == 1:
        parts = [matmul(x * input_masks[k], w) for k, w in enumerate(_blocks(kernel, cell.units))]
    else:
        if input_masks is not None:
            x = x * input_masks[0]
        parts = _blocks(matmul(x, kernel), cell.units)
    bias = input_bias(cell, params)
    if bias is not None:
        parts = [p + b.astype(p.dtype) for p, b in zip(parts, _blocks(bias, cell.units))]
    return GateInputs(*parts)


def recurrent_step(cell: GRUCell, weights: RecurrentWeights, h: jax.Array, xi: GateInputs,
                   recurrent_masks: Optional[jax.Array] = None) -> jax.Array:
    """One GRU update ``h' = z ⊙ h + (1 − z) ⊙ hh`` given the input-side ``xi``.

    ``h``: ``(B, U)``; ``xi``: three ``(B, U)``; ``recurrent_masks``: ``(3, B, U)`` or None.
    Without masks the recurrent matmul is fused (one ``h @ U`` for reset_after, else
    ``h @ U[:, :2U]`` and ``(r ⊙ h) @ U[:, 2U:]``); with masks each gate gets its own
    masked ``h`` and matmul, as Keras's implementation 1.
    """
    units = cell.units
    act, recurrent_act = cell.activation_fn, cell.recurrent_activation_fn
    acc = xi.z.dtype
    kernel, bias = weights
    k_z, k_r, k_h = _blocks(kernel, units)
    b_z, b_r, b_h = _blocks(bias.astype(acc), units) if bias is not None else (0.0, 0.0, 0.0)

    if recurrent_masks is None:
        h_z = h_r = h_h = h
        if cell.reset_after:
            m_z, m_r, m_h = _blocks(matmul(h, kernel), units)
        else:
            m_z, m_r = _blocks(matmul(h, kernel[:, :2 * units]), units)
    else:
        h_z, h_r, h_h = (h * m for m in recurrent_masks)
        m_z, m_r = matmul(h_z, k_z), matmul(h_r, k_r)
        if cell.reset_after:
            m_h = matmul(h_h, k_h)

    z = recurrent_act(xi.z + m_z + b_z)
    r = recurrent_act(xi.r + m_r + b_r)
    if cell.reset_after:
        candidate = act(xi.h + r * (m_h + b_h))
    else:
        candidate = act(xi.h + matmul(r * h_h.astype(acc), k_h))
    h_acc = h.astype(acc)
    return (z * h_acc + (1.0 - z) * candidate).astype(h.dtype)
