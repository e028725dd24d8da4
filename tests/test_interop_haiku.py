"""from_haiku / to_haiku against haiku.GRU."""

import functools

import haiku as hk
import jax
import numpy as np
import pytest
from helpers import assert_matches_rnn, random_params, randomized

import jaxgru
from jaxgru.interop.haiku import from_haiku, to_haiku

INPUT, UNITS, BATCH, STEPS = 3, 4, 2, 5
X = jax.random.normal(jax.random.key(0), (BATCH, STEPS, INPUT))


def _unroll(x):
    core = hk.GRU(UNITS)
    return hk.dynamic_unroll(core, x, core.initial_state(x.shape[0]), time_major=False)


UNROLL = hk.without_apply_rng(hk.transform(_unroll))


@functools.cache
def _haiku_structure():
    return jax.eval_shape(UNROLL.init, jax.random.key(1), X)


def haiku_params(seed=1):
    """``hk.GRU``'s params as hk.transform builds them, every array redrawn (its bias starts at zeros)."""
    return randomized(_haiku_structure(), seed)


def run_haiku(_, params, x):
    return UNROLL.apply(params, x)


def assert_matches(hk_params, cell, params):
    assert_matches_rnn((run_haiku, None, hk_params), cell, params, X)


def test_from_haiku_matches_hk_gru():
    hk_params = haiku_params()
    assert sorted(hk_params) == ["gru"] and sorted(hk_params["gru"]) == ["b", "w_h", "w_i"]
    cell, params = from_haiku(hk_params)
    assert cell == jaxgru.GRUCell(UNITS, reset_after=False)
    assert {k: v.shape for k, v in params.items()} == cell.param_shapes(INPUT)
    assert all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in params.values())
    np.testing.assert_array_equal(params["bias"][:UNITS], -hk_params["gru"]["b"][:UNITS])
    assert_matches(hk_params, cell, params)
    cell_inner, params_inner = from_haiku(hk_params["gru"])
    assert cell_inner == cell
    for name in params:
        np.testing.assert_array_equal(params_inner[name], params[name])


def test_to_haiku_matches_hk_gru():
    cell = jaxgru.GRUCell(UNITS, reset_after=False)
    params = random_params(cell, INPUT)
    converted = to_haiku(params)
    assert sorted(converted) == ["gru"]
    assert jax.tree.structure(converted) == jax.tree.structure(haiku_params())
    assert_matches(converted, cell, params)
    inner = to_haiku(params, cell, name=None)
    assert sorted(inner) == ["b", "w_h", "w_i"]
    assert sorted(to_haiku(params, name="model/gru")) == ["model/gru"]


def test_round_trips_are_exact():
    hk_params = haiku_params()
    hk_params["gru"]["b"][0] = -0.0
    again = to_haiku(from_haiku(hk_params)[1])
    assert jax.tree.structure(again) == jax.tree.structure(hk_params)
    for a, b in zip(jax.tree.leaves(again), jax.tree.leaves(hk_params)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.view(np.uint32), b.view(np.uint32))
    params = random_params(jaxgru.GRUCell(UNITS, reset_after=False), INPUT)
    back = from_haiku(to_haiku(params))[1]
    for name in params:
        np.testing.assert_array_equal(np.asarray(back[name]).view(np.uint32), np.asarray(params[name]).view(np.uint32))


def test_without_bias_needs_the_cell_and_matches():
    cell = jaxgru.GRUCell(UNITS, use_bias=False, reset_after=False)
    params = random_params(cell, INPUT)
    with pytest.raises(ValueError, match="cell="):
        to_haiku(params)
    converted = to_haiku(params, cell)
    np.testing.assert_array_equal(converted["gru"]["b"].view(np.uint32), 0)
    assert_matches(converted, cell, params)


def test_dtype_kept():
    hk_params = jax.tree.map(lambda a: np.asarray(a, np.float64), haiku_params())
    _, params = from_haiku(hk_params)
    assert all(v.dtype == np.float64 for v in params.values())
    assert all(v.dtype == np.float64 for v in jax.tree.leaves(to_haiku(params)))


def test_to_haiku_refuses_what_hk_gru_cannot_compute():
    after = random_params(jaxgru.GRUCell(UNITS, reset_after=True), INPUT)
    with pytest.raises(ValueError, match="reset_after=True"):
        to_haiku(after)
    params = random_params(jaxgru.GRUCell(UNITS, reset_after=False), INPUT)
    with pytest.raises(ValueError, match="reset_after"):
        to_haiku(params, jaxgru.GRUCell(UNITS, reset_after=True))
    with pytest.raises(ValueError, match="cell.recurrent_activation: 'hard_sigmoid'"):
        to_haiku(params, jaxgru.GRUCell(UNITS, recurrent_activation="hard_sigmoid", reset_after=False))
    with pytest.raises(ValueError, match="cell.activation: 'relu'"):
        to_haiku(params, jaxgru.GRUCell(UNITS, activation="relu", reset_after=False))
    with pytest.raises(TypeError, match="cell"):
        to_haiku(params, "gru")
    with pytest.raises(TypeError, match="name"):
        to_haiku(params, name=3)
    to_haiku(params, jaxgru.GRUCell(UNITS, recurrent_activation=jax.nn.sigmoid, reset_after=False))


def test_to_haiku_errors_name_the_weight():
    params = random_params(jaxgru.GRUCell(UNITS, reset_after=False), INPUT)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        to_haiku({k: v for k, v in params.items() if k != "recurrent_kernel"})
    with pytest.raises(ValueError, match="unexpected keys"):
        to_haiku({**params, "extra": params["bias"]})
    with pytest.raises(ValueError, match="'kernel'"):
        to_haiku({**params, "kernel": np.zeros((INPUT, 3 * UNITS + 3), np.float32)})


def test_from_haiku_errors_name_the_argument():
    inner = haiku_params()["gru"]
    with pytest.raises(TypeError, match="params"):
        from_haiku([inner])
    with pytest.raises(ValueError, match=r"params\['gru'\]: missing 'b'"):
        from_haiku({"gru": {k: v for k, v in inner.items() if k != "b"}})
    with pytest.raises(ValueError, match=r"unexpected keys \['w_o'\]"):
        from_haiku({**inner, "w_o": inner["b"]})
    with pytest.raises(ValueError, match="2 modules"):
        from_haiku({"gru": inner, "gru_1": inner})
    with pytest.raises(TypeError, match=r"params\['gru'\]"):
        from_haiku({"gru": inner["b"]})
    with pytest.raises(ValueError, match=r"\['b'\]: expected shape \(12,\)"):
        from_haiku({**inner, "b": np.zeros(3 * UNITS + 3, np.float32)})
    with pytest.raises(ValueError, match=r"\['w_i'\]"):
        from_haiku({**inner, "w_i": np.zeros((INPUT, 3 * UNITS - 3), np.float32)})
    with pytest.raises(ValueError, match=r"\['w_h'\]"):
        from_haiku({**inner, "w_h": np.zeros((UNITS, UNITS), np.float32)})
    with pytest.raises(TypeError, match=r"\['b'\]: dtype float64"):
        from_haiku({**inner, "b": np.zeros(3 * UNITS)})
