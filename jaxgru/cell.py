"""`GRUCell`: Keras's GRUCell as an immutable configuration with pure methods."""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Callable, Optional, Union

import jax
import jax.numpy as jnp

from jaxgru import activations, constraints, gates, initializers, regularizers
from jaxgru._keras_object import KerasObject
from jaxgru.dropout import DropoutMasks, inverted_dropout_masks, is_active

Params = dict[str, jax.Array]
State = Union[jax.Array, list, tuple]

_WEIGHTS = ("kernel", "recurrent_kernel", "bias")
_IGNORED_KERAS_KEYS = ("name", "trainable", "dtype", "seed")


def _check_positive_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"{argument}: expected a positive integer, got {value!r}.")
    return int(value)


def _check_rate(rate: Any, argument: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{argument}: expected a float in [0, 1], got {rate!r}.")
    return min(1.0, max(0.0, float(rate)))  # clipped, as Keras does


def _serialize(obj: Any) -> Any:
    return obj.get_config() if isinstance(obj, KerasObject) else obj


@dataclasses.dataclass(frozen=True)
class GRUCell:
    """Keras's ``GRUCell`` (tf_keras semantics) as a hashable configuration.

    All methods are pure functions of their arguments; the cell holds no weights, state,
    masks or randomness, so it can be closed over or passed as a static argument of
    `jax.jit`. See `jaxgru.gates` for the math and the shapes.

    Args:
      units: U, the size of the state and output.
      activation, recurrent_activation: Keras names, ``None`` (identity) or callables.
      use_bias: whether the cell has a bias.
      kernel_initializer, recurrent_initializer, bias_initializer: Keras names, Keras
        config dicts or ``init(key, shape, dtype)`` callables (e.g. `jax.nn.initializers`).
      kernel_regularizer, recurrent_regularizer, bias_regularizer: Keras names, config
        dicts or ``w -> scalar`` callables; `penalty` sums them.
      kernel_constraint, recurrent_constraint, bias_constraint: Keras names, config
        dicts or ``w -> w`` callables; `constrain` applies them.
      dropout, recurrent_dropout: rates, clipped to [0, 1]; active only for
        ``0 < rate < 1`` and ``training=True``.
      implementation: 1 (per-gate matmuls and masks) or 2 (fused); ``recurrent_dropout >
        0`` forces 1, as in Keras. The legacy 0 is kept and, like tf_keras's GRUCell,
        computes as 2 (tf_keras's GRU *layer* ``from_config`` rewrites it to 1; the two
        differ only in which input dropout masks apply).
      reset_after: apply the reset gate after the recurrent matmul (True, the
        cuDNN/PyTorch convention, bias ``(2, 3U)``) or before it (False, bias ``(3U,)``).
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
        def normalize(name, value):
            object.__setattr__(self, name, value)

        normalize("units", _check_positive_int(self.units, "units"))
        for name in ("activation", "recurrent_activation"):
            normalize(name, activations.validate(getattr(self, name), argument=name))
        for kind, module in (("initializer", initializers), ("regularizer", regularizers),
                             ("constraint", constraints)):
            for weight in ("kernel", "recurrent", "bias"):
                name = f"{weight}_{kind}"
                normalize(name, module.get(getattr(self, name), argument=name))
        for name in ("use_bias", "reset_after"):
            if not isinstance(getattr(self, name), (bool, jnp.bool_)):
                raise TypeError(f"{name}: expected a bool, got {getattr(self, name)!r}.")
            normalize(name, bool(getattr(self, name)))
        normalize("dropout", _check_rate(self.dropout, "dropout"))
        normalize("recurrent_dropout", _check_rate(self.recurrent_dropout, "recurrent_dropout"))
        if isinstance(self.implementation, bool) or self.implementation not in (0, 1, 2):
            raise ValueError(f"implementation: expected 0, 1 or 2, got {self.implementation!r}.")
        if self.recurrent_dropout != 0:
            normalize("implementation", 1)  # Keras switches silently
        else:
            normalize("implementation", int(self.implementation))

    # ------------------------------------------------------------------ sizes
    @property
    def state_size(self) -> int:
        return self.units

    @property
    def output_size(self) -> int:
        return self.units

    @property
    def activation_fn(self) -> Callable:
        return activations.get(self.activation)

    @property
    def recurrent_activation_fn(self) -> Callable:
        return activations.get(self.recurrent_activation)

    def param_shapes(self, input_dim: int) -> dict[str, tuple[int, ...]]:
        """``{"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)}``."""
        u3 = 3 * self.units
        shapes = {"kernel": (input_dim, u3), "recurrent_kernel": (self.units, u3)}
        if self.use_bias:
            shapes["bias"] = (2, u3) if self.reset_after else (u3,)
        return shapes

    # ------------------------------------------------------------------ init
    def init(self, rng: jax.Array, input_dim: int, dtype=jnp.float32) -> Params:
        """Fresh weights, each initializer called on the whole weight (Keras's fans)."""
        input_dim = _check_positive_int(input_dim, "input_dim")
        keys = dict(zip(_WEIGHTS, jax.random.split(rng, 3)))
        inits = {"kernel": self.kernel_initializer, "recurrent_kernel": self.recurrent_initializer,
                 "bias": self.bias_initializer}
        return {name: jnp.asarray(inits[name](keys[name], shape, dtype), dtype)
                for name, shape in self.param_shapes(input_dim).items()}

    def initial_state(self, batch_size: int, dtype=jnp.float32) -> jax.Array:
        """Zeros ``(B, U)``."""
        return jnp.zeros((batch_size, self.units), dtype)

    # ------------------------------------------------------------------ dropout
    def uses_dropout(self, training: bool) -> bool:
        """Whether a call with this ``training`` flag draws any dropout mask."""
        return bool(training) and (is_active(self.dropout) or is_active(self.recurrent_dropout))

    def dropout_masks(self, rng: jax.Array, batch_size: int, input_dim: int, training: bool = True,
                      dtype=jnp.float32) -> DropoutMasks:
        """Keras's three input and three recurrent masks, drawn from ``rng``.

        Returns ``DropoutMasks(inputs=(3, B, D) | None, recurrent=(3, B, U) | None)``; a
        kind is None when its rate is not in (0, 1) or ``training`` is False.
        """
        if not training:
            return DropoutMasks()
        key_in, key_rec = jax.random.split(rng)
        inputs = (inverted_dropout_masks(key_in, self.dropout, (batch_size, input_dim), 3, dtype)
                  if is_active(self.dropout) else None)
        recurrent = (inverted_dropout_masks(key_rec, self.recurrent_dropout, (batch_size, self.units), 3, dtype)
                     if is_active(self.recurrent_dropout) else None)
        return DropoutMasks(inputs, recurrent)

    def resolve_masks(self, rng: Optional[jax.Array], masks: Optional[DropoutMasks], training: bool,
                      batch_shape: tuple[int, ...], input_dim: int, dtype) -> DropoutMasks:
        """The masks a call uses: none unless training; else ``masks`` or ones drawn from ``rng``."""
        if not training:
            return DropoutMasks()
        if masks is None:
            if not self.uses_dropout(training):
                return DropoutMasks()
            if rng is None:
                raise ValueError(
                    "rng: training=True with dropout/recurrent_dropout needs a PRNG key "
                    "(or explicit masks=); pass rng=jax.random.key(...) or training=False."
                )
            if len(batch_shape) != 1:
                raise ValueError(f"x: drawing dropout masks needs inputs of shape (B, D), got batch shape {batch_shape}.")
            masks = self.dropout_masks(rng, batch_shape[0], input_dim, True, dtype)
        if not isinstance(masks, DropoutMasks):
            raise TypeError(f"masks: expected jaxgru.DropoutMasks, got {type(masks).__name__}.")
        for name, last in (("inputs", input_dim), ("recurrent", self.units)):
            m = getattr(masks, name)
            if m is not None and tuple(m.shape) != (3, *batch_shape, last):
                raise ValueError(f"masks.{name}: expected shape {(3, *batch_shape, last)}, got {tuple(m.shape)}.")
        # Implementation 2 has no recurrent dropout (Keras ignores those masks there).
        return masks if self.implementation == 1 else masks._replace(recurrent=None)

    # ------------------------------------------------------------------ step
    def check_params(self, params: Params, input_dim: Optional[int] = None) -> int:
        """Validates the params dict; returns its input dimension D."""
        if not isinstance(params, dict) and not hasattr(params, "keys"):
            raise TypeError(f"params: expected a dict of arrays, got {type(params).__name__}.")
        if "kernel" not in params:
            raise ValueError("params: missing 'kernel' of shape (D, 3U).")
        kernel_shape = tuple(jnp.shape(params["kernel"]))
        if len(kernel_shape) != 2:
            raise ValueError(f"params['kernel']: expected shape (D, {3 * self.units}), got {kernel_shape}.")
        d = kernel_shape[0] if input_dim is None else input_dim
        expected = self.param_shapes(d)
        for name, shape in expected.items():
            if name not in params:
                raise ValueError(f"params: missing {name!r} of shape {shape}.")
            if tuple(jnp.shape(params[name])) != shape:
                raise ValueError(f"params[{name!r}]: expected shape {shape} for units={self.units}, "
                                 f"input_dim={d}, got {tuple(jnp.shape(params[name]))}.")
        extra = set(params) - set(expected)
        if extra:
            raise ValueError(f"params: unexpected keys {sorted(extra)} (use_bias={self.use_bias}).")
        return d

    def step(self, params: Params, state: State, x: jax.Array, rng: Optional[jax.Array] = None, *,
             training: bool = False, masks: Optional[DropoutMasks] = None) -> tuple[jax.Array, State]:
        """One timestep: ``x`` ``(B, D)``, ``state`` ``(B, U)`` -> ``(output, new_state)``.

        ``output`` is the new ``h`` ``(B, U)``; ``new_state`` is ``h`` in the structure the
        state came in (an array, or a 1-element list as Keras allows). With
        ``training=True`` and dropout, the masks are ``masks`` if given, else drawn from
        ``rng``: ``step(..., rng=k)`` equals ``step(..., masks=cell.dropout_masks(k, B, D))``.
        To reproduce Keras's per-sequence masks, pass the same key (or masks) every step.
        """
        h = _unpack_state(state)
        x = jnp.asarray(x)
        d = self.check_params(params)
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"x: expected last dimension {d} (the kernel's input_dim), got shape {x.shape}.")
        if tuple(h.shape) != (*x.shape[:-1], self.units):
            raise ValueError(f"state: expected shape {(*x.shape[:-1], self.units)}, got {tuple(h.shape)}.")
        masks = self.resolve_masks(rng, masks, training, x.shape[:-1], d, x.dtype)
        xi = gates.project_inputs(self, params, x, masks.inputs)
        h_new = gates.recurrent_step(self, gates.recurrent_weights(self, params), h, xi, masks.recurrent)
        return h_new, type(state)([h_new]) if isinstance(state, (list, tuple)) else h_new

    # ------------------------------------------------------------------ regularization
    def _per_weight(self, kind: str) -> dict[str, Any]:
        return {"kernel": getattr(self, f"kernel_{kind}"),
                "recurrent_kernel": getattr(self, f"recurrent_{kind}"),
                "bias": getattr(self, f"bias_{kind}")}

    def penalty(self, params: Params) -> jax.Array:
        """Sum of the weight regularizers over ``params`` (Keras's ``layer.losses``); 0 if none."""
        total = jnp.zeros((), gates.accumulation_dtype(params["kernel"].dtype))
        for name, reg in self._per_weight("regularizer").items():
            if reg is not None and name in params:
                total = total + reg(params[name])
        return total

    def constrain(self, params: Params) -> Params:
        """``params`` with each weight's constraint applied (call after an optimizer update)."""
        fns = self._per_weight("constraint")
        return {name: (fns[name](w) if fns.get(name) is not None else w) for name, w in params.items()}

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """The Keras ``GRUCell.get_config()`` keys (without name/trainable/dtype)."""
        return {f.name: _serialize(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> GRUCell:
        """Builds a cell from a jaxgru or tf_keras/Keras 3 ``GRUCell`` config dict."""
        config = {k: v for k, v in config.items() if k not in _IGNORED_KERAS_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"config: unknown keys {sorted(unknown)}; expected some of {sorted(known)}.")
        return cls(**config)


def _unpack_state(state: State) -> jax.Array:
    if isinstance(state, (list, tuple)):
        if len(state) != 1:
            raise ValueError(f"state: a GRU has one state tensor, got a sequence of {len(state)}.")
        state = state[0]
    return jnp.asarray(state)
