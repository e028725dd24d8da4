"""Times jaxgru against every installed peer GRU; writes a markdown report and a PNG plot.

    python -m benchmarks                 # the full run (about 35 minutes on 2 CPU cores)
    python -m benchmarks --quick         # a smoke run: small shapes, few repetitions
    python -m benchmarks --out results/  # where benchmark_tables.md and gru_benchmark.png go

For each case (shape, convention, mask), the JAX peers are built, compiled and warmed up
together in a fresh process; then they run in turns, round after round (so that load
changes on the machine hit all of them alike; each round starts one peer later, so that
every peer takes every place in the order equally often), and a peer's time in that
process is the median over rounds of its time per call, for the forward pass and for
forward+backward (a round times back-to-back calls lasting at least `MIN_SAMPLE_SECONDS`,
so sub-millisecond calls are not timed one by one). tf_keras and torch run alone in
processes of their own. All that repeats in ``--processes`` fresh processes (3 by default)
and each time is the median over them. Ratios are peer time / jaxgru time (above 1:
jaxgru is faster).
The GEMM bound is the time the case's total matmul FLOPs take as one large matmul on the
same device; jaxgru / bound says how far from the hardware's matmul limit jaxgru runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple, Optional

import numpy as np

from benchmarks.peers import PEERS, Problem, Unsupported

# Peers on other frameworks run in their own process: their thread pools (TensorFlow's
# spinning Eigen threads, torch's OpenMP) would otherwise slow down whatever runs next.
SUBPROCESS_PEERS = ("tf_keras", "torch")

MODES = ("forward", "train", "params_only")
MODE_TITLES = {"forward": "Forward", "train": "Forward + backward (grad w.r.t. params and inputs)",
               "params_only": "Forward + backward (grad w.r.t. params only)"}
MIN_SAMPLE_SECONDS = 0.02  # one timing sample: back-to-back calls lasting at least this
SHAPES = [(32, 100, 64, 128), (256, 50, 128, 256), (1, 500, 32, 64), (8, 1000, 64, 256)]
SWEEP_STEPS = [25, 50, 100, 200, 400]
SWEEP_SHAPE = (32, 64, 128)  # (B, D, U) of the T sweep
QUICK_SHAPES = [(8, 20, 16, 32), (2, 40, 8, 16)]
QUICK_SWEEP_STEPS = [10, 20, 40]


class Case(NamedTuple):
    shape: tuple[int, int, int, int]
    reset_after: bool
    masked: bool

    def problem(self) -> Problem:
        batch, steps, features, units = self.shape
        lengths = None
        if self.masked:  # right-padded rows, lengths in [T/2, T], the longest row full
            lengths = np.random.default_rng(1).integers(steps // 2, steps + 1, size=batch)
            lengths[0] = steps
        return Problem(batch, steps, features, units, self.reset_after, lengths)

    def label(self) -> str:
        return (f"{self.shape}, {'reset_after' if self.reset_after else 'reset_before'}"
                f"{', masked' if self.masked else ''}")


def matmul_flops(shape: tuple[int, int, int, int], mode: str) -> float:
    """jaxgru's matmul FLOPs: the input projection ``2·T·B·D·3U`` and the recurrent matmuls
    ``2·T·B·U·3U``; the backward pass does two matmuls of the same size for each (the
    weight gradient and the gradient of the matmul's input), except for the projection
    when the inputs need no gradient ("params_only")."""
    batch, steps, features, units = shape
    projection, recurrent = (2 * steps * batch * 3 * units * n for n in (features, units))
    if mode == "forward":
        return projection + recurrent
    return 3 * recurrent + (2 if mode == "params_only" else 3) * projection


def gemm_seconds(flops: float, repeats: int) -> float:
    """Median time of one square-ish float32 matmul with the given FLOPs, on the JAX device."""
    import jax
    import jax.numpy as jnp

    n = max(8, round((flops / 2) ** (1 / 3)))
    k = max(1, round(flops / (2 * n ** 3)))  # (n, k·n) @ (k·n, n): 2·k·n³ FLOPs
    a = jax.device_put(jnp.ones((n, k * n), jnp.float32))
    b = jax.device_put(jnp.ones((k * n, n), jnp.float32))
    matmul = jax.jit(jnp.matmul)

    def run():
        jax.block_until_ready(matmul(a, b))

    run()
    calls = calls_per_sample(run)
    times = [sample(run, calls) for _ in range(repeats)]
    return statistics.median(times) * flops / (2 * n * n * k * n)


def time_case(case: Case, peers: list[str], repeats: int, processes: int) -> dict[str, dict[str, float]]:
    """``{mode: {peer: seconds}}``; peers that cannot run the case are absent.

    The JAX peers run together in a fresh process (alternating rounds, `_time_in_process`),
    each of `SUBPROCESS_PEERS` in its own; all of that ``processes`` times, interleaved, and
    a peer's time is the median over processes of its per-process median. Several processes
    because one compiled program's speed varies between processes here (the same jaxgru
    forward measured 44 to 51 ms in four processes), beyond the variation within one.
    """
    groups = [[p for p in peers if p not in SUBPROCESS_PEERS]] + [[p] for p in peers if p in SUBPROCESS_PEERS]
    runs = [_time_in_worker(case, group, repeats) for _ in range(processes) for group in groups if group]
    return {mode: {peer: statistics.median(run[mode][peer] for run in runs if peer in run.get(mode, {}))
                   for peer in peers if any(peer in run.get(mode, {}) for run in runs)}
            for mode in MODES}


def _time_in_worker(case: Case, peers: list[str], repeats: int) -> dict[str, dict[str, float]]:
    worker = subprocess.run([sys.executable, "-m", "benchmarks", "--worker", json.dumps(case), "--repeats",
                             str(repeats), "--peers", *peers], capture_output=True, text=True)
    lines = worker.stdout.strip().splitlines()
    if worker.returncode != 0 or not lines:
        print(f"{', '.join(peers)} failed on {case.label()}:", worker.stderr[-2000:], file=sys.stderr)
        return {}
    return json.loads(lines[-1])


def _time_in_process(case: Case, peers: list[str], repeats: int) -> dict[str, dict[str, float]]:
    problem = case.problem()
    runners = {}
    for name in peers:
        try:
            runner = PEERS[name](problem)
            for mode in MODES:  # compile / warm up
                getattr(runner, mode)()
            runners[name] = runner
        except (ImportError, Unsupported):
            continue
    if not runners:  # none of them can run the case
        return {}
    results = {}
    for mode in MODES:
        calls = {name: calls_per_sample(getattr(runner, mode)) for name, runner in runners.items()}
        times = {name: [] for name in runners}
        names = list(runners)
        for round_index in range(repeats):
            start = round_index % len(names)
            for name in names[start:] + names[:start]:
                times[name].append(sample(getattr(runners[name], mode), calls[name]))
        results[mode] = {name: statistics.median(t) for name, t in times.items()}
    return results


def calls_per_sample(fn: Callable[[], None]) -> int:
    """How many back-to-back calls of ``fn`` make one sample of at least
    `MIN_SAMPLE_SECONDS` (timeit's autorange idea): a sub-millisecond call timed alone is
    mostly timer and scheduler noise."""
    start = time.perf_counter()
    fn()
    return max(1, math.ceil(MIN_SAMPLE_SECONDS / max(time.perf_counter() - start, 1e-9)))


def sample(fn: Callable[[], None], calls: int) -> float:
    """Seconds per call of ``fn``, averaged over ``calls`` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def machine_info() -> dict[str, str]:
    from importlib import metadata

    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    info = {"CPU": cpu, "CPU cores": str(os.cpu_count()), "JAX device": str(jax.devices()[0].device_kind),
            "JAX backend": jax.default_backend(), "Python": platform.python_version()}
    for package in ("jax", "jaxlib", "flax", "equinox", "dm-haiku", "keras", "tf_keras", "tensorflow", "torch"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def _ms(seconds: Optional[float]) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.2f}"


def markdown(info, table, sweep, repeats, processes) -> str:
    lines = ["# jaxgru benchmark results", "", "## Machine", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines += ["", f"Median over {processes} fresh process(es) of the median of {repeats} alternating rounds "
              f"after warm-up (a round times back-to-back calls lasting at least {MIN_SAMPLE_SECONDS * 1e3:.0f} "
              "ms; each round starts with the next peer). Times in ms per call; "
              "*ratio* = peer / jaxgru (above 1: jaxgru is faster). *bound* = jaxgru / "
              "GEMM bound (the same matmul FLOPs as one large matmul).", ""]
    for mode in MODES:
        lines += [f"## {MODE_TITLES[mode]}", ""]
        peers = [p for p in PEERS if any(p in r[mode] for _, r, _ in table)]
        lines.append("| case | GEMM bound | jaxgru | bound | " + " | ".join(f"{p} | ratio" for p in peers[1:]) + " |")
        lines.append("|" + "---|" * (4 + 2 * (len(peers) - 1)))
        for case, results, bounds in table:
            r = results[mode]
            ours = r.get("jaxgru")
            cells = [case.label(), _ms(bounds[mode]), _ms(ours), f"{ours / bounds[mode]:.1f}x" if ours else "–"]
            for p in peers[1:]:
                cells += [_ms(r.get(p)), f"{r[p] / ours:.2f}" if p in r and ours else "–"]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## T sweep (forward + backward)", "", "| T | " + " | ".join(sweep["peers"]) + " |",
              "|" + "---|" * (1 + len(sweep["peers"]))]
    for steps, row in zip(sweep["steps"], sweep["times"]):
        lines.append(f"| {steps} | " + " | ".join(_ms(row.get(p)) for p in sweep["peers"]) + " |")
    lines.append("")
    return "\n".join(lines)


def plot(table, sweep, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_ratio, ax_sweep) = plt.subplots(1, 2, figsize=(14, 5.5))
    labels = [case.label() for case, _, _ in table]
    peers = [p for p in PEERS if p != "jaxgru" and any(p in r["train"] for _, r, _ in table)]
    width = 0.8 / max(1, len(peers))
    for i, peer in enumerate(peers):
        ratios = [r["train"][peer] / r["train"]["jaxgru"] if peer in r["train"] else np.nan for _, r, _ in table]
        ax_ratio.bar(np.arange(len(labels)) + i * width, ratios, width, label=peer)
    ax_ratio.axhline(1.0, color="black", linewidth=0.8)
    ax_ratio.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, rotation=60, ha="right", fontsize=7)
    ax_ratio.set_ylabel("peer time / jaxgru time (forward + backward)")
    ax_ratio.set_yscale("log")
    ax_ratio.legend(fontsize=7)
    for peer in sweep["peers"]:
        ax_sweep.plot(sweep["steps"], [row.get(peer, np.nan) * 1e3 for row in sweep["times"]], "o-", label=peer)
    ax_sweep.set_xlabel("T (sequence length)")
    ax_sweep.set_ylabel("forward + backward time (ms)")
    batch, features, units = sweep["shape"]
    ax_sweep.set_title(f"T sweep, B={batch} D={features} U={units}: cost linear in T")
    ax_sweep.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small shapes and few rounds (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds per case (default 7, quick 3)")
    parser.add_argument("--peers", nargs="*", default=list(PEERS), choices=list(PEERS), metavar="PEER",
                        help=f"peers to run (default all installed): {', '.join(PEERS)}")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent, help="output folder")
    parser.add_argument("--processes", type=int, default=None,
                        help="fresh processes per case; times are medians over them (default 3, quick 1)")
    parser.add_argument("--worker", metavar="CASE_JSON", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    processes = args.processes or (1 if args.quick else 3)
    if args.worker:  # the --peers on one case, in this fresh process; prints {mode: {peer: seconds}}
        shape, reset_after, masked = json.loads(args.worker)
        print(json.dumps(_time_in_process(Case(tuple(shape), reset_after, masked), args.peers, repeats)))
        return
    peers = ["jaxgru"] + [p for p in args.peers if p != "jaxgru"]
    shapes = QUICK_SHAPES if args.quick else SHAPES
    cases = [Case(s, ra, False) for s in shapes for ra in (True, False)]
    cases += [Case(shapes[0], False, True)] + [Case(s, True, True) for s in shapes[:2]]

    info = machine_info()
    print("\n".join(f"{k}: {v}" for k, v in info.items()), flush=True)
    table = []
    for case in cases:
        results = time_case(case, peers, repeats, processes)
        bounds = {mode: gemm_seconds(matmul_flops(case.shape, mode), repeats) for mode in MODES}
        table.append((case, results, bounds))
        print(case.label(), {m: {p: round(t * 1e3, 2) for p, t in r.items()} for m, r in results.items()}, flush=True)

    sweep_peers = [p for p in peers if p in ("jaxgru", "jaxgru (autodiff)", "flax linen", "torch")]
    batch, features, units = SWEEP_SHAPE if not args.quick else QUICK_SHAPES[0][:1] + QUICK_SHAPES[0][2:]
    steps_list = QUICK_SWEEP_STEPS if args.quick else SWEEP_STEPS
    sweep = {"peers": sweep_peers, "steps": steps_list, "shape": (batch, features, units), "times": []}
    for steps in steps_list:
        results = time_case(Case((batch, steps, features, units), True, False), sweep_peers, repeats, processes)
        sweep["times"].append(results["train"])
        print("T sweep", steps, {p: round(t * 1e3, 2) for p, t in results["train"].items()}, flush=True)

    args.out.mkdir(parents=True, exist_ok=True)
    report = markdown(info, table, sweep, repeats, processes)
    (args.out / "benchmark_tables.md").write_text(report)
    plot(table, sweep, args.out / "gru_benchmark.png")
    print(report)


if __name__ == "__main__":
    main()
