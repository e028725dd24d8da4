"""Data-parallel training of a Keras-style GRU on 8 devices with `jaxgru.parallel`.

The task is the adding problem: ``T`` steps of two features (a value in U[0, 1] and a
marker set at two steps); the target is the sum of the two marked values. Predicting the
mean scores MSE 1/6 ≈ 0.167; a GRU that remembers the marked values goes far below.

Run on 8 devices (on a CPU, XLA splits the host into 8 devices)::

    XLA_FLAGS=--xla_force_host_platform_device_count=8 python examples/train_data_parallel.py

On GPUs or TPUs drop ``XLA_FLAGS``: the mesh spans every device.

Several processes (hosts): start the same command once per process with
``--coordinator HOST:PORT`` (process 0's address), ``--num-processes N`` and
``--process-id I``; each process then loads only its own part of every global batch.
Two processes on this machine, 4 CPU devices each, 8 in all::

    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/train_data_parallel.py \
        --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 0 &
    XLA_FLAGS=--xla_force_host_platform_device_count=4 python examples/train_data_parallel.py \
        --coordinator 127.0.0.1:12355 --num-processes 2 --process-id 1

On a cluster (Slurm, Open MPI, Cloud TPU) pass ``--distributed`` instead: JAX reads the
three from the environment; any of them given explicitly overrides it. On CPUs the
processes exchange gradients with JAX's gloo collectives. If a process dies the others
abort after ``--heartbeat-timeout`` seconds (JAX's default: 100).
"""

import argparse
import ipaddress
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxgru
from jaxgru import parallel


def adding_problem(rng: np.random.Generator, batch: int, steps: int) -> dict:
    """``x (batch, steps, 2)`` float32 and ``y (batch,)``: the sum of the two marked values."""
    values = rng.uniform(size=(batch, steps)).astype(np.float32)
    first = rng.integers(0, steps // 2, size=batch)
    second = rng.integers(steps // 2, steps, size=batch)
    markers = np.zeros((batch, steps), np.float32)
    markers[np.arange(batch), first] = 1.0
    markers[np.arange(batch), second] = 1.0
    return {"x": np.stack([values, markers], axis=-1), "y": values.sum(axis=1, where=markers > 0)}


def initialize_distributed(args: argparse.Namespace) -> None:
    """`jax.distributed.initialize` with what the command line gives; JAX fills in the
    rest from the cluster environment. A loopback coordinator listens on loopback only
    (JAX's default listens on every interface)."""
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives between CPU processes
    bind = args.coordinator if args.coordinator is not None and _is_loopback(args.coordinator) else None
    jax.distributed.initialize(coordinator_address=args.coordinator, num_processes=args.num_processes,
                               process_id=args.process_id, coordinator_bind_address=bind,
                               heartbeat_timeout_seconds=args.heartbeat_timeout)


def _is_loopback(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps")
    parser.add_argument("--global-batch", type=int, default=64, help="examples per step, over all devices")
    parser.add_argument("--seq-len", type=int, default=30)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (several processes)")
    parser.add_argument("--num-processes", type=int, metavar="N", help="how many processes (several processes)")
    parser.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1 (several processes)")
    parser.add_argument("--distributed", action="store_true",
                        help="several processes, whatever the three above leave out taken from the cluster environment")
    parser.add_argument("--heartbeat-timeout", type=int, default=100, metavar="SECONDS",
                        help="a process silent this long counts as dead, and the others abort (several processes)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="resume from the latest checkpoint in DIR (orbax), if any, and save one at the end")
    args = parser.parse_args()
    if args.distributed or any(a is not None for a in (args.coordinator, args.num_processes, args.process_id)):
        initialize_distributed(args)

    mesh = parallel.data_mesh()
    if args.global_batch % jax.device_count():
        parser.error(f"--global-batch: expected a multiple of the {jax.device_count()} devices, "
                     f"got {args.global_batch}")
    local_batch = args.global_batch // jax.process_count()
    log(f"{jax.device_count()} devices ({jax.process_count()} processes), mesh {dict(mesh.shape)}, "
        f"global batch {args.global_batch}")

    cell = jaxgru.GRUCell(args.units, dropout=0.1)
    key = jax.random.key(0)  # the same key in every process: identical replicated params
    init_key, head_key, dropout_key = jax.random.split(key, 3)
    params = {"gru": cell.init(init_key, 2), "head": jax.random.normal(head_key, (args.units,)) * 0.1}

    def loss_fn(params, batch, key):
        # Written as for one device: a mean over the global batch; `key` is the step's
        # global dropout key, from which rnn draws one mask row per example.
        _, state = jaxgru.rnn(cell, params["gru"], batch["x"], rng=key, training=key is not None)
        return jnp.mean((state @ params["head"] - batch["y"]) ** 2)

    optimizer = optax.adam(1e-2)
    train_step = parallel.make_train_step(loss_fn, optimizer, mesh)
    params, opt_state = parallel.replicate(params, mesh), parallel.replicate(optimizer.init(params), mesh)
    evaluate = jax.jit(loss_fn, in_shardings=(parallel.replicated(mesh), parallel.batch_sharding(mesh), None))

    checkpoints, start = None, 0
    if args.checkpoint:
        import orbax.checkpoint as ocp

        checkpoints = ocp.CheckpointManager(os.path.abspath(args.checkpoint))
        if checkpoints.latest_step() is not None:
            # Restored onto this run's mesh, whatever the process count that saved it: the
            # target gives each array's shape, dtype and (replicated) sharding.
            start = checkpoints.latest_step()
            target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding),
                                  {"params": params, "opt_state": opt_state})
            restored = checkpoints.restore(start, args=ocp.args.StandardRestore(target))
            params, opt_state = restored["params"], restored["opt_state"]
            log(f"resumed from step {start} in {args.checkpoint}")

    # Each process loads different examples: its own part of every global batch.
    test = parallel.shard_batch(adding_problem(np.random.default_rng([10_000, jax.process_index()]),
                                               local_batch * 4, args.seq_len), mesh)
    for step in range(start, start + args.steps):
        rng = np.random.default_rng([step, jax.process_index()])
        batch = parallel.shard_batch(adding_problem(rng, local_batch, args.seq_len), mesh)
        params, opt_state, loss = train_step(params, opt_state, batch, jax.random.fold_in(dropout_key, step))
        if step % 50 == 0 or step == start + args.steps - 1:
            log(f"step {step:4d}  train MSE {float(loss):.4f}  test MSE {float(evaluate(params, test, None)):.4f}"
                f"  (baseline 0.167)")
    log(f"batch sharding: {batch['x'].sharding.spec}  params sharding: {params['head'].sharding.spec}")
    if checkpoints is not None:
        checkpoints.save(start + args.steps, args=ocp.args.StandardSave({"params": params, "opt_state": opt_state}))
        checkpoints.wait_until_finished()
        checkpoints.close()
        log(f"saved step {start + args.steps} in {args.checkpoint}")


def log(message: str) -> None:
    """Prints from process 0 only (every process computes the same replicated results)."""
    if jax.process_index() == 0:
        print(message, flush=True)


if __name__ == "__main__":
    main()
