"""from_torch / to_torch against a real torch.nn.GRU."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from references import HEAVY, torch

import jaxgru

pytestmark = HEAVY  # every test here runs torch


@pytest.fixture(autouse=True)
def _torch_seed():
    """Every test draws torch's weights and inputs from the same seed, whichever ran before."""
    torch.manual_seed(0)


INPUT, UNITS, BATCH, STEPS = 3, 4, 2, 5


def jaxgru_stack(state_dict, num_layers, inputs):
    """A stacked bidirectional jaxgru GRU: each layer's concat output feeds the next."""
    cell = jaxgru.GRUCell(UNITS, reset_after=True)
    finals = []
    for layer in range(num_layers):
        params = {"forward": jaxgru.from_torch(state_dict, layer=layer),
                  "backward": jaxgru.from_torch(state_dict, layer=layer, reverse=True)}
        inputs, (h_fw, h_bw) = jaxgru.bidirectional(cell, params, inputs, merge_mode="concat")
        finals += [h_fw, h_bw]
    return inputs, jnp.stack(finals)


def test_stacked_bidirectional_matches_torch():
    module = torch.nn.GRU(INPUT, UNITS, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    with torch.no_grad():
        out, h_n = module(x)
    outputs, finals = jaxgru_stack(module.state_dict(), 2, jnp.asarray(x.numpy()))
    np.testing.assert_allclose(np.asarray(outputs), out.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(finals), h_n.numpy(), atol=1e-5)


@pytest.mark.parametrize("bias", [True, False])
def test_round_trip_is_exact_and_loads_into_torch(bias):
    module = torch.nn.GRU(INPUT, UNITS, num_layers=2, bidirectional=True, bias=bias)
    original = module.state_dict()
    cell = jaxgru.GRUCell(UNITS, use_bias=bias, reset_after=True)
    rebuilt = {}
    for layer in range(2):
        for reverse in (False, True):
            params = jaxgru.from_torch(original, layer=layer, reverse=reverse)
            assert sorted(params) == sorted(cell.param_shapes(INPUT if layer == 0 else 2 * UNITS))
            rebuilt.update(jaxgru.to_torch(params, layer=layer, reverse=reverse, cell=cell))
    assert rebuilt.keys() == original.keys()
    for key, value in original.items():
        assert rebuilt[key].dtype == np.float32
        np.testing.assert_array_equal(rebuilt[key], value.numpy())
    copy = torch.nn.GRU(INPUT, UNITS, num_layers=2, bidirectional=True, bias=bias)
    copy.load_state_dict({k: torch.from_numpy(v) for k, v in rebuilt.items()})


def test_single_layer_with_initial_state_matches_torch():
    module = torch.nn.GRU(INPUT, UNITS, batch_first=True)
    x = torch.randn(BATCH, STEPS, INPUT)
    h0 = torch.randn(1, BATCH, UNITS)
    with torch.no_grad():
        out, h_n = module(x, h0)
    cell = jaxgru.GRUCell(UNITS)
    outputs, final = jaxgru.rnn(cell, jaxgru.from_torch(module.state_dict()), jnp.asarray(x.numpy()),
                                initial_state=jnp.asarray(h0[0].numpy()))
    np.testing.assert_allclose(np.asarray(outputs), out.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.asarray(final), h_n[0].numpy(), atol=1e-5)


def test_params_do_not_alias_torch_tensors():
    module = torch.nn.GRU(INPUT, UNITS)
    params = jaxgru.from_torch(module.state_dict())
    before = params["kernel"].copy()
    with torch.no_grad():
        module.weight_ih_l0.add_(1.0)
    np.testing.assert_array_equal(params["kernel"], before)


def test_dtypes_are_kept(x64):
    module = torch.nn.GRU(INPUT, UNITS).double()
    params = jaxgru.from_torch(module.state_dict())
    assert all(p.dtype == np.float64 for p in params.values())
    bf16 = jaxgru.from_torch(torch.nn.GRU(INPUT, UNITS).to(torch.bfloat16).state_dict())
    assert all(p.dtype == jnp.bfloat16 for p in bf16.values())
    back = jaxgru.to_torch(bf16)
    reference = torch.nn.GRU(INPUT, UNITS).to(torch.bfloat16)
    for key, value in back.items():
        assert value.dtype == jnp.bfloat16 and value.shape == tuple(reference.state_dict()[key].shape)


def test_numpy_and_jax_state_dicts_are_accepted():
    module = torch.nn.GRU(INPUT, UNITS)
    as_numpy = {k: v.numpy() for k, v in module.state_dict().items()}
    as_jax = jax.tree.map(jnp.asarray, as_numpy)
    for a, b in zip(jaxgru.from_torch(as_numpy).values(), jaxgru.from_torch(as_jax).values()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ malformed inputs
def good_state_dict():
    return {k: v.numpy() for k, v in torch.nn.GRU(INPUT, UNITS, num_layers=2).state_dict().items()}


@pytest.mark.parametrize("missing,message", [
    ("weight_ih_l0", r"'weight_ih_l0' of shape \(3\*hidden_size, input_size\)"),
    ("weight_hh_l0", r"'weight_hh_l0' of shape \(12, 4\)"),
    ("bias_ih_l0", r"'bias_ih_l0' of shape \(12,\)"),
    ("bias_hh_l0", r"'bias_hh_l0' of shape \(12,\)"),
])
def test_missing_keys(missing, message):
    state_dict = good_state_dict()
    del state_dict[missing]
    with pytest.raises(ValueError, match=message):
        jaxgru.from_torch(state_dict)


def test_missing_layer_and_direction():
    with pytest.raises(ValueError, match="weight_ih_l2"):
        jaxgru.from_torch(good_state_dict(), layer=2)
    with pytest.raises(ValueError, match="weight_ih_l0_reverse"):
        jaxgru.from_torch(good_state_dict(), reverse=True)


@pytest.mark.parametrize("key,shape,message", [
    ("weight_ih_l0", (11, 3), r"weight_ih_l0'\]: expected shape \(3\*hidden_size, input_size\)"),
    ("weight_ih_l0", (12,), r"weight_ih_l0'\]: expected shape"),
    ("weight_hh_l0", (12, 5), r"weight_hh_l0'\]: expected shape \(12, 4\)"),
    ("bias_ih_l0", (2, 12), r"bias_ih_l0'\]: expected shape \(12,\)"),
    ("bias_hh_l0", (9,), r"bias_hh_l0'\]: expected shape \(12,\)"),
])
def test_bad_shapes(key, shape, message):
    state_dict = good_state_dict()
    state_dict[key] = np.zeros(shape, np.float32)
    with pytest.raises(ValueError, match=message):
        jaxgru.from_torch(state_dict)


def test_bad_arguments():
    with pytest.raises(TypeError, match="state_dict"):
        jaxgru.from_torch(torch.nn.GRU(INPUT, UNITS))
    with pytest.raises(ValueError, match="layer"):
        jaxgru.from_torch(good_state_dict(), layer=-1)
    with pytest.raises(TypeError, match="layer: expected an integer"):
        jaxgru.from_torch(good_state_dict(), layer=True)
    with pytest.raises(TypeError, match="reverse"):
        jaxgru.from_torch(good_state_dict(), reverse=1)
    state_dict = good_state_dict()
    state_dict["weight_ih_l0"] = state_dict["weight_ih_l0"].astype(np.int32)
    with pytest.raises(TypeError, match="weight_ih_l0: expected floating-point"):
        jaxgru.from_torch(state_dict)


def test_reset_before_has_no_torch_equivalent():
    params = jaxgru.GRUCell(UNITS, reset_after=False).init(jax.random.key(0), INPUT)
    with pytest.raises(ValueError, match=r"reset_after=False.*\(r ⊙ h\) U_h.*nn.GRU"):
        jaxgru.to_torch(params)
    no_bias = jaxgru.GRUCell(UNITS, use_bias=False, reset_after=False)
    with pytest.raises(ValueError, match="reset_after=False"):
        jaxgru.to_torch(no_bias.init(jax.random.key(0), INPUT), cell=no_bias)


def test_bias_free_params_need_the_cell():
    cell = jaxgru.GRUCell(UNITS, use_bias=False)
    params = cell.init(jax.random.key(0), INPUT)
    with pytest.raises(ValueError, match=r"without a bias.*cell=jaxgru.GRUCell\(4, use_bias=False, reset_after=True\)"):
        jaxgru.to_torch(params)
    assert sorted(jaxgru.to_torch(params, cell=cell)) == ["weight_hh_l0", "weight_ih_l0"]
    with pytest.raises(ValueError, match="cell.units=5"):
        jaxgru.to_torch(params, cell=jaxgru.GRUCell(5, use_bias=False))
    with pytest.raises(ValueError, match="cell.use_bias=True"):
        jaxgru.to_torch(params, cell=jaxgru.GRUCell(UNITS))


@pytest.mark.parametrize("change,error,message", [
    (lambda p: p.pop("kernel"), ValueError, r"params\['kernel'\]: missing; expected shape \(input_dim, 3\*units\)"),
    (lambda p: p.pop("recurrent_kernel"), ValueError, r"params\['recurrent_kernel'\]: missing"),
    (lambda p: p.update(kernel=np.zeros((3, 9))), ValueError, r"params\['kernel'\]: expected shape \(input_dim, 12\)"),
    (lambda p: p.update(recurrent_kernel=np.zeros((4, 4))), ValueError, r"expected shape \(units, 3\*units\)"),
    (lambda p: p.update(bias=np.zeros((3, 12))), ValueError, r"params\['bias'\]: expected shape \(12,\).*\(2, 12\)"),
    (lambda p: p.update(gamma=np.zeros(3)), ValueError, r"unexpected keys \['gamma'\]"),
])
def test_malformed_params(change, error, message):
    params = dict(jaxgru.GRUCell(UNITS).init(jax.random.key(0), INPUT))
    change(params)
    with pytest.raises(error, match=message):
        jaxgru.to_torch(params)


@pytest.mark.parametrize("convert", [lambda p, cell: jaxgru.to_torch(p, cell=cell),
                                     lambda p, cell: jaxgru.to_torch_stack([p], cell=cell),
                                     lambda p, cell: jaxgru.to_cudnn(p, cell=cell)])
@pytest.mark.parametrize("option, value", [("activation", "relu"), ("recurrent_activation", "hard_sigmoid")])
def test_activations_torch_cannot_compute_are_refused(convert, option, value):
    """PyTorch's and cuDNN's GRU apply sigmoid and tanh only: other activations are named, not dropped."""
    cell = jaxgru.GRUCell(UNITS, **{option: value})
    with pytest.raises(ValueError, match=rf"cell.{option}: '{value}', but .* always applies"):
        convert(cell.init(jax.random.key(0), INPUT), cell)
