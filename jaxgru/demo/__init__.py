"""The end-to-end demo behind ``python -m jaxgru demo`` (also ``python -m jaxgru.demo``):
train a small GRU, plot, report.

`run` trains ``jaxgru.rnn`` (a Keras ``GRU(units, return_sequences=False)`` on ``(B, T, D)``,
its last output ``(B, U)`` through a dense head) with Adam on one of two built-in tasks
(`TASKS`), neither needing a download:

* ``adding``: the adding problem (Hochreiter & Schmidhuber, 1997): ``T`` steps of a value
  in U[0, 1] and a marker, the target the sum of the two marked values; the baseline
  always predicts the mean sum, 1.
* ``digits``: scikit-learn's 8x8 handwritten digits read row by row (``T = 8``, ``D = 8``,
  10 classes); the baseline predicts the most frequent class.

It returns a `DemoResult` and writes ``loss_curve.png`` and ``predictions.png``. The
plotting, progress bar and digits data come from the ``demo`` extra (matplotlib, tqdm,
scikit-learn), imported only when the demo runs; a missing one raises `MissingExtraError`.
The model, the tasks and the plots are the demo's own (private) modules.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

import jax
import numpy as np

from jaxgru._core.cell import GRUCell
from jaxgru._deprecations import module_getattr
from jaxgru.demo import _plots, _tasks, _train
from jaxgru.demo._extra import MissingExtraError, import_extra
from jaxgru.demo._tasks import TASKS

__all__ = ["DemoResult", "MissingExtraError", "TASKS", "run"]


class DemoResult(NamedTuple):
    """What `run` returns: the final test ``metric``, the task's ``baseline``, the PNGs written."""

    task: _tasks.Task
    metric: float
    baseline: float
    history: _train.History
    files: tuple[Path, ...]
    seconds: float



def run(task: str = "adding", seq_len: int | None = None, steps: int | None = None, seed: int = 0,
        convention: str = "reset_after", out: Path | str = "jaxgru-demo", progress: bool = True) -> DemoResult:
    """Trains a GRU on ``task``, prints its test metric against the baseline, writes two PNGs.

    Args:
      task: one of `TASKS`, "adding" or "digits".
      seq_len: the adding problem's T (default 100); must be None for "digits".
      steps: training steps of batch 64 (default 1500 for adding, 600 for digits).
      seed: fixes the initialization, the training batches and the test set / split.
      convention: "reset_after" (Keras's default, cuDNN/PyTorch) or "reset_before".
      out: folder for ``loss_curve.png`` and ``predictions.png`` (created if missing).
      progress: show the tqdm progress bar.
    """
    if convention not in _train.CONVENTIONS:
        raise ValueError(f"convention: expected one of {_train.CONVENTIONS}, got {convention!r}.")
    import_extra("matplotlib")
    import_extra("tqdm")
    key_train, key_test = jax.random.split(jax.random.key(seed))
    the_task = _tasks.make_task(task, seq_len, seed, key_test)
    settings = _train.TASK_SETTINGS[the_task.name]
    steps = settings.steps if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}.")
    cell = GRUCell(settings.units, reset_after=convention == "reset_after")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"jaxgru demo: {the_task.description}")
    print(f"model: GRU({cell.units}, reset_after={cell.reset_after}) -> Dense({the_task.output_dim}); "
          f"Adam({_train.LEARNING_RATE:g}) with gradient clipping {_train.CLIP_NORM:g}, batch {_train.BATCH_SIZE}, "
          f"{steps} steps, seed {seed}, JAX on {jax.default_backend()}")
    start = time.perf_counter()
    params, history = _train.train(cell, the_task, steps, key_train, progress)
    seconds = time.perf_counter() - start
    outputs = np.asarray(jax.jit(lambda p: _train.apply_model(cell, p, the_task.test_x))(params))
    metric = float(history.eval_metrics[-1])
    files = (_plots.plot_learning_curves(the_task, history, out / "loss_curve.png"),
             _plots.plot_predictions(the_task, outputs, out / "predictions.png"))
    comparison = "higher" if the_task.higher_is_better else "lower"
    print(f"test {the_task.metric_name}: {metric:.4g}  (baseline {the_task.baseline:.4g}, "
          f"{the_task.baseline_name}; {comparison} is better) after {seconds:.1f} s of training")
    print("wrote " + ", ".join(str(f) for f in files))
    return DemoResult(the_task, metric, the_task.baseline, history, files, seconds)


__getattr__ = module_getattr(__name__)
