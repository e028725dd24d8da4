"""Tests of `jaxgru.keras.GRU` on Keras 3's JAX backend (the backend of every test process,
tests/conftest.py): Keras's own GRU and Bidirectional tests run against our layer as
upstream wrote them, parity with ``keras.layers.GRU``, and models."""

import pytest


def pytest_configure(config):
    # Keras's own layer-test harness (keras.src.testing.TestCase.run_layer_test) fits on a
    # generator with fit's default shuffle=True, and Keras warns that it ignores it.
    config.addinivalue_line("filterwarnings",
                            "ignore:`shuffle=True` was passed, but will be ignored:UserWarning:keras\\.src")


@pytest.fixture(autouse=True, scope="session")
def _keras_on_jax():
    import keras

    assert keras.backend.backend() == "jax", "tests/keras_jax needs Keras 3 on JAX (tests/conftest.py)"
