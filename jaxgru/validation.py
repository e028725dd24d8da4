"""Argument checks shared by jaxgru's modules: each raises a TypeError/ValueError that
names the argument and what was expected."""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax.numpy as jnp


def check_int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{argument}: expected an integer, got {value!r}.")
    return int(value)


def check_positive_int(value: Any, argument: str) -> int:
    value = check_int(value, argument)
    if value <= 0:
        raise ValueError(f"{argument}: expected a positive integer, got {value}.")
    return value


def check_bool(value: Any, argument: str) -> bool:
    if not isinstance(value, (bool, jnp.bool_)):
        raise TypeError(f"{argument}: expected a bool, got {value!r}.")
    return bool(value)


def check_rate(rate: Any, argument: str) -> float:
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{argument}: expected a float in [0, 1], got {rate!r}.")
    if math.isnan(rate):
        raise ValueError(f"{argument}: expected a float in [0, 1], got NaN.")
    return min(1.0, max(0.0, float(rate)))  # clipped, as Keras does


def check_floating(value: Any, argument: str) -> None:
    dtype = jnp.result_type(value)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{argument}: expected a floating-point array, got dtype {dtype}.")
