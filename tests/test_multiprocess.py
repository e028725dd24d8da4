"""`jaxgru.parallel` across processes: 2 processes of 2 CPU devices each, joined over
loopback by `jax.distributed` with JAX's gloo CPU collectives, train as 1 process of 4
devices; orbax checkpoints move between the two process counts; a process that dies
stops the other.

Every process is `multiprocess_worker.py`. One launch, its runs one after the other (at
most two processes alive at a time):

* 1 process with 4 devices trains from the initial params and saves a checkpoint after
  ``SAVE_AT`` steps;
* then 2 processes do the same, each loading only its own rows, restore the 1-process
  checkpoint onto their own mesh and train on from it, and keep training until the test
  kills process 1; process 0 must then exit non-zero within ``FAULT_BOUND_S``;
* meanwhile, as process 0 notices, 1 process restores the 2-process checkpoint onto its
  4-device mesh and trains on from it;
* last, `examples/train_data_parallel.py` runs as 2 local processes, as the parallel guide
  starts it.

The launcher has a hard deadline and fails as soon as a process exits early (a process
waiting for a dead peer would otherwise hang until JAX's own timeouts); every process
still alive is killed on the way out.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from references import CHILDREN

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "tests", "multiprocess_worker.py")
EXAMPLE = os.path.join(ROOT, "examples", "train_data_parallel.py")
DEADLINE_S = 180  # the whole launch: ~40 CPU-seconds, 75-105 s on 2 cores shared at load 10-20
HEARTBEAT_TIMEOUT_S = 5  # jax.distributed.initialize(heartbeat_timeout_seconds=...)
FAULT_BOUND_S = HEARTBEAT_TIMEOUT_S + 15  # measured: 4 s after the kill, on 2 cores at load 10-20
FLOAT32_TOLERANCE = 1e-5  # 2 processes vs 1: the same sums in another order
ADAM_B1 = 0.9  # the worker's optax.adam
SAVE_AT = 3  # the worker's: steps before the checkpoint


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_command(out: str, devices: int, flags, num_processes: int = 1, process_id: int = 0,
                   coordinator: str | None = None) -> list[str]:
    command = [sys.executable, WORKER, "--out", out, "--devices", str(devices), *flags]
    if num_processes > 1:
        command += ["--coordinator", coordinator, "--num-processes", str(num_processes),
                    "--process-id", str(process_id), "--heartbeat-timeout", str(HEARTBEAT_TIMEOUT_S)]
    return command


class Processes:
    """Runs of workers, started with `start`, each process writing its output to
    ``out/<run>/process<i>.log``; `retire` stops watching a run that was stopped on
    purpose. A context manager: on exit, every process still running is killed."""

    def __init__(self, out: str):
        self.out, self.deadline = out, time.monotonic() + DEADLINE_S
        self.processes: dict[tuple[str, int], subprocess.Popen] = {}
        self.retired: dict[tuple[str, int], subprocess.Popen] = {}
        self.env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
        self.env.pop("XLA_FLAGS", None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for process in [*self.processes.values(), *self.retired.values()]:
            if process.poll() is None:
                process.kill()
                process.wait()

    def start(self, run: str, num_processes: int, devices: int, *flags: str, commands=None):
        """``num_processes`` workers of ``devices`` CPU devices each, on a free loopback
        port; ``commands(coordinator)`` replaces the workers' command lines (one per process)."""
        os.makedirs(os.path.join(self.out, run), exist_ok=True)
        coordinator = f"127.0.0.1:{free_port()}"
        env = {**self.env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
        for i in range(num_processes):
            command = (commands(coordinator)[i] if commands else
                       worker_command(os.path.join(self.out, run), devices, flags, num_processes, i, coordinator))
            with open(self._log(run, i), "w") as log:
                self.processes[run, i] = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)

    def retire(self, run: str) -> None:
        """Stops checking ``run``'s processes (killed by the test): `wait_until` no longer
        fails on their exit codes; a process of it still running is killed on exit."""
        for name in [name for name in self.processes if name[0] == run]:
            self.retired[name] = self.processes.pop(name)

    def _log(self, run: str, i: int) -> str:
        return os.path.join(self.out, run, f"process{i}.log")

    def output(self, run: str, i: int) -> str:
        with open(self._log(run, i)) as f:
            return f.read()

    def fail(self, why: str):
        logs = "\n".join(f"--- {run} process {i} (exit {p.poll()}):\n{self.output(run, i)[-3000:]}"
                         for (run, i), p in {**self.processes, **self.retired}.items())
        pytest.fail(f"{why}\n{logs}")

    def wait_until(self, ready) -> None:
        """Polls until ``ready()``; fails as soon as any process exits non-zero, when every
        process has exited without ``ready()``, or at the deadline."""
        while not ready():
            codes = {name: p.poll() for name, p in self.processes.items()}
            if any(code not in (None, 0) for code in codes.values()):
                self.fail(f"a process exited early: exit codes {codes}")
            if all(code == 0 for code in codes.values()) and not ready():
                self.fail("every process exited, unfinished")
            if time.monotonic() > self.deadline:
                self.fail(f"no result within {DEADLINE_S} s")
            time.sleep(0.05)

    def finished(self, run: str) -> bool:
        return all(p.poll() == 0 for (r, _), p in self.processes.items() if r == run)

    def result(self, run: str, i: int) -> dict:
        with open(os.path.join(self.out, run, f"process{i}.json")) as f:
            return json.load(f)


def max_relative(a: dict, b: dict) -> float:
    """max |a - b| / max |b| over the leaves of two ``{path: nested list}`` dicts."""
    assert a.keys() == b.keys() and a
    return max(float(np.max(np.abs(np.subtract(a[k], b[k]))) / np.max(np.abs(b[k]))) for k in a)


def assert_exactly_equal(a: dict, b: dict):
    assert a.keys() == b.keys() and a
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def launch(out: str) -> dict:
    """Runs the launch of the module docstring: both runs' results, the survivor's exit
    code, how long it took to exit after process 1 was killed and its output, and the
    example's output."""
    one_ckpt, two_ckpt = os.path.join(out, "ckpt_one"), os.path.join(out, "ckpt_two")
    with Processes(out) as processes:
        processes.start("one", 1, 4, "--train", "--save", one_ckpt)
        processes.wait_until(lambda: processes.finished("one"))
        processes.start("two", 2, 2, "--train", "--save", two_ckpt, "--restore", one_ckpt, "--linger", "120")
        processes.wait_until(lambda: all("lingering" in processes.output("two", i) for i in range(2)))
        one = processes.result("one", 0)
        two = [processes.result("two", i) for i in range(2)]
        processes.processes["two", 1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        # The 1-process run resumes from the 2-process checkpoint while the survivor notices.
        processes.start("one_resumed", 1, 4, "--restore", two_ckpt)
        survivor = processes.processes["two", 0]
        processes.retire("two")  # their exits are checked here, not by wait_until
        try:
            code = survivor.wait(timeout=FAULT_BOUND_S)
        except subprocess.TimeoutExpired:
            code = None
        seconds = time.monotonic() - killed
        processes.wait_until(lambda: processes.finished("one_resumed"))
        one = {**processes.result("one_resumed", 0), **one}  # adds what it restored and resumed
        # The example, as the parallel guide starts it (smaller), checkpointing too.
        processes.start("example", 2, 2, commands=lambda coordinator: [
            [sys.executable, EXAMPLE, "--coordinator", coordinator, "--num-processes", "2", "--process-id", str(i),
             "--steps", "2", "--global-batch", "8", "--seq-len", "4", "--units", "4",
             "--checkpoint", os.path.join(out, "ckpt_example")] for i in range(2)])
        processes.wait_until(lambda: processes.finished("example"))
        return {"one": one, "two": two, "survivor": (code, seconds, processes.output("two", 0)),
                "example": processes.output("example", 0)}


def check_two_processes_train_as_one_process_with_four_devices(runs):
    one, (first, second) = runs["one"], runs["two"]
    for r in (first, second):
        assert (r["process_count"], r["device_count"], r["local_rows"]) == (2, 4, 4)
        assert r["batch_sharded"]
    assert (one["process_count"], one["device_count"], one["local_rows"]) == (1, 4, 8)
    # Both processes hold the same replicated results.
    assert first["losses"] == second["losses"]
    assert_exactly_equal(first["params"], second["params"])
    np.testing.assert_allclose(first["losses"], one["losses"], rtol=FLOAT32_TOLERANCE)
    assert first["losses"][-1] < first["losses"][0]
    # Gradients at the initial params: Adam's first moment after one step, over (1 - b1).
    grads = {k: np.divide(m, 1 - ADAM_B1) for k, m in first["first_moment"].items()}
    reference = {k: np.divide(m, 1 - ADAM_B1) for k, m in one["first_moment"].items()}
    assert all(np.all(g != 0) for g in reference.values())
    assert max_relative(grads, reference) < FLOAT32_TOLERANCE
    assert max_relative(first["params"], one["params"]) < FLOAT32_TOLERANCE


def check_checkpoint_of_two_processes_resumes_in_one(runs):
    one, two = runs["one"], runs["two"][0]
    assert_exactly_equal(one["restored"], two["saved"])
    assert one["restored_replicated_on_mesh"]
    # From the same state: the 2-process run's own steps after the save.
    np.testing.assert_allclose(one["resumed_losses"], two["losses"][SAVE_AT:], rtol=FLOAT32_TOLERANCE)
    assert max_relative(one["resumed_params"], two["params"]) < FLOAT32_TOLERANCE


def check_checkpoint_of_one_process_resumes_in_two(runs):
    one = runs["one"]
    for two in runs["two"]:
        assert_exactly_equal(two["restored"], one["saved"])
        assert two["restored_replicated_on_mesh"]
        np.testing.assert_allclose(two["resumed_losses"], one["losses"][SAVE_AT:], rtol=FLOAT32_TOLERANCE)
        assert max_relative(two["resumed_params"], one["params"]) < FLOAT32_TOLERANCE


def check_a_killed_process_stops_the_survivor_with_an_error(runs):
    code, seconds, output = runs["survivor"]
    assert code is not None, f"process 0 still running {FAULT_BOUND_S} s after process 1 was killed:\n{output[-3000:]}"
    assert code not in (0, 3), output[-3000:]  # 3: it trained on alone until its own deadline
    assert seconds < FAULT_BOUND_S


def check_example_runs_as_two_local_processes(runs):
    output = runs["example"]
    assert "4 devices (2 processes), mesh {'data': 4}, global batch 8" in output
    assert "step    1  train MSE" in output and "saved step 2" in output


@CHILDREN  # up to 0.9 GB of processes
def test_two_processes_train_resume_and_stop_as_one_process(tmp_path):
    """One test for the one launch (under pytest-xdist, tests sharing a fixture may land in
    different workers, each launching everything again)."""
    runs = launch(str(tmp_path))
    check_two_processes_train_as_one_process_with_four_devices(runs)
    check_checkpoint_of_two_processes_resumes_in_one(runs)
    check_checkpoint_of_one_process_resumes_in_two(runs)
    check_a_killed_process_stops_the_survivor_with_an_error(runs)
    check_example_runs_as_two_local_processes(runs)


@CHILDREN
def test_launcher_fails_fast_when_a_process_exits_early(tmp_path):
    """Process 1 exits at once (a bad argument): process 0, waiting for it in
    `jax.distributed.initialize`, is killed and the launch fails within seconds."""
    out, coordinator = str(tmp_path), f"127.0.0.1:{free_port()}"  # process 0 waits on it in vain
    commands = [worker_command(out, 2, [], 2, 0, coordinator), [sys.executable, WORKER, "--devices", "two"]]
    started = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="exited early"):
        with Processes(out) as processes:
            processes.start("broken", 2, 2, commands=lambda _: commands)
            processes.wait_until(lambda: processes.finished("broken"))
    assert time.monotonic() - started < 30
    assert processes.processes["broken", 0].poll() is not None  # killed, not left waiting
