"""Times jaxgru in three workloads as users write them, against what they would write instead.

    python -m benchmarks.workloads                   # the full run (a few minutes on 2 CPU cores)
    python -m benchmarks.workloads --quick           # a smoke run: tiny shapes, and checks that the
                                                     # peers compute the same thing (same weights)
    python -m benchmarks.workloads --out workloads.md

The workloads:

- **rollout**: an RL training step over a stored rollout, time-major ``(T, B, D)`` with
  about 1% episode resets (fixed seed), forward+backward (the gradient of
  ``mean(outputs²)`` w.r.t. the params and the inputs): ``jaxgru.rnn(cell, params, x,
  resets=resets, time_major=True)`` against the ``ScannedRNN`` module of purejaxrl and
  JaxMARL (a ``flax.linen`` module whose ``__call__`` is wrapped in ``nn.scan`` and
  zeroes the carry where ``reset_t`` before ``nn.GRUCell``).
- **acting**: one environment step, forward only: a jitted ``cell.step(params, h, x)``
  against a jitted ``nn.GRUCell(U).apply(variables, h, x)``.
- **ppo**: one whole PPO update of ``examples/ppo_rnn.py`` (a rollout of ``T`` steps in
  ``B`` gymnax CartPole environments acting with ``cell.step(reset=done)``, then 4 epochs of
  4 minibatches replaying whole rollouts with ``jaxgru.rnn(resets=)``, Adam steps
  included), one jitted call, against the same agent on purejaxrl's ``ScannedRNN``
  (``nn.GRUCell`` in ``nn.scan``, ``jnp.where`` resets), same weights.
- **stack**: 3 bidirectional layers, forward+backward: ``jaxgru.stacked_rnn(cell,
  layers, x, bidirectional=True)`` against ``torch.nn.GRU(D, U, num_layers=3,
  bidirectional=True, batch_first=True)`` (CPU, default threads) and three flax
  ``nn.Bidirectional(nn.RNN(nn.GRUCell(U)), nn.RNN(nn.GRUCell(U), reverse=True,
  keep_order=True))`` in a row.

Method as in `benchmarks.run`: for each workload the JAX peers are built, compiled and
warmed up together in a fresh process, then timed in alternating rounds (each round
starting one peer later; a round times back-to-back calls lasting at least 20 ms); torch
runs alone in a process of its own. All of that in ``--processes`` fresh processes; a
peer's time is the median over processes of its median over rounds. Ratios are peer time
/ jaxgru time (above 1: jaxgru is faster).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as the harness: idle torch threads must not spin

import argparse
import functools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

from benchmarks.run import MIN_SAMPLE_SECONDS, calls_per_sample, machine_info, sample

SUBPROCESS_PEERS = ("torch",)
RESET_RATE = 0.01
QUICK_RESET_RATE = 0.1  # the tiny quick rollout needs more resets for its check to see some


class Shape(NamedTuple):
    batch: int
    steps: int  # 1 for acting
    features: int
    units: int
    layers: int = 1


SHAPES = {"rollout": Shape(64, 128, 64, 128), "acting": Shape(64, 1, 64, 128), "stack": Shape(32, 100, 64, 128, 3),
          "ppo": Shape(4, 128, 4, 128)}
QUICK_SHAPES = {"rollout": Shape(8, 16, 8, 16), "acting": Shape(8, 1, 8, 16), "stack": Shape(4, 10, 8, 16, 3),
                "ppo": Shape(4, 16, 4, 8)}


# --------------------------------------------------------------------------- shared weights
def _randomized(tree, seed: int, scale: float):
    """Every leaf of ``tree`` replaced by uniform(-scale, scale) draws (biases included,
    so that the checks see them)."""
    import jax

    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    return treedef.unflatten([jax.random.uniform(k, leaf.shape, leaf.dtype, -scale, scale)
                              for k, leaf in zip(keys, leaves)])


def jaxgru_from_flax(p) -> dict:
    """flax ``nn.GRUCell`` params (``ir iz in`` with bias, ``hr hz`` without, ``hn`` with)
    as jaxgru's reset_after params: gates [z, r, h], the recurrent z and r biases zero."""
    import jax.numpy as jnp

    def cat(*arrays):
        return jnp.concatenate(arrays, axis=-1)

    zeros = jnp.zeros_like(p["hn"]["bias"])
    return {"kernel": cat(p["iz"]["kernel"], p["ir"]["kernel"], p["in"]["kernel"]),
            "recurrent_kernel": cat(p["hz"]["kernel"], p["hr"]["kernel"], p["hn"]["kernel"]),
            "bias": jnp.stack([cat(p["iz"]["bias"], p["ir"]["bias"], p["in"]["bias"]),
                               cat(zeros, zeros, p["hn"]["bias"])])}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- rollout
def _scanned_rnn_class():
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class ScannedRNN(nn.Module):
        """purejaxrl's / JaxMARL's module, but with the cell's size taken from the carry
        (they take it from the inputs, whose embedding has the state's size there)."""

        @functools.partial(
            nn.scan,
            variable_broadcast="params",
            in_axes=0,
            out_axes=0,
            split_rngs={"params": False},
        )
        @nn.compact
        def __call__(self, carry, x):
            rnn_state = carry
            ins, resets = x
            rnn_state = jnp.where(
                resets[:, np.newaxis],
                self.initialize_carry(*rnn_state.shape),
                rnn_state,
            )
            new_rnn_state, y = nn.GRUCell(features=rnn_state.shape[1])(rnn_state, ins)
            return new_rnn_state, y

        @staticmethod
        def initialize_carry(batch_size, hidden_size):
            # Use a dummy key since the default state init fn is just zeros.
            cell = nn.GRUCell(features=hidden_size)
            return cell.initialize_carry(jax.random.PRNGKey(0), (batch_size, hidden_size))

    return ScannedRNN


def rollout_data(shape: Shape, reset_rate: float):
    """``x (T, B, D)``, ``resets (T, B)`` (True with probability ``reset_rate``, seeded),
    the ScannedRNN module and its variables, and the same weights as jaxgru params."""
    import jax
    import jax.numpy as jnp

    x = _rng(0).normal(size=(shape.steps, shape.batch, shape.features)).astype(np.float32)
    resets = _rng(1).random((shape.steps, shape.batch)) < reset_rate
    module = _scanned_rnn_class()()
    carry = module.initialize_carry(shape.batch, shape.units)
    variables = module.init(jax.random.key(0), carry, (jnp.asarray(x[:1]), jnp.asarray(resets[:1])))
    variables = _randomized(variables, 2, shape.units ** -0.5)
    (cell_params,) = variables["params"].values()
    return x, resets, module, variables, jaxgru_from_flax(cell_params)


def rollout_functions(shape: Shape, reset_rate: float) -> dict[str, tuple[Callable, object, tuple]]:
    """``{peer: (f, params, args)}``: ``f(params, x, *rest)`` the ``(T, B, U)`` outputs."""
    import jaxgru

    x, resets, module, variables, params = rollout_data(shape, reset_rate)
    cell = jaxgru.GRUCell(shape.units)
    carry = np.zeros((shape.batch, shape.units), np.float32)

    def ours(params, x, resets):
        return jaxgru.rnn(cell, params, x, resets=resets, time_major=True)[0]

    def scanned(variables, x, resets, carry):
        return module.apply(variables, carry, (x, resets))[1]

    return {"jaxgru": (ours, params, (x, resets)), "flax ScannedRNN": (scanned, variables, (x, resets, carry))}


# --------------------------------------------------------------------------- acting
def acting_functions(shape: Shape) -> dict[str, tuple[Callable, object, tuple]]:
    """``{peer: (f, params, args)}``: ``f(params, h, x)`` the new state ``(B, U)``."""
    import flax.linen as nn
    import jax

    import jaxgru

    h = _rng(0).normal(size=(shape.batch, shape.units)).astype(np.float32)
    x = _rng(1).normal(size=(shape.batch, shape.features)).astype(np.float32)
    flax_cell = nn.GRUCell(features=shape.units)
    variables = _randomized(flax_cell.init(jax.random.key(0), h, x), 2, shape.units ** -0.5)
    cell = jaxgru.GRUCell(shape.units)

    def ours(params, h, x):
        return cell.step(params, h, x)[1]

    def flax(variables, h, x):
        return flax_cell.apply(variables, h, x)[0]

    return {"jaxgru": (ours, jaxgru_from_flax(variables["params"]), (h, x)), "flax GRUCell": (flax, variables, (h, x))}


# --------------------------------------------------------------------------- ppo
def _ppo_example():
    """examples/ppo_rnn.py as a module (it is a script, not part of the package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "examples" / "ppo_rnn.py"
    spec = importlib.util.spec_from_file_location("ppo_rnn", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # flax's dataclass modules look their module up
    spec.loader.exec_module(module)
    return module


def ppo_functions(shape: Shape) -> dict[str, tuple[Callable, object, tuple]]:
    """``{peer: (f, runner, ())}``: ``f(runner)`` one whole PPO update's metrics (mean
    episode return, mean loss), from the same runner (weights, environments, key)."""
    import jax

    ppo = _ppo_example()
    configs = {peer: ppo.Config(num_envs=shape.batch, rollout=shape.steps, hidden=shape.units, memory=memory)
               for peer, memory in (("jaxgru", "jaxgru"), ("flax ScannedRNN", "flax"))}
    env, env_params = ppo.make_env()
    runner = ppo.init_runner(jax.random.key(0), configs["jaxgru"], env, env_params)

    def metrics(update):
        return lambda runner: update(runner)[1]

    return {peer: (metrics(ppo.make_update(config, env, env_params)), runner, ()) for peer, config in configs.items()}


# --------------------------------------------------------------------------- stack
def _flax_stack(shape: Shape):
    import flax.linen as nn

    class BidirectionalGRUStack(nn.Module):
        units: int
        num_layers: int

        @nn.compact
        def __call__(self, x):
            for _ in range(self.num_layers):
                x = nn.Bidirectional(nn.RNN(nn.GRUCell(self.units)),
                                     nn.RNN(nn.GRUCell(self.units), reverse=True, keep_order=True))(x)
            return x

    return BidirectionalGRUStack(shape.units, shape.layers)


def stack_data(shape: Shape):
    """``x (B, T, D)``, the flax stack with its variables and the same weights as
    jaxgru layers ``[{"forward", "backward"}]``."""
    import jax

    x = _rng(0).normal(size=(shape.batch, shape.steps, shape.features)).astype(np.float32)
    module = _flax_stack(shape)
    variables = _randomized(module.init(jax.random.key(0), x[:1]), 2, shape.units ** -0.5)
    # The cells are created in the stack's compact scope, so flax names them in creation
    # order: layer k's forward cell is GRUCell_{2k}, its backward cell GRUCell_{2k+1}.
    cells = variables["params"]
    layers = [{"forward": jaxgru_from_flax(cells[f"GRUCell_{2 * k}"]),
               "backward": jaxgru_from_flax(cells[f"GRUCell_{2 * k + 1}"])} for k in range(shape.layers)]
    return x, module, variables, layers


def stack_functions(shape: Shape) -> dict[str, tuple[Callable, object, tuple]]:
    """``{peer: (f, params, args)}``: ``f(params, x)`` the ``(B, T, 2U)`` outputs."""
    import jaxgru

    x, module, variables, layers = stack_data(shape)
    cell = jaxgru.GRUCell(shape.units)

    def ours(layers, x):
        return jaxgru.stacked_rnn(cell, layers, x, bidirectional=True)[0]

    return {"jaxgru": (ours, layers, (x,)), "flax linen": (module.apply, variables, (x,))}


def torch_stack(shape: Shape, layers: list | None = None):
    """``torch.nn.GRU(D, U, num_layers=L, bidirectional=True, batch_first=True)`` on CPU
    (``layers``: jaxgru weights to load, else torch's own init) and its ``(B, T, D)`` input."""
    import torch

    gru = torch.nn.GRU(shape.features, shape.units, num_layers=shape.layers, bidirectional=True, batch_first=True)
    if layers is not None:
        import jaxgru

        gru.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in jaxgru.to_torch_stack(layers).items()})
    x = torch.from_numpy(_rng(0).normal(size=(shape.batch, shape.steps, shape.features)).astype(np.float32))
    return gru, x


# --------------------------------------------------------------------------- workloads
class Workload(NamedTuple):
    title: str
    mode: str  # "forward" or "train" (gradient of mean(outputs²) w.r.t. params and inputs)
    peers: tuple[str, ...]  # jaxgru first
    targets: tuple[tuple[str, str, float], ...]  # (peer, kind, bound) on jaxgru / peer


WORKLOADS = {
    "rollout": Workload("RL rollout, time-major, with resets, forward+backward", "train",
                        ("jaxgru", "flax ScannedRNN"), (("flax ScannedRNN", "at most", 0.7),)),
    "acting": Workload("acting: one jitted step, forward", "forward",
                       ("jaxgru", "flax GRUCell"), (("flax GRUCell", "no slower", 1.0),)),
    "ppo": Workload("PPO update (rollout + 4x4 minibatch steps), one jit", "forward",
                    ("jaxgru", "flax ScannedRNN"), (("flax ScannedRNN", "no slower", 1.0),)),
    "stack": Workload("3-layer bidirectional stack, forward+backward", "train",
                      ("jaxgru", "torch", "flax linen"),
                      (("torch", "no slower", 1.0), ("flax linen", "faster", 1.0))),
}


def _shape(name: str, quick: bool) -> Shape:
    return (QUICK_SHAPES if quick else SHAPES)[name]


def _jax_functions(name: str, quick: bool) -> dict[str, tuple[Callable, object, tuple]]:
    shape = _shape(name, quick)
    if name == "rollout":
        return rollout_functions(shape, QUICK_RESET_RATE if quick else RESET_RATE)
    if name == "ppo":
        return ppo_functions(shape)
    return acting_functions(shape) if name == "acting" else stack_functions(shape)


def _timed_jax(f: Callable, params, args, mode: str) -> Callable[[], None]:
    """One jitted call of ``f`` (forward) or of the gradient of ``mean(f²)`` w.r.t. the
    params and the first argument (train), waiting for the result."""
    import jax
    import jax.numpy as jnp

    params, args = jax.device_put((params, args))
    if mode == "forward":
        fn = jax.jit(f)
    else:
        fn = jax.jit(jax.grad(lambda p, x, *rest: jnp.mean(f(p, x, *rest) ** 2), argnums=(0, 1)))
    return lambda: jax.block_until_ready(fn(params, *args))


def _timed_torch(name: str, quick: bool) -> Callable[[], None]:
    import torch

    gru, x = torch_stack(_shape(name, quick))

    def train():
        x_grad = x.detach().requires_grad_(True)
        gru.zero_grad(set_to_none=True)
        torch.mean(gru(x_grad)[0] ** 2).backward()

    return train


def time_in_process(name: str, peers: list[str], quick: bool, repeats: int) -> dict[str, float]:
    """``{peer: seconds per call}``, the median over ``repeats`` alternating rounds."""
    workload = WORKLOADS[name]
    runners = {}
    jax_peers = [p for p in peers if p not in SUBPROCESS_PEERS]
    if jax_peers:
        functions = _jax_functions(name, quick)
        runners.update({p: _timed_jax(*functions[p], workload.mode) for p in jax_peers})
    runners.update({p: _timed_torch(name, quick) for p in peers if p in SUBPROCESS_PEERS})
    for run in runners.values():  # compile / warm up
        run(), run()
    calls = {p: calls_per_sample(run) for p, run in runners.items()}
    times = {p: [] for p in runners}
    names = list(runners)
    for round_index in range(repeats):
        start = round_index % len(names)
        for p in names[start:] + names[:start]:
            times[p].append(sample(runners[p], calls[p]))
    return {p: statistics.median(t) for p, t in times.items()}


def time_workload(name: str, quick: bool, repeats: int, processes: int) -> list[dict[str, float]]:
    """``processes`` times ``{peer: seconds}``, each from fresh processes run one after the
    other (the JAX peers together, torch alone), each time a process's median."""
    peers = WORKLOADS[name].peers
    groups = [[p for p in peers if p not in SUBPROCESS_PEERS]] + [[p] for p in peers if p in SUBPROCESS_PEERS]
    runs = []
    for _ in range(processes):
        run = {}
        for group in groups:
            run.update(_time_in_worker(name, group, quick, repeats))
        runs.append(run)
    return runs


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """``{peer: median over processes}``."""
    return {p: statistics.median(run[p] for run in runs if p in run) for p in {p for run in runs for p in run}}


def _time_in_worker(name: str, peers: list[str], quick: bool, repeats: int) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.workloads", "--worker", name, "--repeats", str(repeats),
               "--peers", *peers] + (["--quick"] if quick else [])
    worker = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = worker.stdout.strip().splitlines()
    if worker.returncode != 0 or not lines:
        print(f"{', '.join(peers)} failed on {name}:", worker.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------- checks
def check_same_computation() -> None:
    """At the quick shapes, with the same weights in every peer: equal outputs and equal
    input gradients of ``mean(outputs²)`` (float32 tolerances)."""
    import jax
    import jax.numpy as jnp

    def outputs_and_input_grad(f, params, args):
        loss = lambda x: jnp.mean(f(params, x, *args[1:]) ** 2)
        return f(params, *args), jax.grad(loss)(args[0])

    def close(name, a, b):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5, err_msg=name)

    for name in WORKLOADS:
        functions = _jax_functions(name, quick=True)
        if name == "ppo":  # a whole update: its metrics (episode returns, mean loss) agree
            f, runner, _ = functions["jaxgru"]
            theirs_f, theirs_runner, _ = functions["flax ScannedRNN"]
            close("ppo: flax ScannedRNN update metrics", jax.jit(f)(runner), jax.jit(theirs_f)(theirs_runner))
            continue
        ours = outputs_and_input_grad(*functions["jaxgru"])
        for peer, (f, params, args) in functions.items():
            if peer != "jaxgru":
                theirs = outputs_and_input_grad(f, params, args)
                close(f"{name}: {peer} outputs", ours[0], theirs[0])
                close(f"{name}: {peer} input gradient", ours[1], theirs[1])
        if name == "rollout":
            resets = functions["jaxgru"][2][1]
            assert resets[1:].any(), "the quick rollout has no resets after step 0"
        if name == "stack":
            import torch

            gru, x = torch_stack(_shape(name, True), functions["jaxgru"][1])
            x = x.detach().requires_grad_(True)
            out = gru(x)[0]
            torch.mean(out ** 2).backward()
            close("stack: torch outputs", ours[0], out.detach().numpy())
            close("stack: torch input gradient", ours[1], x.grad.numpy())
    print("checks passed: every workload's peers give jaxgru's outputs and input gradients", flush=True)


# --------------------------------------------------------------------------- report
def verdict(ratio: float, kind: str, bound: float) -> str:
    """``ratio`` = jaxgru / peer time against a target; ratios within 10% of 1 are ties."""
    if kind == "at most":
        return "**met**" if ratio <= bound else "**not met**"
    if kind == "no slower":
        return "**met**" if ratio <= 1.0 else ("tie (within ±10%)" if ratio <= 1.1 else "**not met**")
    # "faster"
    return "**met**" if ratio < 0.9 else ("tie (within ±10%)" if ratio <= 1.1 else "**not met**")


def markdown(info, results, repeats, processes, quick, seconds) -> str:
    """``results``: ``{workload: time_workload's list}``."""
    lines = ["| workload | shape | jaxgru (ms) | peer | peer (ms) | peer / jaxgru | per process |",
             "|---|---|---|---|---|---|---|"]
    for name, runs in results.items():
        times = medians(runs)
        workload, shape = WORKLOADS[name], _shape(name, quick)
        dims = (f"B={shape.batch}, D={shape.features}, U={shape.units}" if name == "acting" else
                f"{shape.batch} envs, T={shape.steps}, U={shape.units}" if name == "ppo" else
                f"B={shape.batch}, T={shape.steps}, D={shape.features}, U={shape.units}"
                + (f", L={shape.layers}" if shape.layers > 1 else "")
                + (f", {QUICK_RESET_RATE if quick else RESET_RATE:.0%} resets" if name == "rollout" else ""))
        ours = times.get("jaxgru")
        for peer in workload.peers[1:]:
            theirs = times.get(peer)
            ratio = f"{theirs / ours:.2f}" if ours and theirs else "–"
            spread = [run[peer] / run["jaxgru"] for run in runs if peer in run and "jaxgru" in run]
            spread = f"{min(spread):.2f}–{max(spread):.2f}" if spread else "–"
            lines.append(f"| {workload.title} | {dims} | {_ms(ours)} | {peer} | {_ms(theirs)} | {ratio} | {spread} |")
    lines += ["", "Targets (jaxgru time / peer time):", ""]
    for name, runs in results.items():
        times = medians(runs)
        for peer, kind, bound in WORKLOADS[name].targets:
            ours, theirs = times.get("jaxgru"), times.get(peer)
            if not ours or not theirs:
                lines.append(f"- {name}: jaxgru {kind} {peer}: not measured")
                continue
            ratio = ours / theirs
            want = {"at most": f"at most {bound}x {peer}'s time", "no slower": f"no slower than {peer}",
                    "faster": f"faster than {peer}"}[kind]
            lines.append(f"- {name}: jaxgru {want}: {verdict(ratio, kind, bound)}, jaxgru / {peer} = "
                         f"{ratio:.2f}x ({_ms(ours)} vs {_ms(theirs)} ms)")
    machine = ", ".join(f"{k} {info[k]}" for k in ("CPU", "CPU cores", "JAX backend", "jax", "flax", "torch"))
    header = [(f"Median over {processes} fresh process(es) of the median of {repeats} alternating rounds after "
              f"warm-up (a round times back-to-back calls lasting at least {MIN_SAMPLE_SECONDS * 1e3:.0f} ms); "
              "torch alone in its own processes. *peer / jaxgru* above 1: jaxgru is faster; *per process*: "
              "the lowest and highest of that ratio in the single processes (torch paired with the JAX "
              f"process run just before it). Machine: {machine}. Total run time {seconds / 60:.1f} min."), ""]
    return "\n".join(header + lines) + "\n"


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1e3:.3f}" if seconds < 1e-3 else f"{seconds * 1e3:.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="tiny shapes and few rounds, after checking that the peers agree (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per process (default 9, quick 3)")
    parser.add_argument("--processes", type=int, default=None,
                        help="fresh processes per workload; times are medians over them (default 3, quick 1)")
    parser.add_argument("--workloads", nargs="*", default=list(WORKLOADS), choices=list(WORKLOADS),
                        metavar="WORKLOAD", help=f"which to run (default all): {', '.join(WORKLOADS)}")
    parser.add_argument("--out", type=Path, default=None, help="also write the markdown table to this file")
    parser.add_argument("--worker", choices=list(WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--peers", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 9)
    processes = args.processes or (1 if args.quick else 3)
    if args.worker:  # one workload's --peers in this fresh process; prints {peer: seconds}
        print(json.dumps(time_in_process(args.worker, args.peers, args.quick, repeats)))
        return

    start = time.perf_counter()
    info = machine_info()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    if args.quick:
        check_same_computation()
    results = {}
    for name in args.workloads:
        results[name] = time_workload(name, args.quick, repeats, processes)
        print(name, [{p: round(t * 1e3, 3) for p, t in run.items()} for run in results[name]], flush=True)
    report = markdown(info, results, repeats, processes, args.quick, time.perf_counter() - start)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
