"""The Flax linen modules behind `jaxgru.linen` (whose docstring states their params layout,
dropout streams and regularizers): `GRUCell`, `GRU`, `Bidirectional`, `StackedGRU`,
`find_cells`, `penalty`, `constrain`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxgru._core.cell import GRUCell as FunctionalGRUCell
from jaxgru._core.layer_options import MERGE_MODES, check_stack_options
from jaxgru._core.recurrent import bidirectional, rnn
from jaxgru._core.stacked import stacked_rnn
from jaxgru._core.validation import check_bool, check_positive_int, check_rate
from jaxgru._frameworks.wrappers import CELL_OPTIONS, LAYER_FLAGS, check_layer_options, check_sequence, promote_dtype
from jaxgru.types import Dtype, Params

__all__ = ["Bidirectional", "GRU", "GRUCell", "StackedGRU", "constrain", "find_cells", "penalty"]

Path = tuple[str, ...]
Cells = Mapping[Path, FunctionalGRUCell]


def _declare_params(module: nn.Module, cell: FunctionalGRUCell, input_dim: int, param_dtype: Dtype) -> Params:
    """Creates (or fetches) the functional params dict as ``module``'s params."""
    inits = cell.per_weight("initializer")

    def declare(name, shape):
        return module.param(name, lambda key: jnp.asarray(inits[name](key, shape, param_dtype), param_dtype))

    return {name: declare(name, shape) for name, shape in cell.param_shapes(input_dim).items()}


class _CellOptions(nn.Module):
    """``features`` (Keras's ``units``) and the `jaxgru.GRUCell` options, with its defaults.

    ``param_dtype`` is the dtype the params are created in; ``dtype`` the computation dtype
    (inputs and weights are cast to it; None: their common float dtype). See
    `jaxgru.GRUCell` for the options.
    """

    features: int
    activation: Any = "tanh"
    recurrent_activation: Any = "sigmoid"
    use_bias: bool = True
    kernel_initializer: Any = "glorot_uniform"
    recurrent_initializer: Any = "orthogonal"
    bias_initializer: Any = "zeros"
    kernel_regularizer: Any = None
    recurrent_regularizer: Any = None
    bias_regularizer: Any = None
    kernel_constraint: Any = None
    recurrent_constraint: Any = None
    bias_constraint: Any = None
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    implementation: int = 2
    reset_after: bool = True
    param_dtype: Dtype = jnp.float32
    dtype: Dtype | None = None

    def __post_init__(self):
        _ = self.cell  # validates the options at construction
        super().__post_init__()

    @property
    def cell(self) -> FunctionalGRUCell:
        """The `jaxgru.GRUCell` configuration this module runs."""
        return FunctionalGRUCell(self.features, **{name: getattr(self, name) for name in CELL_OPTIONS})


class GRUCell(_CellOptions, nn.RNNCellBase):
    """Keras's ``GRUCell`` as a `flax.linen.RNNCellBase` (one timestep).

    ``GRUCell(features, **cell_options)``; ``__call__(carry, inputs, *, deterministic=None,
    reset=None) -> (new_carry, output)`` with ``inputs`` ``(*batch, D)``, ``carry``
    ``(*batch, U)`` and ``output = new_carry``. ``reset`` ``(*batch,)`` booleans restart
    those rows from zeros before the step (`jaxgru.GRUCell.step`'s ``reset``: a new
    episode while acting).
    Params: ``{"kernel", "recurrent_kernel", "bias"}`` as in `jaxgru.GRUCell.init`.

    ``deterministic`` (attribute or call argument, as in `nn.Dropout`; exactly one of the
    two must be set when the cell has dropout) disables dropout. With dropout, each call
    draws Keras's masks from ``make_rng("dropout")`` (one batch axis needed); see the module
    docstring for the `nn.RNN` setup that makes them per-sequence.

    The carry is created in ``dtype`` (``param_dtype`` when None) and keeps its dtype.
    """

    deterministic: bool | None = None

    @nn.compact
    def __call__(self, carry: jax.Array, inputs: jax.Array, *, deterministic: bool | None = None,
                 reset: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        cell = self.cell
        inputs = jnp.asarray(inputs)
        if inputs.ndim < 1:
            raise ValueError(f"inputs: expected shape (*batch, D), got a scalar of shape {inputs.shape}.")
        params = _declare_params(self, cell, inputs.shape[-1], self.param_dtype)
        # `deterministic` is required (as by nn.Dropout) only when there is dropout to switch.
        training = cell.draws_dropout(True) and not check_bool(
            nn.merge_param("deterministic", self.deterministic, deterministic), "deterministic")
        rng = self.make_rng("dropout") if training else None
        inputs, params = promote_dtype(inputs, params, self.dtype)
        output, new_carry = cell.step(params, carry, inputs, rng, training=training, reset=reset)
        return new_carry, output

    @nn.nowrap
    def initialize_carry(self, rng: jax.Array, input_shape: tuple[int, ...]) -> jax.Array:
        """Zeros ``(*batch, U)`` for inputs of shape ``(*batch, D)`` (``rng`` is unused)."""
        del rng
        return jnp.zeros((*input_shape[:-1], self.features), self.dtype or self.param_dtype)

    @property
    def num_feature_axes(self) -> int:
        return 1


class GRU(_CellOptions):
    """Keras's ``GRU`` layer over `jaxgru.rnn`.

    ``GRU(features, return_sequences=False, return_state=False, go_backwards=False,
    zero_output_for_mask=False, time_major=False, unroll=1, **cell_options)``.

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=True)`` with ``inputs`` ``(B, T, D)`` (``(T, B, D)`` with ``time_major``;
    ``B`` any number of batch axes), ``mask`` and ``resets`` booleans in the same layout,
    ``seq_lengths`` ``(B,)`` (see `jaxgru.rnn`), ``reset_state`` what reset steps restart
    from (zeros when None; any shape that broadcasts to ``(B, U)``), ``initial_state``
    ``(B, U)``; returns the outputs (``(B, T, U)`` with
    ``return_sequences``, else the last output ``(B, U)``), or ``(outputs, final_state)``
    with ``return_state``. ``deterministic=False`` enables dropout, with masks drawn once
    per call from the ``"dropout"`` rng stream. Keras's ``stateful=True`` is functional
    here: pass the returned final state back as ``initial_state``.

    Params: the functional dict directly in this module's scope, so
    ``jaxgru.rnn(layer.cell, variables["params"], inputs)`` runs the same layer.
    """

    return_sequences: bool = False
    return_state: bool = False
    go_backwards: bool = False
    zero_output_for_mask: bool = False
    time_major: bool = False
    unroll: int = 1

    def __post_init__(self):
        check_layer_options({name: getattr(self, name) for name in (*LAYER_FLAGS, "unroll")})
        super().__post_init__()

    @nn.compact
    def weights(self, input_dim: int) -> Params:
        """The layer's params for inputs with ``input_dim`` features (created at init)."""
        return _declare_params(self, self.cell, input_dim, self.param_dtype)

    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
                 seq_lengths: jax.Array | None = None, resets: jax.Array | None = None,
                 reset_state: jax.Array | None = None, initial_state: jax.Array | None = None,
                 deterministic: bool = True):
        inputs = check_sequence(inputs, self.time_major)
        cell = self.cell
        training = not check_bool(deterministic, "deterministic")
        rng = self.make_rng("dropout") if cell.draws_dropout(training) else None
        inputs, params = promote_dtype(inputs, self.weights(inputs.shape[-1]), self.dtype)
        outputs, final_state = rnn(
            cell, params, inputs, initial_state=initial_state, mask=mask, seq_lengths=seq_lengths, resets=resets,
            reset_state=reset_state, rng=rng, training=training, go_backwards=self.go_backwards,
            return_sequences=self.return_sequences, time_major=self.time_major,
            zero_output_for_mask=self.zero_output_for_mask, unroll=self.unroll)
        return (outputs, final_state) if self.return_state else outputs


class Bidirectional(nn.Module):
    """Keras's ``Bidirectional(GRU(...), merge_mode, backward_layer)`` over `jaxgru.bidirectional`.

    ``layer`` is a `GRU` used as a configuration: the wrapper runs a copy of it named
    ``"forward"`` and a copy of ``backward_layer`` (default: of ``layer`` again) named
    ``"backward"``, each with its own params; ``layer`` itself is never called and holds
    none. The wrapper takes ``return_sequences``, ``return_state``, ``time_major``,
    ``unroll`` and ``dtype`` from ``layer``; ``backward_layer`` must agree with them. Both
    need ``go_backwards=False``: the wrapper sets the directions. As in Keras, masked steps
    output zeros when returning sequences (the layers' ``zero_output_for_mask`` is not used)
    and the backward outputs are flipped back into input order before merging.

    ``merge_mode``: "concat" (``2U`` features), "sum", "ave", "mul", or None (the pair
    ``(forward_outputs, backward_outputs)``).

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=True)`` returns the
    merged outputs, or ``(outputs, (final_forward, final_backward))`` with ``return_state``;
    ``initial_state`` is a ``(forward, backward)`` pair, ``reset_state`` one value for both
    directions or such a pair (`jaxgru.bidirectional`; zeros when None). Dropout draws one key from the
    ``"dropout"`` stream per call, split between the directions.

    Params: ``{"forward": params, "backward": params}``, as `jaxgru.bidirectional` takes them.
    """

    layer: GRU
    merge_mode: str | None = "concat"
    backward_layer: GRU | None = None

    def __post_init__(self):
        for name in ("layer", "backward_layer"):
            value = getattr(self, name)
            if not isinstance(value, GRU) and not (name == "backward_layer" and value is None):
                raise TypeError(f"{name}: expected a jaxgru.linen.GRU, got {type(value).__name__}.")
            if value is not None and value.go_backwards:
                raise ValueError(f"{name}: expected go_backwards=False; Bidirectional sets the directions.")
        if self.backward_layer is not None:
            for name in ("return_sequences", "return_state", "time_major", "unroll", "dtype"):
                if getattr(self.layer, name) != getattr(self.backward_layer, name):
                    raise ValueError(f"backward_layer: {name}={getattr(self.backward_layer, name)!r} differs from "
                                     f"layer's {getattr(self.layer, name)!r}.")
        if self.merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {self.merge_mode!r}.")
        super().__post_init__()

    @nn.compact
    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
                 seq_lengths: jax.Array | None = None, resets: jax.Array | None = None, reset_state: Any = None,
                 initial_state: tuple[jax.Array, jax.Array] | None = None, deterministic: bool = True):
        config = self.layer
        forward = config.clone(parent=self, name="forward")
        backward = (config if self.backward_layer is None else self.backward_layer).clone(parent=self, name="backward")
        inputs = check_sequence(inputs, config.time_major)
        cells = (forward.cell, backward.cell)
        training = not check_bool(deterministic, "deterministic")
        rng = self.make_rng("dropout") if any(c.draws_dropout(training) for c in cells) else None
        d = inputs.shape[-1]
        params = {"forward": forward.weights(d), "backward": backward.weights(d)}
        inputs, params = promote_dtype(inputs, params, config.dtype)
        outputs, final_states = bidirectional(
            cells, params, inputs, merge_mode=self.merge_mode, mask=mask, seq_lengths=seq_lengths, resets=resets,
            reset_state=reset_state, initial_state=initial_state, rng=rng,
            training=training, return_sequences=config.return_sequences, time_major=config.time_major,
            unroll=config.unroll)
        return (outputs, final_states) if config.return_state else outputs


class _LayerPair(nn.Module):
    """The ``{"forward": params, "backward": params}`` of one bidirectional `StackedGRU` layer:
    two copies of the `GRU` configuration ``layer``, named ``"forward"`` and ``"backward"``."""

    layer: GRU

    @nn.compact
    def weights(self, input_dim: int) -> dict[str, Params]:
        return {name: self.layer.clone(parent=self, name=name).weights(input_dim) for name in ("forward", "backward")}


class StackedGRU(_CellOptions):
    """PyTorch's ``nn.GRU(D, features, num_layers, dropout=..., bidirectional=...)`` over
    `jaxgru.stacked_rnn`.

    ``StackedGRU(features, num_layers=1, bidirectional=False, dropout=0.0,
    merge_mode="concat", cell_dropout=0.0, return_sequences=True, return_state=False,
    time_major=False, unroll=1, **cell_options)``:

    * ``dropout`` is PyTorch's between-layer dropout (`jaxgru.stacked_rnn`'s ``dropout``:
      each element of every layer's output but the last is zeroed with this probability
      when training); ``cell_dropout`` and ``recurrent_dropout`` are the cells' own Keras
      dropout (`jaxgru.GRUCell`'s ``dropout`` and ``recurrent_dropout``), inside each layer.
    * The other cell options are `jaxgru.GRUCell`'s, the same for every layer (`cell`).
    * ``merge_mode`` joins the directions of a bidirectional layer ("concat", PyTorch's,
      gives ``2 * features``; or "sum", "ave", "mul").

    ``__call__(inputs, *, mask=None, seq_lengths=None, resets=None, reset_state=None,
    initial_state=None, deterministic=True)`` with ``inputs`` ``(B, T, D)`` (``(T, B, D)`` with
    ``time_major``; ``B`` any number of batch axes), ``mask``, ``seq_lengths`` and
    ``resets`` as `jaxgru.rnn` takes them (passed to every layer), ``reset_state`` per
    layer or one for all as `jaxgru.stacked_rnn` takes it (zeros when None), ``initial_state``
    PyTorch's ``h0`` ``(num_layers * dirs, B, features)``; returns the last layer's
    outputs (``(B, T, F)``, or its last output ``(B, F)`` without ``return_sequences``), or
    ``(outputs, h_n)`` with ``return_state``. ``deterministic=False`` enables both kinds of
    dropout, with one key per call from the ``"dropout"`` rng stream (split as
    `jaxgru.stacked_rnn` says).

    Params: ``{"layers_0": ..., "layers_1": ...}``, one entry per layer, each the
    functional dict (or ``{"forward": params, "backward": params}`` when bidirectional)
    of a `GRU` named ``layers_k``, so `find_cells`, `penalty` and `constrain` reach every
    layer. ``layer_params(variables["params"])`` is the list
    ``[variables["params"][f"layers_{k}"] for k in range(num_layers)]``, and:

        jaxgru.stacked_rnn(module.cell, module.layer_params(variables["params"]), x,
                           bidirectional=module.bidirectional, merge_mode=module.merge_mode)

    equals ``module.apply(variables, x)``; ``jaxgru.from_torch_stack(torch_gru.state_dict())``
    gives that list for a PyTorch ``nn.GRU`` of the same shape.
    """

    num_layers: int = 1
    bidirectional: bool = False
    merge_mode: str | None = "concat"
    cell_dropout: float = 0.0
    return_sequences: bool = True
    return_state: bool = False
    time_major: bool = False
    unroll: int = 1

    def __post_init__(self):
        check_positive_int(self.num_layers, "num_layers")
        check_stack_options(bidirectional=self.bidirectional, dropout=self.dropout, merge_mode=self.merge_mode)
        check_rate(self.cell_dropout, "cell_dropout")
        check_layer_options({"return_sequences": self.return_sequences, "return_state": self.return_state,
                              "go_backwards": False, "zero_output_for_mask": False, "time_major": self.time_major,
                              "unroll": self.unroll})
        super().__post_init__()

    @property
    def cell(self) -> FunctionalGRUCell:
        """The `jaxgru.GRUCell` every layer runs (its ``dropout`` is ``cell_dropout``)."""
        options = {name: getattr(self, name) for name in CELL_OPTIONS if name != "dropout"}
        return FunctionalGRUCell(self.features, dropout=self.cell_dropout, **options)

    @nn.nowrap
    def layer_params(self, params: Mapping) -> list:
        """The ``layers`` list of `jaxgru.stacked_rnn` from this module's ``variables["params"]``."""
        return [params[f"layers_{k}"] for k in range(self.num_layers)]

    def _uses_dropout_key(self, training: bool) -> bool:
        """Whether a call with this ``training`` flag draws dropout masks (between layers or in the cells)."""
        between = training and self.dropout > 0 and self.num_layers > 1
        return between or self.cell.draws_dropout(training)

    def _layer_weights(self, input_dim: int) -> list:
        """Declares (at init) and returns every layer's params, layer k a child ``layers_k``."""
        cell = self.cell
        config = GRU(self.features, **{name: getattr(cell, name) for name in CELL_OPTIONS},
                     param_dtype=self.param_dtype, dtype=self.dtype, parent=None)
        output_dim = self.features * (2 if self.bidirectional and self.merge_mode == "concat" else 1)
        weights = []
        for k in range(self.num_layers):
            holder = (_LayerPair(config, parent=self, name=f"layers_{k}") if self.bidirectional
                      else config.clone(parent=self, name=f"layers_{k}"))
            weights.append(holder.weights(input_dim if k == 0 else output_dim))
        return weights

    @nn.compact
    def __call__(self, inputs: jax.Array, *, mask: jax.Array | None = None,
                 seq_lengths: jax.Array | None = None, resets: jax.Array | None = None, reset_state: Any = None,
                 initial_state: Any = None, deterministic: bool = True):
        inputs = check_sequence(inputs, self.time_major)
        training = not check_bool(deterministic, "deterministic")
        rng = self.make_rng("dropout") if self._uses_dropout_key(training) else None
        inputs, layers = promote_dtype(inputs, self._layer_weights(inputs.shape[-1]), self.dtype)
        outputs, final_states = stacked_rnn(
            self.cell, layers, inputs, bidirectional=self.bidirectional, dropout=self.dropout,
            merge_mode=self.merge_mode, initial_state=initial_state, mask=mask, seq_lengths=seq_lengths,
            resets=resets, reset_state=reset_state, rng=rng, training=training, time_major=self.time_major,
            return_sequences=self.return_sequences, unroll=self.unroll)
        return (outputs, final_states) if self.return_state else outputs


# ---------------------------------------------------------------------- regularization


def find_cells(module: nn.Module, *args, rngs: Mapping[str, jax.Array] | None = None,
               **kwargs) -> dict[Path, FunctionalGRUCell]:
    """Where ``module``'s jaxgru modules keep their params, and their cell configurations.

    Traces ``module.init(rngs, *args, **kwargs)`` abstractly (`jax.eval_shape`: nothing is
    computed) and records every `GRUCell` / `GRU` that creates params, however deeply nested
    (inside `nn.RNN`, `nn.scan`, `Bidirectional`, ...). Call it once, outside `jax.jit`.

    Args:
      module: the model. args, kwargs: example arguments of ``module.init``.
      rngs: the rngs ``init`` needs; default ``{"params": key(0), "dropout": key(0)}``.

    Returns:
      ``{path: jaxgru.GRUCell}``, ``path`` the tuple of keys leading from
      ``variables["params"]`` to that module's ``{"kernel", "recurrent_kernel", "bias"}``
      (``()`` when ``module`` itself is a `GRU` or `GRUCell`).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"module: expected a flax.linen.Module, got {type(module).__name__}.")
    if rngs is None:
        rngs = {"params": jax.random.key(0), "dropout": jax.random.key(0)}
    cells: dict[Path, FunctionalGRUCell] = {}

    def record(next_fn, fn_args, fn_kwargs, context):
        owner = context.module
        if (isinstance(owner, GRUCell) and context.method_name == "__call__") or (
                isinstance(owner, GRU) and context.method_name == "weights"):
            cells[tuple(owner.path)] = owner.cell
        return next_fn(*fn_args, **fn_kwargs)

    with nn.intercept_methods(record):
        # Flax annotates rngs as a dict; it takes a FrozenDict too
        jax.eval_shape(lambda: module.init(rngs, *args, **kwargs))  # type: ignore[arg-type]
    return cells


def _subtree(params: Mapping, path: Path) -> Any:
    node = params
    for depth, key in enumerate(path):
        if not isinstance(node, Mapping) or key not in node:
            raise ValueError(f"params: no entry {path[:depth + 1]} for the jaxgru module at {path}; "
                             "expected variables['params'] of the model that find_cells traced.")
        node = node[key]
    return node


def penalty(cells: Cells, params: Mapping) -> jax.Array:
    """Sum of ``cell.penalty`` over every jaxgru module (Keras's ``model.losses``).

    Args:
      cells: `find_cells` of the model. params: its ``variables["params"]``.

    Returns:
      A scalar to add to the loss; 0 when no module has a regularizer.
    """
    return sum((cell.penalty(_subtree(params, path)) for path, cell in cells.items()), jnp.zeros(()))


def _replace(tree: Mapping, path: Path, fn: Callable[[Any], Any]) -> Mapping:
    rebuild: Any = type(tree)  # the concrete mapping class (dict, FrozenDict), built from a mapping
    if not path:
        return rebuild(fn(tree))
    return rebuild({**tree, path[0]: _replace(tree[path[0]], path[1:], fn)})


def constrain(cells: Cells, params: Mapping) -> Mapping:
    """``params`` with every jaxgru module's constraints applied (``cell.constrain``).

    Keras applies constraints to the weights after each optimizer step; do the same:

        params = optax.apply_updates(params, updates)
        params = jaxgru.linen.constrain(cells, params)

    This is a projection of the params, so it is not an `optax.GradientTransformation`
    (which can only return updates: ``p + (c(p + u) - p)`` equals ``c(p + u)`` only up to
    rounding). Other entries of ``params`` are returned unchanged.
    """
    for path, cell in cells.items():
        _subtree(params, path)  # clear error for a path that is not in params
        params = _replace(params, path, cell.constrain)
    return params
