"""Helpers that build the real tf_keras reference layers with random weights."""

from __future__ import annotations

import numpy as np

from references import keras

WEIGHT_NAMES = ("kernel", "recurrent_kernel", "bias")


def randomize(layer, seed: int, scale: float = 0.5) -> None:
    """Replaces every weight of a built Keras layer by N(0, scale) values (non-zero biases)."""
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])


def keras_cell(units: int, input_dim: int, seed: int = 0, scale: float = 0.5, **options):
    """A built tf_keras GRUCell with random N(0, scale) weights."""
    cell = keras.layers.GRUCell(units, **options)
    cell.build((None, input_dim))
    randomize(cell, seed, scale)
    return cell


def params_of(weights) -> dict:
    """jaxgru params from Keras's ``get_weights()`` list ([kernel, recurrent_kernel, bias])."""
    return {name: np.asarray(w) for name, w in zip(WEIGHT_NAMES, weights)}
