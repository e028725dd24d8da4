"""jaxgru.keras.GRU: the TensorFlow-backend fallback here, the JAX-backend tests in child
processes.

This process runs Keras 3 on TensorFlow (conftest.py), where `GRU` must be exactly
``keras.layers.GRU``. Keras fixes its backend at import, so the JAX-backend files
(``tests/keras_jax/check_*.py``: Keras's own GRU tests, parity, models, distribution)
run in child ``pytest`` processes with ``KERAS_BACKEND=jax`` and four CPU devices; a child's
failure fails the test that ran it, with the child's report.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from references import TF, keras3

ROOT = Path(__file__).resolve().parent.parent
CHILD_DIR = Path(__file__).parent / "keras_jax"
# One child process per group (each pays for importing Keras and JAX once).
CHILD_GROUPS = {"keras_upstream": ["check_keras_gru.py", "check_keras_bidirectional.py"],
                "parity": ["check_parity.py"], "models": ["check_models.py"]}


def test_every_child_file_is_in_a_group():
    assert sorted(path.name for path in CHILD_DIR.glob("check_*.py")) == sorted(sum(CHILD_GROUPS.values(), []))


@pytest.mark.parametrize("group", CHILD_GROUPS)
def test_on_the_jax_backend(group):
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "XLA_FLAGS": (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip(),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o",
                          "python_files=check_*.py", *(str(CHILD_DIR / name) for name in CHILD_GROUPS[group])],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    report = f"{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
    assert run.returncode == 0, f"{CHILD_GROUPS[group]} failed on the JAX backend:\n{report}"
    assert " passed" in run.stdout and " skipped" not in run.stdout


@TF
def test_falls_back_to_keras_on_tensorflow():
    """On TensorFlow the layer is Keras's: the same outputs, states and dropout (same
    seed), with masks and go_backwards."""
    from jaxgru.keras import GRU

    assert keras3.backend.backend() == "tensorflow"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 5, 2)).astype(np.float32)
    mask = np.arange(5)[None, :] < np.array([[5], [2], [4]])
    kwargs = dict(return_sequences=True, return_state=True, go_backwards=True, dropout=0.3, recurrent_dropout=0.2,
                  seed=4)
    reference, ours = keras3.layers.GRU(4, **kwargs), GRU(4, **kwargs)
    reference.build((None, 5, 2))
    ours.build((None, 5, 2))
    ours.set_weights(reference.get_weights())
    for training in (False, True):
        expected = reference(x, mask=mask, training=training)
        got = ours(x, mask=mask, training=training)
        for g, e in zip(got, expected, strict=True):
            np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
