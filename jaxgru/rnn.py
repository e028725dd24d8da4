"""The Keras ``GRU`` and ``Bidirectional(GRU)`` layers as pure functions over `lax.scan`.

Shapes: inputs ``(B, T, D)`` (``(T, B, D)`` with ``time_major``), state ``(B, U)``,
outputs ``(B, T, U)`` or the last output ``(B, U)``.

Structure: the input projection ``x W + b`` does not depend on the recurrence, so it runs
outside the loop, as one ``(T*B, D) @ (D, U)`` matmul per gate into three ``(T, B, U)``
arrays; the scan body holds only the recurrent matmul and the gate arithmetic
(`jaxgru.gates.recurrent_step`). Without a mask the body does no masking work. By default
the loop is differentiated by `jaxgru.fused_backward` (``backward="fused"``).

``time_chunk``: on a GPU or TPU the projection covers all ``T`` steps at once. On CPU the
default (`default_time_chunk`) splits long sequences into chunks of ``C`` steps, each
projected right before its part of the loop (`_chunked_recurrence`), with ``C*B*U`` at
most 2^18 so that a chunk's ``(C, B, U)`` arrays (projections, and the fused backward's
residuals and partials) stay in cache; the ``(T*B, D)`` matmuls of one projection of a
long sequence run out of cache. Measured on a 2-core CPU: forward 1.3x and
forward+backward 1.1x faster at ``(B, T, D, U) = (256, 50, 128, 256)``, forward+backward
1.1x at ``(8, 1000, 64, 256)``. The results are the same either way, up to float rounding
in the weight gradients (sums over chunks instead of one sum over all steps).

Keras's ``stateful=True`` is functional here: pass the returned ``final_state`` back as
``initial_state`` of the next call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax

from jaxgru import fused_backward, gates
from jaxgru.cell import GRUCell, Params
from jaxgru.dropout import DropoutMasks
from jaxgru.validation import as_floating_array, as_state, check_flags, check_key, check_positive_int, check_unroll

MERGE_MODES = ("concat", "sum", "ave", "mul", None)
BACKWARDS = ("fused", "autodiff")
# Elements of one (C, B, U) chunk array in the default CPU time chunk: 1 MiB in float32.
CPU_CHUNK_ELEMENTS = 2 ** 18


def default_time_chunk(steps: int, batch: int, units: int) -> int:
    """The ``time_chunk`` `rnn` uses when given None: ``T`` (one projection) on GPU/TPU;
    on CPU the largest ``C >= 1`` with ``C*B*U <= CPU_CHUNK_ELEMENTS``, or ``T`` where
    that leaves fewer than two chunks (measured: a short sequence gains nothing)."""
    chunk = max(1, CPU_CHUNK_ELEMENTS // max(1, batch * units))
    if jax.default_backend() != "cpu" or 2 * chunk > steps:
        return steps
    return chunk


def _time_major_mask(mask: Any, batch: int, steps: int, time_major: bool) -> Optional[jax.Array]:
    if mask is None:
        return None
    if isinstance(mask, (str, bytes)):
        raise TypeError(f"mask: expected booleans (or 0/1 integers), got {mask!r}.")
    try:
        mask = jnp.asarray(mask)
    except (TypeError, ValueError) as error:
        raise TypeError(f"mask: expected booleans (or 0/1 integers), got {type(mask).__name__} ({error}).") from None
    expected = (steps, batch) if time_major else (batch, steps)
    if tuple(mask.shape) != expected:
        layout = "(T, B) with time_major" if time_major else "(B, T)"
        raise ValueError(f"mask: expected shape {layout} = {expected}, got {tuple(mask.shape)}.")
    if not (mask.dtype == jnp.bool_ or jnp.issubdtype(mask.dtype, jnp.integer)):
        raise ValueError(f"mask: expected booleans (or 0/1 integers), got dtype {mask.dtype}.")
    mask = mask.astype(jnp.bool_)
    return mask if time_major else mask.T


def scan_recurrence(cell: GRUCell, weights: gates.RecurrentWeights, h0: jax.Array, xi: gates.GateInputs,
                    recurrent_masks: Optional[jax.Array], step_mask: Optional[jax.Array],
                    zero_output_for_mask: bool, unroll: int = 1, remat: bool = False,
                    backward: str = "fused", initial_output: Optional[jax.Array] = None):
    """Runs `recurrent_step` over time.

    ``backward``: how the loop is differentiated (see `rnn`).

    Args:
      h0: ``(B, U)`` initial state. xi: three ``(T, B, U)`` input projections.
      step_mask: ``(T, B)`` booleans or None.
      initial_output: ``(B, U)``, the output a masked first step repeats (zeros when
        None); a later chunk of one sequence passes the previous chunk's last output.

    Returns:
      ``(outputs (T, B, U), last_output (B, U), final_state (B, U))`` with Keras's mask
      semantics: at a masked step the state is carried over and the output is the
      previous output (zeros before any valid step), or zeros with
      ``zero_output_for_mask``; the last output is the output of the final step.
    """

    if backward not in BACKWARDS:
        raise ValueError(f"backward: expected one of {BACKWARDS}, got {backward!r}.")
    if backward == "fused" and not remat and fused_backward.supports(cell):
        return fused_backward.fused_scan_recurrence(cell, weights, h0, xi, recurrent_masks, step_mask,
                                                    zero_output_for_mask, unroll, initial_output)

    def step(h, xi_t):
        return gates.recurrent_step(cell, weights, h, gates.GateInputs(*xi_t), recurrent_masks)

    if remat:
        step = jax.checkpoint(step, prevent_cse=False)

    if step_mask is None:
        def body(h, xi_t):
            h_new = step(h, xi_t)
            return h_new, h_new

        h_last, outputs = lax.scan(body, h0, tuple(xi), unroll=unroll)
        return outputs, h_last, h_last

    def masked_body(carry, inputs):
        h, previous_output = carry
        xi_t, keep = inputs
        keep = keep[:, None]
        h_new = step(h, xi_t)
        fallback = jnp.zeros_like(h_new) if zero_output_for_mask else previous_output
        output = jnp.where(keep, h_new, fallback)
        return (jnp.where(keep, h_new, h), output), output

    if initial_output is None:
        initial_output = jnp.zeros_like(h0)
    (h_last, last_output), outputs = lax.scan(
        masked_body, (h0, initial_output), (tuple(xi), step_mask), unroll=unroll)
    return outputs, last_output, h_last


def _chunked_recurrence(cell: GRUCell, params: Params, xs: jax.Array, h0: jax.Array, masks: DropoutMasks,
                        step_mask: Optional[jax.Array], chunk: int, **scan_options):
    """Projects and runs the sequence ``xs`` ``(T, B, D)`` in chunks of ``chunk`` steps.

    Each chunk's input projection (three ``(C*B, D) @ (D, U)`` matmuls) runs right before
    its part of the recurrence, inside an outer `lax.scan` over the chunks; the state and
    the last output are carried across chunk boundaries, so the result equals one
    projection of all ``T`` steps followed by one scan. ``chunk >= T`` is exactly that.
    A last, shorter chunk takes the ``T mod C`` remaining steps.

    Returns ``(outputs (T, B, U), last_output (B, U), final_state (B, U))``.
    """
    weights = gates.recurrent_weights(cell, params)

    def run(carry, chunk_inputs):
        h, output = carry
        x, step_mask = chunk_inputs
        xi = gates.project_inputs(cell, params, x, masks.inputs)
        outputs, last_output, h = scan_recurrence(cell, weights, h, xi, masks.recurrent, step_mask,
                                                  initial_output=output, **scan_options)
        return (h, last_output), outputs

    def steps_of(a, start, stop):  # time slice of xs or of the optional step mask
        return None if a is None else a[start:stop]

    steps = xs.shape[0]
    chunk = min(chunk, steps)
    count, rest = divmod(steps, chunk)
    head = count * chunk
    carry = (h0, jnp.zeros_like(h0))
    if count == 1:
        carry, outputs = run(carry, (xs[:head], steps_of(step_mask, 0, head)))
    else:
        def split(a):
            return None if a is None else a[:head].reshape(count, chunk, *a.shape[1:])

        carry, outputs = lax.scan(run, carry, (split(xs), split(step_mask)))
        outputs = outputs.reshape(head, *outputs.shape[2:])
    if rest:
        carry, tail = run(carry, (xs[head:], steps_of(step_mask, head, steps)))
        outputs = jnp.concatenate([outputs, tail])
    final_state, last_output = carry
    return outputs, last_output, final_state


def rnn(cell: GRUCell, params: Params, inputs: jax.Array, *, initial_state: Optional[jax.Array] = None,
        mask: Optional[jax.Array] = None, rng: Optional[jax.Array] = None, training: bool = False,
        go_backwards: bool = False, return_sequences: bool = True, time_major: bool = False,
        zero_output_for_mask: bool = False, unroll: int = 1, remat: bool = False,
        masks: Optional[DropoutMasks] = None, backward: str = "fused", time_chunk: Optional[int] = None):
    """Keras's ``GRU(return_state=True)`` as a pure function.

    Args:
      cell: the `GRUCell` configuration.
      params: the cell's params (`GRUCell.init`).
      inputs: ``(B, T, D)``, or ``(T, B, D)`` with ``time_major``.
      initial_state: ``(B, U)``; zeros in the inputs' dtype when None.
      mask: booleans (or 0/1 integers; floats are rejected) in the inputs' layout,
        ``(B, T)`` (``(T, B)`` with ``time_major``, as Keras's backend takes it); True
        marks a valid step. A fully masked row keeps ``initial_state`` and outputs zeros.
        Masked steps' inputs are never read, so padding of any value (NaN, inf) leaves
        outputs and gradients unaffected (the padding's own gradient is zero).
      rng: PRNG key for dropout; with ``training=True`` the masks are drawn once per
        sequence (``cell.dropout_masks(rng, B, D)``) and used at every step, as Keras's
        cached masks are. The same key gives the same result.
      training: enables dropout.
      masks: explicit per-sequence `DropoutMasks` (``inputs (3, B, D)``, ``recurrent
        (3, B, U)``) used at every step instead of drawing them from ``rng``, e.g.
        Keras's own cached masks; used only with ``training=True``.
      go_backwards: process the reversed sequence; outputs stay in processing order.
      return_sequences: return all outputs, or only the last output ``(B, U)``.
      zero_output_for_mask: masked steps output zeros instead of the previous output.
      unroll: passed to `lax.scan`: a positive int (steps per loop iteration) or a
        bool (True unrolls the whole loop).
      remat: recompute each step's gate activations in the backward pass instead of
        storing them (`jax.checkpoint` on the scan body): only the ``(B, U)`` carry per
        step is kept, for long sequences. Implies ``backward="autodiff"``.
      backward: "fused" (default): the loop's hand-written backward pass
        (`jaxgru.fused_backward`: one ``dh @ Uᵀ`` per step, weight gradients as single
        matmuls after the loop), used when the activations are elementwise (all Keras
        activations are), else autodiff; "autodiff": JAX's autodiff of the scan, which
        also supports forward mode (`jax.jvp`). Both give the same values and gradients.
      time_chunk: project the inputs ``time_chunk`` steps at a time, each chunk right
        before its part of the loop (a positive int; ``>= T`` projects all steps at
        once); None: `default_time_chunk` (all steps on GPU/TPU, cache-sized chunks on
        CPU). Changes speed and memory locality only: the same results, up to float
        rounding in the weight gradients' sums.

    Returns:
      ``(outputs, final_state)``: outputs ``(B, T, U)`` (``(T, B, U)`` time-major) or
      ``(B, U)``; ``final_state`` ``(B, U)``. Without ``return_sequences`` the output is
      the last one of the sequence exactly as tf_keras's ``backend.rnn`` carries it: with
      a mask, the output of the last valid step, or zeros with ``zero_output_for_mask``
      when the final processed step is masked.
    """
    check_flags(training=training, go_backwards=go_backwards, return_sequences=return_sequences,
                time_major=time_major, zero_output_for_mask=zero_output_for_mask, remat=remat)
    unroll = check_unroll(unroll)
    layout = "(T, B, D)" if time_major else "(B, T, D)"
    inputs = as_floating_array(inputs, "inputs", layout)
    if inputs.ndim != 3:
        raise ValueError(f"inputs: expected rank 3 {layout}, got shape {inputs.shape}.")
    xs = inputs if time_major else jnp.swapaxes(inputs, 0, 1)
    steps, batch, features = xs.shape
    if steps == 0:
        raise ValueError("inputs: the sequence has no timesteps (T == 0).")
    d = cell.check_params(params)
    if features != d:
        raise ValueError(f"inputs: expected feature dimension {d} (the kernel's input_dim), got {features}.")
    step_mask = _time_major_mask(mask, batch, steps, time_major)
    if step_mask is not None:
        # Padding never reaches the arithmetic: a masked step's output is discarded, but
        # NaN/inf in its inputs would still make its partial derivatives NaN, and the zero
        # cotangent times NaN poisons every parameter gradient. Selected inputs give every
        # masked step finite partials and so an exact zero contribution.
        xs = jnp.where(step_mask[:, :, None], xs, jnp.zeros((), xs.dtype))
    if initial_state is not None:
        h0 = as_state(initial_state, "initial_state")
        if tuple(h0.shape) != (batch, cell.units):
            raise ValueError(f"initial_state: expected shape {(batch, cell.units)}, got {tuple(h0.shape)}.")

    if time_chunk is None:
        time_chunk = default_time_chunk(steps, batch, cell.units)
    time_chunk = check_positive_int(time_chunk, "time_chunk")
    masks = cell.resolve_masks(rng, masks, training, (batch,), d, inputs.dtype)
    if go_backwards:
        xs = xs[::-1]
        step_mask = None if step_mask is None else step_mask[::-1]
    if initial_state is None:
        # zeros (B, U) in the inputs' dtype, sharded along B like the inputs
        h0 = jnp.broadcast_to(jnp.zeros_like(xs[0, :, :1]), (batch, cell.units))
    outputs, last_output, final_state = _chunked_recurrence(
        cell, params, xs, h0, masks, step_mask, time_chunk, zero_output_for_mask=zero_output_for_mask,
        unroll=unroll, remat=remat, backward=backward)
    if not return_sequences:
        return last_output, final_state
    return (outputs if time_major else jnp.swapaxes(outputs, 0, 1)), final_state


def _merge(forward: jax.Array, backward: jax.Array, merge_mode: Optional[str]):
    if merge_mode == "concat":
        return jnp.concatenate([forward, backward], axis=-1)
    if merge_mode == "sum":
        return forward + backward
    if merge_mode == "ave":
        return (forward + backward) / 2
    if merge_mode == "mul":
        return forward * backward
    return forward, backward


def bidirectional(cell: Union[GRUCell, Sequence[GRUCell]], params: dict[str, Params], inputs: jax.Array, *,
                  merge_mode: Optional[str] = "concat", mask: Optional[jax.Array] = None,
                  initial_state: Optional[Sequence[jax.Array]] = None, rng: Optional[jax.Array] = None,
                  training: bool = False, return_sequences: bool = True, time_major: bool = False,
                  unroll: int = 1, remat: bool = False, backward: str = "fused",
                  time_chunk: Optional[int] = None):
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
        explicit masks, call `rnn` per direction with ``masks=``.
      Other arguments as in `rnn`.

    The backward direction runs `rnn` with ``go_backwards=True``; its output sequence is
    reversed back into input order before merging. As in Keras's ``Bidirectional``, masked
    steps output zeros when returning sequences.

    Returns:
      ``(outputs, (final_fw, final_bw))``.
    """
    check_flags(training=training, return_sequences=return_sequences, time_major=time_major, remat=remat)
    if merge_mode not in MERGE_MODES:
        raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}.")
    cells = tuple(cell) if isinstance(cell, (list, tuple)) else (cell, cell)
    if len(cells) != 2 or not all(isinstance(c, GRUCell) for c in cells):
        raise TypeError("cell: expected a GRUCell or a (forward, backward) pair of GRUCells.")
    if merge_mode in ("sum", "ave", "mul") and cells[0].units != cells[1].units:
        raise ValueError(f"cell: merge_mode={merge_mode!r} needs equal units in both directions, "
                         f"got {cells[0].units} and {cells[1].units}.")
    if not isinstance(params, Mapping) or set(params) != {"forward", "backward"}:
        raise ValueError("params: expected {'forward': params, 'backward': params}.")
    input_dims = {}
    for direction, direction_cell in zip(("forward", "backward"), cells):
        try:
            input_dims[direction] = direction_cell.check_params(params[direction])
        except (TypeError, ValueError) as error:
            raise type(error)(f"params[{direction!r}]: {error}") from None
    if input_dims["forward"] != input_dims["backward"]:
        raise ValueError(f"params: the forward kernel takes D={input_dims['forward']} features and the "
                         f"backward kernel D={input_dims['backward']}; they must match.")
    if initial_state is None:
        initial_state = (None, None)
    elif not isinstance(initial_state, (list, tuple)) or len(initial_state) != 2:
        raise ValueError("initial_state: expected a (forward, backward) pair of (B, U) states.")
    keys = (None, None) if rng is None else tuple(jax.random.split(check_key(rng, "rng")))
    common = dict(mask=mask, training=training, return_sequences=return_sequences, time_major=time_major,
                  zero_output_for_mask=return_sequences, unroll=unroll, remat=remat,
                  backward=backward, time_chunk=time_chunk)
    out_fw, final_fw = rnn(cells[0], params["forward"], inputs, initial_state=initial_state[0], rng=keys[0],
                           go_backwards=False, **common)
    out_bw, final_bw = rnn(cells[1], params["backward"], inputs, initial_state=initial_state[1], rng=keys[1],
                           go_backwards=True, **common)
    if return_sequences:
        out_bw = jnp.flip(out_bw, axis=0 if time_major else 1)
    return _merge(out_fw, out_bw, merge_mode), (final_fw, final_bw)
