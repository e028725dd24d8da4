"""The GRUs a user could pick instead of jaxgru, each as runnable forward and train steps.

Every builder takes a `Problem` and returns a `Runner` (or raises `Unsupported`): three
zero-argument callables that run one forward pass and two forward+backward passes (the
gradient of ``mean(outputs²)`` w.r.t. the parameters and the inputs, as in a stacked
layer, and w.r.t. the parameters only, as in a first or only layer), each waiting for
the device to finish. The inputs are ``(B, T, D)`` batch-major; masked problems pass
per-row lengths (right padding) in each library's own form. Peers are imported only when
built, so a missing library only drops its rows.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 reads it at import
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# OpenMP threads (torch, TensorFlow) that spin after their work would steal the CPU from
# the next peer in the alternation.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from typing import Callable, NamedTuple, Optional  # noqa: E402

import numpy as np  # noqa: E402


class Problem(NamedTuple):
    batch: int
    steps: int
    features: int
    units: int
    reset_after: bool
    lengths: Optional[np.ndarray]  # (B,) valid steps per row, or None for no mask

    @property
    def mask(self) -> Optional[np.ndarray]:
        return None if self.lengths is None else np.arange(self.steps)[None, :] < self.lengths[:, None]

    def inputs(self) -> np.ndarray:
        return np.random.default_rng(0).normal(size=(self.batch, self.steps, self.features)).astype(np.float32)


class Runner(NamedTuple):
    forward: Callable[[], None]
    train: Callable[[], None]  # gradient w.r.t. params and inputs
    params_only: Callable[[], None]  # gradient w.r.t. params only


class Unsupported(Exception):
    """The peer cannot run this problem (e.g. its GRU has only one convention)."""


def _require(condition: bool, why: str) -> None:
    if not condition:
        raise Unsupported(why)


# --------------------------------------------------------------------------- JAX peers
def _jax_runner(forward_fn, params, args) -> Runner:
    """jits ``forward_fn(params, x, *rest)`` and the gradients of its mean square w.r.t.
    ``(params, x)`` and w.r.t. ``params``."""
    import jax
    import jax.numpy as jnp

    params, args = jax.device_put((params, args))

    def loss(p, x, *rest):
        return jnp.mean(forward_fn(p, x, *rest) ** 2)

    compiled = [jax.jit(forward_fn), jax.jit(jax.grad(loss, argnums=(0, 1))), jax.jit(jax.grad(loss))]
    return Runner(*(lambda fn=fn: jax.block_until_ready(fn(params, *args)) for fn in compiled))


def jaxgru_runner(problem: Problem, gradient: str = "fused") -> Runner:
    import jax

    import jaxgru

    cell = jaxgru.GRUCell(problem.units, reset_after=problem.reset_after)
    params = cell.init(jax.random.key(0), problem.features)
    mask = problem.mask

    def forward(p, x, mask):
        return jaxgru.rnn(cell, p, x, mask=mask, gradient=gradient)[0]

    return _jax_runner(forward, params, (problem.inputs(), mask))


def flax_linen_runner(problem: Problem) -> Runner:
    import flax.linen as nn
    import jax

    _require(problem.reset_after, "flax's GRUCell is reset_after only")
    model = nn.RNN(nn.GRUCell(problem.units))
    x = problem.inputs()
    params = model.init(jax.random.key(0), x)

    def forward(p, x, lengths):
        return model.apply(p, x, seq_lengths=lengths)

    return _jax_runner(forward, params, (x, problem.lengths))


def flax_nnx_runner(problem: Problem) -> Runner:
    import jax.numpy as jnp
    from flax import nnx

    _require(problem.reset_after, "flax's GRUCell is reset_after only")
    model = nnx.RNN(nnx.GRUCell(problem.features, problem.units, rngs=nnx.Rngs(0)))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def forward(params, x, lengths):
        carry = jnp.zeros((x.shape[0], problem.units), x.dtype)
        return nnx.merge(graphdef, params, rest)(x, initial_carry=carry, seq_lengths=lengths, rngs=nnx.Rngs(0))

    return _jax_runner(forward, params, (problem.inputs(), problem.lengths))


def equinox_runner(problem: Problem) -> Runner:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    _require(problem.reset_after, "equinox's GRUCell is reset_after only")
    cell = eqx.nn.GRUCell(problem.features, problem.units, key=jax.random.key(0))
    params, static = eqx.partition(cell, eqx.is_array)
    mask = problem.mask

    def forward(params, x, mask):
        step_cell = jax.vmap(eqx.combine(params, static))

        def body(h, inputs):
            x_t, keep_t = inputs
            h_new = step_cell(x_t, h)
            if keep_t is not None:
                h_new = jnp.where(keep_t[:, None], h_new, h)
            return h_new, h_new

        keep = None if mask is None else mask.T
        h0 = jnp.zeros((x.shape[0], problem.units), x.dtype)
        return jnp.swapaxes(jax.lax.scan(body, h0, (jnp.swapaxes(x, 0, 1), keep))[1], 0, 1)

    return _jax_runner(forward, params, (problem.inputs(), mask))


def haiku_runner(problem: Problem) -> Runner:
    import haiku as hk
    import jax
    import jax.numpy as jnp

    _require(not problem.reset_after, "haiku's GRU is reset_after=False only")
    _require(problem.lengths is None, "hk.dynamic_unroll has no mask")

    def unroll(x):
        core = hk.GRU(problem.units)
        outputs, _ = hk.dynamic_unroll(core, jnp.swapaxes(x, 0, 1), core.initial_state(x.shape[0]))
        return jnp.swapaxes(outputs, 0, 1)

    model = hk.without_apply_rng(hk.transform(unroll))
    x = problem.inputs()
    params = model.init(jax.random.key(0), x)
    return _jax_runner(lambda p, x: model.apply(p, x), params, (x,))


def keras3_runner(problem: Problem) -> Runner:
    import keras

    _require(keras.backend.backend() == "jax", "Keras 3 was imported with another backend")
    layer = keras.layers.GRU(problem.units, return_sequences=True, reset_after=problem.reset_after)
    layer.build((problem.batch, problem.steps, problem.features))
    trainable = [v.value for v in layer.trainable_variables]
    non_trainable = [v.value for v in layer.non_trainable_variables]
    mask = problem.mask

    def forward(trainable, x, mask):
        return layer.stateless_call(trainable, non_trainable, x, mask=mask)[0]

    return _jax_runner(forward, trainable, (problem.inputs(), mask))


# --------------------------------------------------------------------------- other frameworks
def tf_keras_runner(problem: Problem) -> Runner:
    import tensorflow as tf
    import tf_keras

    layer = tf_keras.layers.GRU(problem.units, return_sequences=True, reset_after=problem.reset_after)
    x = tf.constant(problem.inputs())
    mask = None if problem.mask is None else tf.constant(problem.mask)
    layer(x[:1], mask=None if mask is None else mask[:1])  # build

    @tf.function
    def forward(x, mask):
        return layer(x, mask=mask)

    def gradient(with_inputs: bool):
        @tf.function
        def train(x, mask):
            with tf.GradientTape() as tape:
                if with_inputs:
                    tape.watch(x)
                loss = tf.reduce_mean(layer(x, mask=mask, training=True) ** 2)
            return tape.gradient(loss, [x, *layer.trainable_variables] if with_inputs else layer.trainable_variables)
        return train

    def run(fn):
        return lambda: [t.numpy() for t in tf.nest.flatten(fn(x, mask))]

    return Runner(run(forward), run(gradient(True)), run(gradient(False)))


def torch_runner(problem: Problem) -> Runner:
    import torch

    _require(problem.reset_after, "torch.nn.GRU is reset_after only")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gru = torch.nn.GRU(problem.features, problem.units, batch_first=True).to(device)
    x = torch.from_numpy(problem.inputs()).to(device)
    lengths = None if problem.lengths is None else torch.from_numpy(problem.lengths.astype(np.int64))

    def outputs(x):
        if lengths is None:
            return gru(x)[0]
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        return torch.nn.utils.rnn.pad_packed_sequence(gru(packed)[0], batch_first=True,
                                                      total_length=problem.steps)[0]

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def forward():
        with torch.no_grad():
            outputs(x)
        sync()

    def train(with_inputs: bool):
        def run():
            gru.zero_grad(set_to_none=True)
            torch.mean(outputs(x.detach().requires_grad_(with_inputs)) ** 2).backward()
            sync()
        return run

    return Runner(forward, train(True), train(False))


PEERS: dict[str, Callable[[Problem], Runner]] = {
    "jaxgru": jaxgru_runner,
    "jaxgru (autodiff)": lambda problem: jaxgru_runner(problem, gradient="autodiff"),
    "flax linen": flax_linen_runner,
    "flax nnx": flax_nnx_runner,
    "equinox": equinox_runner,
    "haiku": haiku_runner,
    "keras 3 (jax)": keras3_runner,
    "tf_keras": tf_keras_runner,
    "torch": torch_runner,
}
JAX_PEERS = ("flax linen", "flax nnx", "equinox", "haiku", "keras 3 (jax)")
