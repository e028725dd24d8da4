"""jaxgru.linen.StackedGRU and jaxgru.nnx.StackedGRU against jaxgru.stacked_rnn and torch.nn.GRU."""

import functools

import jax
import numpy as np
import pytest
from flax import nnx
from helpers import KeyProbe, assert_close, randomized
from references import HEAVY, torch

import jaxgru
from jaxgru import linen as jf
from jaxgru import nnx as jn

B, T, D, U, L = 3, 7, 4, 5, 3
X = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
LENGTHS = np.array([7, 4, 2])
MASK = np.arange(T)[None, :] < LENGTHS[:, None]
KEY = functools.partial(jax.random.key, impl="rbg")  # compiles faster on CPU than the default threefry


def initial_state(bidirectional):
    return np.random.default_rng(1).normal(size=(L * (2 if bidirectional else 1), B, U)).astype(np.float32)


def padding_of(bidirectional):
    """The modules pass both kinds of padding through: a mask, or (here for bidirectional) lengths."""
    return {"seq_lengths": LENGTHS} if bidirectional else {"mask": MASK}


def torch_reference(bidirectional, batch_first):
    """A torch nn.GRU's (layers, outputs, h_n) with an h0, and the (B, T, D) or (T, B, D) input."""
    torch.manual_seed(0)
    module = torch.nn.GRU(D, U, num_layers=L, bidirectional=bidirectional, batch_first=batch_first).eval()
    x = torch.from_numpy(X if batch_first else X.transpose(1, 0, 2).copy())
    with torch.no_grad():
        out, h_n = module(x, torch.from_numpy(initial_state(bidirectional)))
    return jaxgru.from_torch_stack(module.state_dict()), x.numpy(), (out.numpy(), h_n.numpy())


def linen_params(module, seed):
    """Random params in the layout ``module.init`` creates (its shapes, traced without computing)."""
    return randomized(jax.eval_shape(module.init, {"params": KEY(0)}, X)["params"], seed)


def rngs(seed, **streams):
    """nnx.Rngs of "rbg" keys (their initializers compile faster than threefry's)."""
    return nnx.Rngs(KEY(seed), **{name: KEY(value) for name, value in streams.items()})


# ---------------------------------------------------------------------------- linen


@pytest.mark.parametrize("bidirectional", [False, True])
def test_linen_matches_stacked_rnn_with_its_params(bidirectional):
    module = jf.StackedGRU(U, num_layers=L, bidirectional=bidirectional, return_state=True, reset_after=False)
    assert module.cell == jaxgru.GRUCell(U, reset_after=False)
    params = linen_params(module, 3)
    assert sorted(params) == [f"layers_{k}" for k in range(L)]
    layers = module.layer_params(params)
    assert layers == [params[f"layers_{k}"] for k in range(L)]
    h0, padding = initial_state(bidirectional), padding_of(bidirectional)
    result, expected = jax.jit(lambda params: (
        module.apply({"params": params}, X, initial_state=h0, **padding),
        jaxgru.stacked_rnn(module.cell, module.layer_params(params), X, bidirectional=bidirectional,
                           initial_state=h0, **padding)))(params)
    assert_close(result, expected, 1e-6)


@HEAVY
def test_linen_with_converted_torch_weights_matches_torch():
    layers, x, expected = torch_reference(bidirectional=True, batch_first=True)
    module = jf.StackedGRU(U, num_layers=L, bidirectional=True, return_state=True)
    params = {f"layers_{k}": layer for k, layer in enumerate(layers)}
    shapes = jax.tree.map(lambda w: w.shape, jax.eval_shape(module.init, {"params": KEY(0)}, X)["params"])
    assert jax.tree.map(np.shape, params) == shapes  # the layout init creates
    assert_close(module.apply({"params": params}, x, initial_state=initial_state(True)), expected, 1e-5)


def test_linen_dropout_comes_from_the_dropout_stream():
    module = jf.StackedGRU(U, num_layers=2, dropout=0.5, cell_dropout=0.2)
    assert module.cell == jaxgru.GRUCell(U, dropout=0.2)
    params = linen_params(module, 5)

    @jax.jit
    def run(params, key):
        probe = KeyProbe().apply({}, rngs={"dropout": key})  # the key the module draws
        return (module.apply({"params": params}, X, rngs={"dropout": key}, deterministic=False),
                jaxgru.stacked_rnn(module.cell, module.layer_params(params), X, dropout=0.5, rng=probe, training=True)[0],
                module.apply({"params": params}, X, rngs={"dropout": key}, deterministic=True),
                module.apply({"params": params}, X),  # deterministic by default, needs no rng
                jaxgru.stacked_rnn(module.cell, module.layer_params(params), X)[0])

    dropped, expected, deterministic, default, plain = run(params, KEY(1))
    assert_close(dropped, expected, 1e-5)
    assert not np.allclose(run(params, KEY(2))[0], dropped)
    assert not np.allclose(dropped, plain)
    assert_close((deterministic, default), (plain, plain), 1e-5)


def test_linen_penalty_and_constraints_reach_every_layer():
    module = jf.StackedGRU(U, num_layers=2, bidirectional=True, kernel_regularizer="l2",
                           recurrent_constraint="non_neg")
    params = linen_params(module, 6)
    cells = jf.find_cells(module, X)
    assert sorted(cells) == [(f"layers_{k}", d) for k in range(2) for d in ("backward", "forward")]
    expected = sum(module.cell.penalty(p) for layer in module.layer_params(params) for p in layer.values())
    np.testing.assert_allclose(jf.penalty(cells, params), expected, rtol=1e-6)
    constrained = jf.constrain(cells, params)
    assert all(np.all(p["recurrent_kernel"] >= 0) for layer in module.layer_params(constrained)
               for p in layer.values())


@pytest.mark.parametrize("options,error,match", [
    ({"num_layers": 0}, ValueError, "num_layers: expected a positive integer"),
    ({"dropout": 1.5}, ValueError, r"dropout: expected a number in \[0, 1\]"),
    ({"dropout": "0.1"}, TypeError, "dropout: expected a number"),
    ({"bidirectional": "yes"}, TypeError, "bidirectional: expected a bool"),
    ({"bidirectional": True, "merge_mode": None}, ValueError, "merge_mode: None returns a"),
    ({"cell_dropout": "x"}, TypeError, "cell_dropout: expected a float"),
    ({"return_state": 1}, TypeError, "return_state: expected a bool"),
])
def test_bad_options_name_the_argument(options, error, match):
    with pytest.raises(error, match=match):
        jf.StackedGRU(U, **options)
    with pytest.raises(error, match=match):
        jn.StackedGRU(D, U, **options, rngs=rngs(0))


# ---------------------------------------------------------------------------- nnx


def load(module, layers):
    """Puts the ``layers`` list of jaxgru.stacked_rnn into an nnx StackedGRU."""
    state = nnx.state(module, nnx.Param)
    nnx.replace_by_pure_dict(state, {"layers": dict(enumerate(layers))})
    nnx.update(module, state)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_nnx_matches_stacked_rnn_with_its_params(bidirectional):
    module = jn.StackedGRU(D, U, num_layers=L, bidirectional=bidirectional, return_state=True, reset_after=False,
                           rngs=rngs(0))
    assert module.cell == jaxgru.GRUCell(U, reset_after=False)
    layers = randomized(module.weights(), 4)
    load(module, layers)
    assert_close(module.weights(), layers, 0)
    h0, padding = initial_state(bidirectional), padding_of(bidirectional)
    result, expected = nnx.jit(lambda module: (
        module(X, initial_state=h0, deterministic=True, **padding),
        jaxgru.stacked_rnn(module.cell, module.weights(), X, bidirectional=bidirectional, initial_state=h0,
                           **padding)))(module)
    assert_close(result, expected, 1e-6)


@HEAVY
def test_nnx_with_converted_torch_weights_matches_torch_and_trains():
    layers, x, expected = torch_reference(bidirectional=False, batch_first=False)
    module = jn.StackedGRU(D, U, num_layers=L, time_major=True, return_state=True, rngs=rngs(0))
    load(module, layers)
    assert_close(module(x, initial_state=initial_state(False)), expected, 1e-5)

    @nnx.jit
    def grads(module, x):
        return nnx.grad(lambda m: (m(x)[0] ** 2).mean())(module)

    per_layer = nnx.to_pure_dict(grads(module, x))["layers"]
    assert sorted(per_layer) == list(range(L)) and all(np.any(g["kernel"] != 0) for g in per_layer.values())


def test_nnx_dropout_comes_from_the_dropout_stream_and_switches_off():
    module = jn.StackedGRU(D, U, num_layers=2, dropout=0.5, cell_dropout=0.2, rngs=rngs(0, dropout=5))
    assert module.cell == jaxgru.GRUCell(U, dropout=0.2)

    @nnx.jit
    def call(module, rngs):  # rngs: a key, nnx.Rngs, or None for the module's own stream
        return module(X, rngs=rngs)

    @jax.jit
    def reference(layers, key):
        return (jaxgru.stacked_rnn(module.cell, layers, X, dropout=0.5, rng=key, training=True)[0],
                jaxgru.stacked_rnn(module.cell, layers, X)[0])

    expected, plain = reference(module.weights(), KEY(1))
    assert_close(call(module, KEY(1)), expected, 1e-5)  # training by default, as nnx.Dropout
    np.testing.assert_array_equal(call(module, rngs(0, dropout=1)), call(module, rngs(0, dropout=1)))
    first, second = call(module, None), call(module, None)  # its own "dropout" stream: new masks at each call
    twin = jn.StackedGRU(D, U, num_layers=2, dropout=0.5, cell_dropout=0.2, rngs=rngs(0, dropout=5))
    np.testing.assert_array_equal(call(twin, None), first)  # the same stream, the same masks
    assert not np.allclose(first, second)
    assert_close(module(X, deterministic=True), plain, 1e-5)
    module.eval()
    assert_close(call(module, None), plain, 1e-5)
    module.train()
    assert not np.allclose(call(module, None), plain)


def test_nnx_penalty_reaches_every_layer():
    module = jn.StackedGRU(D, U, num_layers=2, bidirectional=True, kernel_regularizer="l2", rngs=rngs(0))
    expected = sum(module.cell.penalty(p) for layer in module.weights() for p in layer.values())
    np.testing.assert_allclose(jn.penalty(module), expected, rtol=1e-6)
