"""from_equinox / to_equinox against equinox.nn.GRUCell."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import assert_matches_rnn, random_params, randomized

import jaxgru
from jaxgru.interop.equinox import from_equinox, to_equinox

INPUT, UNITS, BATCH, STEPS = 3, 4, 2, 5
X = jax.random.normal(jax.random.key(0), (BATCH, STEPS, INPUT))
ARRAYS = ("weight_ih", "weight_hh", "bias", "bias_n")


def random_cell(use_bias=True, dtype=None, seed=1):
    """An eqx.nn.GRUCell with every array redrawn (larger than its default init)."""
    cell = eqx.filter_eval_shape(
        lambda: eqx.nn.GRUCell(INPUT, UNITS, use_bias=use_bias, dtype=dtype, key=jax.random.key(seed)))
    return jax.tree.map(jnp.asarray, randomized(cell, seed))


def run_equinox(_, module, x):
    """The sequence run Equinox's way: a scan over unbatched steps, vmapped over the batch."""
    def one(xs):
        def step(h, x):
            h = module(x, h)
            return h, h
        final, outputs = jax.lax.scan(step, jnp.zeros(UNITS, xs.dtype), xs)
        return outputs, final
    return jax.vmap(one)(x)


def assert_matches(module, cell, params):
    assert_matches_rnn((run_equinox, None, module), cell, params, X)


def test_from_equinox_matches_equinox():
    module = random_cell()
    cell, params = from_equinox(module)
    assert cell == jaxgru.GRUCell(UNITS, reset_after=True)
    assert {k: v.shape for k, v in params.items()} == cell.param_shapes(INPUT)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in params.values())
    np.testing.assert_array_equal(params["bias"][1, :2 * UNITS], 0)
    np.testing.assert_array_equal(params["bias"][1, 2 * UNITS:], module.bias_n)
    assert_matches(module, cell, params)


def test_to_equinox_matches_jaxgru_and_folds_recurrent_bias():
    cell = jaxgru.GRUCell(UNITS, reset_after=True)
    params = random_params(cell, INPUT)
    assert np.all(params["bias"][1] != 0)
    module = to_equinox(params)
    assert isinstance(module, eqx.nn.GRUCell) and module.use_bias
    assert (module.input_size, module.hidden_size) == (INPUT, UNITS)
    assert all(isinstance(getattr(module, n), jax.Array) and getattr(module, n).dtype == jnp.float32 for n in ARRAYS)
    assert_matches(module, cell, params)
    expected = np.array(params["bias"])
    expected[0, :2 * UNITS] += expected[1, :2 * UNITS]
    expected[1, :2 * UNITS] = 0
    back_cell, back = from_equinox(module)
    assert back_cell == cell
    np.testing.assert_allclose(back["bias"], expected, rtol=1e-6, atol=1e-7)
    for name in ("kernel", "recurrent_kernel"):
        np.testing.assert_array_equal(back[name], params[name])


@pytest.mark.parametrize("use_bias", [True, False])
def test_round_trip_is_exact(use_bias):
    module = random_cell(use_bias)
    cell, params = from_equinox(module)
    assert cell.use_bias == use_bias and cell.reset_after
    again = to_equinox(params, cell)
    assert again.use_bias == use_bias
    for name in ARRAYS:
        a, b = getattr(again, name), getattr(module, name)
        if not use_bias and name.startswith("bias"):
            assert a is None and b is None
            continue
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a).view(np.uint32), np.asarray(b).view(np.uint32))
    params_back = from_equinox(again)[1]
    for name in params:
        np.testing.assert_array_equal(params_back[name], params[name])


def test_without_bias_matches_and_needs_the_cell():
    module = random_cell(use_bias=False)
    cell, params = from_equinox(module)
    assert sorted(params) == ["kernel", "recurrent_kernel"]
    assert_matches(module, cell, params)
    with pytest.raises(ValueError, match="cell="):
        to_equinox(params)


def test_dtype_kept(x64):
    module = random_cell(dtype=jnp.float64)
    _cell, params = from_equinox(module)
    assert all(v.dtype == np.float64 for v in params.values())
    again = to_equinox(params)
    assert all(getattr(again, n).dtype == jnp.float64 for n in ARRAYS)


def test_to_equinox_refuses_what_equinox_cannot_compute():
    before = random_params(jaxgru.GRUCell(UNITS, reset_after=False), INPUT)
    with pytest.raises(ValueError, match="reset_after=False"):
        to_equinox(before)
    params = random_params(jaxgru.GRUCell(UNITS), INPUT)
    with pytest.raises(ValueError, match="reset_after"):
        to_equinox(params, jaxgru.GRUCell(UNITS, reset_after=False))
    with pytest.raises(ValueError, match="cell.recurrent_activation: 'hard_sigmoid'"):
        to_equinox(params, jaxgru.GRUCell(UNITS, recurrent_activation="hard_sigmoid"))
    with pytest.raises(ValueError, match="cell.activation: 'relu'"):
        to_equinox(params, jaxgru.GRUCell(UNITS, activation="relu"))
    with pytest.raises(TypeError, match="cell"):
        to_equinox(params, "gru")
    # the same functions by another spelling convert
    to_equinox(params, jaxgru.GRUCell(UNITS, activation=jnp.tanh, recurrent_activation=jax.nn.sigmoid))


def test_to_equinox_errors_name_the_weight():
    params = random_params(jaxgru.GRUCell(UNITS), INPUT)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        to_equinox({k: v for k, v in params.items() if k != "recurrent_kernel"})
    with pytest.raises(ValueError, match="unexpected keys"):
        to_equinox({**params, "extra": params["bias"]})
    with pytest.raises(ValueError, match="'bias'"):
        to_equinox({**params, "bias": np.zeros((2, 3 * UNITS + 3), np.float32)})


def test_from_equinox_errors_name_the_field():
    module = random_cell()
    with pytest.raises(TypeError, match="cell: expected an equinox.nn.GRUCell"):
        from_equinox(eqx.filter_eval_shape(lambda: eqx.nn.LSTMCell(INPUT, UNITS, key=jax.random.key(0))))
    with pytest.raises(TypeError, match="cell: expected an equinox.nn.GRUCell"):
        from_equinox({"weight_ih": module.weight_ih})
    with pytest.raises(ValueError, match="cell.bias_n"):
        from_equinox(eqx.tree_at(lambda m: m.bias_n, module, jnp.zeros(UNITS + 1)))
    with pytest.raises(ValueError, match="cell.bias:"):
        from_equinox(eqx.tree_at(lambda m: m.bias, module, jnp.zeros(3 * UNITS - 3)))
    with pytest.raises(ValueError, match="cell.weight_ih"):
        from_equinox(eqx.tree_at(lambda m: m.weight_ih, module, jnp.zeros((3 * UNITS + 3, INPUT))))
    with pytest.raises(ValueError, match="cell.weight_hh"):
        from_equinox(eqx.tree_at(lambda m: m.weight_hh, module, jnp.zeros((3 * UNITS, UNITS + 1))))
    with pytest.raises(ValueError, match="cell.bias_n"):
        from_equinox(eqx.tree_at(lambda m: m.bias_n, module, None, is_leaf=lambda x: x is None))
    with pytest.raises(TypeError, match="cell.weight_hh: expected floating-point"):
        from_equinox(eqx.tree_at(lambda m: m.weight_hh, module, jnp.zeros((3 * UNITS, UNITS), jnp.int32)))
