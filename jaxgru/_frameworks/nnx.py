"""The Flax NNX modules behind `jaxgru.nnx` (whose docstring states their params layout and
dropout streams): `GRUCell`, `GRU`, `Bidirectional`, `StackedGRU`, `penalty`, `constrain`."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxgru._core.cell import GRUCell as FunctionalGRUCell
from jaxgru._core.layer_options import MERGE_MODES, check_stack_options
from jaxgru._core.recurrent import bidirectional, rnn
from jaxgru._core.stacked import stacked_rnn
from jaxgru._core.validation import check_bool, check_positive_int, check_rate
from jaxgru._frameworks.wrappers import CELL_OPTIONS, check_layer_options, check_sequence, promote_dtype
from jaxgru.types import Dtype, Params

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "penalty"]

RngsLike = nnx.Rngs | nnx.RngStream | jax.Array


def _first_given(call_value: Any, attribute: Any, *, error: str) -> Any:
    """The call's value, else the module's attribute (`nnx.Dropout`'s rule); ValueError when both are None."""
    for value in (call_value, attribute):
        if value is not None:
            return value
    raise ValueError(error)


class _DropoutSwitch(nnx.Module):
    """The ``deterministic`` switch and the dropout stream of a module that runs jaxgru cells.

    As `nnx.Dropout`: the call's ``deterministic`` overrides the attribute, the call's
    ``rngs`` override the module's ``dropout`` stream (kept only when a cell has dropout).
    Subclasses list their cells in `_cells`.
    """

    def _init_dropout(self, deterministic: bool, rngs: nnx.Rngs) -> None:
        self.deterministic = check_bool(deterministic, "deterministic")
        # Tagged "dropout" even when ``rngs`` has no dropout stream (its key then comes from
        # the default stream), so that ``nnx.RNN(..., broadcast_rngs="dropout")`` finds it.
        self.rngs = (nnx.RngStream(rngs.dropout(), tag="dropout") if self._draws_dropout(True)
                     else nnx.data(None))

    def _cells(self) -> tuple[FunctionalGRUCell, ...]:
        raise NotImplementedError

    def _draws_dropout(self, training: bool) -> bool:
        return any(cell.draws_dropout(training) for cell in self._cells())

    def set_view(self, deterministic: bool | None = None):
        """For `nnx.view`.

        Args:
          deterministic: if True, disables dropout.
        """
        if deterministic is not None:
            self.deterministic = check_bool(deterministic, "deterministic")

    def _dropout_key(self, deterministic: bool | None, rngs: RngsLike | None) -> jax.Array | None:
        """The dropout key of this call, or None when it draws no masks."""
        deterministic = _first_given(deterministic, self.deterministic,
                                     error="deterministic: pass True/False to the constructor or the call.")
        training = not check_bool(deterministic, "deterministic")
        if not self._draws_dropout(training):
            return None
        rngs = _first_given(rngs, self.rngs, error="rngs: dropout is on, but no rngs were given.")
        if isinstance(rngs, nnx.Rngs):
            return rngs.dropout()
        if isinstance(rngs, nnx.RngStream):
            return rngs()
        if isinstance(rngs, jax.Array):
            return rngs
        raise TypeError(f"rngs: expected nnx.Rngs, nnx.RngStream or a PRNG key, got {type(rngs).__name__}.")


def _check_rngs(rngs: Any) -> None:
    if not isinstance(rngs, nnx.Rngs):
        raise TypeError(f"rngs: expected flax.nnx.Rngs, got {type(rngs).__name__}.")


class _JaxgruModule(_DropoutSwitch):
    """The params, the dropout stream and the ``deterministic`` switch of a jaxgru module.

    Attributes:
      cell: the `jaxgru.GRUCell` configuration (static).
      in_features, features: D and U.
      kernel, recurrent_kernel, bias: `nnx.Param`.
      deterministic: disables dropout (as `nnx.Dropout`).
      dtype: the computation dtype (inputs and weights are cast to it; None: their common
        float dtype). param_dtype: the dtype of the params.
    """

    def __init__(self, in_features: int, features: int, *, deterministic: bool, dtype: Dtype | None,
                 param_dtype: Dtype, rngs: nnx.Rngs, **cell_options):
        _check_rngs(rngs)
        self.cell = FunctionalGRUCell(features, **cell_options)
        self.in_features = check_positive_int(in_features, "in_features")
        self.features = self.cell.units
        self.dtype = dtype
        self.param_dtype = param_dtype
        for name, value in self.cell.init(rngs.params(), self.in_features, param_dtype).items():
            setattr(self, name, nnx.Param(value))
        self._init_dropout(deterministic, rngs)

    def _cells(self) -> tuple[FunctionalGRUCell, ...]:
        return (self.cell,)

    def weights(self) -> Params:
        """The functional params dict ``{"kernel", "recurrent_kernel", "bias"}`` of arrays."""
        return {name: getattr(self, name)[...] for name in self.cell.param_shapes(self.in_features)}


class GRUCell(_JaxgruModule, nnx.RNNCellBase):
    """Keras's ``GRUCell`` as an `nnx.RNNCellBase` (one timestep).

    ``GRUCell(in_features, features, *, deterministic=False, dtype=None,
    param_dtype=float32, rngs, **cell_options)``, the options those of `jaxgru.GRUCell`.

    ``__call__(carry, inputs, *, deterministic=None, rngs=None, reset=None) -> (new_carry,
    output)`` with ``inputs`` ``(*batch, D)``, ``carry`` ``(*batch, U)``, ``output =
    new_carry``; ``reset`` ``(*batch,)`` booleans restart those rows from zeros before the
    step (`jaxgru.GRUCell.step`'s ``reset``).
    Drawing dropout masks needs one batch axis. The carry keeps its dtype;
    `initialize_carry` makes zeros in ``dtype`` (``param_dtype`` when None).
    """

    def __init__(self, in_features: int, features: int, *, deterministic: bool = False,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32, rngs: nnx.Rngs, **cell_options):
        super().__init__(in_features, features, deterministic=deterministic, dtype=dtype, param_dtype=param_dtype,
                         rngs=rngs, **cell_options)

    def __call__(self, carry: jax.Array, inputs: jax.Array, *, deterministic: bool | None = None,
                 rngs: RngsLike | None = None, reset: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        key = self._dropout_key(deterministic, rngs)
        inputs, params = promote_dtype(jnp.asarray(inputs), self.weights(), self.dtype)
        output, new_carry = self.cell.step(params, carry, inputs, key, training=key is not None, reset=reset)
        return new_carry, output

    # takes no carry_init, unlike RNNCellBase's: the carry is always zeros
    def initialize_carry(self, input_shape: tuple[int, ...],  # type: ignore[override]
                         rngs: RngsLike | None = None) -> jax.Array:
        """Zeros ``(*batch, U)`` for inputs of shape ``(*batch, D)`` (``rngs`` is unused)."""
        del rngs
        return jnp.zeros((*input_shape[:-1], self.features), self.dtype or self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class GRU(_JaxgruModule):
    """Keras's ``GRU`` layer over `jaxgru.rnn`.

    ``GRU(in_features, features, *, return_sequences=False, return_state=False,
    go_backwards=False, zero_output_for_mask=False, time_major=False, unroll=1,
    deterministic=False, dtype=None, param_dtype=float32, rngs, **cell_options)``.

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=None, rngs=None)``
    with ``inputs`` ``(B, T, D)`` (``(T, B, D)`` with ``time_major``), ``mask`` and
    ``resets`` booleans in the same layout, ``reset_state`` what reset steps restart from
    (zeros when None; any shape that broadcasts to ``(B, U)``), ``initial_state`` ``(B, U)``;
    returns the outputs (``(B, T, U)`` with ``return_sequences``, else the last output
    ``(B, U)``), or ``(outputs, final_state)`` with ``return_state``. With dropout on, one
    key per call gives the per-sequence masks.
    """

    def __init__(self, in_features: int, features: int, *, return_sequences: bool = False,
                 return_state: bool = False, go_backwards: bool = False, zero_output_for_mask: bool = False,
                 time_major: bool = False, unroll: int = 1, deterministic: bool = False,
                 dtype: Dtype | None = None, param_dtype: Dtype = jnp.float32, rngs: nnx.Rngs, **cell_options):
        check_layer_options(dict(return_sequences=return_sequences, return_state=return_state,
                                  go_backwards=go_backwards, zero_output_for_mask=zero_output_for_mask,
                                  time_major=time_major, unroll=unroll))
        super().__init__(in_features, features, deterministic=deterministic, dtype=dtype, param_dtype=param_dtype,
                         rngs=rngs, **cell_options)
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.time_major = time_major
        self.unroll = unroll

    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
                 seq_lengths: jax.Array | None = None, resets: jax.Array | None = None,
                 reset_state: jax.Array | None = None, initial_state: jax.Array | None = None,
                 deterministic: bool | None = None, rngs: RngsLike | None = None):
        inputs = check_sequence(inputs, self.time_major)
        key = self._dropout_key(deterministic, rngs)
        inputs, params = promote_dtype(inputs, self.weights(), self.dtype)
        outputs, final_state = rnn(
            self.cell, params, inputs, initial_state=initial_state, mask=mask, seq_lengths=seq_lengths,
            resets=resets, reset_state=reset_state, rng=key, training=key is not None,
            go_backwards=self.go_backwards, return_sequences=self.return_sequences, time_major=self.time_major,
            zero_output_for_mask=self.zero_output_for_mask, unroll=self.unroll)
        return (outputs, final_state) if self.return_state else outputs


# The `GRU` constructor arguments beyond (in_features, features, rngs, cell options).
_GRU_OPTIONS = ("return_sequences", "return_state", "go_backwards", "zero_output_for_mask", "time_major", "unroll",
                "deterministic", "dtype", "param_dtype")
# What `Bidirectional` takes from ``layer`` and ``backward_layer`` must share.
_SHARED_OPTIONS = ("in_features", "return_sequences", "return_state", "time_major", "unroll", "dtype")


def _fresh_copy(layer: GRU, rngs: nnx.Rngs) -> GRU:
    """A `GRU` of ``layer``'s configuration with new params from ``rngs``."""
    options = {name: getattr(layer.cell, name) for name in CELL_OPTIONS}
    options.update({name: getattr(layer, name) for name in _GRU_OPTIONS})
    return GRU(layer.in_features, layer.features, rngs=rngs, **options)


class Bidirectional(_DropoutSwitch):
    """Keras's ``Bidirectional(GRU(...), merge_mode, backward_layer)`` over `jaxgru.bidirectional`.

    ``Bidirectional(layer, merge_mode="concat", backward_layer=None, *, rngs)``.

    ``layer`` becomes the ``forward`` attribute, used as is (its params, not a copy);
    ``backward_layer`` becomes ``backward``, or, when None, a new `GRU` of ``layer``'s
    configuration with its own params drawn from ``rngs`` (Keras's default backward layer).
    The wrapper takes ``return_sequences``, ``return_state``, ``time_major``, ``unroll`` and
    ``dtype`` from ``layer``; ``backward_layer`` must agree with them and ``in_features``.
    Both need ``go_backwards=False``: the wrapper sets the directions. As in Keras, masked
    steps output zeros when returning sequences (the layers' ``zero_output_for_mask`` is not
    used) and the backward outputs are flipped back into input order before merging.

    ``merge_mode``: "concat" (``2U`` features), "sum", "ave", "mul", or None (the pair
    ``(forward_outputs, backward_outputs)``).

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=None, rngs=None)``
    with ``inputs`` ``(B, T, D)`` (``(T, B, D)`` with ``time_major``) and ``mask`` in the
    same layout returns the merged outputs, or ``(outputs, (final_forward,
    final_backward))`` with ``return_state``; ``initial_state`` is a ``(forward, backward)``
    pair of ``(B, U)`` states, ``reset_state`` one value for both directions or such a
    pair (`jaxgru.bidirectional`; zeros when None).

    Dropout: the wrapper has its own ``deterministic`` attribute (``layer.deterministic``
    at construction; ``model.eval()`` / ``model.train()`` / `nnx.view` switch it with the
    layers') and its own ``dropout`` stream from ``rngs``. Each call draws one key (the
    call's ``rngs`` if given, else from that stream), split between the directions as in
    `jaxgru.bidirectional`. The layers' own flags and streams only serve calls of the
    layers themselves.

    Params: ``nnx.state(layer, nnx.Param)`` is ``{"forward": params, "backward": params}``;
    `weights` gives them as `jaxgru.bidirectional` takes them. `penalty` and `constrain`
    reach both directions.
    """

    def __init__(self, layer: GRU, merge_mode: str | None = "concat", backward_layer: GRU | None = None, *,
                 rngs: nnx.Rngs):
        _check_rngs(rngs)
        for name, value in (("layer", layer), ("backward_layer", backward_layer)):
            if not isinstance(value, GRU) and not (name == "backward_layer" and value is None):
                raise TypeError(f"{name}: expected a jaxgru.nnx.GRU, got {type(value).__name__}.")
            if value is not None and value.go_backwards:
                raise ValueError(f"{name}: expected go_backwards=False; Bidirectional sets the directions.")
        if backward_layer is not None:
            for name in _SHARED_OPTIONS:
                if getattr(layer, name) != getattr(backward_layer, name):
                    raise ValueError(f"backward_layer: {name}={getattr(backward_layer, name)!r} differs from "
                                     f"layer's {getattr(layer, name)!r}.")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}.")
        self.merge_mode = merge_mode
        self.forward = layer
        self.backward = _fresh_copy(layer, rngs) if backward_layer is None else backward_layer
        self._init_dropout(layer.deterministic, rngs)

    def _cells(self) -> tuple[FunctionalGRUCell, ...]:
        return (self.forward.cell, self.backward.cell)

    def weights(self) -> dict[str, Params]:
        """``{"forward": params, "backward": params}``, as `jaxgru.bidirectional` takes them."""
        return {"forward": self.forward.weights(), "backward": self.backward.weights()}

    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
                 seq_lengths: jax.Array | None = None, resets: jax.Array | None = None, reset_state: Any = None,
                 initial_state: tuple[jax.Array, jax.Array] | None = None, deterministic: bool | None = None,
                 rngs: RngsLike | None = None):
        config = self.forward
        inputs = check_sequence(inputs, config.time_major)
        key = self._dropout_key(deterministic, rngs)
        inputs, params = promote_dtype(inputs, self.weights(), config.dtype)
        outputs, final_states = bidirectional(
            self._cells(), params, inputs, merge_mode=self.merge_mode, mask=mask, seq_lengths=seq_lengths,
            resets=resets, reset_state=reset_state, initial_state=initial_state,
            rng=key, training=key is not None, return_sequences=config.return_sequences,
            time_major=config.time_major, unroll=config.unroll)
        return (outputs, final_states) if config.return_state else outputs


class StackedGRU(_DropoutSwitch):
    """PyTorch's ``nn.GRU(in_features, features, num_layers, dropout=..., bidirectional=...)``
    over `jaxgru.stacked_rnn`.

    ``StackedGRU(in_features, features, *, num_layers=1, bidirectional=False, dropout=0.0,
    merge_mode="concat", cell_dropout=0.0, return_sequences=True, return_state=False,
    time_major=False, unroll=1, deterministic=False, dtype=None, param_dtype=float32, rngs,
    **cell_options)``:

    * ``dropout`` is PyTorch's between-layer dropout (`jaxgru.stacked_rnn`'s ``dropout``:
      each element of every layer's output but the last is zeroed with this probability
      when training); ``cell_dropout`` and ``recurrent_dropout`` are the cells' own Keras
      dropout (`jaxgru.GRUCell`'s ``dropout`` and ``recurrent_dropout``), inside each layer.
    * The other cell options are `jaxgru.GRUCell`'s, the same for every layer (``cell``).
    * ``merge_mode`` joins the directions of a bidirectional layer ("concat", PyTorch's,
      gives ``2 * features``; or "sum", "ave", "mul").

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=None, rngs=None)`` with ``inputs`` ``(B, T, D)``
    (``(T, B, D)`` with ``time_major``; ``B`` any number of batch axes), ``mask``,
    ``seq_lengths`` and ``resets`` as `jaxgru.rnn` takes them (passed to every layer),
    ``reset_state`` per layer or one for all as `jaxgru.stacked_rnn` takes it (zeros when
    None), ``initial_state``
    PyTorch's ``h0`` ``(num_layers * dirs, B, features)``; returns the last layer's
    outputs (``(B, T, F)``, or its last output ``(B, F)`` without ``return_sequences``), or
    ``(outputs, h_n)`` with ``return_state``.

    Dropout, as `GRU`: the ``deterministic`` attribute (switched by ``model.eval()`` /
    ``model.train()`` / `nnx.view`) or the call argument; each call draws one key (the
    call's ``rngs`` if given, else from the ``dropout`` stream of the ``rngs`` it was
    built with), split between the layers and the between-layer masks as
    `jaxgru.stacked_rnn` says.

    Params: ``layers``, an ``nnx.List`` of one `GRU` per layer (a `Bidirectional` of two
    when bidirectional), so ``nnx.state(module, nnx.Param)`` is ``{"layers": {k: params}}``
    and `penalty` / `constrain` reach every layer; `weights` gives the ``layers`` list of
    `jaxgru.stacked_rnn`:

        jaxgru.stacked_rnn(module.cell, module.weights(), x, bidirectional=module.bidirectional,
                           merge_mode=module.merge_mode)

    equals ``module(x, deterministic=True)``.
    """

    def __init__(self, in_features: int, features: int, *, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, merge_mode: str | None = "concat", cell_dropout: float = 0.0,
                 return_sequences: bool = True, return_state: bool = False, time_major: bool = False,
                 unroll: int = 1, deterministic: bool = False, dtype: Dtype | None = None,
                 param_dtype: Dtype = jnp.float32, rngs: nnx.Rngs, **cell_options):
        _check_rngs(rngs)
        self.num_layers = check_positive_int(num_layers, "num_layers")
        self.dropout = check_stack_options(bidirectional=bidirectional, dropout=dropout, merge_mode=merge_mode)
        check_layer_options({"return_sequences": return_sequences, "return_state": return_state,
                              "go_backwards": False, "zero_output_for_mask": False, "time_major": time_major,
                              "unroll": unroll})
        self.bidirectional = bidirectional
        self.merge_mode = merge_mode
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.time_major = time_major
        self.unroll = unroll
        self.dtype = dtype
        self.cell = FunctionalGRUCell(features, dropout=check_rate(cell_dropout, "cell_dropout"), **cell_options)
        output_features = self.cell.units * (2 if bidirectional and merge_mode == "concat" else 1)
        self.layers = nnx.List([
            self._layer(in_features if k == 0 else output_features, deterministic, dtype, param_dtype, rngs)
            for k in range(self.num_layers)])
        self._init_dropout(deterministic, rngs)

    def _layer(self, in_features: int, deterministic: bool, dtype: Dtype | None, param_dtype: Dtype,
               rngs: nnx.Rngs) -> GRU | Bidirectional:
        """One layer's params holder: a `GRU` of `cell`, or a `Bidirectional` of two."""
        options = {name: getattr(self.cell, name) for name in CELL_OPTIONS}
        layer = GRU(in_features, self.cell.units, deterministic=deterministic, dtype=dtype, param_dtype=param_dtype,
                    rngs=rngs, **options)
        return Bidirectional(layer, self.merge_mode, rngs=rngs) if self.bidirectional else layer

    def _cells(self) -> tuple[FunctionalGRUCell, ...]:
        return (self.cell,)

    def _draws_dropout(self, training: bool) -> bool:
        between = training and self.dropout > 0 and self.num_layers > 1
        return between or super()._draws_dropout(training)

    def weights(self) -> list:
        """The ``layers`` list of `jaxgru.stacked_rnn`: per layer the functional params dict,
        or ``{"forward": params, "backward": params}`` when bidirectional."""
        return [layer.weights() for layer in self.layers]

    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None, seq_lengths: jax.Array | None = None,
                 resets: jax.Array | None = None, reset_state: Any = None, initial_state: Any = None,
                 deterministic: bool | None = None, rngs: RngsLike | None = None):
        inputs = check_sequence(inputs, self.time_major)
        key = self._dropout_key(deterministic, rngs)
        inputs, layers = promote_dtype(inputs, self.weights(), self.dtype)
        outputs, final_states = stacked_rnn(
            self.cell, layers, inputs, bidirectional=self.bidirectional, dropout=self.dropout,
            merge_mode=self.merge_mode, initial_state=initial_state, mask=mask, seq_lengths=seq_lengths,
            resets=resets, reset_state=reset_state, rng=key, training=key is not None, time_major=self.time_major,
            return_sequences=self.return_sequences, unroll=self.unroll)
        return (outputs, final_states) if self.return_state else outputs


def _jaxgru_modules(model: nnx.Module):
    if not isinstance(model, nnx.Module):
        raise TypeError(f"model: expected a flax.nnx.Module, got {type(model).__name__}.")
    return [module for _, module in nnx.iter_modules(model) if isinstance(module, _JaxgruModule)]


def penalty(model: nnx.Module) -> jax.Array:
    """Sum of ``cell.penalty`` over every jaxgru module in ``model`` (Keras's ``model.losses``).

    A scalar to add to the loss (0 without regularizers); differentiable in the params, so
    call it inside the loss function given to `nnx.grad` / `nnx.value_and_grad`.
    """
    return sum((module.cell.penalty(module.weights()) for module in _jaxgru_modules(model)), jnp.zeros(()))


def constrain(model: nnx.Module) -> None:
    """Applies every jaxgru module's constraints to its params, in place.

    Keras applies constraints after each optimizer step: call it right after
    ``optimizer.update(model, grads)`` (inside the same `nnx.jit` step is fine).
    """
    for module in _jaxgru_modules(model):
        for name, value in module.cell.constrain(module.weights()).items():
            getattr(module, name)[...] = value
