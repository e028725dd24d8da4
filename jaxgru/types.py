"""The type aliases of jaxgru's signatures, defined once."""

from __future__ import annotations

from typing import Any

import jax

__all__ = ["Dtype", "Params", "PyTree", "State"]

# One GRU layer's weights in Keras's layout, gates [z, r, h]:
# {"kernel": (D, 3U), "recurrent_kernel": (U, 3U), "bias": (3U,) | (2, 3U)} (no "bias" with
# use_bias=False). jaxgru functions take JAX or numpy arrays; the converters return numpy.
# (dict[str, Any]: dict is invariant, so a dict of JAX arrays would not type-check as a
# dict of "JAX or numpy arrays".)
Params = dict[str, Any]
# A GRU state (B, U): an array, or Keras's one-element list around it.
State = jax.Array | list | tuple
Dtype = Any
PyTree = Any
