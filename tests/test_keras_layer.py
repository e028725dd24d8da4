"""jaxgru.keras.GRU on Keras 3's TensorFlow backend, where it must be exactly Keras's layer.

The JAX-backend tests (Keras's own GRU tests, parity, models, distribution) are in
``tests/keras_jax/``, in the test processes, whose Keras runs on JAX (conftest.py). Keras
fixes its backend at import, so this check runs in a child process with
``KERAS_BACKEND=tensorflow``.
"""

import os
import subprocess
import sys
from pathlib import Path

from references import CHILDREN

ROOT = Path(__file__).resolve().parent.parent

_ON_TENSORFLOW = """
import numpy as np
import keras
from jaxgru.keras import GRU

assert keras.backend.backend() == "tensorflow"
rng = np.random.default_rng(0)
x = rng.normal(size=(3, 5, 2)).astype(np.float32)
mask = np.arange(5)[None, :] < np.array([[5], [2], [4]])
kwargs = dict(return_sequences=True, return_state=True, go_backwards=True, dropout=0.3, recurrent_dropout=0.2,
              seed=4)
reference, ours = keras.layers.GRU(4, **kwargs), GRU(4, **kwargs)
reference.build((None, 5, 2))
ours.build((None, 5, 2))
ours.set_weights(reference.get_weights())
for training in (False, True):
    expected = reference(x, mask=mask, training=training)
    got = ours(x, mask=mask, training=training)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
print("same as keras.layers.GRU")
"""


@CHILDREN  # TensorFlow: about 1 GB
def test_falls_back_to_keras_on_tensorflow():
    """On TensorFlow the layer is Keras's: the same outputs, states and dropout (same
    seed), with masks and go_backwards."""
    env = {**os.environ, "KERAS_BACKEND": "tensorflow",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    run = subprocess.run([sys.executable, "-W", "error", "-c", _ON_TENSORFLOW], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "same as keras.layers.GRU" in run.stdout, run.stderr[-4000:]
