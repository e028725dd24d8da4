"""The GRU layer's time loop: one `lax.scan` body, shared by both gradient modes.

Everything a step reads travels in two types, so that a new per-step input changes one
`NamedTuple`, not every signature between `jaxgru.rnn` and the scan body:

* `Steps`: the per-step inputs, time-major (``(T, B, ...)``): the input-side gate
  pre-activations (or the inputs themselves, for a loop that projects each step), the
  sequence mask and the segment resets;
* `LoopOptions`: the static options (masked-output rule, unrolling, gradient mode).

The loop carries the state ``h`` ``(B, U)`` and, with a mask, the output a masked step
repeats. At step ``t`` (``k_t``: the step mask, ``s_t``: the reset flag)::

    h_in   = s_t ? h_reset : h          previous = s_t ? 0 : previous
    h_new  = gru(h_in, xi_t)            (`jaxgru._gates.recurrent_step`)
    output = k_t ? h_new : (0 if zero_output_for_mask else previous)
    h      = k_t ? h_new : h_in

so a reset step starts a new segment exactly like the first step of a sequence, and a
masked step carries the state over. ``h_reset`` is `jaxgru.rnn`'s ``reset_state`` (zeros by
default).

`jaxgru.rnn` differentiates the loop by autodiff (``gradient="autodiff"``, or with
``remat``) or by `jaxgru._fused_backward`'s hand-written adjoint (``"fused"``), which calls
`forward` with ``keep_residuals=True`` for the arrays its backward pass reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxgru import _gates as gates
from jaxgru.cell import GRUCell
from jaxgru.types import PyTree

__all__ = ["Steps", "LoopOptions", "Carry", "GRADIENTS", "forward", "over_chunks"]

GRADIENTS = ("fused", "autodiff")


class Steps(NamedTuple):
    """The loop's per-step inputs, time-major; step ``t`` reads index ``t`` of each.

    Attributes:
      xi: the input-side pre-activations ``x W_k + b_k``: three ``(T, B, U)``; for a loop
        given a ``project`` (see `forward`), the inputs ``(T, B, D)`` instead.
      keep: ``(T, B)`` booleans, True for a valid step (the sequence mask), or None.
      reset: ``(T, B)`` booleans, True where a step starts a new segment (its state is
        the reset state and its carried output zeros), or None.
    """

    xi: gates.GateInputs | jax.Array
    keep: jax.Array | None = None
    reset: jax.Array | None = None


class LoopOptions(NamedTuple):
    """Static loop options (hashable, so they can be a `jax.custom_vjp` non-diff argument).

    Attributes:
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      unroll: `lax.scan`'s ``unroll``.
      remat: recompute each step in the backward pass (`jax.checkpoint`); autodiff only.
      gradient: "fused" (the hand-written adjoint, where the activations allow it) or
        "autodiff".
    """

    zero_output_for_mask: bool = False
    unroll: int | bool = 1
    remat: bool = False
    gradient: str = "fused"


class Carry(NamedTuple):
    """What crosses from one step (or chunk of steps) to the next: the state ``(B, U)``
    and the output a masked step repeats ``(B, U)`` (zeros before any valid step)."""

    state: jax.Array
    output: jax.Array


def forward(cell: GRUCell, weights: gates.RecurrentWeights, carry: Carry, reset_state: jax.Array | None,
            steps: Steps, recurrent_masks: jax.Array | None, options: LoopOptions, keep_residuals: bool = False,
            project: Callable[[jax.Array], gates.GateInputs] | None = None):
    """The scan (the module docstring's step).

    Args:
      weights: recurrent kernel ``(U, 3U)`` and recurrent bias ``(3U,)`` or None.
      carry: the state and repeated output entering the first step.
      reset_state: ``(B, U)``, the state a reset step starts from (None without resets).
      recurrent_masks: ``(3, B, U)`` recurrent dropout masks or None.
      project: None (``steps.xi`` are the projections), or ``x_t (B, D) -> GateInputs``,
        called by every step on its inputs ``steps.xi[t]``.

    Returns:
      ``(outputs (T, B, U), Carry after the last step, residuals)``; ``residuals`` is
      None unless ``keep_residuals``, else ``(states, terms, xi_h)``: the state entering
      each next step ``(T, B, U)``, `gates.recurrent_step_with_preactivations`'s three
      ``(T, B, U)`` gate terms, and (with ``project``, reset_after) the candidate's input
      side ``(T, B, U)``, else None. Without a mask the states are the outputs (no copy),
      and the carried output is the state.
    """
    masked = steps.keep is not None
    keep_xi_h = keep_residuals and project is not None and cell.reset_after

    step = gates.recurrent_stepper(cell, weights, recurrent_masks)  # the kernel's blocks, sliced once

    def gru(h, xi_t):
        xi_t = gates.GateInputs(*xi_t) if project is None else project(xi_t)
        h_new, terms = step(h, xi_t)
        return h_new, (terms, xi_t.h if keep_xi_h else None)

    if options.remat:
        gru = jax.checkpoint(gru, prevent_cse=False)

    def body(carry: PyTree, step: tuple) -> tuple[PyTree, tuple]:
        h, previous = carry if masked else (carry, None)
        xi_t, keep, reset = step
        if reset is not None:
            assert reset_state is not None  # given whenever there are resets
            restart = reset[:, None]
            h = jnp.where(restart, reset_state, h)
            if previous is not None:
                previous = jnp.where(restart, jnp.zeros_like(previous), previous)
        h_new, terms = gru(h, xi_t)
        terms = terms if keep_residuals else None
        if previous is None:  # no mask
            return h_new, (h_new, None, terms)
        keep = keep[:, None]
        fallback = jnp.zeros_like(h_new) if options.zero_output_for_mask else previous
        output = jnp.where(keep, h_new, fallback)
        h_next = jnp.where(keep, h_new, h)
        return (h_next, output), (output, h_next if keep_residuals else None, terms)

    init: PyTree = tuple(carry) if masked else carry.state  # the scan carry: (state, output) when masked
    xs = steps.xi if project is not None else tuple(steps.xi)
    final, (outputs, states, terms) = lax.scan(body, init, (xs, steps.keep, steps.reset), unroll=options.unroll)
    final = Carry(*final) if masked else Carry(final, final)
    if not keep_residuals:
        return outputs, final, None
    terms, xi_h = terms
    return outputs, final, ((states if masked else outputs), terms, xi_h)


def over_chunks(run: Callable, carry: PyTree, sequence: tuple, chunk: int) -> tuple[jax.Array, PyTree]:
    """``run(carry, part) -> (carry, outputs)`` over the time-major arrays (or Nones) of
    ``sequence`` in chunks of ``chunk`` steps, the carry crossing from chunk to chunk: an
    outer `lax.scan` over the whole chunks, then one call on the ``T mod C`` remaining
    steps (``chunk >= T``: one call on everything). Returns ``(outputs (T, ...), carry)``."""
    length = sequence[0].shape[0]
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
