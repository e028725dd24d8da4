"""What a Keras-style GRU layer module must return: `jaxgru.rnn` with the layer's options."""

import functools

import jax
import jax.numpy as jnp

import helpers
import jaxgru

# A small problem shared by the Flax layer tests: (B, T, D) inputs, (B, U) states, and a
# (B, T) mask with right, left and mixed padding.
B, T, D, U = 3, 5, 4, 6
X = jax.random.normal(jax.random.key(1), (B, T, D))
H0 = jax.random.normal(jax.random.key(2), (B, U))
ROW_MASK = jnp.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], bool)

# (layer options, mask, initial_state) for "a GRU layer module equals jaxgru.rnn".
LAYER_CASES = [
    (dict(return_sequences=True), None, None),
    (dict(return_state=True, go_backwards=True, reset_after=False), ROW_MASK, H0),
    (dict(return_sequences=True, return_state=True, zero_output_for_mask=True, implementation=1), ROW_MASK, None),
    (dict(return_sequences=True, time_major=True, use_bias=False, activation="relu"), ROW_MASK.T, H0),
]


# A layer module against `jaxgru.rnn` (arrays or pytrees): within 1e-6 absolute and relative.
assert_close = functools.partial(helpers.assert_close, atol=1e-6, rtol=1e-6)

LAYER_FLAGS = ("go_backwards", "return_sequences", "time_major", "zero_output_for_mask")


def expected_layer_output(cell, params, inputs, options, mask=None, initial_state=None):
    """``outputs``, or ``(outputs, final_state)`` with ``options["return_state"]``."""
    outputs, final = jaxgru.rnn(cell, params, inputs, mask=mask, initial_state=initial_state,
                                **{k: options.get(k, False) for k in LAYER_FLAGS})
    return (outputs, final) if options.get("return_state") else outputs
