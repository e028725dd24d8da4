"""Keras initializers resolved to `jax.nn.initializers`.

Each initializer is called as ``init(key, shape, dtype)`` on the *whole* weight, as Keras
does: glorot over the full ``(D, 3U)`` kernel, orthogonal over the full ``(U, 3U)``
recurrent kernel (rows orthonormal, not per gate). Fans are Keras's: ``(fan_in, fan_out)``
for a 2-D shape, both the size for a 1-D shape (a ``(3U,)`` bias), receptive field times
the last two dimensions above 2-D. A Keras ``seed`` is ignored: the randomness comes from
the PRNG key, so the values differ from Keras's while following the same distribution.
Keras 3's ``input_axes``/``output_axes`` of the variance scaling family are supported.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from jax.nn import initializers as jinit

from jaxgru._keras_object import KerasObject, resolve


def _variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal", input_axes=None,
                      output_axes=None):
    # Keras says "untruncated_normal" for what jax calls "normal"; the truncated
    # normal's 0.8796 stddev correction is the same in both.
    distribution = {"untruncated_normal": "normal"}.get(distribution, distribution)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    if mode not in ("fan_in", "fan_out", "fan_avg"):
        raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
    if distribution not in ("normal", "truncated_normal", "uniform"):
        raise ValueError(f"distribution must be truncated_normal, untruncated_normal or uniform, got {distribution!r}")

    def init(key, shape, dtype=jnp.float32):
        if input_axes is not None and output_axes is not None:
            # Keras 3: the fans are the sizes of these axes alone (no receptive field).
            fan_axes = {a % len(shape) for a in (*input_axes, *output_axes)}
            axes = {"in_axis": tuple(input_axes), "out_axis": tuple(output_axes),
                    "batch_axis": tuple(a for a in range(len(shape)) if a not in fan_axes)}
        elif len(shape) < 2:
            # Keras's fans of a 0-D or 1-D weight (e.g. a (3U,) bias) are both its size;
            # empty in/out axes leave all of it to jax's "receptive field", which gives that.
            axes = {"in_axis": (), "out_axis": ()}
        else:
            axes = {}
        return jinit.variance_scaling(scale, mode, distribution, **axes)(key, shape, dtype)

    return init


def _preset(scale, mode, distribution):
    """The factory of a named variance scaling (GlorotUniform, ...); the axes are Keras 3's."""
    def factory(input_axes=None, output_axes=None):
        return _variance_scaling(scale, mode, distribution, input_axes, output_axes)

    return factory


def _orthogonal(gain=1.0):
    def init(key, shape, dtype=jnp.float32):
        # The QR runs in at least float32 (jax has no bfloat16/float16 QR).
        q = jinit.orthogonal(scale=gain)(key, shape, jnp.promote_types(dtype, jnp.float32))
        return q.astype(dtype)

    return init


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
    "GlorotUniform": _preset(1.0, "fan_avg", "uniform"),
    "GlorotNormal": _preset(1.0, "fan_avg", "truncated_normal"),
    "HeUniform": _preset(2.0, "fan_in", "uniform"),
    "HeNormal": _preset(2.0, "fan_in", "truncated_normal"),
    "LecunUniform": _preset(1.0, "fan_in", "uniform"),
    "LecunNormal": _preset(1.0, "fan_in", "truncated_normal"),
    "Orthogonal": _orthogonal,
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
    # tf_keras's compatibility aliases
    "normal": ("RandomNormal", {}),
    "uniform": ("RandomUniform", {}),
    "one": ("Ones", {}),
    "zero": ("Zeros", {}),
}
# tf_keras also reads the "...V2" names that some older saved configs carry.
NAMES.update({f"{name}V2": (name, {}) for name in REGISTRY})
NAMES.update({f"{name}V2": NAMES[name] for name in ("glorot_normal", "glorot_uniform", "he_normal",
                                                    "he_uniform", "lecun_normal", "lecun_uniform")})


def get(identifier: Any, *, argument: str = "initializer") -> KerasObject | Callable:
    """Resolves a Keras initializer name/config, or keeps an ``init(key, shape, dtype)`` callable."""
    if identifier is None:
        raise ValueError(f"{argument}: an initializer is required, got None.")
    return resolve(
        identifier, argument=argument, kind="initializer", registry=REGISTRY, names=NAMES,
        ignored_keys=frozenset({"seed"}),
    )
