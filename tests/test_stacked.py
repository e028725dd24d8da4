"""`jaxgru.stacked_rnn`, `from_torch_stack` / `to_torch_stack` against a real torch.nn.GRU and nn.GRUCell."""

import functools
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxgru
from helpers import assert_close, random_params
from references import HEAVY, torch

B, T, D, U, L = 3, 7, 4, 5, 3
CELL = jaxgru.GRUCell(U)
RNN_KEYWORDS = set(inspect.signature(jaxgru.rnn).parameters)
LENGTHS = [7, 4, 1]
# Dropout tests draw from "rbg" keys: any key works the same, and these compile faster on CPU.
KEY = functools.partial(jax.random.key, impl="rbg")


def normal(seed, *shape):
    """N(0, 1) float32 data, drawn with numpy (no JAX computation to compile)."""
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def torch_gru(bidirectional, batch_first=True, num_layers=L, **options):
    torch.manual_seed(0)
    return torch.nn.GRU(D, U, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **options)


def to_numpy(tensor):
    return tensor.detach().numpy()


def chain(cells, layers, x, bidirectional=False, **kwargs):
    """The stack by hand: each layer's output sequence feeds the next; returns (outputs, [finals])."""
    finals = []
    for cell, params in zip(cells, layers):
        if bidirectional:
            x, pair = jaxgru.bidirectional(cell, params, x, **kwargs)
            finals += list(pair)
        else:
            x, final = jaxgru.rnn(cell, params, x, **kwargs)
            finals.append(final)
    return x, finals


# ---------------------------------------------------------------------------- against torch.nn.GRU


@HEAVY
@pytest.mark.parametrize("bidirectional,batch_first", [(False, True), (True, False)])
def test_outputs_h_n_and_gradients_match_torch(x64, bidirectional, batch_first):
    """Outputs, h_n and the gradients w.r.t. inputs, h0 and every weight (torch's weight
    gradients converted by from_torch_stack, a linear map) equal torch's in float64."""
    module = torch_gru(bidirectional, batch_first).double().eval()
    dirs = 2 if bidirectional else 1
    x = torch.randn((B, T, D) if batch_first else (T, B, D), dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(L * dirs, B, U, dtype=torch.float64, requires_grad=True)
    out, h_n = module(x, h0)
    out_cotangent, h_cotangent = torch.randn_like(out), torch.randn_like(h_n)
    ((out * out_cotangent).sum() + (h_n * h_cotangent).sum()).backward()
    weight_grads = jaxgru.from_torch_stack({name: p.grad for name, p in module.named_parameters()})

    def loss(layers, inputs, initial_state):
        outputs, finals = jaxgru.stacked_rnn(CELL, layers, inputs, bidirectional=bidirectional,
                                             time_major=not batch_first, initial_state=initial_state)
        value = jnp.sum(outputs * to_numpy(out_cotangent)) + jnp.sum(finals * to_numpy(h_cotangent))
        return value, (outputs, finals)

    layers = jaxgru.from_torch_stack(module.state_dict())
    (_, (outputs, finals)), grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2), has_aux=True))(
        layers, to_numpy(x), to_numpy(h0))
    assert outputs.dtype == jnp.float64 and finals.shape == (L * dirs, B, U)
    assert_close((outputs, finals), (to_numpy(out), to_numpy(h_n)), 1e-12)
    assert_close(grads, (weight_grads, to_numpy(x.grad), to_numpy(h0.grad)), 1e-12)


@HEAVY
@pytest.mark.parametrize("bidirectional,how", [(False, "mask"), (True, "seq_lengths")])
def test_variable_lengths_match_pack_padded_sequence(bidirectional, how):
    """torch's packed sequences (each direction starts and ends at each row's own length)
    equal the stack with a right-padding mask, or with seq_lengths."""
    if how not in RNN_KEYWORDS:
        pytest.skip(f"jaxgru.rnn does not take {how}= yet")
    module = torch_gru(bidirectional).eval()
    x = torch.randn(B, T, D)
    h0 = torch.randn(L * (2 if bidirectional else 1), B, U)
    with torch.no_grad():
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, LENGTHS, batch_first=True, enforce_sorted=False)
        packed_out, h_n = module(packed, h0)
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=T)
    lengths = np.array(LENGTHS)
    padding = {"mask": np.arange(T)[None, :] < lengths[:, None]} if how == "mask" else {"seq_lengths": lengths}
    options = {} if bidirectional else {"zero_output_for_mask": True}  # pad_packed_sequence pads with zeros
    outputs, finals = jaxgru.stacked_rnn(CELL, jaxgru.from_torch_stack(module.state_dict()), jnp.asarray(x.numpy()),
                                         bidirectional=bidirectional, initial_state=jnp.asarray(h0.numpy()),
                                         **padding, **options)
    assert_close((outputs, finals), (out.numpy(), h_n.numpy()), 1e-5)


@HEAVY
def test_dropout_of_one_matches_torch():
    """p = 1 is allowed, as in torch: every layer but the first sees zeros (deterministic)."""
    module = torch_gru(False, num_layers=2, dropout=1.0).train()
    x = torch.randn(B, T, D)
    with torch.no_grad():
        out, h_n = module(x)
    outputs, finals = jaxgru.stacked_rnn(CELL, jaxgru.from_torch_stack(module.state_dict()), jnp.asarray(x.numpy()),
                                         dropout=1.0, training=True, rng=jax.random.key(0))
    assert_close((outputs, finals), (out.numpy(), h_n.numpy()), 1e-5)


# ---------------------------------------------------------------------------- between-layer dropout


def readout_params(units, offset=0, input_dim=None):
    """A GRU layer that outputs tanh of inputs[..., offset:offset + units] at every step:
    update gate exactly 0 (bias -1000), candidate tanh(x I), no recurrence. Its output is
    exactly 0 where that input is 0, so it shows which elements a dropout before it zeroed."""
    input_dim = input_dim or units
    kernel = np.zeros((input_dim, 3 * units), np.float32)
    kernel[offset:offset + units, 2 * units:] = np.eye(units)
    bias = np.zeros((2, 3 * units), np.float32)
    bias[0, :units] = -1000.0
    return {"kernel": kernel, "recurrent_kernel": np.zeros((units, 3 * units), np.float32), "bias": bias}


@pytest.mark.parametrize("bidirectional", [False, True])
def test_dropout_zeroes_each_element_between_layers_only(bidirectional):
    """Behind a readout last layer: a fraction p of the first layer's (concatenated) outputs
    is zeroed, every element on its own (not one mask per sequence), the rest scaled by
    1/(1-p), and nothing after the last layer; no dropout without training."""
    batch, steps, units, p = 8, 50, 16, 0.3
    cell = jaxgru.GRUCell(units)
    x = normal(1, batch, steps, D)
    if bidirectional:
        first = {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 1)}
        layers = [first, {"forward": readout_params(units, 0, 2 * units),
                          "backward": readout_params(units, units, 2 * units)}]
    else:
        layers = [random_params(cell, D, 0), readout_params(units)]

    @jax.jit
    def run(layers, x, key):
        def stack(**kwargs):
            return jaxgru.stacked_rnn(cell, layers, x, bidirectional=bidirectional, **kwargs)[0]

        return (stack(dropout=p, rng=key, training=True), chain([cell], layers[:1], x, bidirectional)[0],
                stack(dropout=p, rng=key))

    dropped, first_outputs, not_training = run(layers, x, KEY(2))
    keep = dropped != 0
    assert abs(1 - float(jnp.mean(keep)) - p) < 0.03
    assert bool(jnp.any(keep != keep[:, :1])) and bool(jnp.any(keep != keep[:1]))  # varies over time and batch
    np.testing.assert_allclose(dropped, jnp.tanh(jnp.where(keep, first_outputs / (1 - p), 0)), atol=1e-6)
    np.testing.assert_array_equal(run(layers, x, KEY(2))[0], dropped)  # same key, same masks
    assert not np.array_equal(run(layers, x, KEY(3))[0] != 0, keep)
    np.testing.assert_allclose(not_training, jnp.tanh(first_outputs), atol=1e-6)


def test_last_layer_runs_on_the_dropped_previous_output():
    """The last layer's output is that layer alone on the dropped output of the layer before
    (the dropped elements read off a readout stack with the same key)."""
    p = 0.5
    first, last = random_params(CELL, D, 5), random_params(CELL, U, 6)
    x = normal(7, B, T, D)

    @jax.jit
    def run(first, last, x, key):
        stack = jaxgru.stacked_rnn(CELL, [first, last], x, dropout=p, rng=key, training=True)
        keep = jaxgru.stacked_rnn(CELL, [first, readout_params(U)], x, dropout=p, rng=key, training=True)[0] != 0
        first_outputs, first_final = jaxgru.rnn(CELL, first, x)
        expected, last_final = jaxgru.rnn(CELL, last, jnp.where(keep, first_outputs / (1 - p), 0))
        return stack, (expected, jnp.stack([first_final, last_final])), jnp.mean(keep)

    stack, expected, kept = run(first, last, x, KEY(4))
    assert 0.2 < kept < 0.8
    assert_close(stack, expected, 1e-6)


def test_keys_are_split_as_documented():
    """``layers_key, dropout_key = split(rng)``; layer k runs with ``split(layers_key, L)[k]``
    (its cells' own Keras dropout) and the mask after it is ``bernoulli(split(dropout_key,
    L - 1)[k], 1 - p, shape)``."""
    cell, p = jaxgru.GRUCell(U, dropout=0.3), 0.4
    layers = [random_params(cell, D, 0)] + [random_params(cell, U, k) for k in (1, 2)]
    x = normal(9, B, T, D)

    @jax.jit
    def run(layers, x, rng):
        layers_key, dropout_key = jax.random.split(rng)
        layer_keys, dropout_keys = jax.random.split(layers_key, L), jax.random.split(dropout_key, L - 1)
        expected = x
        for k, params in enumerate(layers):
            expected, _ = jaxgru.rnn(cell, params, expected, rng=layer_keys[k], training=True)
            if k < L - 1:
                expected = expected * jax.random.bernoulli(dropout_keys[k], 1 - p, expected.shape) / (1 - p)
        return jaxgru.stacked_rnn(cell, layers, x, dropout=p, rng=rng, training=True)[0], expected

    outputs, expected = run(layers, x, KEY(8))
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


def test_one_layer_ignores_dropout_and_needs_no_rng():
    params = random_params(CELL, D, 0)
    x = normal(1, B, T, D)
    stack, single = jax.jit(lambda p, x: (jaxgru.stacked_rnn(CELL, [p], x, dropout=0.5, training=True),
                                          jaxgru.rnn(CELL, p, x)))(params, x)
    assert_close(stack, (single[0], single[1][None]), 1e-6)


# ---------------------------------------------------------------------------- other layouts


def test_cells_per_layer_with_different_units():
    """Per-layer cells (a (forward, backward) pair in a layer, merge 'concat') equal the
    layers run by hand; the states are then a tuple in h_n's order, and initial_state a
    sequence of them."""
    cells = [(jaxgru.GRUCell(5), jaxgru.GRUCell(6, reset_after=False)), jaxgru.GRUCell(4)]
    layers = [{"forward": random_params(cells[0][0], D, 0), "backward": random_params(cells[0][1], D, 1)},
              {"forward": random_params(cells[1], 11, 2), "backward": random_params(cells[1], 11, 3)}]
    x = normal(4, B, T, D)
    states = [normal(5 + j, B, u) for j, u in enumerate((5, 6, 4, 4))]

    @jax.jit
    def run(layers, x, states):
        stack = jaxgru.stacked_rnn(cells, layers, x, bidirectional=True, initial_state=states)
        first, pair0 = jaxgru.bidirectional(cells[0], layers[0], x, initial_state=states[:2])
        expected, pair1 = jaxgru.bidirectional(cells[1], layers[1], first, initial_state=states[2:])
        last = jaxgru.stacked_rnn(cells, layers, x, bidirectional=True, return_sequences=False)[0]
        expected_last = jaxgru.bidirectional(cells[1], layers[1], jaxgru.bidirectional(cells[0], layers[0], x)[0],
                                             return_sequences=False)[0]
        return stack, (expected, (*pair0, *pair1)), last, expected_last

    (outputs, finals), expected, last, expected_last = run(layers, x, states)
    assert isinstance(finals, tuple) and [f.shape for f in finals] == [(B, 5), (B, 6), (B, 4), (B, 4)]
    assert_close((outputs, finals), expected, 1e-6)
    assert last.shape == (B, 8)
    np.testing.assert_allclose(last, expected_last, atol=1e-6)


def test_other_merge_modes_feed_u_features():
    """With merge_mode="sum" a bidirectional layer passes U features on, as the chain by hand does."""
    merge_mode = "sum"
    layers = [{d: random_params(CELL, D if k == 0 else U, i + 2 * k) for i, d in
               enumerate(("forward", "backward"))} for k in range(2)]
    x = normal(9, B, T, D)
    outputs, expected = jax.jit(lambda layers, x: (
        jaxgru.stacked_rnn(CELL, layers, x, bidirectional=True, merge_mode=merge_mode, unroll=2)[0],
        chain([CELL] * 2, layers, x, bidirectional=True, merge_mode=merge_mode)[0]))(layers, x)
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


def test_options_and_resets_reach_every_layer():
    """mask, resets and rnn's other keywords are passed to every layer unchanged."""
    layers = [random_params(CELL, D, 0), random_params(CELL, U, 1)]
    x = normal(2, B, T, D)
    options = {"mask": np.arange(T)[None, :] < np.array([[7], [3], [5]]), "go_backwards": True,
               "zero_output_for_mask": True, "gradient": "autodiff", "time_chunk": 3}
    if "resets" in RNN_KEYWORDS:
        options["resets"] = np.arange(T)[None, :].repeat(B, 0) == 4
    stack, (expected, expected_finals) = jax.jit(lambda layers, x: (
        jaxgru.stacked_rnn(CELL, layers, x, **options), chain([CELL] * 2, layers, x, **options)))(layers, x)
    assert_close(stack, (expected, jnp.stack(expected_finals)), 1e-6)


def rnn_takes_batch_axes():
    try:
        jax.eval_shape(lambda: jaxgru.rnn(CELL, random_params(CELL, D, 0), np.zeros((2, B, T, D), np.float32)))
    except ValueError:
        return False
    return True


def test_leading_batch_axes_are_rows():
    """Inputs (2, B, T, D) with h0 (L, 2, B, U) give the rows of the flattened (2B, T, D) stack."""
    if not rnn_takes_batch_axes():
        pytest.skip("jaxgru.rnn takes one batch axis only")
    layers = [random_params(CELL, D if k == 0 else U, k) for k in range(2)]
    x, h0 = normal(1, 2, B, T, D), normal(2, 2, 2, B, U)
    (outputs, finals), (flat_outputs, flat_finals) = jax.jit(lambda layers, x, h0: (
        jaxgru.stacked_rnn(CELL, layers, x, initial_state=h0),
        jaxgru.stacked_rnn(CELL, layers, x.reshape(2 * B, T, D), initial_state=h0.reshape(2, 2 * B, U))))(
        layers, x, h0)
    assert outputs.shape == (2, B, T, U) and finals.shape == (2, 2, B, U)
    assert_close((outputs.reshape(2 * B, T, U), finals.reshape(2, 2 * B, U)), (flat_outputs, flat_finals), 1e-6)


# ---------------------------------------------------------------------------- torch converters


@HEAVY
@pytest.mark.parametrize("num_layers,bidirectional,bias", [
    (1, False, True), (3, False, True), (2, True, True), (3, True, False), (1, True, False), (2, False, False)])
def test_state_dict_round_trip_is_exact(num_layers, bidirectional, bias):
    """to_torch_stack(from_torch_stack(sd)) has sd's keys in sd's order and its exact arrays,
    and loads into a fresh nn.GRU."""
    torch.manual_seed(num_layers)
    module = torch.nn.GRU(D, U, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    state_dict = module.state_dict()
    layers = jaxgru.from_torch_stack(state_dict)
    assert len(layers) == num_layers
    weights = {"kernel", "recurrent_kernel"} | ({"bias"} if bias else set())
    assert all(set(layer) == ({"forward", "backward"} if bidirectional else weights) for layer in layers)
    back = jaxgru.to_torch_stack(layers, cell=None if bias else jaxgru.GRUCell(U, use_bias=False))
    assert list(back) == list(state_dict)
    for key, value in state_dict.items():
        assert back[key].dtype == np.float32
        np.testing.assert_array_equal(back[key], value.numpy())
    copy = torch.nn.GRU(D, U, num_layers=num_layers, bidirectional=bidirectional, bias=bias)
    copy.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})


@HEAVY
@pytest.mark.parametrize("bias", [True, False])
def test_from_torch_reads_a_gru_cell(bias):
    """from_torch on an nn.GRUCell state dict gives params whose step equals the torch cell's."""
    torch.manual_seed(1)
    module = torch.nn.GRUCell(D, U, bias=bias)
    x, h = torch.randn(B, D), torch.randn(B, U)
    with torch.no_grad():
        expected = module(x, h)
    cell = jaxgru.GRUCell(U, use_bias=bias)
    output, state = cell.step(jaxgru.from_torch(module.state_dict()), jnp.asarray(h.numpy()), jnp.asarray(x.numpy()))
    np.testing.assert_allclose(output, expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(state, expected.numpy(), atol=1e-6)


@HEAVY
def test_gru_cell_state_dict_has_one_layer_and_direction():
    state_dict = torch.nn.GRUCell(D, U).state_dict()
    with pytest.raises(ValueError, match=r"state_dict: an nn.GRUCell .*expected layer=0, reverse=False, got layer=1"):
        jaxgru.from_torch(state_dict, layer=1)
    with pytest.raises(ValueError, match="reverse=True"):
        jaxgru.from_torch(state_dict, reverse=True)
    with pytest.raises(ValueError, match="both nn.GRUCell keys"):
        jaxgru.from_torch({**state_dict, **torch.nn.GRU(D, U).state_dict()})
    with pytest.raises(ValueError, match="nn.GRUCell state dict: use from_torch"):
        jaxgru.from_torch_stack(state_dict)


def numpy_state_dict(num_layers=L, bidirectional=False):
    torch.manual_seed(0)
    module = torch.nn.GRU(D, U, num_layers=num_layers, bidirectional=bidirectional)
    return {k: v.numpy() for k, v in module.state_dict().items()}


@HEAVY
@pytest.mark.parametrize("change,error,match", [
    (lambda sd: sd.pop("bias_hh_l1"), ValueError, r"missing 'bias_hh_l1' of shape \(15,\)"),
    (lambda sd: [sd.pop(k) for k in list(sd) if k.endswith("_l1")], ValueError,
     r"state_dict\['weight_ih_l2'\]: a key of layer 2, but no keys of layer 1"),
    (lambda sd: sd.update(weight_ih_l4=sd["weight_ih_l2"]), ValueError,
     r"state_dict\['weight_ih_l4'\]: a key of layer 4, but no keys of layer 3"),
    (lambda sd: sd.update(weight_ih_l1_reverse=sd["weight_ih_l1"]), ValueError, "missing 'weight_ih_l0_reverse'"),
    (lambda sd: [sd.pop(k) for k in list(sd)], ValueError, "no nn.GRU keys such as 'weight_ih_l0'"),
    (lambda sd: sd.update(weight_hh_l2=sd["weight_hh_l2"][:, :3]), ValueError, r"weight_hh_l2'\]: expected shape"),
])
def test_from_torch_stack_refuses_incomplete_state_dicts(change, error, match):
    state_dict = numpy_state_dict()
    change(state_dict)
    with pytest.raises(error, match=match):
        jaxgru.from_torch_stack(state_dict)


@HEAVY
def test_from_torch_stack_needs_a_mapping():
    with pytest.raises(TypeError, match="state_dict: expected a mapping"):
        jaxgru.from_torch_stack(torch.nn.GRU(D, U))


@HEAVY
def test_to_torch_stack_refuses_what_no_nn_gru_holds():
    uni, bi = jaxgru.from_torch_stack(numpy_state_dict()), jaxgru.from_torch_stack(numpy_state_dict(2, True))
    no_bias = {name: w for name, w in uni[1].items() if name != "bias"}
    cases = [
        ([], ValueError, "layers: expected at least one"),
        (uni[0], TypeError, "layers: expected a list"),
        ([bi[0], uni[1]], ValueError, r"layers\[1\]: expected a \{'forward', 'backward'\} pair"),
        ([uni[0], random_params(jaxgru.GRUCell(6), U, 0)], ValueError,
         r"layers\[1\]: units=6, but layers\[0\] has 5"),
        ([uni[0], uni[0]], ValueError,
         r"layers\[1\]: the kernel takes D=4 features, but layer 1 of an nn.GRU takes 1 \* hidden_size = 5"),
        ([bi[0], {"forward": bi[1]["forward"], "backward": uni[1]}], ValueError,
         r"layers\[1\]\['backward'\]: the kernel takes D=5"),
        ([uni[0], random_params(jaxgru.GRUCell(U, reset_after=False), U, 0)], ValueError,
         r"layers\[1\]: params: these are reset_after=False"),
        ([uni[0], no_bias], ValueError, r"layers\[1\]: params: without a bias"),
    ]
    for layers, error, match in cases:
        with pytest.raises(error, match=match):
            jaxgru.to_torch_stack(layers)
    with pytest.raises(ValueError, match=r"layers\[0\]: cell: the weights have bias, cell.use_bias=False"):
        jaxgru.to_torch_stack([uni[0], no_bias], cell=jaxgru.GRUCell(U, use_bias=False))


# ---------------------------------------------------------------------------- bad arguments

LAYERS = [random_params(CELL, D if k == 0 else U, k) for k in range(L)]
BI_LAYERS = [{d: random_params(CELL, D if k == 0 else 2 * U, k) for d in ("forward", "backward")}
             for k in range(2)]
X = np.ones((B, T, D), np.float32)


@pytest.mark.parametrize("cells,layers,kwargs,error,match", [
    (CELL, [], {}, ValueError, "layers: expected at least one layer's params, got an empty list"),
    (CELL, LAYERS[0], {}, TypeError, r"layers: expected a list of per-layer params \(for one layer: \[params\]\)"),
    (CELL, [LAYERS[0], LAYERS[0]], {}, ValueError,
     r"layers\[1\]: the kernel takes D=4 input features, but layer 1 receives D=5 \(the output features of layer 0"),
    (CELL, LAYERS[1:], {}, ValueError,
     r"layers\[0\]: the kernel takes D=5 input features, but layer 0 receives D=4 \(the inputs' last axis\)"),
    (CELL, [LAYERS[0], {"kernel": LAYERS[1]["kernel"]}], {}, ValueError, r"layers\[1\]: params: missing"),
    (CELL, BI_LAYERS[:1] + LAYERS[1:2], {"bidirectional": True}, ValueError,
     r"layers\[1\]: expected \{'forward': params, 'backward': params\}"),
    (CELL, [BI_LAYERS[0], {**BI_LAYERS[1], "backward": LAYERS[1]}], {"bidirectional": True}, ValueError,
     r"layers\[1\]: the forward kernel takes D=10 features and the backward kernel D=5"),
    ([CELL, CELL], LAYERS, {}, ValueError, "cells: expected one cell per layer, 3 for the 3 entries of layers, got 2"),
    (CELL.get_config(), LAYERS, {}, TypeError, "cells: expected a jaxgru.GRUCell or a sequence"),
    ([CELL, (CELL, CELL), CELL], LAYERS, {}, TypeError, r"cells\[1\]: expected a jaxgru.GRUCell, got"),
    ([CELL, "gru"], BI_LAYERS, {"bidirectional": True}, TypeError,
     r"cells\[1\]: expected a jaxgru.GRUCell or a \(forward, backward\) pair"),
    (CELL, LAYERS, {"dropout": 1.5}, ValueError, r"dropout: expected a number in \[0, 1\]"),
    (CELL, LAYERS, {"dropout": -0.1}, ValueError, r"dropout: expected a number in \[0, 1\]"),
    (CELL, LAYERS, {"dropout": float("nan")}, ValueError, r"dropout: expected a number in \[0, 1\]"),
    (CELL, LAYERS, {"dropout": "0.5"}, TypeError, r"dropout: expected a number in \[0, 1\]"),
    (CELL, LAYERS, {"dropout": True}, TypeError, "dropout: expected a number"),
    (CELL, LAYERS, {"dropout": jnp.array(0.5)}, TypeError, "dropout: expected a number"),
    (CELL, LAYERS, {"training": "True"}, TypeError, r"training: expected a bool \(True or False\)"),
    (CELL, LAYERS, {"training": 1}, TypeError, "training: expected a bool"),
    (CELL, LAYERS, {"bidirectional": "False"}, TypeError, "bidirectional: expected a bool"),
    (CELL, LAYERS, {"return_sequences": 0}, TypeError, "return_sequences: expected a bool"),
    (CELL, LAYERS, {"dropout": 0.5, "training": True}, ValueError, "rng: training=True with dropout between layers"),
    (CELL, LAYERS, {"dropout": 0.5, "training": True, "rng": 0}, TypeError, "rng: expected one PRNG key"),
    (CELL, BI_LAYERS, {"bidirectional": True, "merge_mode": None}, ValueError, "merge_mode: None returns a"),
    (CELL, LAYERS, {"merge_mode": "max"}, ValueError, "merge_mode: expected one of"),
    (CELL, LAYERS, {"initial_state": np.zeros((L - 1, B, U))}, ValueError,
     r"initial_state: expected shape \(L \* dirs, B, U\) = \(3, 3, 5\), got \(2, 3, 5\)"),
    (CELL, LAYERS, {"initial_state": np.zeros((L, B, U + 1))}, ValueError, r"initial_state: expected shape"),
    (CELL, BI_LAYERS, {"bidirectional": True, "initial_state": np.zeros((2, B, U))}, ValueError,
     r"initial_state: expected shape \(L \* dirs, B, U\) = \(4, 3, 5\)"),
    (CELL, LAYERS, {"initial_state": [np.zeros((B, U))] * 2}, ValueError,
     r"initial_state: expected 3 states \(L \* dirs, layer-major, forward first\), got 2"),
    (CELL, LAYERS, {"initial_state": [np.zeros((B, U))] * 2 + [np.zeros((B, 2))]}, ValueError,
     r"initial_state\[2\]: expected shape \(B, U\) = \(3, 5\)"),
    (CELL, LAYERS, {"initial_state": np.zeros((L, B, U), np.int32)}, TypeError,
     "initial_state: expected a floating-point array"),
    ([CELL, jaxgru.GRUCell(6), CELL], [LAYERS[0], random_params(jaxgru.GRUCell(6), U, 0),
                                       random_params(CELL, 6, 0)], {"initial_state": np.zeros((L, B, U))},
     ValueError, r"initial_state: one array \(L \* dirs, B, U\) needs equal units .* got units \[5, 6, 5\]"),
    (CELL, LAYERS, {"masks": jaxgru.DropoutMasks()}, ValueError, "masks: one DropoutMasks fits one layer"),
    (CELL, LAYERS, {"mask": np.ones((T, B), bool)}, ValueError, "mask: expected shape"),
])
def test_bad_arguments_name_the_argument(cells, layers, kwargs, error, match):
    with pytest.raises(error, match=match):
        jax.jit(lambda x: jaxgru.stacked_rnn(cells, layers, x, **kwargs))(X)
