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

The input side (`project`) does not depend on ``h``, so the loops compute it outside
the scan, for all timesteps at once or for a chunk of steps at a time (`jaxgru.rnn`'s
``time_chunk``); only the recurrent step runs per step. A loop builds its step once,
before the loop (`recurrent_stepper`, and `projection` for a loop that projects its own
chunks or steps): the kernel's gate blocks are sliced there, since XLA does not hoist a
slice of a loop constant out of a loop body, and a per-step copy of the kernel costs more
than the step's arithmetic at small batch (measured in benchmarks/RESULTS.md).

Precision: matmul operands are cast to the weight's dtype and accumulate in at least
float32 (``preferred_element_type``); the gate arithmetic runs in that accumulation
dtype; the new state is returned in the dtype of the state passed in.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp

if TYPE_CHECKING:
    from jaxgru._core.cell import GRUCell


class GateInputs(NamedTuple):
    """Input-side pre-activations ``x W_k + b_k``, one ``(..., U)`` array per gate."""

    z: jax.Array
    r: jax.Array
    h: jax.Array


class RecurrentWeights(NamedTuple):
    """``kernel``: recurrent kernel ``(U, 3U)``; ``bias``: recurrent bias ``(3U,)``
    (reset_after with a bias) or ``None``."""

    kernel: jax.Array
    bias: jax.Array | None


def accumulation_dtype(dtype) -> jnp.dtype:
    """float32 for 16- and 32-bit weights, float64 for float64 weights."""
    return jnp.promote_types(dtype, jnp.float32)


def matmul(a: jax.Array, w: jax.Array) -> jax.Array:
    """``a @ w`` with ``a`` cast to ``w``'s dtype, accumulated in `accumulation_dtype`."""
    return jnp.matmul(a.astype(w.dtype), w, preferred_element_type=accumulation_dtype(w.dtype))


def input_bias(cell: GRUCell, params: dict) -> jax.Array | None:
    """The bias added on the input side, ``(3U,)``, or None without a bias."""
    if not cell.use_bias:
        return None
    return params["bias"][0] if cell.reset_after else params["bias"]


def recurrent_weights(cell: GRUCell, params: dict) -> RecurrentWeights:
    bias = params["bias"][1] if (cell.use_bias and cell.reset_after) else None
    return RecurrentWeights(params["recurrent_kernel"], bias)


def _blocks(a: jax.Array, units: int) -> list[jax.Array]:
    # jnp.split (not slicing): its transpose is one concatenate, where slices transpose
    # to zero-padded full-width arrays that are then summed.
    return jnp.split(a, a.shape[-1] // units, axis=-1)


class InputWeights(NamedTuple):
    """The input side split per gate: ``kernel``: three ``(D, U)`` blocks ``W_z, W_r,
    W_h``; ``bias``: three ``(U,)`` blocks of the input bias, or None. A loop that
    projects every step's inputs reads these blocks as loop constants (`input_weights`,
    once before the loop) instead of splitting the kernel at every step."""

    kernel: tuple[jax.Array, ...]
    bias: tuple[jax.Array, ...] | None


def input_weights(cell: GRUCell, params: dict) -> InputWeights:
    """``params``' input side as per-gate blocks (`InputWeights`)."""
    bias = input_bias(cell, params)
    return InputWeights(tuple(_blocks(params["kernel"], cell.units)),
                        None if bias is None else tuple(_blocks(bias, cell.units)))


def project_inputs(cell: GRUCell, params: dict, x: jax.Array,
                   input_masks: jax.Array | None = None) -> GateInputs:
    """Input-side pre-activations for one step's ``x`` ``(B, D)`` (`GRUCell.step`): what
    `project` computes with ``params``' `input_weights`, as one ``x @ kernel`` whose
    ``(B, 3U)`` result is split per gate, where every gate sees the same ``x`` (no input
    masks, or implementation 2): no copy of the kernel's blocks, which inside a user's
    loop over steps would be made at every step."""
    if input_masks is not None and cell.implementation == 1:
        return project(cell, input_weights(cell, params), x, input_masks)
    if input_masks is not None:
        x = x * input_masks[0]
    projected = matmul(x, params["kernel"])
    bias = input_bias(cell, params)
    if bias is not None:
        projected = projected + bias.astype(projected.dtype)
    return GateInputs(*_blocks(projected, cell.units))


def projection(cell: GRUCell, params: dict, input_masks: jax.Array | None = None
               ) -> Callable[[jax.Array], GateInputs]:
    """``x -> project(cell, input_weights(cell, params), x, input_masks)``, for a loop that
    projects its chunks or steps: the kernel is split into its gate blocks here, once,
    not at every iteration (XLA does not hoist the slices out of the loop)."""
    return functools.partial(project, cell, input_weights(cell, params), input_masks=input_masks)


def project(cell: GRUCell, weights: InputWeights, x: jax.Array, input_masks: jax.Array | None = None) -> GateInputs:
    """Input-side pre-activations ``x_k W_k + b_k`` for ``x`` of shape ``(..., D)``.

    ``input_masks`` ``(3, B, D)`` (or None) broadcast against ``x``'s trailing ``(B, D)``,
    so ``x`` may carry a leading time axis ``(T, B, D)``. Implementation 1 multiplies ``x``
    by one mask per gate (``x_k = x ⊙ m_k``); otherwise (2, or legacy 0 as tf_keras's
    GRUCell computes it) every gate sees ``x ⊙ m_0``, as Keras's implementation 2 does.

    One matmul per gate block of the kernel: the same arithmetic as one ``x @ kernel``
    split in three, without the ``(..., 3U)`` intermediate. Over a whole sequence that
    intermediate is the largest buffer of the forward pass; on XLA:CPU one above glibc's
    32 MiB mmap threshold is freshly page-faulted on every call (measured in
    benchmarks/RESULTS.md).
    """
    if input_masks is None:
        gate_inputs = (x, x, x)
    elif cell.implementation == 1:
        gate_inputs = tuple(x * m for m in input_masks)
    else:
        gate_inputs = (x * input_masks[0],) * 3
    parts = [matmul(a, w) for a, w in zip(gate_inputs, weights.kernel, strict=True)]
    if weights.bias is not None:
        parts = [p + b.astype(p.dtype) for p, b in zip(parts, weights.bias, strict=True)]
    return GateInputs(*parts)


def recurrent_stepper(cell: GRUCell, weights: RecurrentWeights, recurrent_masks: jax.Array | None = None
                      ) -> Callable[[jax.Array, GateInputs], tuple[jax.Array, tuple[jax.Array, jax.Array, jax.Array]]]:
    """The recurrent step as ``(h, xi) -> (h', terms)``: ``h'`` from the state ``h`` ``(B, U)``
    and the input side ``xi`` (three ``(B, U)``), and the three ``(B, U)`` gate terms a
    backward pass needs besides ``h`` and ``xi`` (no matmul has to be recomputed from them):

    * reset_after: ``(a_z, a_r, c_h)`` with ``a_k = xi_k + h_k U_k + br_k`` and
      ``c_h = h_h U_h + br_h``, so ``hh = φ(xi_h + r ⊙ c_h)`` (`reset_after_new_state`);
    * otherwise: ``(a_z, a_r, a_h)`` with ``a_k = xi_k + h_k U_k`` for z and r and
      ``a_h = xi_h + (r ⊙ h_h) U_h``, so ``hh = φ(a_h)`` (`reset_gate_inputs`, `reset_before_new_state`).

    ``h_k``: the state as gate ``k`` sees it (times its recurrent mask, if any). The kernel
    blocks the step multiplies by are sliced here, once, so that a loop building its step
    before the loop reads them as constants (XLA does not hoist the slices out of a loop
    body).

    Without masks the recurrent matmul is one (``h @ U`` for reset_after, else
    ``h @ U[:, :2U]`` and ``(r ⊙ h) @ U[:, 2U:]``); with ``recurrent_masks`` ``(3, B, U)``
    each gate gets its own masked ``h`` and matmul, as Keras's implementation 1.
    """
    units = cell.units
    kernel, bias = weights
    gate_count = 3 if cell.reset_after else 2  # reset_before's candidate multiplies r ⊙ h, later
    if recurrent_masks is None:
        gate_kernel = kernel if cell.reset_after else kernel[:, :gate_count * units]
        candidate_kernel = None if cell.reset_after else kernel[:, 2 * units:]

        def projections(h):
            return tuple(_blocks(matmul(h, gate_kernel), units))
    else:
        blocks = _blocks(kernel, units)
        candidate_kernel = blocks[2]

        def projections(h):
            return tuple(matmul(h * m, k)
                         for m, k in zip(recurrent_masks[:gate_count], blocks[:gate_count], strict=True))

    bias_blocks: tuple[jax.Array | float, ...] = (0.0, 0.0, 0.0) if bias is None else tuple(_blocks(bias, units))

    def step(h, xi):
        m = projections(h)
        if cell.reset_after:
            b_z, b_r, b_h = (b if isinstance(b, float) else b.astype(xi.z.dtype) for b in bias_blocks)
            a_z, a_r, c_h = xi.z + m[0] + b_z, xi.r + m[1] + b_r, m[2] + b_h
            return reset_after_new_state(cell, a_z, a_r, xi.h, c_h, h), (a_z, a_r, c_h)
        a_z, a_r = xi.z + m[0], xi.r + m[1]
        z, rh = reset_gate_inputs(cell, a_z, a_r, candidate_state(h, recurrent_masks))
        assert candidate_kernel is not None  # reset_before's candidate block, sliced above
        a_h = xi.h + matmul(rh, candidate_kernel)
        return reset_before_new_state(cell, a_h, z, h), (a_z, a_r, a_h)

    return step


def recurrent_step(cell: GRUCell, weights: RecurrentWeights, h: jax.Array, xi: GateInputs,
                   recurrent_masks: jax.Array | None = None) -> jax.Array:
    """One GRU update ``h' = z ⊙ h + (1 − z) ⊙ hh`` given the input-side ``xi``.

    ``h``: ``(B, U)``; ``xi``: three ``(B, U)``; ``recurrent_masks``: ``(3, B, U)`` or None
    (the matmuls: `recurrent_stepper`).
    """
    return recurrent_stepper(cell, weights, recurrent_masks)(h, xi)[0]


def candidate_state(h: jax.Array, recurrent_masks: jax.Array | None) -> jax.Array:
    """``h_h``: the state as the candidate's branch sees it (times its recurrent mask, if any)."""
    return h if recurrent_masks is None else h * recurrent_masks[2]


def reset_after_new_state(cell: GRUCell, a_z: jax.Array, a_r: jax.Array, xi_h: jax.Array, c_h: jax.Array,
                      h: jax.Array) -> jax.Array:
    """reset_after: ``h'`` from the pre-activations ``a_z``, ``a_r``, the candidate's input
    side ``xi_h`` and recurrent side ``c_h = h_h U_h + br_h`` (see
    `recurrent_stepper`), and ``h``. Elementwise."""
    z = cell.recurrent_activation_fn(a_z)
    r = cell.recurrent_activation_fn(a_r)
    return _interpolate(z, h, cell.activation_fn(xi_h + r * c_h))


def reset_gate_inputs(cell: GRUCell, a_z: jax.Array, a_r: jax.Array, h_h: jax.Array) -> tuple[jax.Array, jax.Array]:
    """reset_after=False, first stage: ``(z, r ⊙ h_h)`` from the pre-activations
    ``a_z``, ``a_r``; the second is the candidate's matmul input (``h_h`` from
    `candidate_state`). Elementwise."""
    z = cell.recurrent_activation_fn(a_z)
    r = cell.recurrent_activation_fn(a_r)
    return z, r * h_h.astype(a_z.dtype)


def reset_before_new_state(cell: GRUCell, a_h: jax.Array, z: jax.Array, h: jax.Array) -> jax.Array:
    """reset_after=False, second stage: ``h'`` from ``a_h = xi_h + (r ⊙ h_h) U_h``. Elementwise."""
    return _interpolate(z, h, cell.activation_fn(a_h))


def _interpolate(z: jax.Array, h: jax.Array, candidate: jax.Array) -> jax.Array:
    """``z ⊙ h + (1 − z) ⊙ candidate`` in the gates' dtype, returned in ``h``'s dtype."""
    h_acc = h.astype(z.dtype)
    return (z * h_acc + (1.0 - z) * candidate).astype(h.dtype)
