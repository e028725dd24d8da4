"""Shared test setup: quiet TensorFlow on the CPU, Keras 3 on JAX, eight CPU devices, a
compilation cache for the test run, and a float64 switch for gradient checks."""

import atexit
import ctypes
import gc
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
# Keras 3 on JAX in every test process, set before any test module is collected (Keras
# fixes its backend at import): `jaxgru.keras.GRU` is tested in the backend it serves, and
# Keras 3 does not import TensorFlow. Its TensorFlow fallback runs in a child process
# (test_keras_layer.py).
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("MPLBACKEND", "Agg")  # figures drawn by docs blocks and examples are never shown
# Most of the suite's time is XLA compiling small programs that then run once or a few
# times. Every test process, and every child process a test starts, compiles with XLA's
# backend optimizations off (JAX's jax_disable_most_optimizations: backend optimization
# level 0, LLVM's expensive passes off; XLA's graph passes still run): the same operations,
# a third to a half less compile time. A program may then round differently in the last bit
# than at JAX's default; a test that compares two programs bit for bit carries the
# `xla_optimized` marker and compiles at the default.
# JAX_DISABLE_MOST_OPTIMIZATIONS=0 runs the whole suite at the default.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import pytest  # noqa: E402
from references import CHILDREN, HEAVY, HEAVY_MODULES  # noqa: E402

# Eight CPU devices in every test process, so that the data-parallel tests (jaxgru.parallel,
# Keras's distribution API) run here and not in child processes. A jitted function without
# shardings still runs on the first device alone. Child processes that tests start keep
# JAX's default (the setting is this process's, not the environment's).
TEST_DEVICES = 8

# Most of the suite's time is XLA compilation, and tests compile the same program through
# different functions (a new jax.jit or lambda per test, the same shapes). JAX's persistent
# compilation cache, keyed by the program itself, compiles each one once: every test process
# gets a fresh, empty directory of its own, removed when its session ends, so nothing is
# carried from one run to the next and only one process writes to a directory (JAX writes
# entries in place, so a reader in another process could see half an entry). Child
# processes that tests start are not given it. JAXGRU_TEST_COMPILATION_CACHE=0 turns it off.
_CACHE_DIR: list[str] = []


def pytest_configure(config):
    # The xdist controller hands the tests to its workers and runs none: it never imports
    # JAX (about 100 MB).
    if not hasattr(config, "workerinput") and getattr(config.option, "numprocesses", None):
        return
    import jax

    jax.config.update("jax_num_cpu_devices", TEST_DEVICES)
    if os.environ.get("JAXGRU_TEST_COMPILATION_CACHE", "1") != "0":
        _CACHE_DIR.append(tempfile.mkdtemp(prefix="jaxgru-test-xla-"))
        atexit.register(shutil.rmtree, _CACHE_DIR[0], ignore_errors=True)  # xdist workers may not reach it
        jax.config.update("jax_compilation_cache_dir", _CACHE_DIR[0])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # every program, however quick
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)  # of any size


def pytest_sessionfinish(session, exitstatus):
    # Before an xdist worker reports that it finished: the controller may end it right after.
    for directory in _CACHE_DIR:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(autouse=True)
def _xla_optimized(request):
    """JAX's default compiler optimizations for a test marked ``xla_optimized``."""
    if request.node.get_closest_marker("xla_optimized") is None:
        yield
        return
    import jax

    # The setting is not part of the key of JAX's in-memory caches: an operation compiled
    # eagerly by an earlier test would be served as it was, so the caches are dropped on
    # the way in and out (the run's compilation cache on disk keys by the setting).
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.clear_caches()
    jax.config.update("jax_disable_most_optimizations", False)
    try:
        yield
    finally:
        jax.config.update("jax_disable_most_optimizations", previous)
        jax.clear_caches()


@pytest.fixture
def x64():
    """Runs the test with float64 enabled in JAX (float32 stays the default elsewhere)."""
    import jax

    with jax.enable_x64(True):
        yield


# The quick tier, `pytest -m "not slow"`: the cell, the runner and the fused backward pass
# against their references, each test function of these files once: its first
# parametrized case (a test lists its most telling case first). Every other case, and
# every test of the other files (interop, Flax and Equinox modules, export, notebooks,
# docs, README, demo, benchmarks, hostile files), is marked slow here; a test in a quick
# file can also mark itself slow.
QUICK_FILES = {
    "test_cell_config.py", "test_cell_dropout.py", "test_cell_errors.py", "test_cell_initializers.py",
    "test_cell_keras_parity.py", "test_cell_transforms.py", "test_check_site.py", "test_fused_backward.py",
    "test_loop_constants.py", "test_public_surface.py", "test_resets.py", "test_rnn_errors.py",
    "test_rnn_grads.py", "test_rnn_keras_parity.py", "test_rnn_shapes.py", "test_rnn_transforms.py",
}


# Keras's own test files, kept as upstream wrote them, run Keras 3, which imports TensorFlow
# where it is installed (references.py): every test in this directory is in references.HEAVY.
KERAS_JAX = Path(__file__).parent / "keras_jax"


def pytest_collection_modifyitems(config, items):
    quick_functions = set()
    for item in items:
        if KERAS_JAX in item.path.parents:
            item.add_marker(HEAVY)
        function = item.nodeid.partition("[")[0]
        if item.path.name not in QUICK_FILES or function in quick_functions:
            item.add_marker(pytest.mark.slow)
        quick_functions.add(function)
    if getattr(config.option, "loadgroup", False):  # an xdist worker under --dist loadgroup
        _add_xdist_groups(items)


def _add_xdist_groups(items):
    """The ``@group`` suffix that pytest-xdist's --dist loadgroup schedules by, on the node ids
    of the tests marked xdist_group, where xdist could not add it: pytest 9.2 keeps node ids
    in ``Node._id``, and xdist 3.8 still writes ``_nodeid`` (pytest-dev/pytest-xdist#1386),
    so every group would be spread over the workers."""
    try:
        from _pytest.nodeid import coerce_node_id
    except ImportError:  # another pytest: the groups are then xdist's own (or spread, still correct)
        return
    for item in items:
        groups = {str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                  for mark in item.iter_markers("xdist_group")}
        if groups and hasattr(item, "_id") and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = coerce_node_id(f"{item.nodeid}@{'_'.join(sorted(groups))}")


# Every xdist worker collects every file: a file that imported TensorFlow or torch at the
# top would load them (about 650 MB) into every worker. Test files reach them through
# tests/references.py, imported on first use, and the tests that use them carry
# references.HEAVY, the xdist group that keeps them on one worker (--dist loadgroup).
@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    heavy = [name for name in HEAVY_MODULES if name not in sys.modules]
    report = yield
    loaded = [name for name in heavy if name in sys.modules]
    if loaded and isinstance(collector, pytest.Module) and collector.path.parent == Path(__file__).parent:
        report.outcome = "failed"
        report.longrepr = (f"{collector.path.name} imports {', '.join(loaded)} when collected: import it "
                           "through tests/references.py (on first use), and mark the tests that use "
                           "it with references.HEAVY")
    return report


def _in_group(node, group) -> bool:
    return any(mark.args == group.mark.args for mark in node.iter_markers("xdist_group"))


@pytest.fixture(autouse=True)
def _heavy_modules_stay_in_their_group(request):
    """Fails a test outside references.HEAVY that imports one of HEAVY_MODULES: it would load
    them into a second worker. (Blind where an earlier test of the process loaded them.)"""
    if _in_group(request.node, HEAVY):
        yield
        return
    absent = [name for name in HEAVY_MODULES if name not in sys.modules]
    yield
    loaded = [name for name in absent if name in sys.modules]
    if loaded:
        pytest.fail(f"{request.node.nodeid} imported {', '.join(loaded)}: mark it with references.HEAVY",
                    pytrace=False)


# A worker that has compiled many programs holds them all (and the traces behind them)
# until it exits. Once a process has grown by RELEASE_GROWTH_BYTES since its previous
# release (or since its first test began), the end of a test drops JAX's in-memory caches
# and Keras's graph state, and hands the freed memory back to the system (glibc's
# malloc_trim: freed memory otherwise stays in the process; measured on 40 small gradient
# programs: 779 MB resident, 771 MB after jax.clear_caches, 324 MB after the trim). A
# later test that needs a program again reads it from the run's compilation cache.
RELEASE_GROWTH_BYTES = 1 << 28  # 256 MiB
_released_at: list[int] = []  # the resident size after the last release


def _resident_bytes() -> int:
    """This process's resident set size; 0 where /proc is not there (nothing is released)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _return_freed_memory() -> None:
    """glibc's ``malloc_trim(0)``; nothing where the C library is another."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _release() -> None:
    """Drops JAX's in-memory caches and Keras's graph state, and hands the freed memory back."""
    import jax

    jax.clear_caches()
    for name in ("tf_keras", "keras"):
        if name in sys.modules:
            sys.modules[name].backend.clear_session()
    gc.collect()
    _return_freed_memory()
    _released_at.append(_resident_bytes())


@pytest.fixture(autouse=True)
def _release_compiled_programs(request):
    if not _released_at:
        _released_at.append(_resident_bytes())
    # A test that starts memory-heavy children (references.CHILDREN) first releases
    # whatever this worker holds beyond its imports, so that the children run beside a
    # lean worker.
    if _in_group(request.node, CHILDREN):
        _release()
    yield
    if _resident_bytes() > _released_at[-1] + RELEASE_GROWTH_BYTES:
        _release()
