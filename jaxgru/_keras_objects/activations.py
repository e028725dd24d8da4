"""Keras activation names resolved to `jax.nn` functions: the table behind `jaxgru.activations`
(whose docstring lists where a name differs from the obvious JAX call), and `validate`, the
check a cell runs on its ``activation`` arguments."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp

__all__ = ["ACTIVATIONS", "Activation", "ActivationLike", "get", "hard_sigmoid", "linear", "validate"]

Activation = Callable[[jax.Array], jax.Array]
ActivationLike = str | None | Activation


def hard_sigmoid(x: jax.Array) -> jax.Array:
    """tf_keras's hard sigmoid, ``clip(0.2 x + 0.5, 0, 1)`` (jax.nn has only Keras 3's)."""
    return jnp.clip(0.2 * x + 0.5, 0.0, 1.0)


def linear(x: jax.Array) -> jax.Array:
    """The identity; Keras's ``linear`` and ``activation=None``."""
    return x


ACTIVATIONS: dict[str, Activation] = {
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "hard_sigmoid": hard_sigmoid,
    "relu": jax.nn.relu,
    "relu6": jax.nn.relu6,
    "linear": linear,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "softplus": jax.nn.softplus,
    "softsign": jax.nn.soft_sign,
    "swish": jax.nn.silu,
    "silu": jax.nn.silu,
    "gelu": functools.partial(jax.nn.gelu, approximate=False),
    "exponential": jnp.exp,
    "mish": jax.nn.mish,
    "leaky_relu": functools.partial(jax.nn.leaky_relu, negative_slope=0.2),
    "softmax": jax.nn.softmax,
    "log_softmax": jax.nn.log_softmax,
}


def get(identifier: ActivationLike, *, argument: str = "activation") -> Activation:
    """Returns the activation for a Keras name, ``None`` (identity) or a callable."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        try:
            return ACTIVATIONS[identifier]
        except KeyError:
            raise ValueError(
                f"{argument}: unknown activation {identifier!r}; expected one of {sorted(ACTIVATIONS)} "
                "or a callable."
            ) from None
    if callable(identifier):
        return identifier
    raise TypeError(f"{argument}: expected a Keras activation name, None or a callable, "
                    f"got {type(identifier).__name__}.")


def validate(identifier: ActivationLike, *, argument: str) -> ActivationLike:
    """Checks an activation identifier and returns it in its hashable form (name or callable)."""
    if isinstance(identifier, Mapping):  # Keras 3 serializes a function as {"config": name, ...}
        if not isinstance(identifier.get("config"), str):
            raise ValueError(f"{argument}: an activation config dict needs the activation's name under "
                             f"'config', got {dict(identifier)!r}.")
        identifier = identifier["config"]
    get(identifier, argument=argument)
    return identifier
