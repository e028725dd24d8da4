"""The GRU layer's time loops: the scan over steps (`forward`) and the loop over chunks of
steps (`over_chunks`), shared by both gradient modes; `jaxgru._core.runner.run` chooses between
them.

Everything a loop reads travels in three types, in one fixed order in every signature
``(cell, weights or params, carry, steps, options)``, so that a new per-step input
changes one `NamedTuple`, not every signature between `jaxgru.rnn` and the scan body:

* `Carry`: what crosses from one step (or chunk) to the next;
* `Steps`: `jaxgru.rnn`'s per-sequence arguments, checked and time-major, under their
  own names: ``inputs`` ``(T, B, D)`` (or their input-side projections), ``mask`` and
  ``resets`` ``(T, B)``, ``reset_state`` ``(B, U)`` and ``dropout_masks``;
* `LoopOptions`: the static options (masked-output rule, unrolling, gradient mode, time
  chunk).

The loop carries the state ``h`` ``(B, U)`` and, with a mask, the output a masked step
repeats. At step ``t`` (``k_t``: the step mask, ``s_t``: the reset flag)::

    h_in   = s_t ? h_reset : h          previous = s_t ? 0 : previous
    h_new  = gru(h_in, xi_t)            (`jaxgru._core.gates.recurrent_stepper`)
    output = k_t ? h_new : (0 if zero_output_for_mask else previous)
    h      = k_t ? h_new : h_in

so a reset step starts a new segment exactly like the first step of a sequence, and a
masked step carries the state over. ``h_reset`` is `Steps.reset_state` (zeros by default).

`jaxgru._core.adjoints` differentiates these same two functions by hand
(`jax.custom_vjp` on `forward` and on `over_chunks`), calling `forward` with
``keep_residuals=True`` for the arrays its backward pass reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxgru._core import gates
from jaxgru._core.cell import GRUCell
from jaxgru._core.dropout import DropoutMasks
from jaxgru.types import Params, PyTree

__all__ = ["Steps", "LoopOptions", "Carry", "GRADIENTS", "forward", "over_chunks"]

GRADIENTS = ("fused", "autodiff")


class Steps(NamedTuple):
    """`jaxgru.rnn`'s per-sequence arguments, checked, over the flattened batch ``B`` and
    time-major; step ``t`` reads index ``t`` of the first three (`per_step`).

    Attributes:
      inputs: ``(T, B, D)``, or (in a loop over projected chunks) their input-side
        pre-activations ``x W_k + b_k``: three ``(T, B, U)`` (`gates.GateInputs`).
      mask: ``(T, B)`` booleans, True for a valid step, or None.
      resets: ``(T, B)`` booleans, True where a step starts a new segment (its state is
        ``reset_state`` and its carried output zeros), or None.
      reset_state: ``(B, U)``, the state a reset step starts from (None without resets).
      dropout_masks: ``inputs (3, B, D)`` and ``recurrent (3, B, U)`` masks, or Nones.
    """

    inputs: jax.Array | gates.GateInputs
    mask: jax.Array | None = None
    resets: jax.Array | None = None
    reset_state: jax.Array | None = None
    dropout_masks: DropoutMasks = DropoutMasks()

    def per_step(self) -> tuple:
        """The time-major fields ``(inputs, mask, resets)``, what a loop scans over."""
        return self.inputs, self.mask, self.resets


class LoopOptions(NamedTuple):
    """Static loop options (hashable, so they can be a `jax.custom_vjp` non-diff argument).

    Attributes:
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      unroll: `lax.scan`'s ``unroll``.
      remat: recompute each step in the backward pass (`jax.checkpoint`); autodiff only.
      gradient: "fused" (the hand-written adjoint, where the activations allow it) or
        "autodiff".
      time_chunk: steps projected at a time (`over_chunks`); None until
        `jaxgru._core.runner.run` chooses it.
      stepwise: one loop whose every step projects its own inputs; differentiated by the
        fused adjoint, its reverse loop sums the weight cotangents step by step.
    """

    zero_output_for_mask: bool = False
    unroll: int | bool = 1
    remat: bool = False
    gradient: str = "fused"
    time_chunk: int | None = None
    stepwise: bool = False


class Carry(NamedTuple):
    """What crosses from one step (or chunk of steps) to the next: the state ``(B, U)``
    and the output a masked step repeats ``(B, U)`` (zeros before any valid step)."""

    state: jax.Array
    output: jax.Array


def forward(cell: GRUCell, weights: gates.RecurrentWeights, carry: Carry, steps: Steps, options: LoopOptions,
            keep_residuals: bool = False, project: Callable[[jax.Array], gates.GateInputs] | None = None
            ) -> tuple[jax.Array, Carry, tuple | None]:
    """The scan (the module docstring's step).

    Args:
      weights: recurrent kernel ``(U, 3U)`` and recurrent bias ``(3U,)`` or None.
      carry: the state and repeated output entering the first step.
      steps: what the steps read; ``steps.inputs`` are the projections, or with
        ``project`` the inputs ``(T, B, D)``.
      project: None, or ``x_t (B, D) -> GateInputs``, called by every step on its inputs.

    Returns:
      ``(outputs (T, B, U), Carry after the last step, residuals)``; ``residuals`` is
      None unless ``keep_residuals``, else ``(states, terms, xi_h)``: the state entering
      each next step ``(T, B, U)``, `gates.recurrent_stepper`'s three
      ``(T, B, U)`` gate terms, and (with ``project``, reset_after) the candidate's input
      side ``(T, B, U)``, else None. Without a mask the states are the outputs (no copy),
      and the carried output is the state.
    """
    masked = steps.mask is not None
    keep_xi_h = keep_residuals and project is not None and cell.reset_after
    reset_state = steps.reset_state

    step = gates.recurrent_stepper(cell, weights, steps.dropout_masks.recurrent)  # the kernel's blocks, sliced once

    def gru(h, xi_t):
        xi_t = gates.GateInputs(*xi_t) if project is None else project(xi_t)
        h_new, terms = step(h, xi_t)
        return h_new, (terms, xi_t.h if keep_xi_h else None)

    if options.remat:
        gru = jax.checkpoint(gru, prevent_cse=False)

    def body(carry: PyTree, step: tuple) -> tuple[PyTree, tuple]:
        h, previous = carry if masked else (carry, None)
        inputs, mask, resets = step
        if resets is not None:
            assert reset_state is not None  # given whenever there are resets
            restart = resets[:, None]
            h = jnp.where(restart, reset_state, h)
            if previous is not None:
                previous = jnp.where(restart, jnp.zeros_like(previous), previous)
        h_new, terms = gru(h, inputs)
        terms = terms if keep_residuals else None
        if previous is None:  # no mask
            return h_new, (h_new, None, terms)
        mask = mask[:, None]
        fallback = jnp.zeros_like(h_new) if options.zero_output_for_mask else previous
        output = jnp.where(mask, h_new, fallback)
        h_next = jnp.where(mask, h_new, h)
        return (h_next, output), (output, h_next if keep_residuals else None, terms)

    init: PyTree = tuple(carry) if masked else carry.state  # the scan carry: (state, output) when masked
    xs = steps.inputs if project is not None else tuple(steps.inputs)
    final, (outputs, states, terms) = lax.scan(body, init, (xs, steps.mask, steps.resets), unroll=options.unroll)
    final = Carry(*final) if masked else Carry(final, final)
    if not keep_residuals:
        return outputs, final, None
    terms, xi_h = terms
    return outputs, final, ((states if masked else outputs), terms, xi_h)


def over_chunks(recurrence: Callable[..., tuple], cell: GRUCell, params: Params, carry: Carry, steps: Steps,
                options: LoopOptions) -> tuple[jax.Array, Carry]:
    """Projects and runs ``steps`` (inputs ``(T, B, D)``) ``options.time_chunk`` steps at a
    time; returns ``(outputs (T, B, U), final Carry)``.

    Each chunk's input projection (three ``(C*B, D) @ (D, U)`` matmuls, `gates.project`)
    runs right before ``recurrence`` (`forward`, or its fused-adjoint twin) runs the chunk,
    inside an outer `lax.scan` over the whole chunks, then once on the ``T mod C``
    remaining steps; the `Carry` crosses chunk boundaries, so the result equals one
    projection of all ``T`` steps followed by one scan (``C >= T`` is exactly that). With
    ``options.stepwise`` and ``C == 1``: one `forward` whose every step projects its own
    ``(B, D)`` inputs. The kernel's gate blocks are split once, here, before the loops.
    """
    weights = gates.recurrent_weights(cell, params)
    project = gates.projection(cell, params, steps.dropout_masks.inputs)
    chunk = options.time_chunk
    assert chunk is not None  # chosen by the runner
    if options.stepwise and chunk == 1:
        outputs, carry, _ = forward(cell, weights, carry, steps, options, project=project)
        return outputs, carry

    def run(carry: Carry, part: tuple) -> tuple[Carry, jax.Array]:
        inputs, mask, resets = part
        outputs, carry = recurrence(cell, weights, carry, steps._replace(inputs=project(inputs), mask=mask,
                                                                         resets=resets), options)[:2]
        return carry, outputs

    sequence = steps.per_step()
    assert not isinstance(steps.inputs, gates.GateInputs)  # projected here
    length = steps.inputs.shape[0]
    if chunk >= length:
        carry, outputs = run(carry, sequence)
        return outputs, carry
    count, rest = divmod(length, chunk)
    head = count * chunk
    if count == 1:
        carry, outputs = run(carry, jax.tree.map(lambda a: a[:head], sequence))
    else:
        chunks = jax.tree.map(lambda a: a[:head].reshape(count, chunk, *a.shape[1:]), sequence)
        carry, outputs = lax.scan(run, carry, chunks)
        outputs = outputs.reshape(head, *outputs.shape[2:])
    if rest:
        carry, tail = run(carry, jax.tree.map(lambda a: a[head:], sequence))
        outputs = jnp.concatenate([outputs, tail])
    return outputs, carry
