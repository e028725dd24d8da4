"""The Keras ``GRU`` and ``Bidirectional(GRU)`` layers as pure functions over `lax.scan`.

Shapes: inputs ``(B, T, D)`` (``(T, B, D)`` with ``time_major``), state ``(B, U)``,
outputs ``(B, T, U)`` or the last output ``(B, U)``. ``B`` may be any number of leading
batch axes ``*batch`` (including none: ``(T, D)`` with state ``(U,)``); masks, lengths,
resets and states then follow the same batch axes.

Structure: `rnn` checks its arguments once and brings them into the loop's layout
(time-major, the batch axes flattened to one ``B``); one internal runner then chooses
the loop, and `bidirectional` is two `rnn` calls. The input projection ``x W + b`` does
not depend on the recurrence, so it runs outside the loop, as one ``(C*B, D) @ (D, U)``
matmul per gate into three ``(C, B, U)`` arrays for a chunk of ``C`` timesteps; the scan
body holds only the recurrent matmul and the gate arithmetic. Without a mask or resets
the body does no selecting. By default the loop is differentiated by a hand-written
backward pass (``gradient="fused"``).

``time_chunk``: on a GPU or TPU the projection covers all ``T`` steps at once (``C = T``).
On CPU the default splits long sequences into chunks of ``C`` steps, each projected right
before its part of the loop, with ``C*B*U`` at most 2^18 so that a chunk's ``(C, B, U)``
arrays (projections, and the fused backward's residuals and partials) stay in cache (and
``C = T`` where that leaves fewer than two chunks); the ``(T*B, D)`` matmuls of one
projection of a long sequence run out of cache. From ``B*U >= 2^16`` a differentiated
call (fused gradient) runs step by step instead: one loop whose every step projects its
own ``(B, D)`` inputs, and a reverse loop that accumulates the weight gradients step by
step; a call that is not differentiated keeps the chunks. Measurements:
benchmarks/RESULTS.md. The results are the same either way, up to float rounding in the
weight gradients (sums over chunks or steps instead of one sum over all steps). The
platform is chosen when the program is lowered, not when it is traced
(`jax.lax.platform_dependent`), so a `jax.export` for ``platforms=("cpu", "cuda")``
chunks on CPU only. With symbolic shapes (`jax.export` with ``symbolic_shape("b, t")``)
the default projects all steps at once on every platform; an explicit ``time_chunk``
then needs a static ``T``.

Keras's ``stateful=True`` is functional here: pass the returned ``final_state`` back as
``initial_state`` of the next call.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru._core import layer_options, runner
from jaxgru._core.cell import GRUCell, Params
from jaxgru._core.dropout import DropoutMasks
from jaxgru._core.loop import GRADIENTS, Carry, LoopOptions, Steps
from jaxgru._core.validation import (
    as_floating_array,
    as_integer_array,
    as_state,
    broadcast_state,
    check_flags,
    check_key,
    check_positive_int,
    check_unroll,
    reject_float_flags,
)
from jaxgru._deprecations import renamed_keywords

__all__ = ["bidirectional", "rnn"]



def _per_step_flags(value: Any, argument: str, batch_shape: tuple[int, ...], steps: int,
                    time_major: bool) -> tuple[jax.Array | None, jax.Array | None]:
    """A mask or resets argument as ``(T, B)`` booleans (B the flattened batch axes), and
    the ``(B,)`` rows whose traced integer flags are not all 0 or 1 (None when nothing
    needs checking in the program).

    Expected in the inputs' layout: ``(*batch, T)``, or ``(T, *batch)`` with
    ``time_major``; booleans or 0/1 integers (floats are rejected). Concrete integers
    other than 0 and 1 are a ValueError (checked before any cast: ``2**32 + 1`` is not
    read as 1); traced ones mark their rows invalid (`rnn` makes those rows NaN).
    """
    if value is None:
        return None, None
    value, traced = as_integer_array(value, argument, "booleans (or 0/1 integers)",
                                     lambda dtype: dtype == np.bool_ or np.issubdtype(dtype, np.integer),
                                     0, 1, "booleans or integers 0 and 1")
    expected = (steps, *batch_shape) if time_major else (*batch_shape, steps)
    if tuple(value.shape) != expected:
        layout = "(T, *batch) with time_major" if time_major else "(*batch, T)"
        raise ValueError(f"{argument}: expected shape {layout} = {expected}, got {tuple(value.shape)}.")
    invalid = None
    if traced and value.dtype != jnp.bool_:
        outside = (value != 0) & (value != 1)
        invalid = (outside.reshape(steps, -1) if time_major else outside.reshape(-1, steps).T).any(axis=0)
    value = value.astype(jnp.bool_)
    return (value.reshape(steps, -1) if time_major else value.reshape(-1, steps).T), invalid


def _length_mask(seq_lengths: Any, batch_shape: tuple[int, ...], steps: int) -> tuple[jax.Array, jax.Array | None]:
    """``(T, B)`` booleans ``t < seq_lengths[b]`` for ``(*batch,)`` integer lengths, and
    the ``(B,)`` rows whose traced length lies outside ``[0, T]`` (None for concrete
    lengths).

    Concrete lengths (known at trace time) must lie in ``[0, T]``, checked with NumPy
    before any cast (a ValueError otherwise: ``np.int64(2**32 + 3)`` is refused, not
    wrapped to 3). Traced lengths are checked in the program: `rnn` makes the rows of
    out-of-range lengths NaN rather than clamping them.
    """
    lengths, traced = as_integer_array(seq_lengths, "seq_lengths", f"integers of shape {batch_shape}",
                                       lambda dtype: np.issubdtype(dtype, np.integer), 0, steps,
                                       f"lengths in [0, T] = [0, {steps}]")
    if tuple(lengths.shape) != batch_shape:
        raise ValueError(f"seq_lengths: expected shape {batch_shape} (the batch axes), got {tuple(lengths.shape)}.")
    lengths = lengths.reshape(-1)
    invalid = ((lengths < 0) | (lengths > steps)) if traced else None
    return jnp.arange(steps)[:, None] < lengths[None, :], invalid


def _invalid_rows(*rows: jax.Array | None) -> jax.Array | None:
    """The union of the ``(B,)`` invalid-row flags given (None when none is given)."""
    given = [r for r in rows if r is not None]
    if not given:
        return None
    return functools.reduce(jnp.logical_or, given)


def _nan_rows(invalid: jax.Array | None, array: jax.Array) -> jax.Array:
    """``array`` (``(..., B, U)``) with the rows flagged in ``invalid`` ``(B,)`` made NaN:
    a traced argument that the eager checks would have refused gives NaN results, a NaN
    loss and NaN gradients, never a silently clamped one. The rows are multiplied by NaN
    (the others by exactly 1) rather than replaced, so that the gradients flowing back
    through them are NaN too."""
    if invalid is None:
        return array
    return array * jnp.where(invalid, jnp.nan, 1.0).astype(array.dtype)[:, None]


def _reversed_resets(resets: jax.Array) -> jax.Array:
    """The resets of the reversed pass over ``(T, B)`` segment starts: reading backwards,
    the pass enters the segment ``[s, e)`` at step ``e - 1``, i.e. just before the next
    segment's start; the flags then follow processing order."""
    entering = jnp.concatenate([resets[1:], jnp.zeros_like(resets[:1])], axis=0)
    return entering[::-1]


@renamed_keywords
def rnn(cell: GRUCell, params: Params, inputs: jax.Array, *, initial_state: jax.Array | None = None,
        mask: jax.Array | None = None, seq_lengths: jax.Array | None = None,
        resets: jax.Array | None = None, reset_state: jax.Array | None = None,
        rng: jax.Array | None = None, training: bool = False,
        go_backwards: bool = False, return_sequences: bool = True, time_major: bool = False,
        zero_output_for_mask: bool = False, unroll: int = 1, remat: bool = False,
        dropout_masks: DropoutMasks | None = None, gradient: str = "fused", time_chunk: int | None = None):
    """Keras's ``GRU(return_state=True)`` as a pure function.

    Args:
      cell: the `GRUCell` configuration.
      params: the cell's params (`GRUCell.init`).
      inputs: ``(B, T, D)``, or ``(T, B, D)`` with ``time_major``. ``B`` may be any number
        of leading batch axes, or none (``(T, D)``); every per-row argument and result
        then has the same batch axes in place of ``B``.
      initial_state: ``(B, U)``; zeros in the inputs' dtype when None.
      mask: booleans (or 0/1 integers; floats are rejected) in the inputs' layout,
        ``(B, T)`` (``(T, B)`` with ``time_major``, as Keras's backend takes it); True
        marks a valid step. A fully masked row keeps ``initial_state`` and outputs zeros.
        Masked steps' inputs are never read, so padding of any value (NaN, inf) leaves
        outputs and gradients unaffected (the padding's own gradient is zero).
      seq_lengths: ``(B,)`` integers in ``[0, T]``, an alternative to ``mask`` for right
        padding: step ``t`` of row ``b`` is valid when ``t < seq_lengths[b]`` (PyTorch's
        packed sequences). Not together with ``mask``. Lengths known when the call is
        traced (NumPy, lists, concrete arrays) outside ``[0, T]`` are a ValueError,
        checked before any cast to int32; traced lengths (arguments of a jitted or
        exported function) cannot raise, so a row whose length lies outside ``[0, T]``
        gets NaN outputs, a NaN final state and so NaN gradients (never a clamped
        length). The same holds for integer ``mask`` / ``resets`` entries other than 0
        and 1.
      resets: booleans (or 0/1 integers; floats are rejected: pass ``done.astype(bool)``)
        in the mask's layout: ``resets[b, t]`` True means step ``t`` starts a new segment
        (episode) in row ``b``: the state entering step ``t`` is replaced by
        ``reset_state[b]`` (zeros, the cell's initial state, unless ``reset_state`` is
        given; not ``initial_state``, which in RL is the state carried over from the
        previous rollout), and the output a masked step repeats by zeros, so a reset step
        behaves like the first step of a new episode. Gradients do not cross a reset; the
        gradient of ``reset_state`` sums over every segment that starts from it. Segments are
        ranges of the time axis, read backwards with ``go_backwards``: for resets at
        steps 0 and 3 of ``T = 6`` the segments are ``[0, 1, 2]`` and ``[3, 4, 5]``; the
        forward pass processes ``0 1 2 | 3 4 5`` (reset before 3), the reversed pass
        ``5 4 3 | 2 1 0`` (reset before 2, when it enters the first segment). Dropout
        masks stay per row for the whole call.
      reset_state: the state reset steps restart from, when it is not zeros: any shape
        that broadcasts to ``(B, U)`` (``(U,)`` or a scalar for one target shared by all
        rows, ``(B, U)`` per row), cast to the state's dtype; the gradient of a broadcast
        value is the sum over the rows and segments that used it. Pass
        ``reset_state=initial_state`` for jaxgru's earlier default (restart from the
        call's initial state). Needs ``resets``.
      rng: PRNG key for dropout; with ``training=True`` the masks are drawn once per
        sequence (``cell.dropout_masks(rng, B, D)``) and used at every step, as Keras's
        cached masks are. The same key gives the same result.
      training: enables dropout.
      dropout_masks: explicit per-sequence `DropoutMasks` (``inputs (3, B, D)``,
        ``recurrent (3, B, U)``) used at every step instead of drawing them from ``rng``,
        e.g. Keras's own cached masks; used only with ``training=True``.
      go_backwards: process the reversed sequence; outputs stay in processing order.
      return_sequences: return all outputs, or only the last output ``(B, U)``.
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      unroll: passed to `lax.scan`: a positive int (steps per loop iteration) or a
        bool (True unrolls the whole loop).
      remat: recompute each step's gate activations in the backward pass instead of
        storing them (`jax.checkpoint` on the scan body): only the ``(B, U)`` carry per
        step is kept, for long sequences. Implies ``gradient="autodiff"``.
      gradient: how the loop is differentiated. "fused" (default): the loop's
        hand-written backward pass
        (one ``dh @ Uᵀ`` per step, weight gradients as single
        matmuls after the loop), used when the activations are elementwise (all Keras
        activations are), else autodiff; "autodiff": JAX's autodiff of the scan, which
        also supports forward mode (`jax.jvp`). Both give the same values and gradients.
      time_chunk: project the inputs ``time_chunk`` steps at a time, each chunk right
        before its part of the loop (a positive int; ``>= T`` projects all steps at
        once; ``1`` projects inside the loop, step by step, and the fused backward then
        accumulates the weight gradients step by step too); None: all steps on GPU/TPU;
        on CPU cache-sized chunks, and from ``B*U >= 2^16``, when differentiated by the
        fused backward, step by step (the module docstring says more).
        Changes speed and memory locality only: the same results, up to float rounding
        in the weight gradients' sums.

    Returns:
      ``(outputs, final_state)``: outputs ``(B, T, U)`` (``(T, B, U)`` time-major) or
      ``(B, U)``; ``final_state`` ``(B, U)``. Without ``return_sequences`` the output is
      the last one of the sequence exactly as tf_keras's ``backend.rnn`` carries it: with
      a mask, the output of the last valid step, or zeros with ``zero_output_for_mask``
      when the final processed step is masked. ``B == 0`` gives empty results.
    """
    check_flags(training=training, go_backwards=go_backwards, return_sequences=return_sequences,
                time_major=time_major, zero_output_for_mask=zero_output_for_mask, remat=remat)
    if gradient not in GRADIENTS:
        raise ValueError(f"gradient: expected one of {GRADIENTS}, got {gradient!r}.")
    unroll = check_unroll(unroll)
    layout = "(T, *batch, D)" if time_major else "(*batch, T, D)"
    inputs = as_floating_array(inputs, "inputs", layout)
    if inputs.ndim < 2:
        raise ValueError(f"inputs: expected {layout} with any number of batch axes (at least (T, D)), "
                         f"got shape {inputs.shape}.")
    length, features = inputs.shape[0 if time_major else -2], inputs.shape[-1]
    batch_shape = tuple(inputs.shape[1:-1] if time_major else inputs.shape[:-2])
    batch = math.prod(batch_shape)
    if length == 0:
        raise ValueError("inputs: the sequence has no timesteps (T == 0).")
    d = cell.check_params(params)
    if features != d:
        raise ValueError(f"inputs: expected feature dimension {d} (the kernel's input_dim), got {features}.")
    inputs = (inputs.reshape(length, batch, d) if time_major
              else jnp.swapaxes(inputs.reshape(batch, length, d), 0, 1))  # (T, B, D)
    if mask is not None and seq_lengths is not None:
        raise ValueError("mask, seq_lengths: pass one of them (seq_lengths is right padding's mask), not both.")
    mask, invalid_mask = (_per_step_flags(mask, "mask", batch_shape, length, time_major) if seq_lengths is None
                          else _length_mask(seq_lengths, batch_shape, length))
    reject_float_flags(resets, "resets")
    resets, invalid_resets = _per_step_flags(resets, "resets", batch_shape, length, time_major)
    invalid = _invalid_rows(invalid_mask, invalid_resets)
    if mask is not None:
        # Padding never reaches the arithmetic: a masked step's output is discarded, but
        # NaN/inf in its inputs would still make its partial derivatives NaN, and the zero
        # cotangent times NaN poisons every parameter gradient. Selected inputs give every
        # masked step finite partials and so an exact zero contribution.
        inputs = jnp.where(mask[:, :, None], inputs, jnp.zeros((), inputs.dtype))
    if initial_state is None:
        # zeros (B, U) in the inputs' dtype, sharded along B like the inputs
        h0 = jnp.broadcast_to(jnp.zeros_like(inputs[0, :, :1]), (batch, cell.units))
    else:
        h0 = as_state(initial_state, "initial_state", "(*batch, U)")
        if tuple(h0.shape) != (*batch_shape, cell.units):
            raise ValueError(f"initial_state: expected shape {(*batch_shape, cell.units)}, got {tuple(h0.shape)}.")
        h0 = h0.reshape(batch, cell.units)
    if time_chunk is not None:
        time_chunk = check_positive_int(time_chunk, "time_chunk")
        if not isinstance(length, int):
            raise ValueError(f"time_chunk: chunking needs a static number of steps, got the symbolic T = {length}; "
                             "pass time_chunk=None (one projection of all steps).")
    dropout_masks = _flat_dropout_masks(cell, rng, dropout_masks, training, batch_shape, d, inputs.dtype)
    if go_backwards:
        inputs, mask = inputs[::-1], None if mask is None else mask[::-1]
        resets = None if resets is None else _reversed_resets(resets)
    if reset_state is not None:
        if resets is None:
            raise ValueError("reset_state: given without resets; it is the state reset steps restart from.")
        reset_state = broadcast_state(reset_state, "reset_state", (*batch_shape, cell.units), h0.dtype)
        reset_state = reset_state.reshape(batch, cell.units)
    elif resets is not None:
        reset_state = jnp.zeros_like(h0)  # the cell's initial state, whatever initial_state is
    options = LoopOptions(zero_output_for_mask, unroll, remat, gradient, time_chunk, stepwise=time_chunk == 1)
    outputs, final = runner.run(cell, params, Carry(h0, jnp.zeros_like(h0)),
                                Steps(inputs, mask, resets, reset_state, dropout_masks), options)
    final_state = _nan_rows(invalid, final.state).reshape(*batch_shape, cell.units)
    if not return_sequences:
        return _nan_rows(invalid, final.output).reshape(*batch_shape, cell.units), final_state
    outputs = _nan_rows(invalid, outputs)
    if time_major:
        return outputs.reshape(length, *batch_shape, cell.units), final_state
    return jnp.swapaxes(outputs, 0, 1).reshape(*batch_shape, length, cell.units), final_state


def _flat_dropout_masks(cell: GRUCell, rng, dropout_masks: DropoutMasks | None, training: bool,
                        batch_shape: tuple[int, ...], input_dim: int, dtype) -> DropoutMasks:
    """`GRUCell.resolve_masks` for inputs with batch axes ``batch_shape``, as masks over
    the flattened batch ``(3, B, ·)``; explicit ``dropout_masks`` have the batch axes."""
    batch = math.prod(batch_shape)
    if dropout_masks is not None and training:
        dropout_masks = cell.resolve_masks(rng, dropout_masks, True, batch_shape, input_dim, dtype)  # checks shapes
        dropout_masks = DropoutMasks(*(None if m is None else m.reshape(3, batch, m.shape[-1])
                                       for m in dropout_masks))
    if batch == 0:  # no rows to draw masks for
        training = False
    return cell.resolve_masks(rng, dropout_masks, training, (batch,), input_dim, dtype)


def _merge(forward: jax.Array, backward: jax.Array, merge_mode: str | None):
    if merge_mode == "concat":
        return jnp.concatenate([forward, backward], axis=-1)
    if merge_mode == "sum":
        return forward + backward
    if merge_mode == "ave":
        return (forward + backward) / 2
    if merge_mode == "mul":
        return forward * backward
    return forward, backward


@renamed_keywords
def bidirectional(cell: GRUCell | Sequence[GRUCell], params: dict[str, Params], inputs: jax.Array, *,
                  merge_mode: str | None = "concat", mask: jax.Array | None = None,
                  seq_lengths: jax.Array | None = None, resets: jax.Array | None = None,
                  reset_state: Any = None,
                  initial_state: Sequence[jax.Array] | None = None, rng: jax.Array | None = None,
                  training: bool = False, return_sequences: bool = True, time_major: bool = False,
                  unroll: int = 1, remat: bool = False, gradient: str = "fused",
                  time_chunk: int | None = None):
    """Keras's ``Bidirectional(GRU(return_state=True), merge_mode)`` as a pure function.

    Args:
      cell: one `GRUCell` for both directions, or a ``(forward, backward)`` pair (equal
        units unless ``merge_mode`` is "concat" or None).
      params: a mapping ``{"forward": params_fw, "backward": params_bw}`` whose kernels
        take the same ``D``.
      merge_mode: "concat" (last axis ``U_fw + U_bw``), "sum", "ave", "mul", or None (the
        pair ``(forward_outputs, backward_outputs)``).
      initial_state: a ``(state_fw, state_bw)`` pair (list or tuple, Keras's
        ``[fw, bw]``) or None.
      rng: split with ``jax.random.split(rng)`` into one key per direction
        (forward first); each direction draws its own masks once per sequence. For
        explicit masks, call `rnn` per direction with ``dropout_masks=``.
      mask: as in `rnn`, for both directions.
      seq_lengths: as in `rnn`, for both directions.
      resets: as in `rnn`, for both directions; the backward direction reads each reset
        segment backwards and restarts from its reset state when it enters a segment.
      reset_state: what reset steps restart from: None (zeros in both directions), one
        value for both directions (any shape that broadcasts to each direction's
        ``(B, U)``: ``(U,)``, a scalar, ``(B, U)``), or a ``(forward, backward)`` pair
        (list or tuple, like ``initial_state``; an entry may be None for zeros). Needs
        ``resets``.

    Other arguments are as in `rnn`. The backward direction runs `rnn` with
    ``go_backwards=True``; its output sequence is reversed back into input order before
    merging. As in Keras's ``Bidirectional``, masked steps output zeros when returning
    sequences.

    Returns:
      ``(outputs, (final_fw, final_bw))``.
    """
    check_flags(training=training, return_sequences=return_sequences, time_major=time_major, remat=remat)
    if merge_mode not in layer_options.MERGE_MODES:
        raise ValueError(f"merge_mode: expected one of {layer_options.MERGE_MODES}, got {merge_mode!r}.")
    cells = tuple(cell) if isinstance(cell, (list, tuple)) else (cell, cell)
    if len(cells) != 2 or not all(isinstance(c, GRUCell) for c in cells):
        raise TypeError("cell: expected a GRUCell or a (forward, backward) pair of GRUCells.")
    if merge_mode in ("sum", "ave", "mul") and cells[0].units != cells[1].units:
        raise ValueError(f"cell: merge_mode={merge_mode!r} needs equal units in both directions, "
                         f"got {cells[0].units} and {cells[1].units}.")
    layer_options.check_bidirectional_params(cells, params)
    states: Sequence[jax.Array | None]
    if initial_state is None:
        states = (None, None)
    elif not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
        raise ValueError("initial_state: expected a (forward, backward) pair of (B, U) states.")
    else:
        states = initial_state
    if isinstance(reset_state, (list, tuple)):
        if len(reset_state) != 2:
            raise ValueError(f"reset_state: expected one state for both directions or a (forward, backward) pair, "
                             f"got a sequence of {len(reset_state)}.")
        reset_states = tuple(reset_state)
    else:
        reset_states = (reset_state, reset_state)
    keys = (None, None) if rng is None else tuple(jax.random.split(check_key(rng, "rng")))
    common: dict[str, Any] = dict(mask=mask, seq_lengths=seq_lengths, resets=resets, training=training,
                  return_sequences=return_sequences, time_major=time_major, zero_output_for_mask=return_sequences,
                  unroll=unroll, remat=remat, gradient=gradient, time_chunk=time_chunk)
    out_fw, final_fw = rnn(cells[0], params["forward"], inputs, initial_state=states[0],
                           reset_state=reset_states[0], rng=keys[0], go_backwards=False, **common)
    out_bw, final_bw = rnn(cells[1], params["backward"], inputs, initial_state=states[1],
                           reset_state=reset_states[1], rng=keys[1], go_backwards=True, **common)
    if return_sequences:
        out_bw = jnp.flip(out_bw, axis=0 if time_major else -2)
    return _merge(out_fw, out_bw, merge_mode), (final_fw, final_bw)
