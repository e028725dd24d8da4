"""The Equinox modules behind `jaxgru.equinox` (whose docstring states their fields, keys and
layout): `GRUCell`, `GRU`, `Bidirectional`, `penalty`, `constrain`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxgru._core.cell import GRUCell as FunctionalGRUCell
from jaxgru._core.cell import Params
from jaxgru._core.dropout import DropoutMasks
from jaxgru._core.layer_options import MERGE_MODES, check_bidirectional_params
from jaxgru._core.recurrent import bidirectional, rnn
from jaxgru._core.validation import check_bool, check_flags, check_key, check_positive_int, check_unroll

__all__ = ["GRU", "Bidirectional", "GRUCell", "constrain", "penalty"]

_WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


def _make_cell(units: int | None, cell: FunctionalGRUCell | None, cell_options: dict) -> FunctionalGRUCell:
    """The `jaxgru.GRUCell` of a constructor: ``cell`` as given, or built from ``units`` and the options."""
    if cell is None:
        if units is None:
            raise TypeError("units: required (or pass a ready cell=jaxgru.GRUCell(...)).")
        return FunctionalGRUCell(units, **cell_options)
    if not isinstance(cell, FunctionalGRUCell):
        raise TypeError(f"cell: expected a jaxgru.GRUCell, got {type(cell).__name__}.")
    if cell_options:
        raise TypeError(f"cell: given together with cell options {sorted(cell_options)}; "
                        "pass the options to jaxgru.GRUCell instead.")
    if units is not None and check_positive_int(units, "units") != cell.units:
        raise ValueError(f"units: {units} differs from cell.units={cell.units}.")
    return cell


def _param_dtype(dtype: Any) -> Any:
    return jnp.result_type(float) if dtype is None else dtype


def _dropout_key(cells: Sequence[FunctionalGRUCell], field: Any, inference: bool | None,
                 key: jax.Array | None) -> jax.Array | None:
    """The key of a call that draws dropout masks, or None when it draws none.

    ``inference`` (the call's) overrides ``field`` (the module's) when not None. The
    field is read only when a cell has a dropout rate, so that a module without dropout
    also runs where its fields are traced (e.g. passed as an argument of `jax.jit`).
    """
    if inference is not None:
        training = not check_bool(inference, "inference")
    elif not any(cell.draws_dropout(True) for cell in cells):
        return None
    elif isinstance(field, jax.core.Tracer):
        raise TypeError("inference: the module's inference field is a traced value (the module was passed "
                        "through jax.jit / jax.vmap as an argument); use eqx.filter_jit / eqx.filter_vmap, which "
                        "keep Python bools static, or pass inference=True/False to the call.")
    else:
        training = not check_bool(field, "inference")
    if not any(cell.draws_dropout(training) for cell in cells):
        return None
    if key is None:
        raise ValueError("key: dropout is active (inference=False and a dropout rate in (0, 1)), so the call "
                         "needs a PRNG key; pass key=jax.random.key(...), or inference=True "
                         "(or eqx.nn.inference_mode(model)) to disable dropout.")
    return check_key(key, "key")


class _Params(eqx.Module):
    """The params of one jaxgru cell and its configuration.

    Attributes:
      kernel: ``(D, 3U)``. recurrent_kernel: ``(U, 3U)``. bias: ``(3U,)`` |
        ``(2, 3U)``, or None with ``use_bias=False``.
      cell: the `jaxgru.GRUCell` configuration (static).
    """

    kernel: jax.Array
    recurrent_kernel: jax.Array
    bias: jax.Array | None
    cell: FunctionalGRUCell = eqx.field(static=True)

    def _init_params(self, input_size: int, units: int | None, key: jax.Array, dtype: Any,
                     cell: FunctionalGRUCell | None, cell_options: dict) -> None:
        input_size = check_positive_int(input_size, "input_size")
        check_key(key, "key")
        self.cell = _make_cell(units, cell, cell_options)
        params = self.cell.init(key, input_size, _param_dtype(dtype))
        self.kernel = params["kernel"]
        self.recurrent_kernel = params["recurrent_kernel"]
        self.bias = params.get("bias")

    @property
    def input_size(self) -> int:
        """D, the input features."""
        return self.kernel.shape[0]

    @property
    def units(self) -> int:
        """U, the state and output size."""
        return self.cell.units

    def weights(self) -> Params:
        """The functional params dict ``{"kernel", "recurrent_kernel"[, "bias"]}``, as `jaxgru.rnn` takes it."""
        params = {"kernel": self.kernel, "recurrent_kernel": self.recurrent_kernel}
        if self.bias is not None:
            params["bias"] = self.bias
        return params

    @property
    def params(self) -> Params:
        """Same as `weights`."""
        return self.weights()

    def _constrained(self) -> _Params:
        """This module with ``cell.constrain`` applied to its params."""
        constrained = self.cell.constrain(self.weights())
        names = [name for name in _WEIGHT_NAMES if name in constrained]
        return eqx.tree_at(lambda m: [getattr(m, name) for name in names], self,
                           [constrained[name] for name in names])

    @classmethod
    def _wrap(cls, cell: FunctionalGRUCell, params: Params, **options: Any):
        """A module of ``cell`` and ``options`` holding ``params`` (validated), built without drawing weights."""
        if not isinstance(cell, FunctionalGRUCell):
            raise TypeError(f"cell: expected a jaxgru.GRUCell, got {type(cell).__name__}.")
        input_size = cell.check_params(params)
        dtype = jnp.result_type(params["kernel"])
        # called on the subclasses, whose __init__ takes (input_size, *, key, dtype, cell, ...), not _Params's fields
        shell = eqx.filter_eval_shape(
            lambda: cls(input_size, key=jax.random.key(0), dtype=dtype, cell=cell,  # type: ignore[call-arg, arg-type]
                        **options))
        names = [name for name in _WEIGHT_NAMES if name in params]
        return eqx.tree_at(lambda m: [getattr(m, name) for name in names], shell,
                           [jnp.asarray(params[name]) for name in names])


class GRUCell(_Params):
    """Keras's ``GRUCell`` as an Equinox module (one timestep).

    ``GRUCell(input_size, units, *, key, dtype=None, inference=False, cell=None,
    **cell_options)``: ``cell_options`` are `jaxgru.GRUCell`'s (``activation``,
    ``reset_after``, ``dropout``, ...), or ``cell`` is a ready `jaxgru.GRUCell` (then
    ``units`` may be omitted). ``dtype`` is the params' dtype.

    ``__call__(x, state, *, key=None, inference=None, reset=None) -> new_state`` with
    ``x`` ``(D,)`` and ``state`` ``(U,)`` (as `eqx.nn.GRUCell`), or with any leading batch
    axes ``(*batch, D)`` and ``(*batch, U)``. The new state is also the output. ``reset``
    booleans of the batch shape (a scalar for one ``(D,)`` step) restart those rows from
    zeros before the step (`jaxgru.GRUCell.step`'s ``reset``: a new episode while acting). With
    dropout active, the masks are drawn from ``key`` as `jaxgru.rnn` draws them for the
    same batch axes, so passing the same key at every step of a sequence reproduces
    ``jaxgru.rnn(..., rng=key, training=True)`` (Keras's per-sequence masks).

    ``GRUCell.from_params(cell, params)`` wraps existing functional params.
    """

    inference: bool = False

    def __init__(self, input_size: int, units: int | None = None, *, key: jax.Array, dtype: Any = None,
                 inference: bool = False, cell: FunctionalGRUCell | None = None, **cell_options: Any):
        self._init_params(input_size, units, key, dtype, cell, cell_options)
        self.inference = check_bool(inference, "inference")

    @classmethod
    def from_params(cls, cell: FunctionalGRUCell, params: Params, *, inference: bool = False) -> GRUCell:
        """A `GRUCell` holding ``params`` (a `jaxgru.GRUCell.init`-style dict) for ``cell``."""
        return cls._wrap(cell, params, inference=inference)

    def __call__(self, x: jax.Array, state: jax.Array, *, key: jax.Array | None = None,
                 inference: bool | None = None, reset: jax.Array | None = None) -> jax.Array:
        key = _dropout_key((self.cell,), self.inference, inference, key)
        masks = None
        x = jnp.asarray(x)
        if key is not None:
            params = self.weights()
            d = self.cell.check_params(params)
            if x.ndim < 1 or x.shape[-1] != d:
                raise ValueError(f"x: expected last dimension {d} (the kernel's input_dim), got shape {x.shape}.")
            batch_shape = x.shape[:-1]
            flat = self.cell.dropout_masks(key, max(1, math.prod(batch_shape)), d, True, x.dtype)
            masks = DropoutMasks(*(None if m is None else m[:, :math.prod(batch_shape)].reshape(
                3, *batch_shape, m.shape[-1]) for m in flat))
        new_state, _ = self.cell.step(self.weights(), state, x, training=key is not None, dropout_masks=masks,
                                      reset=reset)
        return new_state


class GRU(_Params):
    """Keras's ``GRU`` layer over `jaxgru.rnn`, as an Equinox module.

    ``GRU(input_size, units, *, key, return_sequences=True, go_backwards=False,
    time_major=False, zero_output_for_mask=False, unroll=1, remat=False, dtype=None,
    inference=False, cell=None, **cell_options)``: the flags as in `jaxgru.rnn` (static
    fields), ``cell_options`` those of `jaxgru.GRUCell` or a ready ``cell``.

    ``__call__(inputs, *, initial_state=None, mask=None, seq_lengths=None, resets=None,
    reset_state=None, key=None, inference=None) -> (outputs, final_state)``, exactly
    `jaxgru.rnn`'s result: ``inputs`` ``(T, D)`` (one sequence, for `jax.vmap`) or ``(B,
    T, D)`` (``(T, B, D)`` with ``time_major``), ``mask`` / ``resets`` in that layout
    without ``D``, ``seq_lengths`` ``(B,)``, states ``(B, U)`` (``(U,)`` unbatched;
    ``reset_state``, what reset steps restart from, zeros when None, may be any shape that
    broadcasts to it);
    ``outputs`` ``(B, T, U)``, or the last output ``(B, U)`` without ``return_sequences``.
    With dropout active, ``key`` gives Keras's per-sequence masks (one draw per call).

    ``GRU.from_params(cell, params, **options)`` wraps existing functional params:

        jaxgru.rnn(gru.cell, gru.weights(), x) == gru(x, inference=True)
    """

    return_sequences: bool = eqx.field(static=True)
    go_backwards: bool = eqx.field(static=True)
    time_major: bool = eqx.field(static=True)
    zero_output_for_mask: bool = eqx.field(static=True)
    unroll: int | bool = eqx.field(static=True)
    remat: bool = eqx.field(static=True)
    inference: bool = False

    def __init__(self, input_size: int, units: int | None = None, *, key: jax.Array,
                 return_sequences: bool = True, go_backwards: bool = False, time_major: bool = False,
                 zero_output_for_mask: bool = False, unroll: int | bool = 1, remat: bool = False,
                 dtype: Any = None, inference: bool = False, cell: FunctionalGRUCell | None = None,
                 **cell_options: Any):
        check_flags(return_sequences=return_sequences, go_backwards=go_backwards, time_major=time_major,
                    zero_output_for_mask=zero_output_for_mask, remat=remat)
        check_unroll(unroll)
        self._init_params(input_size, units, key, dtype, cell, cell_options)
        self.return_sequences = return_sequences
        self.go_backwards = go_backwards
        self.time_major = time_major
        self.zero_output_for_mask = zero_output_for_mask
        self.unroll = unroll
        self.remat = remat
        self.inference = check_bool(inference, "inference")

    @classmethod
    def from_params(cls, cell: FunctionalGRUCell, params: Params, **options: Any) -> GRU:
        """A `GRU` holding ``params`` for ``cell``; ``options`` are the constructor's flags."""
        return cls._wrap(cell, params, **options)

    def __call__(self, inputs: jax.Array, *, initial_state: jax.Array | None = None,
                 mask: jax.Array | None = None, seq_lengths: jax.Array | None = None,
                 resets: jax.Array | None = None, reset_state: jax.Array | None = None,
                 key: jax.Array | None = None, inference: bool | None = None):
        key = _dropout_key((self.cell,), self.inference, inference, key)
        return rnn(self.cell, self.weights(), inputs, initial_state=initial_state, mask=mask,
                   seq_lengths=seq_lengths, resets=resets, reset_state=reset_state, rng=key,
                   training=key is not None, go_backwards=self.go_backwards,
                   return_sequences=self.return_sequences, time_major=self.time_major,
                   zero_output_for_mask=self.zero_output_for_mask, unroll=self.unroll, remat=self.remat)


class Bidirectional(eqx.Module):
    """Keras's ``Bidirectional(GRU(...), merge_mode)`` over `jaxgru.bidirectional`.

    ``Bidirectional(input_size, units, *, key, merge_mode="concat",
    return_sequences=True, time_major=False, unroll=1, remat=False, dtype=None,
    inference=False, cell=None, backward_cell=None, **cell_options)``: a ``forward`` and
    a ``backward`` `GRU` (both ``go_backwards=False``: the wrapper sets the directions),
    each with its own params from one half of ``key``; ``backward_cell`` (default: the
    forward's cell) configures the backward direction. ``merge_mode``: "concat" (last
    axis ``2U``), "sum", "ave", "mul", or None (the pair ``(forward_outputs,
    backward_outputs)``).

    ``__call__(inputs, *, initial_state=None, mask=None, seq_lengths=None, resets=None,
    reset_state=None, key=None, inference=None) -> (outputs, (final_fw, final_bw))``,
    exactly `jaxgru.bidirectional`'s result; ``initial_state`` is a ``(forward, backward)``
    pair, ``reset_state`` one value for both directions or such a pair (zeros when None).
    As in Keras, masked steps output zeros when returning sequences, and the backward
    outputs are flipped back into input order before merging. Dropout: the wrapper's own
    ``inference`` field (`eqx.nn.inference_mode` switches it with the layers'), one key
    per call split between the directions.

    ``weights()`` is ``{"forward": params, "backward": params}``, as
    `jaxgru.bidirectional` takes it; ``Bidirectional.from_params(cell, params, ...)``
    wraps such a dict (``cell`` one `jaxgru.GRUCell` or a ``(forward, backward)`` pair).
    """

    forward: GRU
    backward: GRU
    merge_mode: str | None = eqx.field(static=True)
    return_sequences: bool = eqx.field(static=True)
    time_major: bool = eqx.field(static=True)
    unroll: int | bool = eqx.field(static=True)
    remat: bool = eqx.field(static=True)
    inference: bool = False

    def __init__(self, input_size: int, units: int | None = None, *, key: jax.Array,
                 merge_mode: str | None = "concat", return_sequences: bool = True, time_major: bool = False,
                 unroll: int | bool = 1, remat: bool = False, dtype: Any = None, inference: bool = False,
                 cell: FunctionalGRUCell | None = None, backward_cell: FunctionalGRUCell | None = None,
                 **cell_options: Any):
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}.")
        check_flags(return_sequences=return_sequences, time_major=time_major, remat=remat)
        check_unroll(unroll)
        check_key(key, "key")
        forward_cell = _make_cell(units, cell, cell_options)
        if backward_cell is not None and not isinstance(backward_cell, FunctionalGRUCell):
            raise TypeError(f"backward_cell: expected a jaxgru.GRUCell, got {type(backward_cell).__name__}.")
        backward_cell = forward_cell if backward_cell is None else backward_cell
        if merge_mode in ("sum", "ave", "mul") and forward_cell.units != backward_cell.units:
            raise ValueError(f"backward_cell: merge_mode={merge_mode!r} needs equal units in both directions, "
                             f"got {forward_cell.units} and {backward_cell.units}.")
        options = {"return_sequences": return_sequences, "time_major": time_major, "unroll": unroll, "remat": remat,
                   "dtype": dtype, "inference": inference}
        key_fw, key_bw = jax.random.split(key)
        self.forward = GRU(input_size, key=key_fw, cell=forward_cell, **options)
        self.backward = GRU(input_size, key=key_bw, cell=backward_cell, **options)
        self.merge_mode = merge_mode
        self.return_sequences = return_sequences
        self.time_major = time_major
        self.unroll = unroll
        self.remat = remat
        self.inference = check_bool(inference, "inference")

    @classmethod
    def from_params(cls, cell: FunctionalGRUCell | Sequence[FunctionalGRUCell], params: dict[str, Params],
                    **options: Any) -> Bidirectional:
        """A `Bidirectional` holding ``{"forward": params, "backward": params}`` for ``cell``
        (one `jaxgru.GRUCell` or a ``(forward, backward)`` pair); ``options`` are the
        constructor's (``merge_mode``, ``return_sequences``, ...)."""
        cells = tuple(cell) if isinstance(cell, (list, tuple)) else (cell, cell)
        if len(cells) != 2 or not all(isinstance(c, FunctionalGRUCell) for c in cells):
            raise TypeError("cell: expected a jaxgru.GRUCell or a (forward, backward) pair of GRUCells.")
        input_size = check_bidirectional_params(cells, params)
        dtype = jnp.result_type(params["forward"]["kernel"])
        shell = eqx.filter_eval_shape(lambda: cls(input_size, key=jax.random.key(0), dtype=dtype, cell=cells[0],
                                                  backward_cell=cells[1], **options))
        layer_options = {name: getattr(shell.forward, name) for name in
                         ("return_sequences", "time_major", "unroll", "remat", "inference")}
        forward = GRU.from_params(cells[0], params["forward"], **layer_options)
        backward = GRU.from_params(cells[1], params["backward"], **layer_options)
        return eqx.tree_at(lambda m: (m.forward, m.backward), shell, (forward, backward))

    def weights(self) -> dict[str, Params]:
        """``{"forward": params, "backward": params}``, as `jaxgru.bidirectional` takes them."""
        return {"forward": self.forward.weights(), "backward": self.backward.weights()}

    @property
    def params(self) -> dict[str, Params]:
        """Same as `weights`."""
        return self.weights()

    def __call__(self, inputs: jax.Array, *, initial_state: Sequence[jax.Array] | None = None,
                 mask: jax.Array | None = None, seq_lengths: jax.Array | None = None,
                 resets: jax.Array | None = None, reset_state: Any = None, key: jax.Array | None = None,
                 inference: bool | None = None):
        cells = (self.forward.cell, self.backward.cell)
        key = _dropout_key(cells, self.inference, inference, key)
        return bidirectional(cells, self.weights(), inputs, merge_mode=self.merge_mode, mask=mask,
                             seq_lengths=seq_lengths, resets=resets, reset_state=reset_state,
                             initial_state=initial_state, rng=key,
                             training=key is not None, return_sequences=self.return_sequences,
                             time_major=self.time_major, unroll=self.unroll, remat=self.remat)


def _is_params(node: Any) -> bool:
    return isinstance(node, _Params)


def penalty(model: Any) -> jax.Array:
    """Sum of ``cell.penalty`` over every jaxgru module in the pytree ``model`` (Keras's ``model.losses``).

    A scalar to add to the loss (0 without regularizers or jaxgru modules); differentiable
    in the params, so compute it inside the function given to `eqx.filter_grad` /
    `eqx.filter_value_and_grad`.
    """
    modules = [leaf for leaf in jax.tree_util.tree_leaves(model, is_leaf=_is_params) if _is_params(leaf)]
    return sum((module.cell.penalty(module.weights()) for module in modules), jnp.zeros(()))


def constrain(model: Any) -> Any:
    """``model`` with every jaxgru module's constraints applied to its params (a new pytree).

    Keras applies constraints after each optimizer step: ``model = constrain(model)``
    right after ``eqx.apply_updates`` (inside the same `eqx.filter_jit` step is fine).
    """
    return jax.tree_util.tree_map(lambda node: node._constrained() if _is_params(node) else node, model,
                                  is_leaf=_is_params)
