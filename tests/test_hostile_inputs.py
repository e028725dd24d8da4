"""Careless and hostile arguments to the runtime API: each class gives a clear error naming
the argument, or the correct result (the Keras-file and Keras-config classes have their own
files)."""

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jaxgru
from jaxgru import parallel
from jaxgru._core.adjoints import supports
from jaxgru.linen import GRU as LinenGRU
from jaxgru.nnx import GRU as NnxGRU
from references import HEAVY, torch

B, T, D, U = 3, 6, 4, 5
CELL = jaxgru.GRUCell(U)
PARAMS = CELL.init(jax.random.key(0), D)
X = jax.random.normal(jax.random.key(1), (B, T, D))
BI_PARAMS = {"forward": PARAMS, "backward": CELL.init(jax.random.key(2), D)}
NOT_BOOLS = ["False", "True", "", 0, 1, 1.0, None, jnp.array(True), [True]]


# ---------------------------------------------------------------- flags must be real bools
def _flag_calls():
    dropout_cell = jaxgru.GRUCell(U, dropout=0.5)
    key = jax.random.key(0)
    h = jnp.zeros((B, U))
    calls = {f"rnn({flag})": (flag, functools.partial(lambda f, v: jaxgru.rnn(CELL, PARAMS, X, **{f: v}), flag))
             for flag in ("training", "go_backwards", "return_sequences", "time_major", "zero_output_for_mask",
                          "remat")}
    calls.update({f"bidirectional({flag})": (flag, functools.partial(
        lambda f, v: jaxgru.bidirectional(CELL, BI_PARAMS, X, **{f: v}), flag))
        for flag in ("training", "return_sequences", "time_major", "remat")})
    calls["step(training)"] = ("training", lambda v: dropout_cell.step(PARAMS, h, X[:, 0], key, training=v))
    calls["dropout_masks(training)"] = ("training", lambda v: dropout_cell.dropout_masks(key, B, D, training=v))
    calls["from_torch(reverse)"] = ("reverse", lambda v: jaxgru.from_torch(jaxgru.to_torch(PARAMS), reverse=v))
    calls["make_train_step(donate)"] = ("donate", lambda v: parallel.make_train_step(
        lambda p, b, k: 0.0, optax.sgd(0.1), parallel.data_mesh(jax.devices()[:1]), donate=v))
    calls["linen GRU(deterministic)"] = ("deterministic", lambda v: LinenGRU(U, dropout=0.5).init(
        {"params": key, "dropout": key}, X, deterministic=v))
    calls["nnx GRU(deterministic)"] = ("deterministic", lambda v: NnxGRU(D, U, dropout=0.5, deterministic=v,
                                                                         rngs=nnx.Rngs(0)))
    return calls


FLAG_CALLS = _flag_calls()


@pytest.mark.parametrize("call", sorted(FLAG_CALLS))
@pytest.mark.parametrize("value", NOT_BOOLS, ids=repr)
def test_boolean_arguments_must_be_bools(call, value):
    """``"False"`` is truthy: every flag of every public function refuses anything but a
    bool, rather than reading ``time_major="False"`` as True."""
    flag, fn = FLAG_CALLS[call]
    with pytest.raises(TypeError, match=f"{flag}: expected a bool"):
        fn(value)


@pytest.mark.parametrize("call", sorted(FLAG_CALLS))
def test_boolean_arguments_accept_python_and_numpy_bools(call):
    _, fn = FLAG_CALLS[call]
    for value in (False, np.bool_(False)):
        fn(value)


# ---------------------------------------------------------------- real floating arrays only
NOT_REAL_FLOATS = [(X.astype(jnp.complex64), "complex64"), (X.astype(jnp.int32), "int32"), (X > 0, "bool"),
                   ("zeros", "'zeros'"), (None, "None")]


@pytest.mark.parametrize("value,shown", NOT_REAL_FLOATS, ids=lambda v: v if isinstance(v, str) else "")
def test_arrays_must_be_real_floating(value, shown):
    """Complex inputs lose their imaginary part silently in a matmul with real weights;
    strings, None and ints are not arrays of the expected kind."""
    state = jnp.zeros((B, U))
    x_t = value[:, 0] if hasattr(value, "shape") else value
    state_value = value[:, 0, :1] * jnp.ones((B, U), value.dtype) if hasattr(value, "shape") else value
    checks = [
        ("x", lambda: CELL.step(PARAMS, state, x_t)),
        ("x", lambda: jax.jit(CELL.step)(PARAMS, state, x_t) if hasattr(x_t, "shape") else CELL.step(PARAMS, state,
                                                                                                       x_t)),
        ("state", lambda: CELL.step(PARAMS, state_value, X[:, 0])),
        ("state", lambda: CELL.step(PARAMS, [state_value], X[:, 0])),
        ("inputs", lambda: jaxgru.rnn(CELL, PARAMS, value)),
        ("inputs", lambda: jaxgru.bidirectional(CELL, BI_PARAMS, value)),
        ("initial_state", lambda: jaxgru.rnn(CELL, PARAMS, X, initial_state=[state_value])),
    ]
    if value is not None:  # rnn's initial_state=None means zeros
        checks.append(("initial_state", lambda: jaxgru.rnn(CELL, PARAMS, X, initial_state=state_value)))
    for argument, fn in checks:
        with pytest.raises(TypeError, match=f"{argument}: expected a floating-point array.*{shown}"):
            fn()


def test_complex_params_are_rejected():
    complex_params = {**PARAMS, "kernel": PARAMS["kernel"].astype(jnp.complex64)}
    with pytest.raises(TypeError, match=r"params\['kernel'\]: expected a floating-point array, got dtype complex64"):
        CELL.step(complex_params, jnp.zeros((B, U)), X[:, 0])
    with pytest.raises(TypeError, match=r"params\['kernel'\]: .*complex64"):
        jaxgru.rnn(CELL, complex_params, X)


# ---------------------------------------------------------------- padding never poisons gradients
WEIGHTS = jnp.linspace(0.5, 1.5, U)
MASK = np.array([[1, 1, 1, 1, 0, 0],   # right padding
                 [0, 0, 1, 1, 1, 1],   # left padding
                 [1, 0, 1, 1, 0, 1]], bool)  # holes


def _row_by_row_loss(cell, params, x, go_backwards):
    """The reference, with no mask involved: each row run alone over its valid steps only
    (masked steps carry the state unchanged), its outputs and final state summed with
    fixed weights."""
    total = 0.0
    for b in range(x.shape[0]):
        valid = x[b][MASK[b]]
        outputs, final = jaxgru.rnn(cell, params, (valid[::-1] if go_backwards else valid)[None],
                                    gradient="autodiff")
        total = total + jnp.sum(outputs * WEIGHTS) + jnp.sum(final * WEIGHTS)
    return total


def _masked_loss(cell, params, x, **options):
    """The same loss from one masked call: the outputs of the valid steps (in processing
    order) and the final state."""
    outputs, final = jaxgru.rnn(cell, params, x, mask=MASK, **options)
    processed = MASK[:, ::-1] if options.get("go_backwards") else MASK
    return jnp.sum(jnp.where(processed[:, :, None], outputs, 0.0) * WEIGHTS) + jnp.sum(final * WEIGHTS)


PADDING_OPTIONS = ({}, {"time_chunk": 2}, {"go_backwards": True}, {"zero_output_for_mask": True})


@pytest.mark.parametrize("reset_after", [True, False])
def test_padding_values_never_reach_values_or_gradients(reset_after):
    """Masked steps contribute exactly nothing: NaN, inf or huge padding gives the loss and
    the gradients of the rows run alone over their valid steps, and a zero gradient for
    the padding itself; both backward passes, each option.

    The masked calls (both backward passes, every option) and the references (forwards and
    backwards) are one jitted program, compiled once and run for each padding."""
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    params = cell.init(jax.random.key(3), D)
    variants = [(gradient, options) for gradient in ("fused", "autodiff") for options in PADDING_OPTIONS]

    @jax.jit
    def all_losses_and_grads(p, x_padded):
        masked = [jax.value_and_grad(lambda p, x, g=gradient, o=options: _masked_loss(cell, p, x, gradient=g, **o),
                                     argnums=(0, 1))(p, x_padded) for gradient, options in variants]
        references = {backwards: jax.value_and_grad(lambda p, x, b=backwards: _row_by_row_loss(cell, p, x, b),
                                                    argnums=(0, 1))(p, X) for backwards in (False, True)}
        return masked, references

    for padding in (np.nan, np.inf, -np.inf, 1e30):
        masked, references = all_losses_and_grads(params, jnp.where(MASK[:, :, None], X, padding))
        for (gradient, options), (loss, (grads, d_inputs)) in zip(variants, masked, strict=True):
            expected_loss, (expected, expected_d_inputs) = references[bool(options.get("go_backwards"))]
            where = f"{gradient} {options} {padding}"
            np.testing.assert_allclose(loss, expected_loss, rtol=1e-5, err_msg=where)
            for name in params:
                np.testing.assert_allclose(grads[name], expected[name], rtol=2e-4, atol=1e-5, err_msg=f"{name} {where}")
            assert np.all(d_inputs[~MASK] == 0), where  # the padding's own gradient is exactly zero
            np.testing.assert_allclose(d_inputs[MASK], expected_d_inputs[MASK], rtol=2e-4, atol=1e-5, err_msg=where)


def test_padding_in_bidirectional_gradients():
    x_padded = jnp.where(MASK[:, :, None], X, np.nan)
    def gradient(params, x):
        return jax.grad(lambda p: jnp.sum(jaxgru.bidirectional(CELL, p, x, mask=MASK)[0]))(params)

    grads, clean = jax.jit(lambda p: [gradient(p, x) for x in (x_padded, X)])(BI_PARAMS)  # one program
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), grads, clean)


# ---------------------------------------------------------------- arguments named in errors
@pytest.mark.parametrize("call,error,match", [
    (lambda: jaxgru.rnn(CELL, PARAMS, X, unroll="2"), TypeError, "unroll: expected an integer, got '2'"),
    (lambda: jaxgru.rnn(CELL, PARAMS, X, unroll=0), ValueError, "unroll: expected a positive integer, got 0"),
    (lambda: jaxgru.rnn(CELL, PARAMS, X, unroll=1.5), TypeError, "unroll: expected an integer"),
    (lambda: jaxgru.bidirectional(CELL, BI_PARAMS, X, unroll=None), TypeError, "unroll: expected an integer"),
    (lambda: jaxgru.rnn(CELL, PARAMS, X, initial_state=[None]), TypeError,
     r"initial_state: expected a floating-point array \(\*batch, U\), got None"),
    (lambda: CELL.step(PARAMS, None, X[:, 0]), TypeError, r"state: expected a floating-point array \(B, U\)"),
    (lambda: CELL.step(PARAMS, (), X[:, 0]), ValueError, "state: a GRU has one state tensor"),
    (lambda: CELL.step(PARAMS, jnp.zeros((B, U)), object()), TypeError, "x: expected a floating-point array"),
    (lambda: jaxgru.rnn(CELL, {**PARAMS, "kernel": jnp.zeros((0, 3 * U))}, jnp.ones((B, T, 0))), ValueError,
     r"params\['kernel'\]: expected shape \(D, 15\) with D >= 1"),
    (lambda: CELL.step({**PARAMS, "kernel": jnp.zeros((0, 3 * U))}, jnp.zeros((B, U)), jnp.ones((B, 0))),
     ValueError, r"params\['kernel'\]: .*D >= 1"),
    (lambda: CELL.init(jax.random.key(0), 0), ValueError, "input_dim: expected a positive integer"),
    (lambda: CELL.init(0, D), TypeError, "rng: expected one PRNG key"),
    (lambda: jaxgru.GRUCell(U, dropout=0.5).dropout_masks("key", B, D), TypeError, "rng: expected one PRNG key"),
    (lambda: jaxgru.rnn(jaxgru.GRUCell(U, dropout=0.5), PARAMS, X, rng=jnp.zeros(3), training=True), TypeError,
     r"rng: expected one PRNG key.*shape \(3,\)"),
    (lambda: jaxgru.rnn(jaxgru.GRUCell(U, dropout=0.5), PARAMS, X, rng=jax.random.split(jax.random.key(0)),
                        training=True), TypeError, r"rng: expected one PRNG key.*shape \(2,\) and dtype key"),
    (lambda: jaxgru.bidirectional(CELL, BI_PARAMS, X, rng=7), TypeError, "rng: expected one PRNG key"),
    (lambda: jaxgru.rnn(CELL, PARAMS, X, mask="all"), TypeError, "mask: expected booleans.*'all'"),
    (lambda: jaxgru.rnn(CELL, PARAMS, X, mask=object()), TypeError, "mask: expected booleans.*object"),
])
def test_errors_name_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_unroll_accepts_ints_and_bools():
    expected = jaxgru.rnn(CELL, PARAMS, X)[0]
    for unroll in (2, True, False, np.int64(3)):
        np.testing.assert_allclose(jaxgru.rnn(CELL, PARAMS, X, unroll=unroll)[0], expected, rtol=1e-6)


def test_legacy_uint32_keys_still_work():
    cell = jaxgru.GRUCell(U, dropout=0.5)
    legacy = jaxgru.rnn(cell, PARAMS, X, rng=jax.random.PRNGKey(4), training=True)[0]
    typed = jaxgru.rnn(cell, PARAMS, X, rng=jax.random.wrap_key_data(jax.random.PRNGKey(4)), training=True)[0]
    np.testing.assert_array_equal(legacy, typed)


@pytest.mark.parametrize("batch_dim,match", [
    ({"x": 1}, r"batch_dim: expected an int or a pytree prefix of the batch"),
    ({"x": 0, "mask": 1, "extra": 0}, r"batch_dim: expected an int or a pytree prefix"),
    ([0, 1], r"batch_dim: expected an int or a pytree prefix"),
    ({"x": "0", "mask": 1}, r"batch_dim: expected non-negative integers"),
])
def test_shard_batch_batch_dim_must_fit_the_batch(batch_dim, match):
    mesh = parallel.data_mesh(jax.devices()[:1])
    batch = {"x": np.ones((2, 5, 3), np.float32), "mask": np.ones((5, 2), bool)}
    with pytest.raises(ValueError, match=match):
        parallel.shard_batch(batch, mesh, batch_dim=batch_dim)
    loss = lambda p, b, k: jnp.mean(p["w"] * b["x"])  # noqa: E731
    params = {"w": jnp.ones(())}
    with pytest.raises(ValueError, match=match):  # when the step is made, or else called
        step = parallel.make_train_step(loss, optax.sgd(0.1), mesh, batch_dim=batch_dim, donate=False)
        step(params, optax.sgd(0.1).init(params), batch, None)


# ---------------------------------------------------------------- donated arrays
def test_train_step_refuses_the_arrays_it_donated():
    mesh = parallel.data_mesh(jax.devices()[:1])
    loss = lambda p, b, k: jnp.mean((p["w"] * b) ** 2)  # noqa: E731
    optimizer = optax.adam(0.1)
    params = parallel.replicate({"w": jnp.ones(3)}, mesh)
    opt_state = parallel.replicate(optimizer.init(params), mesh)
    batch = parallel.shard_batch(np.ones((2, 3), np.float32), mesh)
    step = parallel.make_train_step(loss, optimizer, mesh)
    new = step(params, opt_state, batch, None)
    assert params["w"].is_deleted()  # donated, as documented
    with pytest.raises(ValueError, match=r"params\['w'\]: this array was deleted.*donate=False"):
        step(params, new.opt_state, batch, None)
    with pytest.raises(ValueError, match=r"opt_state.*: this array was deleted"):
        step(new.params, opt_state, batch, None)
    again = step(new.params, new.opt_state, batch, None)  # the returned arrays are the ones to pass
    assert float(again.loss) < float(new.loss)
    kept = parallel.make_train_step(loss, optimizer, mesh, donate=False)
    first = kept(again.params, again.opt_state, batch, None)
    second = kept(again.params, again.opt_state, batch, None)  # inputs stay valid without donation
    np.testing.assert_array_equal(first.params["w"], second.params["w"])


# ---------------------------------------------------------------- the fused backward's probe
def _softmax_over_units(v):
    return jax.nn.softmax(v, axis=1)  # needs the (B, U) shape: axis 1 does not exist in 1-D


def _scaled_by_row_mean(v):
    return jnp.tanh(v) * jnp.mean(v, axis=1, keepdims=True)


def _elementwise_with_axis(v):
    return jnp.tanh(v) + 0.0 * jnp.sum(v, axis=1, keepdims=True)  # elementwise in value and derivative


@pytest.mark.parametrize("activation,elementwise", [(_softmax_over_units, False), (_scaled_by_row_mean, False),
                                                    (_elementwise_with_axis, True)])
def test_activations_written_for_2d_states_work_with_the_default_backward(activation, elementwise):
    cell = jaxgru.GRUCell(U, activation=activation)
    assert supports(cell) == elementwise
    mask = jnp.asarray(MASK)

    def loss(gradient, params, x):
        outputs, final = jaxgru.rnn(cell, params, x, mask=mask, gradient=gradient)
        return jnp.sum(outputs ** 2) + jnp.sum(final)

    @jax.jit  # both gradients, the call and its step-by-step reference: one program
    def results(params, x):
        return ([jax.grad(functools.partial(loss, gradient), argnums=(0, 1))(params, x)
                 for gradient in ("autodiff", "fused")],
                jaxgru.rnn(cell, params, x)[0], jax.vmap(lambda x: _step_loop(cell, x))(x))

    (expected, got), outputs, step_by_step = results(PARAMS, X)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), got, expected)
    np.testing.assert_allclose(outputs, step_by_step, rtol=1e-5, atol=1e-6)


def _step_loop(cell, x):
    h = jnp.zeros((1, cell.units))
    outputs = []
    for t in range(x.shape[0]):
        h, _ = cell.step(PARAMS, h, x[t][None])
        outputs.append(h[0])
    return jnp.stack(outputs)


# ---------------------------------------------------------------- torch tensors
@HEAVY
def test_torch_tensors_convert_without_deprecated_numpy_paths():
    state_dict = torch.nn.GRU(D, U, batch_first=True).state_dict()
    half_state_dict = {name: tensor.to(torch.bfloat16) for name, tensor in state_dict.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params = jaxgru.from_torch(state_dict)
        half = jaxgru.from_torch(half_state_dict)
    for name, tensor in jaxgru.to_torch(params).items():
        np.testing.assert_array_equal(tensor, state_dict[name].numpy())
    assert half["kernel"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(jaxgru.to_torch(half)["weight_hh_l0"].astype(np.float32),
                                  half_state_dict["weight_hh_l0"].float().numpy())
