"""Keras initializers as factories of ``init(key, shape, dtype)`` functions on `jax.random`:
the registry behind `jaxgru.initializers` (whose docstring states the fans and the field
values accepted). Fields are declared and checked with `jaxgru._keras_objects.base.fields`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn import initializers as jinit

from jaxgru._keras_objects.base import KerasObject, axes, canonical_axes, choice, fields, real, resolve

__all__ = ["NAMES", "REGISTRY", "get"]

_MODES = choice("fan_in", "fan_out", "fan_avg")
# Keras lower-cases the distribution and reads "normal" as its truncated normal.
_DISTRIBUTIONS = choice("truncated_normal", "untruncated_normal", "uniform",
                        aliases={"normal": "truncated_normal"}, lowercase=True)
_TRUNCATED_STDDEV = 0.87962566103423978  # stddev of a standard normal truncated to [-2, 2]


def _size(shape: tuple[int, ...], listed: tuple[int, ...], name: str) -> int:
    """The product of the sizes of the ``listed`` axes (repeats count twice, as in Keras 3)."""
    return math.prod(shape[a] for a in canonical_axes(listed, len(shape), name, distinct=False))


def _fans(shape: tuple[int, ...], input_axes, output_axes) -> tuple[int, int]:
    """Keras 3's ``compute_fans`` (tf_keras's without the axes)."""
    if input_axes is not None and output_axes is not None:
        return _size(shape, input_axes, "input_axes"), _size(shape, output_axes, "output_axes")
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


@fields(scale=real(0, exclusive=True), mode=_MODES, distribution=_DISTRIBUTIONS, input_axes=axes,
        output_axes=axes)
def _variance_scaling(scale=1.0, mode="fan_in", distribution="truncated_normal", input_axes=None,
                      output_axes=None):
    def init(key, shape, dtype=jnp.float32):
        fan_in, fan_out = _fans(tuple(shape), input_axes, output_axes)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = scale / max(1.0, fan)
        if distribution == "truncated_normal":
            stddev = math.sqrt(variance) / _TRUNCATED_STDDEV
            return stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)
        if distribution == "untruncated_normal":
            return math.sqrt(variance) * jax.random.normal(key, shape, dtype)
        limit = math.sqrt(3.0 * variance)
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def _preset(scale, mode, distribution):
    """The factory of a named variance scaling (GlorotUniform, ...); the axes are Keras 3's."""
    @fields(input_axes=axes, output_axes=axes)
    def factory(input_axes=None, output_axes=None):
        return _variance_scaling(scale, mode, distribution, input_axes, output_axes)

    return factory


@fields(gain=real())
def _orthogonal(gain=1.0):
    def init(key, shape, dtype=jnp.float32):
        if len(shape) < 2:
            raise ValueError(f"Orthogonal needs a weight of 2 or more dimensions, got shape {tuple(shape)}")
        # The QR runs in at least float32 (jax has no bfloat16/float16 QR).
        q = jinit.orthogonal(scale=gain)(key, shape, jnp.promote_types(dtype, jnp.float32))
        return q.astype(dtype)

    return init


@fields(mean=real(), stddev=real())
def _random_normal(mean=0.0, stddev=0.05):
    return lambda key, shape, dtype=jnp.float32: mean + stddev * jax.random.normal(key, shape, dtype)


@fields(minval=real(), maxval=real())
def _random_uniform(minval=-0.05, maxval=0.05):
    if minval > maxval:
        raise ValueError(f"minval ({minval:g}) must be <= maxval ({maxval:g}): Keras's backends disagree "
                         "on a reversed range")
    return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, minval, maxval)


@fields(mean=real(), stddev=real())
def _truncated_normal(mean=0.0, stddev=0.05):
    # Keras truncates at two standard deviations and does not rescale.
    def init(key, shape, dtype=jnp.float32):
        return mean + stddev * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)

    return init


@fields(gain=real())
def _identity(gain=1.0):
    def init(key, shape, dtype=jnp.float32):
        if len(shape) != 2:
            raise ValueError(f"Identity needs a 2-D weight, got shape {tuple(shape)}")
        return gain * jnp.eye(shape[0], shape[1], dtype=dtype)

    return init


@fields(value=real(expected="a finite scalar (tf_keras reshapes an array value, Keras 3 broadcasts it)"))
def _constant(value=0.0):
    return jinit.constant(value)


REGISTRY: dict[str, Callable[..., Callable]] = {
    "Zeros": fields()(lambda: jinit.zeros),
    "Ones": fields()(lambda: jinit.ones),
    "Constant": _constant,
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
    resolved = resolve(
        identifier, argument=argument, kind="initializer", registry=REGISTRY, names=NAMES,
        ignored_keys=frozenset({"seed"}),
    )
    assert resolved is not None  # resolve returns None only for a None identifier, refused above
    return resolved
