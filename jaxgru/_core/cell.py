"""`GRUCell`: Keras's GRUCell as an immutable configuration with pure methods."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import Any, overload

import jax
import jax.numpy as jnp
import numpy as np

from jaxgru._core import gates
from jaxgru._core.dropout import DropoutMasks, inverted_dropout_masks
from jaxgru._core.validation import (
    as_floating_array,
    as_integer_array,
    as_state,
    broadcast_state,
    check_bool,
    check_floating,
    check_int,
    check_key,
    check_positive_int,
    check_rate,
    dropout_active,
    reject_float_flags,
    shown_keys,
)
from jaxgru._deprecations import renamed_keywords
from jaxgru._keras_objects import activations, constraints, initializers, regularizers
from jaxgru._keras_objects.base import KerasObject
from jaxgru.types import Params, State

__all__ = ["GRUCell"]

# Each weight and the prefix of its constructor arguments (``recurrent_initializer``, ...).
_WEIGHT_PREFIXES = {"kernel": "kernel", "recurrent_kernel": "recurrent", "bias": "bias"}
_IGNORED_KERAS_KEYS = ("name", "trainable", "dtype", "seed")


def _serialize(obj: Any) -> Any:
    return obj.get_config() if isinstance(obj, KerasObject) else obj


@dataclasses.dataclass(frozen=True)
class GRUCell:
    """Keras's ``GRUCell`` (tf_keras semantics) as a hashable configuration.

    All methods are pure functions of their arguments; the cell holds no weights, state,
    masks or randomness, so it can be closed over or passed as a static argument of
    `jax.jit` (equal configurations are equal and hash alike). The math, gate by gate, is
    on the docs site's "The math" page; ``x`` is ``(B, D)``, ``h`` ``(B, U)``.

    Args:
      units: U, the size of the state and output.
      activation: φ, the candidate's activation: a Keras name, ``None`` (identity) or a
        callable.
      recurrent_activation: σ, the gates' activation: a Keras name, ``None`` (identity)
        or a callable.
      use_bias: whether the cell has a bias.
      kernel_initializer: initializer of ``kernel`` ``(D, 3U)``: a Keras name, a Keras
        config dict or an ``init(key, shape, dtype)`` callable (e.g. `jax.nn.initializers`).
      recurrent_initializer: initializer of ``recurrent_kernel`` ``(U, 3U)``, as
        ``kernel_initializer``.
      bias_initializer: initializer of ``bias``, as ``kernel_initializer``.
      kernel_regularizer: penalty on ``kernel``: a Keras name, a config dict or a
        ``w -> scalar`` callable; `penalty` sums the three regularizers.
      recurrent_regularizer: penalty on ``recurrent_kernel``, as ``kernel_regularizer``.
      bias_regularizer: penalty on ``bias``, as ``kernel_regularizer``.
      kernel_constraint: constraint on ``kernel``: a Keras name, a config dict or a
        ``w -> w`` callable; `constrain` applies the three constraints.
      recurrent_constraint: constraint on ``recurrent_kernel``, as ``kernel_constraint``.
      bias_constraint: constraint on ``bias``, as ``kernel_constraint``.
      dropout: input dropout rate, clipped to [0, 1]; active only for ``0 < rate < 1``
        and ``training=True`` (the rule of Keras's ``call``; a rate of 1 drops nothing,
        where tf_keras fails drawing its mask).
      recurrent_dropout: recurrent (state) dropout rate, as ``dropout``.
      implementation: 1 (per-gate matmuls and masks) or 2 (one matmul for all gates); ``recurrent_dropout >
        0`` forces 1, as in Keras. The legacy 0 is kept and, like tf_keras's GRUCell,
        computes as 2 (tf_keras's GRU *layer* ``from_config`` rewrites it to 1; the two
        differ only in which input dropout masks apply).
      reset_after: apply the reset gate after the recurrent matmul (True, the
        cuDNN/PyTorch convention, bias ``(2, 3U)``) or before it (False, bias ``(3U,)``).

    Raises:
      TypeError, ValueError: naming the argument, for a bad type or value.
    """

    units: int
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

    def __post_init__(self):
        checked: dict[str, Any] = {"units": check_positive_int(self.units, "units")}
        for name in ("activation", "recurrent_activation"):
            checked[name] = activations.validate(getattr(self, name), argument=name)
        for kind, module in (("initializer", initializers), ("regularizer", regularizers),
                             ("constraint", constraints)):
            for prefix in _WEIGHT_PREFIXES.values():
                name = f"{prefix}_{kind}"
                checked[name] = module.get(getattr(self, name), argument=name)
        for name in ("use_bias", "reset_after"):
            checked[name] = check_bool(getattr(self, name), name)
        for name in ("dropout", "recurrent_dropout"):
            checked[name] = check_rate(getattr(self, name), name)
        implementation = check_int(self.implementation, "implementation")
        if implementation not in (0, 1, 2):
            raise ValueError(f"implementation: expected 0, 1 or 2, got {implementation}.")
        # Keras switches silently: implementation 2 has no recurrent dropout.
        checked["implementation"] = 1 if checked["recurrent_dropout"] != 0 else implementation
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def activation_fn(self) -> Callable:
        return activations.get(self.activation)

    @property
    def recurrent_activation_fn(self) -> Callable:
        return activations.get(self.recurrent_activation)

    def per_weight(self, kind: str) -> dict[str, Any]:
        """``{"kernel": self.kernel_<kind>, "recurrent_kernel": ..., "bias": ...}``."""
        return {weight: getattr(self, f"{prefix}_{kind}") for weight, prefix in _WEIGHT_PREFIXES.items()}

    def param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        """``{"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)}``."""
        u3 = 3 * self.units
        shapes: dict[str, tuple[int, ...]] = {"kernel": (input_dim, u3), "recurrent_kernel": (self.units, u3)}
        if self.use_bias:
            shapes["bias"] = (2, u3) if self.reset_after else (u3,)
        return shapes

    # ------------------------------------------------------------------ init
    def init(self, rng: jax.Array, input_dim: int, dtype=jnp.float32) -> Params:
        """Fresh weights of `param_shapes` in ``dtype``, one key per weight.

        Each initializer is called on the whole weight, so fans are Keras's (glorot over
        ``(D, 3U)``, orthogonal over ``(U, 3U)``).
        """
        check_key(rng, "rng")
        shapes = self.param_shapes(check_positive_int(input_dim, "input_dim"))
        inits = self.per_weight("initializer")
        params = {}
        for (name, shape), key in zip(shapes.items(), jax.random.split(rng, 3)[:len(shapes)], strict=True):
            params[name] = jnp.asarray(inits[name](key, shape, dtype), dtype)
            if params[name].shape != shape:
                raise ValueError(f"{_WEIGHT_PREFIXES[name]}_initializer: returned shape "
                                 f"{params[name].shape} for {name!r}, expected {shape}.")
        return params

    def initial_state(self, batch_size: int, dtype=jnp.float32) -> jax.Array:
        """Zeros ``(B, U)``."""
        return jnp.zeros((check_positive_int(batch_size, "batch_size"), self.units), dtype)

    # ------------------------------------------------------------------ dropout
    def dropout_masks(self, rng: jax.Array, batch_size: int, input_dim: int, training: bool = True,
                      dtype=jnp.float32) -> DropoutMasks:
        """Keras's three input and three recurrent masks, drawn from ``rng``.

        Returns ``DropoutMasks(inputs=(3, B, D) | None, recurrent=(3, B, U) | None)``; a
        kind is None when its rate is not in (0, 1) or ``training`` is False. The two kinds
        come from independent halves of ``rng``; the same key gives the same masks.
        """
        batch_size = check_positive_int(batch_size, "batch_size")
        input_dim = check_positive_int(input_dim, "input_dim")
        if not check_bool(training, "training"):
            return DropoutMasks()
        key_in, key_rec = jax.random.split(check_key(rng, "rng"))
        inputs = (inverted_dropout_masks(key_in, self.dropout, (batch_size, input_dim), 3, dtype)
                  if dropout_active(self.dropout) else None)
        recurrent = (inverted_dropout_masks(key_rec, self.recurrent_dropout, (batch_size, self.units), 3, dtype)
                     if dropout_active(self.recurrent_dropout) else None)
        return DropoutMasks(inputs, recurrent)

    def draws_dropout(self, training: bool) -> bool:
        """Whether a call with this ``training`` flag uses dropout masks (Keras's rule:
        training, and a ``dropout`` or ``recurrent_dropout`` rate in (0, 1))."""
        return bool(training) and (dropout_active(self.dropout) or dropout_active(self.recurrent_dropout))

    def resolve_masks(self, rng: jax.Array | None, dropout_masks: DropoutMasks | None, training: bool,
                      batch_shape: tuple[int, ...], input_dim: int, dtype) -> DropoutMasks:
        """The masks a call uses: none unless training; else ``dropout_masks``, or drawn
        from ``rng``.

        Explicit ``dropout_masks`` must have the shapes `dropout_masks` gives, and only for a kind
        whose rate is active (Keras makes no mask otherwise); the recurrent kind is thus
        never used by implementation 2.
        """
        if not check_bool(training, "training"):
            return DropoutMasks()
        if dropout_masks is None:
            if not self.draws_dropout(True):
                return DropoutMasks()
            if rng is None:
                raise ValueError(
                    "rng: training=True with dropout/recurrent_dropout needs a PRNG key "
                    "(or explicit dropout_masks=); pass rng=jax.random.key(...) or training=False."
                )
            if len(batch_shape) != 1:
                raise ValueError(f"x: drawing dropout masks needs inputs of shape (B, D), "
                                 f"got batch shape {batch_shape}.")
            return self.dropout_masks(rng, batch_shape[0], input_dim, True, dtype)
        if not isinstance(dropout_masks, DropoutMasks):
            raise TypeError(f"dropout_masks: expected jaxgru.DropoutMasks, got {type(dropout_masks).__name__}.")
        for kind, last, rate_name in (("inputs", input_dim, "dropout"),
                                      ("recurrent", self.units, "recurrent_dropout")):
            m = getattr(dropout_masks, kind)
            if m is None:
                continue
            if not dropout_active(getattr(self, rate_name)):
                raise ValueError(f"dropout_masks.{kind}: given, but {rate_name}={getattr(self, rate_name)} makes no "
                                 "mask (Keras applies one only for 0 < rate < 1); pass None.")
            if tuple(np.shape(m)) != (3, *batch_shape, last):
                raise ValueError(f"dropout_masks.{kind}: expected shape {(3, *batch_shape, last)}, "
                                 f"got {tuple(np.shape(m))}.")
        return dropout_masks

    # ------------------------------------------------------------------ step
    def check_params(self, params: Mapping[str, Any], input_dim: int | None = None) -> int:
        """Validates the params dict (keys, shapes, floating dtypes); returns its input dimension D."""
        if not isinstance(params, Mapping):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}.")
        if "kernel" not in params:
            raise ValueError(f"params: missing 'kernel' of shape (D, {3 * self.units}).")
        kernel_shape = tuple(np.shape(params["kernel"]))
        if len(kernel_shape) != 2:
            raise ValueError(f"params['kernel']: expected shape (D, {3 * self.units}), got {kernel_shape}.")
        d = kernel_shape[0] if input_dim is None else input_dim
        if d == 0:
            raise ValueError(f"params['kernel']: expected shape (D, {3 * self.units}) with D >= 1 input features, "
                             f"got {kernel_shape}.")
        expected = self.param_shapes(d)
        for name, shape in expected.items():
            if name not in params:
                raise ValueError(f"params: missing {name!r} of shape {shape}.")
            if tuple(np.shape(params[name])) != shape:
                raise ValueError(f"params[{name!r}]: expected shape {shape} for units={self.units}, "
                                 f"input_dim={d}, got {tuple(np.shape(params[name]))}.")
            check_floating(params[name], f"params[{name!r}]")
        extra = set(params) - set(expected)
        if extra:
            raise ValueError(f"params: unexpected keys {shown_keys(extra)} (use_bias={self.use_bias}).")
        return d

    # the new state comes back in the structure the state came in: an array, or a list/tuple
    @overload
    def step(self, params: Params, state: jax.Array, x: jax.Array, rng: jax.Array | None = None, *,
             training: bool = False, dropout_masks: DropoutMasks | None = None, reset: jax.Array | None = None,
             reset_state: jax.Array | None = None) -> tuple[jax.Array, jax.Array]: ...

    @overload
    def step(self, params: Params, state: list | tuple, x: jax.Array, rng: jax.Array | None = None, *,
             training: bool = False, dropout_masks: DropoutMasks | None = None, reset: jax.Array | None = None,
             reset_state: jax.Array | None = None) -> tuple[jax.Array, list | tuple]: ...

    @renamed_keywords
    def step(self, params: Params, state: State, x: jax.Array, rng: jax.Array | None = None, *,
             training: bool = False, dropout_masks: DropoutMasks | None = None, reset: jax.Array | None = None,
             reset_state: jax.Array | None = None) -> tuple[jax.Array, State]:
        """One timestep: ``x`` ``(B, D)``, ``state`` ``(B, U)`` -> ``(output, new_state)``.

        ``output`` is the new ``h`` ``(B, U)``; ``new_state`` is ``h`` in the structure the
        state came in (an array, or a 1-element list as Keras allows). With
        ``training=True`` and dropout, the masks are ``dropout_masks`` if given, else drawn
        from ``rng``: ``step(..., rng=k)`` equals
        ``step(..., dropout_masks=cell.dropout_masks(k, B, D))``. To reproduce Keras's
        per-sequence masks, pass the same key (or masks) every step. ``training=False``
        never drops, whatever ``rng`` or ``dropout_masks`` say.

        ``reset``: ``(B,)`` booleans (or 0/1 integers; floats are rejected: pass
        ``done.astype(bool)``), one per row of ``x``: the state of the rows where it is
        True is replaced by the reset target *before* the step, ``h_in = where(reset[:,
        None], target, h)``, as a new episode starts while acting. The target is zeros
        (the cell's initial state) unless ``reset_state`` is given: any shape that
        broadcasts to ``(B, U)`` (``(U,)``, a scalar, ``(B, U)``). The rule of
        `jaxgru.rnn`'s ``resets``/``reset_state``, one step at a time.
        """
        h = as_state(state, "state")
        x = as_floating_array(x, "x", "(B, D)")
        d = self.check_params(params)
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"x: expected last dimension {d} (the kernel's input_dim), got shape {x.shape}.")
        if tuple(h.shape) != (*x.shape[:-1], self.units):
            raise ValueError(f"state: expected shape {(*x.shape[:-1], self.units)}, got {tuple(h.shape)}.")
        h = self._reset(h, reset, reset_state)
        drop = self.resolve_masks(rng, dropout_masks, training, x.shape[:-1], d, x.dtype)
        xi = gates.project_inputs(self, params, x, drop.inputs)
        h_new = gates.recurrent_step(self, gates.recurrent_weights(self, params), h, xi, drop.recurrent)
        return h_new, type(state)([h_new]) if isinstance(state, (list, tuple)) else h_new

    def _reset(self, h: jax.Array, reset: Any, reset_state: Any) -> jax.Array:
        """``where(reset[..., None], reset_state (zeros by default), h)`` for `step`."""
        if reset is None:
            if reset_state is not None:
                raise ValueError("reset_state: given without reset; it is the state the reset rows restart from.")
            return h
        reject_float_flags(reset, "reset")
        flags, _ = as_integer_array(reset, "reset", "booleans (or 0/1 integers)",
                                    lambda dtype: dtype == np.bool_ or np.issubdtype(dtype, np.integer),
                                    0, 1, "booleans or integers 0 and 1")
        if tuple(flags.shape) != tuple(h.shape[:-1]):
            raise ValueError(f"reset: expected shape {tuple(h.shape[:-1])} (one flag per row of x), "
                             f"got {tuple(flags.shape)}.")
        target = (jnp.zeros_like(h) if reset_state is None
                  else broadcast_state(reset_state, "reset_state", tuple(h.shape), h.dtype))
        return jnp.where(flags.astype(jnp.bool_)[..., None], target, h)

    # ------------------------------------------------------------------ regularization
    def penalty(self, params: Params) -> jax.Array:
        """Sum of the weight regularizers over ``params`` (Keras's ``layer.losses``).

        A scalar in the weights' accumulation dtype (float32 for bfloat16/float32
        weights); 0.0 without regularizers. Add it to the loss.
        """
        self.check_params(params)
        total = jnp.zeros((), gates.accumulation_dtype(jnp.result_type(params["kernel"])))
        for name, reg in self.per_weight("regularizer").items():
            if reg is None or name not in params:
                continue
            value = reg(params[name])
            if np.shape(value) != ():
                raise ValueError(f"{_WEIGHT_PREFIXES[name]}_regularizer: expected a scalar, "
                                 f"got shape {np.shape(value)}.")
            total = total + value
        return total

    def constrain(self, params: Params) -> Params:
        """``params`` with each weight's constraint applied (call after an optimizer update)."""
        self.check_params(params)
        fns = self.per_weight("constraint")
        return {name: w if fns[name] is None else fns[name](w) for name, w in params.items()}

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The Keras ``GRUCell.get_config()`` keys (without name/trainable/dtype).

        Keras objects serialize as ``{"class_name": ..., "config": {...}}`` with Keras's
        class names, so `tf_keras.layers.GRUCell.from_config` reads the result; plain
        callables are returned as they are (not serializable).
        """
        return {f.name: _serialize(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GRUCell:
        """Builds a cell from a jaxgru or tf_keras/Keras 3 ``GRUCell`` config dict.

        Keras's ``name``, ``trainable``, ``dtype`` and ``seed`` keys are ignored. Keras 3's
        ``seed`` seeds Keras's own dropout masks; jaxgru draws them from the ``rng`` key
        passed to `step` or `jaxgru.rnn`, and a Keras seed does not map onto a JAX key, so
        a seed that is not None warns (UserWarning) when ``dropout`` or
        ``recurrent_dropout`` is active (``0 < rate < 1``).

        A config with a ``seed`` key is Keras 3's (Keras 3 writes one in every GRUCell
        config, tf_keras never): its ``"hard_sigmoid"`` is Keras 3's ``relu6(x + 3) / 6``
        and becomes `jax.nn.hard_sigmoid` (the name means tf_keras's
        ``clip(0.2 x + 0.5, 0, 1)`` in jaxgru, see `jaxgru.activations`).
        """
        if not isinstance(config, Mapping):
            raise TypeError(f"config: expected a dict, got {type(config).__name__}.")
        seed = config.get("seed")
        keras_3 = "seed" in config
        config = {k: v for k, v in config.items() if k not in _IGNORED_KERAS_KEYS}
        for name in ("activation", "recurrent_activation") if keras_3 else ():
            value = config.get(name)
            if (value.get("config") if isinstance(value, Mapping) else value) == "hard_sigmoid":
                config[name] = jax.nn.hard_sigmoid
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"config: unknown keys {shown_keys(unknown)}; expected some of {sorted(known)}.")
        cell = cls(**config)
        if seed is not None and (dropout_active(cell.dropout) or dropout_active(cell.recurrent_dropout)):
            warnings.warn(f"config['seed']={seed!r}: Keras seeds its dropout masks with it; jaxgru draws them from "
                          "the rng key passed to step/rnn (rng=jax.random.key(...), training=True), and a Keras "
                          "seed does not map onto a JAX key, so the masks differ from Keras's.",
                          UserWarning, stacklevel=2)
        return cell

