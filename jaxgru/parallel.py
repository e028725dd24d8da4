"""Data-parallel training over a device mesh, with JAX's own SPMD machinery.

The recipe: a 1-D `jax.sharding.Mesh` over all devices (of all processes), the batch axis
of every input sharded over it (``PartitionSpec("data")``), params and optimizer state
replicated, and the train step compiled by `jax.jit` with those explicit ``in_shardings``
and ``out_shardings``. The step is written as for one device (a loss that averages over
the *global* batch); XLA's SPMD partitioner runs each device on its slice of the batch
and inserts the one all-reduce the gradients and the loss need. Nothing in `jaxgru.rnn`
or `jaxgru.GRUCell` knows about devices: they keep their results under sharding, so the
loss, gradients and trained params equal the single-device ones up to float32
summation order.

Communication: the forward pass needs none. With the default fused backward
(``gradient="fused"``) the time loop carries only ``dh`` and the weight gradients are
matmuls over all timesteps after it, so gradients cross devices in one all-reduce per
train step on every backend. With ``gradient="autodiff"`` each step adds its contribution
to the recurrent weights' gradient inside the loop: XLA's GPU compiler sinks that
all-reduce out of the loop (its while-loop all-reduce code motion), while the CPU backend,
which stands in for devices in tests, keeps one small all-reduce per timestep: correct,
just slower.

Shapes: inputs ``(B, T, D)`` (``(T, B, D)`` time-major), sequence masks ``(B, T)``,
initial states ``(B, U)``, labels ``(B, ...)``: all shard along their batch axis ``B``,
which must divide evenly over the devices of the mesh's data axis.

Dropout keys. The step takes one *global* key, replicated on every device, and the model
draws its masks for the global batch from it (`jaxgru.rnn` draws ``(3, B, D)`` and
``(3, B, U)`` masks, one row per example). Each device's shard therefore gets different
masks (the rows of its examples), the same key gives the same masks, and -- the property
a per-device ``fold_in(key, device_index)`` scheme would lose -- the masks, and so the
loss, gradients and trained params, do not depend on the number of devices. It costs
nothing: with ``jax_threefry_partitionable`` (JAX's default) each device generates only
the rows of its own shard. Derive per-step keys outside the step, e.g.
``jax.random.fold_in(key, step)``.

Params are replicated, not sharded along ``units``: a GRU's recurrent matmul
``h (B, U) @ U (U, 3U)`` with ``U`` split by columns needs the whole new ``h`` on every
device at the next step, one all-gather per timestep, T latency-bound collectives per
sequence against a ``3U^2`` weight that fits any device for any practical ``U``. Batch
sharding has no per-step communication at all.

Several processes (hosts): call `jax.distributed.initialize` first in every process
(arguments, or the cluster environment, name the coordinator, the process count and this
process's id; CPU processes run their collectives with gloo). `data_mesh` then spans
every process's devices, `replicate` needs the same values in every process,
`shard_batch` takes each process's own rows (the global batch is their concatenation in
process order), and the same step runs unchanged: its results equal one process holding
all the devices. Replicated params and optimizer state are ordinary global arrays: orbax
saves them from every process and restores them onto another mesh (another process
count) given a target with that mesh's shardings. When a process dies, JAX's
coordination service terminates the others (within ``heartbeat_timeout_seconds`` of
`jax.distributed.initialize`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
import optax
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from jaxgru._core.validation import check_bool
from jaxgru.types import PyTree

__all__ = ["DATA_AXIS", "TrainStep", "batch_sharding", "data_mesh", "make_train_step", "replicate", "replicated",
           "shard_batch"]

AxisNames = str | tuple[str, ...]
DATA_AXIS = "data"


def data_mesh(devices: Sequence[jax.Device] | None = None, axis: str = DATA_AXIS) -> Mesh:
    """A 1-D mesh named ``axis`` over ``devices`` (default: `jax.devices()`, all processes').

    The axis is `AxisType.Auto`: the SPMD partitioner propagates shardings through the
    model, so model code stays free of sharding annotations.
    """
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("devices: expected at least one device, got an empty sequence.")
    return jax.make_mesh((len(devices),), (axis,), axis_types=(AxisType.Auto,), devices=devices)


def _check_axis(mesh: Mesh, axis: AxisNames) -> tuple[str, ...]:
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh, got {type(mesh).__name__}.")
    names = (axis,) if isinstance(axis, str) else tuple(axis)
    missing = [a for a in names if a not in mesh.axis_names]
    if not names or missing:
        raise ValueError(f"axis: expected names of the mesh's axes {mesh.axis_names}, got {axis!r}.")
    return names


def _check_batch_dim(batch_dim: Any) -> int:
    if isinstance(batch_dim, bool) or not isinstance(batch_dim, int) or batch_dim < 0:
        raise ValueError(f"batch_dim: expected non-negative integers, got {batch_dim!r}.")
    return batch_dim


def batch_sharding(mesh: Mesh, axis: AxisNames = DATA_AXIS, batch_dim: int = 0) -> NamedSharding:
    """Sharding of an array whose dimension ``batch_dim`` is split over ``axis``.

    ``batch_dim=0`` for ``(B, T, D)`` inputs, ``(B, T)`` masks and ``(B, U)`` states;
    ``batch_dim=1`` for time-major ``(T, B, D)`` inputs and ``(T, B)`` masks. ``axis`` may
    be a tuple of mesh axes to split the batch over several.
    """
    names = _check_axis(mesh, axis)
    spec = [None] * _check_batch_dim(batch_dim) + [names[0] if len(names) == 1 else names]
    return NamedSharding(mesh, PartitionSpec(*spec))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding that keeps a full copy of an array on every device of ``mesh``."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh: expected a jax.sharding.Mesh, got {type(mesh).__name__}.")
    return NamedSharding(mesh, PartitionSpec())


def _batch_shardings(mesh: Mesh, axis: AxisNames, batch_dim: PyTree) -> PyTree:
    """``batch_dim`` (an int, or a pytree prefix of the batch of ints) -> shardings."""
    return jax.tree.map(lambda d: batch_sharding(mesh, axis, d), batch_dim)


def _check_batch_dim_prefix(batch_dim: PyTree, batch: PyTree) -> None:
    """Raises a ValueError naming ``batch_dim`` unless it is a pytree prefix of ``batch``
    (the same dict keys, list lengths, ...), e.g. ``{"x": 1}`` for ``{"x": .., "mask": ..}``."""
    try:
        jax.tree.map(lambda dim, subtree: None, batch_dim, batch)
    except ValueError as error:
        raise ValueError(f"batch_dim: expected an int or a pytree prefix of the batch (one int per subtree, "
                         f"same keys), got {batch_dim!r} for a batch of structure "
                         f"{jax.tree_util.tree_structure(batch)}: {error}") from None


def shard_batch(batch: PyTree, mesh: Mesh, *, axis: AxisNames = DATA_AXIS, batch_dim: PyTree = 0) -> PyTree:
    """Places every array of ``batch`` on ``mesh``, split along its batch dimension.

    Args:
      batch: a pytree of arrays (inputs, sequence masks, initial states, labels, ...).
        Each process passes its own part of the global batch; in a single process that
        is the whole batch. The global batch is the concatenation over processes in
        process order (`jax.make_array_from_process_local_data`).
      mesh: the device mesh, e.g. `data_mesh()`.
      axis: the mesh axis (or tuple of axes) the batch is split over.
      batch_dim: the batch dimension of every array, or a pytree prefix of ``batch``
        giving one per subtree, e.g. ``{"x": 1, "mask": 1, "h0": 0}`` for time-major
        inputs with a ``(B, U)`` initial state.

    Returns:
      ``batch`` with each leaf a global `jax.Array` sharded as `batch_sharding`.
    """
    shardings = _batch_shardings(mesh, axis, batch_dim)
    _check_batch_dim_prefix(batch_dim, batch)
    local_devices = math.prod(mesh.local_mesh.shape[a] for a in _check_axis(mesh, axis))

    def put(path, leaf, sharding):
        dim = len(sharding.spec) - 1
        shape = np.shape(leaf)
        if len(shape) <= dim or shape[dim] % local_devices:
            raise ValueError(
                f"batch{jax.tree_util.keystr(path)}: expected an array whose dimension {dim} (the batch) "
                f"divides over the {local_devices} devices of axis {axis!r} here, got shape {shape}.")
        return jax.make_array_from_process_local_data(sharding, leaf)

    def put_subtree(prefix, sharding, subtree):
        return jax.tree_util.tree_map_with_path(lambda path, leaf: put(prefix + path, leaf, sharding), subtree)

    return jax.tree_util.tree_map_with_path(put_subtree, shardings, batch)


def replicate(tree: PyTree, mesh: Mesh) -> PyTree:
    """Places a full copy of every array of ``tree`` (params, optimizer state, a key) on
    every device of ``mesh``. With several processes each must pass the same values,
    e.g. params initialised from the same key."""
    return jax.device_put(tree, replicated(mesh))


class TrainStep(NamedTuple):
    """Output of a `make_train_step` step: the updated ``params`` and ``opt_state``
    (replicated) and the ``loss`` of the batch before the update (a replicated scalar)."""

    params: PyTree
    opt_state: optax.OptState
    loss: jax.Array


def make_train_step(loss_fn: Callable[[PyTree, PyTree, jax.Array | None], jax.Array],
                    optimizer: optax.GradientTransformation, mesh: Mesh, *, axis: AxisNames = DATA_AXIS,
                    batch_dim: PyTree = 0, constrain: Callable[[PyTree], PyTree] | None = None,
                    donate: bool = True) -> Callable[..., TrainStep]:
    """A data-parallel optimizer step, jitted with explicit shardings.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> scalar``, written as for one device: the
        mean over the whole (global) batch. ``key`` is the step's global dropout key (or
        None); pass it on to `jaxgru.rnn` (``rng=key``) as is, see the module docstring.
      optimizer: an `optax.GradientTransformation`.
      mesh: the device mesh, e.g. `data_mesh()`.
      axis: the mesh axis the batch is split over, as in `shard_batch`.
      batch_dim: the batch dimension of each input, as in `shard_batch`.
      constrain: applied to the params after each update, e.g. ``cell.constrain`` (Keras
        applies weight constraints after every optimizer step).
      donate: reuse the input params' and optimizer state's buffers for the outputs; the
        arrays passed in are deleted by the call: pass the params and opt_state it
        returns to the next call. Passing deleted (donated) arrays again is a
        `ValueError` naming them, not a crash.

    Returns:
      ``step(params, opt_state, batch, key) -> TrainStep(params, opt_state, loss)`` (``key``
      None without dropout),
      with params, opt_state and key replicated (`replicate`) and the batch sharded
      (`shard_batch`); arrays placed otherwise are moved to those shardings.
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer: expected an optax.GradientTransformation, got {type(optimizer).__name__}.")
    donate = check_bool(donate, "donate")
    copies = replicated(mesh)

    def step(params, opt_state, batch, key):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        if constrain is not None:
            params = constrain(params)
        return TrainStep(params, opt_state, loss)

    jitted = jax.jit(step, in_shardings=(copies, copies, _batch_shardings(mesh, axis, batch_dim), copies),
                     out_shardings=copies, donate_argnums=(0, 1) if donate else ())
    return _CheckedStep(jitted, batch_dim, mesh, axis)


class _CheckedStep:
    """The jitted train step, checking its arguments first: arrays deleted by an earlier
    donating call (which would crash XLA on several devices) and a ``batch_dim`` that
    does not fit the batch. Other attributes (``lower``, ``trace``, ...) are the jitted
    function's."""

    def __init__(self, jitted: Callable[..., TrainStep], batch_dim: PyTree, mesh: Mesh, axis: AxisNames):
        self._jitted = jitted
        self._batch_dim = batch_dim
        self._mesh = mesh
        self._axis = axis

    def __call__(self, params: PyTree, opt_state: optax.OptState, batch: PyTree, key: jax.Array | None):
        for argument, tree in (("params", params), ("opt_state", opt_state), ("batch", batch), ("key", key)):
            _check_not_deleted(tree, argument)
        _check_batch_dim_prefix(self._batch_dim, batch)
        _check_divisible(batch, self._mesh, self._axis, self._batch_dim)
        return self._jitted(params, opt_state, batch, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jitted, name)


def _check_not_deleted(tree: PyTree, argument: str) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if isinstance(leaf, jax.Array) and not isinstance(leaf, jax.core.Tracer) and leaf.is_deleted():
            raise ValueError(
                f"{argument}{jax.tree_util.keystr(path)}: this array was deleted, most likely donated to an "
                "earlier call of this train step: make_train_step(..., donate=True) reuses the buffers of "
                "params and opt_state for its outputs. Pass the params and opt_state that the previous "
                "call returned, or build the step with donate=False to keep the inputs.")


def _check_divisible(batch: PyTree, mesh: Mesh, axis: AxisNames, batch_dim: PyTree) -> None:
    """Each array's (global) batch dimension splits evenly over the mesh axis: a ValueError
    naming the array, its batch size and the mesh, before JAX's ``IndivisibleError``."""
    devices = math.prod(mesh.shape[a] for a in _check_axis(mesh, axis))

    def check(prefix, dim, subtree):
        for path, leaf in jax.tree_util.tree_leaves_with_path(subtree):
            shape = np.shape(leaf)
            if len(shape) <= dim or shape[dim] % devices:
                size = shape[dim] if len(shape) > dim else "no such dimension"
                raise ValueError(
                    f"batch{jax.tree_util.keystr(prefix + path)}: batch size {size} (dimension {dim} of shape "
                    f"{shape}) does not divide over the {devices} devices of mesh axis {axis!r} (mesh "
                    f"{dict(mesh.shape)}); pad or drop rows to a multiple of {devices}, or use a mesh whose "
                    "axis size divides the batch.")

    jax.tree_util.tree_map_with_path(check, batch_dim, batch)
