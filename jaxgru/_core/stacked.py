"""A stack of GRU layers in one call: PyTorch's ``nn.GRU(num_layers, bidirectional, dropout)``,
`stacked_rnn` (its docstring states the math).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxgru._core import layer_options
from jaxgru._core.cell import GRUCell
from jaxgru._core.dropout import inverted_dropout_masks
from jaxgru._core.recurrent import bidirectional as run_bidirectional
from jaxgru._core.recurrent import rnn as run_rnn
from jaxgru._core.validation import as_floating_array, check_flags, check_key
from jaxgru._deprecations import RENAMED_KEYWORDS

__all__ = ["stacked_rnn"]


# One layer's cell configuration: a GRUCell, or a (forward, backward) pair when bidirectional.
LayerCell = GRUCell | tuple[GRUCell, GRUCell]


def stacked_rnn(cells: GRUCell | Sequence[LayerCell], layers: Sequence[Any], inputs: jax.Array, *,
                bidirectional: bool = False, dropout: float = 0.0, merge_mode: str | None = "concat",
                initial_state: Any = None, mask: jax.Array | None = None,
                seq_lengths: jax.Array | None = None, resets: jax.Array | None = None, reset_state: Any = None,
                rng: jax.Array | None = None, training: bool = False, time_major: bool = False,
                return_sequences: bool = True, **options):
    """``L`` stacked GRU layers, PyTorch's ``nn.GRU(D, U, num_layers=L, bidirectional, dropout)``.

    Each layer is `jaxgru.rnn` (or `jaxgru.bidirectional` with ``bidirectional=True``) on
    the previous layer's output sequence; between layers (never after the last) PyTorch's
    dropout zeroes each element with probability ``p`` when training:

        x⁽⁰⁾ = inputs                                          (B, T, D)
        y⁽ᵏ⁾, h_n⁽ᵏ⁾ = layer_k(x⁽ᵏ⁾, h0⁽ᵏ⁾)                      (B, T, F_k), (dirs, B, U)
        x⁽ᵏ⁺¹⁾ = y⁽ᵏ⁾ ⊙ m⁽ᵏ⁾ / (1 − p),  m⁽ᵏ⁾ ~ Bernoulli(1 − p)  per element, k < L − 1
        outputs = y⁽ᴸ⁻¹⁾,  h_n = [h_n⁽⁰⁾; …; h_n⁽ᴸ⁻¹⁾]           (B, T, F_{L-1}), (L·dirs, B, U)

    with ``F_k = U`` (unidirectional) or ``2U`` (bidirectional, ``merge_mode="concat"``),
    ``dirs`` 1 or 2. ``B`` may be any number of batch axes, as `jaxgru.rnn` takes them;
    the states are then ``(L·dirs, *batch, U)``. PyTorch names: ``num_layers`` is
    ``len(layers)``; ``batch_first=False`` is ``time_major=True``; ``h0`` / ``h_n`` are
    ``initial_state`` / ``final_states``; ``layers`` is
    ``jaxgru.from_torch_stack(module.state_dict())`` and PyTorch's cell is
    ``jaxgru.GRUCell(U)`` (``use_bias=False`` for ``bias=False``).

    Args:
      cells: one `jaxgru.GRUCell` for every layer, or a sequence of ``L`` of them, one per
        layer. With ``bidirectional``, a layer's entry may also be a ``(forward,
        backward)`` pair, as `jaxgru.bidirectional` takes it (a single top-level cell is
        used for both directions of every layer).
      layers: a non-empty list of ``L`` params, one per layer: the cell's params dict, or
        ``{"forward": params, "backward": params}`` per layer with ``bidirectional``.
        Layer 0's kernel takes the inputs' ``D`` features; layer ``k > 0``'s takes the
        previous layer's output features (``U``, or ``U_fw + U_bw`` with "concat").
      inputs: ``(B, T, D)``, or ``(T, B, D)`` with ``time_major``.
      bidirectional: run each layer in both directions and merge them (``merge_mode``:
        "concat", PyTorch's only mode, or "sum", "ave", "mul"; None, which returns a pair,
        cannot feed a next layer and is refused).
      dropout: PyTorch's between-layer dropout ``p``, a number in ``[0, 1]``: with
        ``training=True``, each element of every layer's output sequence except the
        last layer's is zeroed with probability ``p`` and the rest scaled by
        ``1 / (1 - p)`` (all zeros for ``p = 1``), a fresh mask per element as PyTorch's
        ``nn.Dropout``. No effect with one layer. The cells' own (Keras) ``dropout`` and
        ``recurrent_dropout`` apply inside each layer as in `jaxgru.rnn`.
      initial_state: PyTorch's ``h0``: ``(L * dirs, B, U)`` (``dirs`` = 2 when
        bidirectional), layer-major, forward before backward, which needs every layer
        and direction to have the same units; or a sequence of ``L * dirs`` states
        ``(B, U_j)`` in the same order (any units). Zeros when None.
      mask: passed unchanged to every layer's `jaxgru.rnn` / `jaxgru.bidirectional` call
        (when not None).
      seq_lengths: passed unchanged to every layer, as ``mask``.
      resets: passed unchanged to every layer, as ``mask``: a reset restarts every layer
        at the same step.
      reset_state: what each layer's reset steps restart from (needs ``resets``): None,
        zeros in every layer; one array broadcast to every layer and direction (any
        shape that broadcasts to ``(B, U)``: ``(U,)``, a scalar, ``(B, U)``); or a list
        or tuple with one entry per layer, each None (zeros), an array as above, or, for
        a bidirectional layer, a ``(forward, backward)`` pair as `jaxgru.bidirectional`
        takes it.
      rng: PRNG key, needed when dropout is active (``training=True`` and either ``p > 0``
        with ``L > 1``, or cells with dropout). Split as
        ``layers_key, dropout_key = jax.random.split(rng)``: layer ``k`` gets
        ``jax.random.split(layers_key, L)[k]`` as its ``rng`` (split again between the
        directions by `jaxgru.bidirectional`), and the between-layer mask after layer
        ``k`` is ``jax.random.bernoulli(jax.random.split(dropout_key, L - 1)[k], 1 - p,
        y.shape)``, so the two kinds of dropout are independent. The same key gives the
        same result.
      training: enables both kinds of dropout.
      time_major: inputs, outputs, mask and the like are time-major.
      return_sequences: return the last layer's whole output sequence, or only its last
        output ``(B, F)``, as `jaxgru.rnn` / `jaxgru.bidirectional` returns it; the other
        layers always pass on their whole sequence.
      **options (Any): the rest of `jaxgru.rnn`'s keywords (``unroll``, ``remat``,
        ``gradient``, ``time_chunk``, and ``go_backwards``, ``zero_output_for_mask`` for
        the unidirectional case), passed to every layer. Explicit per-sequence
        ``dropout_masks`` (under their current or deprecated name) are refused with a
        ValueError: one `DropoutMasks` fits one layer's input size, and each layer draws
        its own from ``rng``. For masks of your own in every layer, call `jaxgru.rnn`
        once per layer with that layer's ``dropout_masks=`` (the loop above).

    Returns:
      ``(outputs, final_states)``: outputs ``(B, T, F)`` (``(T, B, F)`` time-major), or
      ``(B, F)`` without ``return_sequences``, ``F`` the last layer's output features;
      ``final_states`` is PyTorch's ``h_n``, ``(L * dirs, B, U)`` in ``initial_state``'s
      order when all layers and directions have the same units, else a tuple of the
      ``L * dirs`` states ``(B, U_j)`` in that order.

    Raises:
      TypeError, ValueError: naming the argument (``layers[k]`` for a layer whose kernel
        does not take what the previous layer outputs).
    """
    check_flags(training=training, time_major=time_major, return_sequences=return_sequences)
    dropout = layer_options.check_stack_options(bidirectional=bidirectional, dropout=dropout, merge_mode=merge_mode)
    for name in ("dropout_masks", *(old for old, new in RENAMED_KEYWORDS.items() if new == "dropout_masks")):
        if name in options:
            raise ValueError(f"{name}: one DropoutMasks fits one layer's input size (D for layer 0, the previous "
                             "layer's output features after it), so stacked_rnn does not take explicit masks: "
                             "each layer draws its own from rng (training=True). For masks of your own, call "
                             "jaxgru.rnn once per layer with that layer's dropout_masks=.")
    layers = _check_layers(layers)
    layer_cells = _layer_cells(cells, len(layers), bidirectional)
    layout = "(T, *batch, D)" if time_major else "(*batch, T, D)"
    inputs = as_floating_array(inputs, "inputs", layout)
    if inputs.ndim < 2:
        raise ValueError(f"inputs: expected {layout} with any number of batch axes, got shape {inputs.shape}.")
    _check_input_dims(layer_cells, layers, inputs.shape[-1], merge_mode)
    batch_shape = inputs.shape[1:-1] if time_major else inputs.shape[:-2]
    states = _layer_states(initial_state, layer_cells, batch_shape)
    reset_states = _layer_reset_states(reset_state, len(layers), resets is not None)
    between = training and dropout > 0 and len(layers) > 1
    layer_keys, dropout_keys = _split_keys(rng, len(layers), between)

    common = dict(training=training, time_major=time_major, **options,
                  **{name: value for name, value in (("mask", mask), ("seq_lengths", seq_lengths),
                                                     ("resets", resets)) if value is not None})
    if bidirectional:
        common["merge_mode"] = merge_mode
    # the cell argument is a (forward, backward) pair for run_bidirectional, one GRUCell for run_rnn
    run: Callable[..., tuple[Any, Any]] = run_bidirectional if bidirectional else run_rnn
    x = inputs
    finals: list[jax.Array] = []
    for k, (cell, params, state, key) in enumerate(zip(layer_cells, layers, states, layer_keys, strict=True)):
        last = k == len(layers) - 1
        layer_reset = {} if reset_states[k] is None else {"reset_state": reset_states[k]}
        x, final = run(cell, params, x, initial_state=state, rng=key,
                       return_sequences=return_sequences if last else True, **layer_reset, **common)
        finals.extend(final if bidirectional else (final,))
        if between and not last:
            assert dropout_keys is not None  # split whenever there is dropout between layers
            x = _drop(dropout_keys[k], x, dropout)
    return x, _stack_states(finals)


def _check_layers(layers: Any) -> list:
    if isinstance(layers, Mapping) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"layers: expected a list of per-layer params (for one layer: [params]), "
                        f"got {type(layers).__name__}.")
    if not layers:
        raise ValueError("layers: expected at least one layer's params, got an empty list.")
    return list(layers)


def _layer_cells(cells: Any, count: int, bidirectional: bool) -> list[LayerCell]:
    """One entry per layer: the layer's GRUCell, or its (forward, backward) pair when bidirectional."""
    if isinstance(cells, GRUCell):
        return [(cells, cells) if bidirectional else cells] * count
    if not isinstance(cells, (list, tuple)):
        raise TypeError(f"cells: expected a jaxgru.GRUCell or a sequence of one per layer, "
                        f"got {type(cells).__name__}.")
    if len(cells) != count:
        raise ValueError(f"cells: expected one cell per layer, {count} for the {count} entries of layers, "
                         f"got {len(cells)}.")
    return [_one_layer_cell(cell, k, bidirectional) for k, cell in enumerate(cells)]


def _one_layer_cell(cell: Any, k: int, bidirectional: bool) -> LayerCell:
    if isinstance(cell, GRUCell):
        return (cell, cell) if bidirectional else cell
    is_pair = isinstance(cell, (list, tuple)) and len(cell) == 2 and all(isinstance(c, GRUCell) for c in cell)
    if bidirectional and is_pair:
        return tuple(cell)
    expected = "a jaxgru.GRUCell or a (forward, backward) pair of them" if bidirectional else "a jaxgru.GRUCell"
    raise TypeError(f"cells[{k}]: expected {expected}, got {cell!r}.")


def _unit_list(cell: LayerCell) -> list[int]:
    """The units of each direction's state of one layer."""
    return [c.units for c in cell] if isinstance(cell, tuple) else [cell.units]


def _output_features(cell: LayerCell, merge_mode: str | None) -> int:
    units = _unit_list(cell)
    return sum(units) if len(units) == 2 and merge_mode == "concat" else units[0]


def _params_input_dim(cell: LayerCell, params: Any, k: int) -> int:
    """The ``D`` that ``layers[k]`` takes, after validating it against its cell(s)."""
    if not isinstance(cell, tuple):
        return _checked(cell, params, f"layers[{k}]")
    return layer_options.check_bidirectional_params(cell, params, f"layers[{k}]")


def _checked(cell: GRUCell, params: Any, label: str) -> int:
    """`GRUCell.check_params`, its errors prefixed with ``label``."""
    try:
        return cell.check_params(params)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{label}: {error}") from None


def _check_input_dims(layer_cells: list[LayerCell], layers: list, features: int, merge_mode: str | None) -> None:
    """Each layer's kernel takes the features the previous layer (or the inputs) gives it."""
    expected, source = features, "the inputs' last axis"
    for k, (cell, params) in enumerate(zip(layer_cells, layers, strict=True)):
        d = _params_input_dim(cell, params, k)
        if d != expected:
            raise ValueError(f"layers[{k}]: the kernel takes D={d} input features, but layer {k} receives "
                             f"D={expected} ({source}).")
        expected = _output_features(cell, merge_mode)
        source = f"the output features of layer {k}"


def _layer_states(initial_state: Any, layer_cells: list[LayerCell], batch_shape: tuple[int, ...]) -> list:
    """``initial_state`` split per layer: None, a state, or a (forward, backward) pair."""
    units = [u for cell in layer_cells for u in _unit_list(cell)]
    if initial_state is None:
        return [None] * len(layer_cells)
    if isinstance(initial_state, (list, tuple)):
        if len(initial_state) != len(units):
            raise ValueError(f"initial_state: expected {len(units)} states (L * dirs, layer-major, forward first), "
                             f"got {len(initial_state)}.")
        states = [_check_state(s, f"initial_state[{j}]", "(B, U)", (*batch_shape, u))
                  for j, (s, u) in enumerate(zip(initial_state, units, strict=True))]
    else:
        if len(set(units)) != 1:
            raise ValueError(f"initial_state: one array (L * dirs, B, U) needs equal units in every layer and "
                             f"direction, got units {units}; pass a sequence of {len(units)} states (B, U_j).")
        states = list(_check_state(initial_state, "initial_state", "(L * dirs, B, U)",
                                   (len(units), *batch_shape, units[0])))
    if isinstance(layer_cells[0], tuple):
        return [tuple(states[j:j + 2]) for j in range(0, len(states), 2)]
    return states


def _layer_reset_states(reset_state: Any, count: int, has_resets: bool) -> list:
    """``reset_state`` per layer: one value for all layers, or a list/tuple of ``count``."""
    if reset_state is None:
        return [None] * count
    if not has_resets:
        raise ValueError("reset_state: given without resets; it is the state reset steps restart from.")
    if not isinstance(reset_state, (list, tuple)):
        return [reset_state] * count
    if len(reset_state) != count:
        raise ValueError(f"reset_state: expected one array for every layer or a sequence of one entry per layer "
                         f"({count}), got a sequence of {len(reset_state)}.")
    return list(reset_state)


def _check_state(state: Any, argument: str, layout: str, shape: tuple[int, ...]) -> jax.Array:
    state = as_floating_array(state, argument, layout)
    if tuple(state.shape) != shape:
        raise ValueError(f"{argument}: expected shape {layout} = {shape}, got {tuple(state.shape)}.")
    return state


def _split_keys(rng: jax.Array | None, count: int, between: bool) -> tuple[list, jax.Array | None]:
    """``(per-layer keys, between-layer dropout keys)`` as the `stacked_rnn` docstring says."""
    if rng is None:
        if between:
            raise ValueError("rng: training=True with dropout between layers needs a PRNG key; pass "
                             "rng=jax.random.key(...), dropout=0 or training=False.")
        return [None] * count, None
    layers_key, dropout_key = jax.random.split(check_key(rng, "rng"))
    dropout_keys = jax.random.split(dropout_key, count - 1) if count > 1 else None
    return list(jax.random.split(layers_key, count)), dropout_keys


def _drop(key: jax.Array, x: jax.Array, rate: float) -> jax.Array:
    """PyTorch's ``nn.Dropout(rate)`` in training: inverted dropout, one draw per element."""
    if rate == 1:
        return jnp.zeros_like(x)
    return x * inverted_dropout_masks(key, rate, x.shape, 1, x.dtype)[0]


def _stack_states(finals: list[jax.Array]) -> jax.Array | tuple[jax.Array, ...]:
    """``(L * dirs, B, U)`` when every state has the same shape, else the tuple of states."""
    if len({tuple(f.shape) for f in finals}) == 1:
        return jnp.stack(finals)
    return tuple(finals)
