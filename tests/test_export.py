"""Export and serve: `jax.export` with symbolic ``(b, t)``, multi-platform lowering, a
TensorFlow SavedModel and TFLite model through jax2tf, jax2onnx into onnxruntime, and
orbax checkpoints. Every exported program is run and compared with the direct call."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from helpers import random_params
from jax import export

import jaxgru
import jaxgru.linen
import jaxgru.nnx
from references import HEAVY

D, U = 3, 5
SHAPES = ((2, 7), (4, 3))  # concrete (B, T) the symbolic export is called at


def sequence(batch, steps, features=D, seed=2):
    return jax.random.normal(jax.random.key(seed), (batch, steps, features))


def right_padding(batch, steps):
    lengths = jnp.arange(batch) % steps + 1
    return jnp.arange(steps)[None, :] < lengths[:, None]


def symbolic_args(*shapes_and_dtypes):
    scope = export.SymbolicScope()
    specs = []
    for spec, dtype in shapes_and_dtypes:
        specs.append(jax.ShapeDtypeStruct(export.symbolic_shape(spec, scope=scope), dtype))
    return specs


def assert_round_trip(fn, static_args, symbolic, concrete):
    """Exports ``fn(*static_args, *symbolic)``, serializes, deserializes, and compares the
    deserialized call with ``fn`` at each concrete argument tuple."""
    exported = export.export(jax.jit(fn))(*static_args, *symbolic)
    restored = export.deserialize(exported.serialize())
    # one program each per shape (``fn`` unjitted would run op by op)
    call, direct = jax.jit(restored.call), jax.jit(fn)
    for args in concrete:
        got, want = call(*static_args, *args), direct(*static_args, *args)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("reset_after, masked", [(True, True), (False, False)])
def test_rnn_exports_forward_and_gradient_with_symbolic_batch_and_time(reset_after, masked):
    cell = jaxgru.GRUCell(U, reset_after=reset_after)
    params = random_params(cell, D)

    def loss(params, x, mask):
        outputs, final = jaxgru.rnn(cell, params, x, mask=mask if masked else None)
        return jnp.sum(jnp.sin(outputs)) + jnp.sum(final ** 2)

    def program(params, x, mask):
        return jaxgru.rnn(cell, params, x, mask=mask if masked else None), jax.grad(loss, (0, 1))(params, x, mask)

    symbolic = symbolic_args(("b, t, 3", jnp.float32), ("b, t", jnp.bool_))
    concrete = [(sequence(b, t), right_padding(b, t)) for b, t in SHAPES]
    assert_round_trip(program, (params,), symbolic, concrete)


def test_bidirectional_and_stacked_export_with_symbolic_batch_and_time():
    cell = jaxgru.GRUCell(U)
    pair = {"forward": random_params(cell, D, 0), "backward": random_params(cell, D, 1)}
    layers = [pair, {"forward": random_params(cell, 2 * U, 2), "backward": random_params(cell, 2 * U, 3)}]

    def program(pair, layers, x, lengths):
        both = jaxgru.bidirectional(cell, pair, x, seq_lengths=lengths)
        stack = jaxgru.stacked_rnn(cell, layers, x, bidirectional=True, seq_lengths=lengths)
        grads = jax.grad(lambda layers: jnp.sum(jaxgru.stacked_rnn(cell, layers, x, bidirectional=True)[0]))(layers)
        return both, stack, grads

    symbolic = symbolic_args(("b, t, 3", jnp.float32), ("b", jnp.int32))
    concrete = [(sequence(b, t), jnp.arange(b, dtype=jnp.int32) % t + 1) for b, t in SHAPES]
    assert_round_trip(program, (pair, layers), symbolic, concrete)


def test_linen_and_nnx_layers_export_with_symbolic_batch_and_time():
    linen = jaxgru.linen.GRU(U, return_sequences=True, return_state=True, reset_after=False)
    variables = linen.init(jax.random.key(0), sequence(2, 4))
    graphdef, state = nnx.split(jaxgru.nnx.GRU(D, U, return_sequences=True, rngs=nnx.Rngs(0)))
    state = nnx.to_pure_dict(state)  # plain arrays: an exported signature holds no Variable types

    def program(variables, state, x, mask):
        def nnx_loss(state):
            return jnp.sum(nnx.merge(graphdef, state)(x, mask=mask) ** 2)

        return (linen.apply(variables, x, mask=mask), nnx.merge(graphdef, state)(x, mask=mask),
                jax.grad(lambda v: jnp.sum(linen.apply(v, x, mask=mask)[0] ** 2))(variables), jax.grad(nnx_loss)(state))

    symbolic = symbolic_args(("b, t, 3", jnp.float32), ("b, t", jnp.bool_))
    concrete = [(sequence(b, t), right_padding(b, t)) for b, t in SHAPES]
    assert_round_trip(program, (variables, state), symbolic, concrete)


def test_multi_platform_export_chunks_the_projection_on_cpu_only():
    """At a shape the CPU default chunks (C*B*U <= 2^18, here 4 chunks of 8 steps), the
    chunking is chosen when lowering: a CPU lowering runs the chunks in an outer loop
    around the recurrence, a CUDA lowering projects all steps and runs one loop, and one
    export for both platforms carries both, selected by the platform it runs on."""
    batch, steps, units = 128, 32, 256
    cell = jaxgru.GRUCell(units)
    params = random_params(cell, D)
    spec = jax.ShapeDtypeStruct((batch, steps, D), jnp.float32)
    program = jax.jit(functools.partial(jaxgru.rnn, cell))

    def loops(platforms):
        return export.export(program, platforms=platforms)(params, spec).mlir_module().count("stablehlo.while")

    assert (loops(("cpu",)), loops(("cuda",))) == (2, 1)
    both = export.export(program, platforms=("cpu", "cuda"))(params, spec)
    assert both.platforms == ("cpu", "cuda")
    module = both.mlir_module()
    assert module.count("stablehlo.while") == 3 and "stablehlo.case" in module
    x = sequence(batch, steps)
    for a, b in zip(jax.tree.leaves(both.call(params, x)), jax.tree.leaves(program(params, x)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def test_explicit_time_chunk_needs_a_static_number_of_steps():
    cell = jaxgru.GRUCell(U)
    params = random_params(cell, D)
    (spec,) = symbolic_args(("b, t, 3", jnp.float32))
    with pytest.raises(ValueError, match="time_chunk: chunking needs a static number of steps"):
        export.export(jax.jit(lambda x: jaxgru.rnn(cell, params, x, time_chunk=2)))(spec)
    exported = export.export(jax.jit(lambda x: jaxgru.rnn(cell, params, x, time_chunk=2)))(
        jax.ShapeDtypeStruct((*export.symbolic_shape("b"), 6, D), jnp.float32))
    x = sequence(3, 6)
    np.testing.assert_allclose(exported.call(x)[0], jaxgru.rnn(cell, params, x)[0], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------- TensorFlow
@pytest.fixture(scope="module")
def tf():
    return pytest.importorskip("tensorflow")


@HEAVY
def test_saved_model_reloads_and_runs_with_variable_batch_and_time(tf, tmp_path):
    from jax.experimental import jax2tf

    cell = jaxgru.GRUCell(U, reset_after=False)
    params = random_params(cell, D)

    def serve(x):
        return jaxgru.rnn(cell, params, x)

    module = tf.Module()
    module.serve = tf.function(jax2tf.convert(serve, polymorphic_shapes=["(b, t, 3)"]), autograph=False,
                               input_signature=[tf.TensorSpec((None, None, D), tf.float32)])
    tf.saved_model.save(module, str(tmp_path))
    restored = tf.saved_model.load(str(tmp_path))
    for b, t in SHAPES:
        x = sequence(b, t)
        outputs, final = restored.serve(tf.constant(np.asarray(x)))
        want_outputs, want_final = serve(x)
        np.testing.assert_allclose(outputs.numpy(), want_outputs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(final.numpy(), want_final, rtol=1e-5, atol=1e-5)


@HEAVY
def test_tflite_interpreter_matches_with_fixed_shapes(tf):
    """TFLite runs the jax2tf function through its TF-ops fallback; a fixed input shape
    is converted (the interpreter resizes nothing)."""
    from jax.experimental import jax2tf

    cell = jaxgru.GRUCell(U)
    params = random_params(cell, D)
    x = np.asarray(sequence(2, 6))

    def serve(x):
        return jaxgru.rnn(cell, params, x)[0]

    function = tf.function(jax2tf.convert(serve), autograph=False,
                           input_signature=[tf.TensorSpec(x.shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    with pytest.warns(UserWarning, match="deprecated"):
        interpreter = tf.lite.Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, serve(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- ONNX via jax2onnx
@pytest.fixture(scope="module")
def onnx_session():
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from jax2onnx import to_onnx

    def run(fn, *inputs):
        model = to_onnx(fn, [x.shape for x in inputs])
        session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        feeds = {arg.name: np.asarray(x) for arg, x in zip(session.get_inputs(), inputs, strict=True)}
        return session.run(None, feeds)

    return run


def test_jax2onnx_exports_rnn_with_a_dense_head(onnx_session):
    cell = jaxgru.GRUCell(U, reset_after=False)
    params = random_params(cell, D)
    head = jax.random.normal(jax.random.key(5), (U, 2))

    def model(x):
        outputs, _ = jaxgru.rnn(cell, params, x)
        return outputs[:, -1] @ head

    x = sequence(3, 6)
    (got,) = onnx_session(model, x)
    np.testing.assert_allclose(got, model(x), rtol=1e-5, atol=1e-5)


def test_jax2onnx_exports_cell_step_and_bidirectional(onnx_session):
    cell = jaxgru.GRUCell(U)
    params = random_params(cell, D)
    pair = {"forward": params, "backward": random_params(cell, D, 7)}
    x, h = sequence(3, 6), jax.random.normal(jax.random.key(9), (3, U))

    def step(x, h):
        return cell.step(params, h, x)[0]

    def both(x):
        return jaxgru.bidirectional(cell, pair, x)[0]

    (got,) = onnx_session(step, x[:, 0], h)
    np.testing.assert_allclose(got, step(x[:, 0], h), rtol=1e-5, atol=1e-5)
    (got,) = onnx_session(both, x)
    np.testing.assert_allclose(got, both(x), rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------- orbax
@pytest.fixture
def checkpointer():
    ocp = pytest.importorskip("orbax.checkpoint")
    with ocp.StandardCheckpointer() as checkpointer:
        yield checkpointer


def test_orbax_round_trips_functional_params_and_a_train_state(checkpointer, tmp_path):
    import optax
    from flax.training import train_state

    cell = jaxgru.GRUCell(U)
    params = random_params(cell, D)
    state = train_state.TrainState.create(apply_fn=None, params=params, tx=optax.adam(1e-3))
    grads = jax.grad(lambda p: jnp.sum(jaxgru.rnn(cell, p, sequence(2, 4))[0]))(params)
    state = state.apply_gradients(grads=grads)
    checkpointer.save(tmp_path / "params", params)
    checkpointer.save(tmp_path / "state", state)
    checkpointer.wait_until_finished()
    restored_params = checkpointer.restore(tmp_path / "params", params)
    restored_state = checkpointer.restore(tmp_path / "state", state)
    for a, b in zip(jax.tree.leaves((restored_params, restored_state)), jax.tree.leaves((params, state)), strict=True):
        np.testing.assert_array_equal(a, b)
    x = sequence(2, 4)
    np.testing.assert_array_equal(jaxgru.rnn(cell, restored_state.params, x)[0], jaxgru.rnn(cell, state.params, x)[0])


def test_orbax_round_trips_an_nnx_gru(checkpointer, tmp_path):
    model = jaxgru.nnx.GRU(D, U, return_sequences=True, rngs=nnx.Rngs(0))
    x = sequence(2, 4)
    checkpointer.save(tmp_path / "gru", nnx.state(model))
    checkpointer.wait_until_finished()
    fresh = jaxgru.nnx.GRU(D, U, return_sequences=True, rngs=nnx.Rngs(1))
    assert not np.allclose(fresh(x), model(x))
    graphdef, abstract = nnx.split(nnx.eval_shape(lambda: jaxgru.nnx.GRU(D, U, return_sequences=True,
                                                                          rngs=nnx.Rngs(1))))
    restored = nnx.merge(graphdef, checkpointer.restore(tmp_path / "gru", abstract))
    np.testing.assert_array_equal(restored(x), model(x))
