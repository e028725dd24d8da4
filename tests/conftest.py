"""Shared test setup: quiet TensorFlow on the CPU, Keras 3 on TensorFlow, and a float64 switch
for gradient checks."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Keras 3 on its default TensorFlow backend in every test process, before any test module
# is collected (benchmarks.peers, imported by test_benchmarks, would otherwise pick JAX).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import jax  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def x64():
    """Runs the test with float64 enabled in JAX (float32 stays the default elsewhere)."""
    with jax.enable_x64(True):
        yield


# The quick tier, `pytest -m "not slow"`: the cell, the runner and the fused backward
# pass against their references, in under 2 minutes on 2 cores. Every other test file
# (interop, Flax and Equinox modules, export, notebooks, docs, README, demo, benchmarks,
# hostile files) is marked slow here; a test in a quick file can mark itself slow.
QUICK_FILES = {
    "test_cell_config.py", "test_cell_dropout.py", "test_cell_errors.py", "test_cell_initializers.py",
    "test_cell_keras_parity.py", "test_cell_transforms.py", "test_check_site.py", "test_fused_backward.py",
    "test_loop_constants.py", "test_public_surface.py", "test_resets.py", "test_rnn_errors.py",
    "test_rnn_grads.py", "test_rnn_keras_parity.py", "test_rnn_shapes.py", "test_rnn_transforms.py",
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name not in QUICK_FILES:
            item.add_marker(pytest.mark.slow)
