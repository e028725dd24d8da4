"""Argument checks shared by jaxgru's modules: each raises a TypeError/ValueError that
names the argument and what was expected."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


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
    """A real bool (Python or NumPy): a string such as ``"False"`` is truthy, so it is an
    error rather than a flag."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{argument}: expected a bool (True or False), got {value!r}.")
    return bool(value)


def check_flags(**flags: Any) -> None:
    """`check_bool` for each keyword: ``check_flags(training=training, ...)``."""
    for argument, value in flags.items():
        check_bool(value, argument)


def check_unroll(value: Any, argument: str = "unroll") -> int | bool:
    """`lax.scan`'s ``unroll``: a positive int (steps per loop iteration) or a bool
    (True unrolls the whole loop, False is 1)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return check_positive_int(value, argument)


def check_rate(rate: Any, argument: str) -> float:
    """A dropout rate, clipped to [0, 1] as Keras does; a rate of 1 or more (no dropout
    at all, where e.g. 50 meant 50% by mistake) warns."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{argument}: expected a float in [0, 1], got {rate!r}.")
    if math.isnan(rate):
        raise ValueError(f"{argument}: expected a float in [0, 1], got NaN.")
    if rate >= 1:  # type: ignore[operator]  # numbers.Real's stubs declare no comparison with int
        warnings.warn(f"{argument}={rate!r}: a rate of 1 or more is clipped to 1, which Keras (and jaxgru) "
                      "treat as no dropout at all; pass a fraction such as 0.5 for 50%.", UserWarning, stacklevel=4)
    return min(1.0, max(0.0, float(rate)))


def dropout_active(rate: float) -> bool:
    """Keras applies dropout only for ``0 < rate < 1`` (a rate of 1 disables it)."""
    return 0.0 < rate < 1.0


def check_floating(value: Any, argument: str) -> None:
    dtype = jnp.result_type(value)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{argument}: expected a floating-point array, got dtype {dtype}.")


def as_array(value: Any, argument: str, expected: str, accepts_dtype: Callable[[Any], bool]) -> jax.Array:
    """``value`` as a JAX array whose dtype ``accepts_dtype`` admits; anything else (None,
    strings, objects, other dtypes) is a TypeError saying ``expected`` (e.g. "integers
    of shape (B,)")."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{argument}: expected {expected}, got {value!r}.")
    try:
        array = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{argument}: expected {expected}, got {type(value).__name__} ({error}).") from None
    if not accepts_dtype(array.dtype):
        raise TypeError(f"{argument}: expected {expected}, got dtype {array.dtype}.")
    return array


def as_floating_array(value: Any, argument: str, expected: str) -> jax.Array:
    """``value`` as a JAX array of a real floating dtype; ``expected`` (e.g. ``"(B, U)"``)
    describes the shape in the error for anything else (None, strings, complex, ints)."""
    return as_array(value, argument, f"a floating-point array {expected}",
                    lambda dtype: jnp.issubdtype(dtype, jnp.floating))


def as_state(state: Any, argument: str, expected: str = "(B, U)") -> jax.Array:
    """A GRU state: an array, or (as Keras allows) a one-element list/tuple holding it."""
    if isinstance(state, (list, tuple)):
        if len(state) != 1:
            raise ValueError(f"{argument}: a GRU has one state tensor {expected}, got a sequence of {len(state)}.")
        state = state[0]
    return as_floating_array(state, argument, expected)


def check_key(key: Any, argument: str) -> jax.Array:
    """One PRNG key: a typed key array of shape ``()`` (`jax.random.key`) or a legacy
    1-D ``uint32`` key (`jax.random.PRNGKey`, ``(2,)`` for the default implementation)."""
    shape, dtype = getattr(key, "shape", None), getattr(key, "dtype", None)
    typed = dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)
    if not ((typed and shape == ()) or (dtype == jnp.uint32 and shape is not None and len(shape) == 1)):
        description = f"an array of shape {shape} and dtype {dtype}" if dtype is not None else repr(key)
        raise TypeError(f"{argument}: expected one PRNG key (jax.random.key(seed), or jax.random.PRNGKey(seed)), "
                        f"got {description}.")
    return key


def as_integer_array(value: Any, argument: str, expected: str, accepts_dtype: Callable[[Any], bool],
                     low: int, high: int, allowed: str) -> tuple[jax.Array, bool]:
    """``value`` as a JAX array of integers (or booleans, where ``accepts_dtype`` admits
    them) whose entries lie in ``[low, high]``; returns ``(array, traced)``.

    A concrete value (NumPy, a list, a concrete JAX array) is checked on the host with
    NumPy *before* any cast, so an ``np.int64`` or ``uint64`` beyond int32 is refused
    rather than wrapped by JAX's 32-bit default: a ValueError saying ``allowed`` (e.g.
    "lengths in [0, T] = [0, 6]"). A traced value cannot be checked here: ``traced`` is
    True and the caller checks it in the program (`invalid_rows`).
    """
    if isinstance(value, jax.core.Tracer):
        return as_array(value, argument, expected, accepts_dtype), True
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{argument}: expected {expected}, got {value!r}.")
    try:
        host = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise TypeError(f"{argument}: expected {expected}, got {type(value).__name__} ({error}).") from None
    if not accepts_dtype(host.dtype):
        raise TypeError(f"{argument}: expected {expected}, got dtype {host.dtype}.")
    if host.dtype != np.bool_ and host.size:
        smallest, largest = host.min(), host.max()  # NumPy integers: exact, no wrap-around
        if smallest < low or largest > high:
            raise ValueError(f"{argument}: expected {allowed}, got values from {smallest} to {largest}.")
    return (value if isinstance(value, jax.Array) else jnp.asarray(host)), False


def shown_keys(keys: Any, most: int = 8, characters: int = 60) -> str:
    """At most ``most`` of ``keys`` (sorted as text, each repr cut to ``characters``) for
    an error message, then "...and N more": a hostile dict can hold millions of keys, or
    huge ones."""
    keys = sorted(keys, key=str)
    texts = [repr(key) if len(repr(key)) <= characters else repr(key)[:characters] + "..." for key in keys[:most]]
    more = f", ...and {len(keys) - most} more" if len(keys) > most else ""
    return f"[{', '.join(texts)}{more}]"


def reject_float_flags(value: Any, argument: str) -> None:
    """A TypeError for floating reset flags, saying to pass ``done.astype(bool)`` (an
    environment's float ``done`` is 0.0/1.0, but jaxgru takes booleans or 0/1 integers,
    as for masks); any other value is left to the flags' own checks."""
    if value is None or isinstance(value, (str, bytes)):
        return
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        try:
            dtype = np.asarray(value).dtype
        except (TypeError, ValueError, OverflowError):
            return
    if np.issubdtype(dtype, np.floating) or dtype == jnp.bfloat16:
        raise TypeError(f"{argument}: expected booleans (or 0/1 integers), got dtype {dtype}; for float done "
                        "flags pass done.astype(bool).")


def broadcast_state(value: Any, argument: str, shape: tuple[Any, ...], dtype: Any) -> jax.Array:
    """A state-like argument (an array, or a one-element list holding it) broadcast to
    ``shape`` = ``(*batch, U)`` in ``dtype``: ``(U,)``, a scalar, ``(*batch, U)`` or any
    shape that broadcasts to it. A shape that does not is a ValueError naming ``argument``."""
    state = as_state(value, argument, f"broadcasting to (*batch, U) = {shape}")
    try:
        broadcast = jnp.broadcast_to(state, shape)
    except (TypeError, ValueError):
        raise ValueError(f"{argument}: expected a shape that broadcasts to (*batch, U) = {shape} (for example "
                         f"(U,), a scalar or (*batch, U)), got {tuple(state.shape)}.") from None
    return broadcast.astype(dtype)
