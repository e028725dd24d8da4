"""Tests of `jaxgru.keras` on Keras 3's JAX backend.

Keras fixes its backend when first imported, and the main test process runs Keras 3 on
TensorFlow, so these files (``check_*.py``, a name the main collection does not pick up)
run in child processes started by ``tests/test_keras_layer.py`` with ``KERAS_BACKEND=jax``
and four CPU devices (``XLA_FLAGS=--xla_force_host_platform_device_count=4``). To run one
by hand::

    KERAS_BACKEND=jax XLA_FLAGS=--xla_force_host_platform_device_count=4 \\
        python -m pytest -o python_files='check_*.py' tests/keras_jax/check_parity.py
"""

import pytest


def pytest_configure(config):
    # Keras's own layer-test harness (keras.src.testing.TestCase.run_layer_test) fits on a
    # generator with fit's default shuffle=True, and Keras warns that it ignores it.
    config.addinivalue_line("filterwarnings",
                            "ignore:`shuffle=True` was passed, but will be ignored:UserWarning:keras\\.src")


@pytest.fixture(autouse=True, scope="session")
def _keras_on_jax():
    import keras

    assert keras.backend.backend() == "jax", "tests/keras_jax needs KERAS_BACKEND=jax (see this conftest)"
