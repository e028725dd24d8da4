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
