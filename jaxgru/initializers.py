"""Keras initializers resolved to `jax.nn.initializers`.

Each initializer is called as ``init(key, shape, dtype)`` on the *whole* weight, as Keras
does: glorot over the full ``(D, 3U)`` kernel, orthogonal over the full ``(U, 3U)``
recurrent kernel (rows orthonormal, not per gate). Fans are Keras's: for a 2-D shape
``(fan_in, fan_out)``. A Keras ``seed`` is ignored: the randomness comes from the key.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.nn import initializers as jinit

from jaxgru._keras_object import KerasObject, resolve


def _variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal"):
    # Keras says "untruncated_normal" for what jax calls "normal"; the truncated
    # normal's 0.8796 stddev correction is the same in both.
    distribution = {"untruncated_normal": "normal"}.get(distribution, distribution)
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise TypeError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "uniform"):
        raise TypeError(f"distribution must be truncated_normal, untruncated_normal or uniform, got {distribution!r}")
    return jinit.variance_scaling(scale, mode, distribution)


def _random_normal(mean=0.0, stddev=0.05):
    return lambda key, shape, dtype=jnp.float32: mean + stddev * jax.random.normal(key, shape, dtype)


def _random_uniform(minval=-0.05, maxval=0.05):
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, minval, maxval)


def _truncated_normal(mean=0.0, stddev=0.05):
    # Keras truncates at two standard deviations and does not rescale.
    return lambda key, shape, dtype=jnp.float32: mean + stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


def _identity(gain=1.0):
    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise ValueError(f"Identity initializer needs a 2-D shape, got {shape}")
        return gain * jnp.eye(*shape, dtype=dtype)

    return init


REGISTRY: dict[str, Callable[..., Callable]] = {
    "Zeros": lambda: jinit.zeros,
    "Ones": lambda: jinit.ones,
    "Constant": lambda value=0.0: jinit.constant(value),
    "RandomNormal": _random_normal,
    "RandomUniform": _random_uniform,
    "TruncatedNormal": _truncated_normal,
    "VarianceScaling": _variance_scaling,
    "GlorotUniform": lambda: _variance_scaling(1.0, "fan_avg", "uniform"),
    "GlorotNormal": lambda: _variance_scaling(1.0, "fan_avg", "truncated_normal"),
    "HeUniform": lambda: _variance_scaling(2.0, "fan_in", "uniform"),
    "HeNormal": lambda: _variance_scaling(2.0, "fan_in", "truncated_normal"),
    "LecunUniform": lambda: _variance_scaling(1.0, "fan_in", "uniform"),
    "LecunNormal": lambda: _variance_scaling(1.0, "fan_in", "truncated_normal"),
    "Orthogonal": lambda gain=1.0: jinit.orthogonal(scale=gain),
    "Identity": _identity,
}

NAMES: dict[str, tuple[str, dict]] = {
    "zeros": ("Zeros", {}),
    "ones": ("Ones", {}),
    "constant": ("Constant", {}),
    "random_normal": ("RandomNormal", {}),
    "random_uniform": ("RandomUniform", {}),
    "truncated_normal": ("TruncatedNormal", {}),
    "variance_scaling": ("VarianceScaling", {}),
    "glorot_uniform": ("GlorotUniform", {}),
    "glorot_normal": ("GlorotNormal", {}),
    "he_uniform": ("HeUniform", {}),
    "he_normal": ("HeNormal", {}),
    "lecun_uniform": ("LecunUniform", {}),
    "lecun_normal": ("LecunNormal", {}),
    "orthogonal": ("Orthogonal", {}),
    "identity": ("Identity", {}),
}


def get(identifier: Any, *, argument: str = "initializer") -> KerasObject | Callable:
    """Resolves a Keras initializer name/config, or keeps an ``init(key, shape, dtype)`` callable."""
    if identifier is None:
        raise ValueError(f"{argument}: an initializer is required, got None.")
    return resolve(
        identifier, argument=argument, kind="initializer", registry=REGISTRY, names=NAMES,
        ignored_keys=frozenset({"seed"}),
    )
