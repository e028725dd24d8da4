"""An autouse, module-scoped fixture for the test files whose time is mostly XLA compiling
small programs (framework wrappers, converters, examples at toy sizes): import
`without_backend_optimizations` into such a file and its tests compile with JAX's
``jax_disable_most_optimizations`` (XLA's backend optimization level 0, LLVM's expensive
passes off). Measured on test_equinox_modules.py: 30.7 -> 19.4 CPU-seconds, the same tests
passing. The programs do the same operations (XLA's HLO passes still run) but may round
differently in the last bit (measured: flax's GRUCell init jitted against eager, 1e-7
apart), so a file that compares two different programs bit for bit (a jitted conversion
against the eager one, as test_interop_traced.py does) must not use it. The flag goes back to its previous
value when the file's tests are done; it is part of the key of JAX's compilation cache, so
no program compiled here is served to another file."""

import jax
import pytest


@pytest.fixture(scope="module", autouse=True)
def without_backend_optimizations():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
