"""Hostile input at the seams: traced lengths, masks and resets that the eager checks would
refuse (NaN rows, never a clamp), integers checked before any cast, torch state dicts with
absurd layer indices or meta tensors, self-containing Keras configs, stacked_rnn's explicit
dropout masks, an indivisible batch on a mesh, and error messages that stay short."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import random_params
from references import HEAVY, torch

import jaxgru
import jaxgru.interop
from jaxgru.equinox import GRU as EqxGRU
from jaxgru.interop.keras_layers import layer_from_config
from jaxgru.linen import GRU as LinenGRU
from jaxgru.nnx import GRU as NnxGRU

B, T, D, U = 3, 6, 4, 5
CELL = jaxgru.GRUCell(U)
PARAMS = random_params(CELL, D)
X = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
LONGEST_MESSAGE = 1000  # a fixed list of the keys expected, and a handful of the keys given


def _nan_rows(*arrays):
    """Per row, whether every entry of every array is NaN (False where none is; a row
    partly NaN fails)."""
    rows = []
    for array in arrays:
        flat = np.isnan(np.asarray(array)).reshape(B, -1)
        assert np.all(flat.all(axis=1) | ~flat.any(axis=1)), "a row is partly NaN"
        rows.append(flat.all(axis=1))
    assert all(np.array_equal(rows[0], r) for r in rows)
    return rows[0]


# ---------------------------------------------------------------- traced per-row arguments
RNN = jax.jit(lambda lengths, x: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=lengths))


@pytest.mark.parametrize("lengths,bad", [([-1, 4, 2], [True, False, False]), ([600, 4, T], [True, False, False]),
                                         ([2, -2 ** 31, T + 1], [False, True, True])])
def test_traced_lengths_out_of_range_give_nan_rows(lengths, bad):
    """[-1, 4, 2] used to act as [0, 4, 2], [600, 4, 2] as [T, 4, 2]: now the affected
    rows' outputs and final state are NaN (so a loss over them is NaN), the other rows
    are exactly the eager call's."""
    outputs, final = RNN(jnp.asarray(lengths, jnp.int32), X)
    np.testing.assert_array_equal(_nan_rows(outputs, final), bad)
    good = ~np.asarray(bad)
    valid = np.clip(lengths, 0, T)
    expected_out, expected_final = jaxgru.rnn(CELL, PARAMS, X[good], seq_lengths=valid[good])
    np.testing.assert_allclose(outputs[good], expected_out, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(final[good], expected_final, rtol=1e-6, atol=1e-7)
    # a loss over a NaN row is NaN, and so are the gradients its steps reach
    loss, grads = jax.jit(jax.value_and_grad(lambda p, n: jnp.sum(jaxgru.rnn(CELL, p, X, seq_lengths=n)[1])))(
        PARAMS, jnp.asarray(lengths, jnp.int32))
    assert np.isnan(loss)
    if max(lengths) > T:  # the row runs (as if clamped to T) and its NaN cotangent reaches every weight
        assert all(np.isnan(np.asarray(g)).all() for g in grads.values())


def test_traced_lengths_inside_jit_and_in_an_exported_function():
    """Lengths built inside the jitted function with jnp (traced) and an exported
    function's lengths argument behave alike; NumPy lengths built inside the function are
    concrete and checked when traced."""
    inside = jax.jit(lambda x: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=jnp.array([-1, 4, 2]))[1])(X)
    np.testing.assert_array_equal(_nan_rows(inside), [True, False, False])
    with pytest.raises(ValueError, match=r"seq_lengths: expected lengths in \[0, T\] = \[0, 6\], got values "
                                         "from -1 to 4"):
        jax.jit(lambda x: jaxgru.rnn(CELL, PARAMS, x, seq_lengths=np.array([-1, 4, 2]))[1])(X)
    exported = jax.export.export(RNN)(jax.ShapeDtypeStruct((B,), jnp.int32), jax.ShapeDtypeStruct(X.shape, X.dtype))
    rebuilt = jax.export.deserialize(exported.serialize())
    outputs, final = rebuilt.call(jnp.asarray([2, 7, -3], jnp.int32), X)
    np.testing.assert_array_equal(_nan_rows(outputs, final), [False, True, True])


@pytest.mark.parametrize("value", [np.full(B, 2 ** 32 + 3, np.int64), np.full(B, 2 ** 63, np.uint64),
                                   [2 ** 40, 1, 1], np.array([3, 2, -(2 ** 32) + 2])])
def test_eager_lengths_are_checked_before_any_cast(value):
    """With x64 off JAX casts int64 to int32: 2**32 + 3 would wrap to 3 and pass."""
    with pytest.raises(ValueError, match=r"seq_lengths: expected lengths in \[0, T\] = \[0, 6\]"):
        jaxgru.rnn(CELL, PARAMS, X, seq_lengths=value)
    with pytest.raises(ValueError, match=r"seq_lengths: expected lengths in \[0, T\]"):
        jaxgru.bidirectional(CELL, {"forward": PARAMS, "backward": PARAMS}, X, seq_lengths=value)


@pytest.mark.parametrize("argument", ["mask", "resets"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64, np.int8])
def test_integer_flags_other_than_0_and_1(argument, dtype):
    """Eager: a ValueError (uint8 2 and int64 2**32 + 1 were True / wrapped to 1);
    traced: the rows holding such a value are NaN. Booleans and 0/1 integers of any
    dtype run as before."""
    flags = np.ones((B, T), dtype)
    flags[:, 1:] = 0
    expected = jaxgru.rnn(CELL, PARAMS, X, **{argument: flags.astype(bool)})
    np.testing.assert_array_equal(jaxgru.rnn(CELL, PARAMS, X, **{argument: flags})[0], expected[0])
    bad = flags.copy()
    bad[1, 3] = 2 if dtype != np.int64 else 2 ** 32 + 1
    with pytest.raises(ValueError, match=f"{argument}: expected booleans or integers 0 and 1, got values from 0"):
        jaxgru.rnn(CELL, PARAMS, X, **{argument: bad})
    traced = jax.jit(lambda f: jaxgru.rnn(CELL, PARAMS, X, **{argument: f}))
    bad32 = flags.astype(np.int32)  # the traced flags: int32, as JAX holds integers without x64
    bad32[1, 3] = 2
    outputs, final = traced(jnp.asarray(bad32))
    np.testing.assert_array_equal(_nan_rows(outputs, final), [False, True, False])
    np.testing.assert_allclose(outputs[0], expected[0][0], rtol=1e-6, atol=1e-7)


def test_stacked_and_layers_share_the_rule():
    """stacked_rnn and the Flax linen, NNX and Equinox layers run jaxgru.rnn: traced bad
    lengths give NaN rows there too."""
    lengths = jnp.asarray([-1, 4, 9], jnp.int32)
    layers = [PARAMS, random_params(CELL, U, 1)]
    outputs, finals = jax.jit(lambda n: jaxgru.stacked_rnn(CELL, layers, X, seq_lengths=n))(lengths)
    np.testing.assert_array_equal(_nan_rows(outputs, finals[0], finals[1]), [True, False, True])

    linen = LinenGRU(U, return_sequences=True)
    variables = linen.init(jax.random.key(0), X)
    out = jax.jit(lambda n: linen.apply(variables, X, seq_lengths=n))(lengths)
    np.testing.assert_array_equal(_nan_rows(out), [True, False, True])

    layer = NnxGRU(D, U, return_sequences=True, rngs=nnx.Rngs(0))
    out = nnx.jit(lambda m, n: m(X, seq_lengths=n))(layer, lengths)
    np.testing.assert_array_equal(_nan_rows(out), [True, False, True])

    module = EqxGRU(D, U, key=jax.random.key(0))
    out, final = eqx.filter_jit(lambda m, n: m(X, seq_lengths=n))(module, lengths)
    np.testing.assert_array_equal(_nan_rows(out, final), [True, False, True])


# ---------------------------------------------------------------- stacked_rnn's dropout masks
def test_stacked_rnn_refuses_explicit_dropout_masks():
    """The one set of masks used to be applied to every layer (and failed at layer 1
    with a shape error when D != U)."""
    cell = jaxgru.GRUCell(U, dropout=0.5)
    masks = cell.dropout_masks(jax.random.key(0), B, D)
    for name in ("dropout_masks", "masks"):
        with pytest.raises(ValueError, match=f"{name}: one DropoutMasks fits one layer's input size.*"
                                             "call jaxgru.rnn once per layer"):
            jaxgru.stacked_rnn(cell, [PARAMS, random_params(cell, U, 1)], X, training=True,
                               rng=jax.random.key(1), **{name: masks})


# ---------------------------------------------------------------- torch state dicts
def _state_dict(**extra):
    state_dict = {k: v.numpy() for k, v in torch.nn.GRU(D, U, num_layers=2).state_dict().items()}
    state_dict.update(extra)
    return state_dict


@HEAVY
@pytest.mark.parametrize("key,match", [
    ("weight_ih_l99999999999999999999", r"state_dict\['weight_ih_l99999999999999999999'\]: layer index "
                                        r"99999999999999999999, but the state dict holds only 9 keys"),
    ("bias_hh_l" + "9" * 5000, r"state_dict\['bias_hh_l9999.*\.\.\. \(5011 characters\)\]: layer index 9{20}"
                               r"\.\.\. \(5000 digits\), but"),
    ("weight_hh_l3_reverse", r"state_dict\['weight_hh_l3_reverse'\]: a key of layer 3, but no keys of layer 2"),
])
def test_from_torch_stack_bounds_layer_indices_by_the_dict(key, match):
    """One crafted key used to build a list of every missing layer up to its index (past
    5 GB) and print it; now the index is bounded by the dict's size and named."""
    with pytest.raises(ValueError, match=match) as error:
        jaxgru.from_torch_stack(_state_dict(**{key: np.zeros((3 * U, D), np.float32)}))
    assert len(str(error.value)) < LONGEST_MESSAGE


@HEAVY
def test_meta_tensors_are_refused_naming_the_key():
    with torch.device("meta"):
        module = torch.nn.GRU(D, U, num_layers=2)
    with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l0'\]: a tensor on the 'meta' device"):
        jaxgru.from_torch_stack(module.state_dict())
    with pytest.raises(ValueError, match=r"state_dict\['weight_ih_l1'\]: a tensor on the 'meta' device"):
        jaxgru.from_torch(module.state_dict(), layer=1)


def test_messages_list_a_handful_of_keys():
    """Dicts of many (or huge) keys: every message lists at most 8 of them."""
    many = {f"key_{i}": np.zeros(1, np.float32) for i in range(10 ** 5)}
    calls = [
        (lambda: jaxgru.from_torch(many), r"present keys: \['key_0', .*, \.\.\.and 99992 more\]"),
        (lambda: jaxgru.from_torch_stack(many), r"no nn.GRU keys.*\.\.\.and 99992 more\]"),
        (lambda: CELL.check_params({**PARAMS, **many}), r"params: unexpected keys .*\.\.\.and 99992 more\]"),
        (lambda: jaxgru.GRUCell.from_config({"units": U, **many}), r"config: unknown keys .*and 99992 more\]"),
        (lambda: layer_from_config({"units": U, **many}), r"config: unknown keys .*and 99992 more\]"),
        (lambda: jaxgru.from_haiku(many), r"got 100000 modules \[.*and 99992 more\]"),
        (lambda: jaxgru.from_flax_linen({**many, "ir": {}}), r"unexpected keys .*and 99992 more\]"),
    ]
    for call, match in calls:
        with pytest.raises(ValueError, match=match) as error:
            call()
        assert len(str(error.value)) < LONGEST_MESSAGE


# ---------------------------------------------------------------- Keras layer configs
def _deep(depth, key):
    config = {"units": U}
    inner = config
    for _ in range(depth):
        inner[key] = {"config": {}}
        inner = inner[key]["config"]
    return config


def test_layer_from_config_bounds_depth_and_refuses_cycles():
    """A 100,000-deep or self-containing config used to raise RecursionError naming nothing."""
    with pytest.raises(ValueError, match=r"config\['name'\]\['config'\].*nested more than 64 dicts and lists"):
        layer_from_config(_deep(10 ** 5, "name"))
    cyclic = {"units": U, "kernel_initializer": {"class_name": "Zeros", "config": {}}}
    cyclic["kernel_initializer"]["config"]["loop"] = cyclic["kernel_initializer"]
    with pytest.raises(ValueError, match=r"config\['kernel_initializer'\]\['config'\]\['loop'\]: contains itself"):
        layer_from_config(cyclic)
    itself = {"units": U}
    itself["dtype"] = itself
    with pytest.raises(ValueError, match=r"config\['config'\]\['dtype'\]: contains itself"):
        layer_from_config({"class_name": "GRU", "config": itself})
    cell, _ = layer_from_config(_deep(3, "dtype"))  # ignored key, shallow: read
    assert cell == jaxgru.GRUCell(U)


# ---------------------------------------------------------------- a batch that does not divide the mesh
INDIVISIBLE = textwrap.dedent("""
    import os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax, numpy as np, optax
    from jaxgru import parallel

    mesh = parallel.data_mesh()
    step = parallel.make_train_step(lambda p, b, k: (p["w"] * b["x"]).mean(), optax.sgd(0.1), mesh, donate=False)
    try:
        step({"w": jax.numpy.ones(())}, optax.sgd(0.1).init({"w": jax.numpy.ones(())}),
             {"x": np.ones((3, 4), np.float32)}, None)
        print("no error")
    except Exception as error:
        print(type(error).__name__, error)
""")


def test_an_indivisible_batch_names_the_batch_and_the_mesh():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", INDIVISIBLE], capture_output=True, text=True, env=env, timeout=300,
                         check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.startswith("ValueError batch['x']: batch size 3 (dimension 0 of shape (3, 4)) does not "
                                 "divide over the 2 devices of mesh axis 'data' (mesh {'data': 2})"), run.stdout
