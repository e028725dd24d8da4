"""The end-to-end demo behind ``python -m jaxgru demo``: train a small GRU, plot, report.

Model: ``jaxgru.rnn`` (a Keras ``GRU(units, return_sequences=False)``) reads ``(B, T, D)``
and returns its last output ``(B, U)``; a dense head maps it to ``(B, output_dim)``.
Training: Adam on ``clip_by_global_norm`` gradients (optax), one `jax.jit`-compiled step
that also draws its own batch from ``fold_in(key, step)``, so a seed fixes the whole run.
The tasks are in `jaxgru.demo_tasks`.

The plotting, progress bar and digits data come from the ``demo`` extra (matplotlib,
tqdm, scikit-learn), imported only here, when the demo runs. Figures are rendered with
matplotlib's Agg canvas directly (never pyplot), so no display is needed or opened.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxgru._validation import check_bool
from jaxgru.cell import GRUCell, Params
from jaxgru.demo_tasks import Task, adding_task, digits_task
from jaxgru.rnn import rnn

__all__ = ["DemoResult", "History", "MissingExtraError", "TASKS", "apply_model", "init_model", "make_task",
           "plot_learning_curves", "plot_predictions", "run", "train"]

TASKS = ("adding", "digits")
CONVENTIONS = ("reset_after", "reset_before")
BATCH_SIZE = 64
LEARNING_RATE = 1e-2
CLIP_NORM = 1.0
EVALUATIONS = 20  # test-set evaluations over a run, for the learning curve
LOSS_SMOOTHING = 0.98  # the running loss shown in the progress bar: an EMA with this decay


class TaskSettings(NamedTuple):
    """Per-task defaults: GRU ``units`` and training ``steps``."""

    units: int
    steps: int


TASK_SETTINGS = {"adding": TaskSettings(units=32, steps=1500), "digits": TaskSettings(units=64, steps=600)}
DEFAULT_SEQ_LEN = 100  # the adding problem's T


class MissingExtraError(ImportError):
    """A package of the ``demo`` extra is not installed."""


class History(NamedTuple):
    """Training losses per step, ``(steps,)``: ``losses`` per batch and ``running_losses``
    their exponential moving average (the progress bar's loss); the test-set curve as
    ``eval_steps`` and ``eval_metrics`` (step 0 is the untrained model)."""

    losses: np.ndarray
    running_losses: np.ndarray
    eval_steps: np.ndarray
    eval_metrics: np.ndarray


class DemoResult(NamedTuple):
    """What `run` returns: the final test ``metric``, the task's ``baseline``, the PNGs written."""

    task: Task
    metric: float
    baseline: float
    history: History
    files: tuple[Path, ...]
    seconds: float


def import_extra(module: str):
    """Imports a module of the ``demo`` extra, or raises `MissingExtraError` saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"The jaxgru demo needs {module.split('.')[0]!r}, which is not installed. "
            f"Install the demo extra: pip install -e \".[demo]\" (from a clone) or pip install \"jaxgru[demo]\"."
        ) from error


def make_task(name: str, seq_len: int | None, seed: int, test_key: jax.Array) -> Task:
    """The task called ``name``; ``seq_len`` (adding only) defaults to `DEFAULT_SEQ_LEN`.

    The adding problem draws its test set from ``test_key``; the digits split is shuffled by ``seed``.
    """
    if name == "adding":
        return adding_task(DEFAULT_SEQ_LEN if seq_len is None else seq_len, test_key)
    if name == "digits":
        if seq_len is not None:
            raise ValueError("seq_len: the digits task has a fixed length of 8 rows; seq_len applies to 'adding'.")
        import_extra("sklearn")
        return digits_task(seed)
    raise ValueError(f"task: expected one of {TASKS}, got {name!r}.")


# ---------------------------------------------------------------------------- model
def init_model(cell: GRUCell, key: jax.Array, input_dim: int, output_dim: int) -> dict[str, Params]:
    """``{"gru": cell params, "head": {"kernel": (U, O) Glorot uniform, "bias": (O,) zeros}}``."""
    key_gru, key_head = jax.random.split(key)
    return {
        "gru": cell.init(key_gru, input_dim),
        "head": {"kernel": jax.nn.initializers.glorot_uniform()(key_head, (cell.units, output_dim)),
                 "bias": jnp.zeros((output_dim,))},
    }


def apply_model(cell: GRUCell, params: dict[str, Params], x: jax.Array) -> jax.Array:
    """``x`` ``(B, T, D)`` -> ``(B, O)``: the GRU's last output through the dense head."""
    last_output, _ = rnn(cell, params["gru"], x, return_sequences=False)
    return last_output @ params["head"]["kernel"] + params["head"]["bias"]


def optimizer() -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(CLIP_NORM), optax.adam(LEARNING_RATE))


# ---------------------------------------------------------------------------- training
def train(cell: GRUCell, task: Task, steps: int, key: jax.Array, progress: bool = True):
    """Trains `apply_model` on ``task`` for ``steps`` batches; returns ``(params, History)``.

    ``key`` is split into the initialization key and the data key; batch ``i`` is drawn
    from ``fold_in(data_key, i)``.
    """
    check_bool(progress, "progress")
    tqdm = import_extra("tqdm").tqdm
    key_init, key_data = jax.random.split(key)
    params = init_model(cell, key_init, task.input_dim, task.output_dim)
    tx = optimizer()
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, step):
        x, y = task.sample_batch(jax.random.fold_in(key_data, step), BATCH_SIZE)
        loss, grads = jax.value_and_grad(lambda p: task.loss(apply_model(cell, p, x), y))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    evaluate = jax.jit(lambda params: task.metric(apply_model(cell, params, task.test_x), task.test_y))
    eval_every = max(1, steps // EVALUATIONS)
    losses, running_losses = np.empty(steps), np.empty(steps)
    eval_steps, eval_metrics = [0], [float(evaluate(params))]
    ema = 0.0  # on host floats: the loss is fetched every step for the bar anyway
    with tqdm(range(steps), desc=f"training on {task.name}", unit="step", disable=not progress) as bar:
        for step in bar:
            params, opt_state, loss = train_step(params, opt_state, step)
            losses[step] = float(loss)
            ema = LOSS_SMOOTHING * ema + (1 - LOSS_SMOOTHING) * losses[step]
            running_losses[step] = ema / (1 - LOSS_SMOOTHING ** (step + 1))  # bias-corrected, as in Adam
            bar.set_postfix(loss=f"{running_losses[step]:.4g}", refresh=False)
            if (step + 1) % eval_every == 0 or step + 1 == steps:
                eval_steps.append(step + 1)
                eval_metrics.append(float(evaluate(params)))
    return params, History(losses, running_losses, np.asarray(eval_steps), np.asarray(eval_metrics))


# ---------------------------------------------------------------------------- plots
def _figure(width: float, height: float):
    """A matplotlib Figure on the Agg canvas (no pyplot, no display)."""
    figure_module = import_extra("matplotlib.figure")
    agg = import_extra("matplotlib.backends.backend_agg")
    fig = figure_module.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(fig)
    return fig


def plot_learning_curves(task: Task, history: History, path: Path) -> Path:
    """Training loss per step (raw and smoothed) and the test metric against the baseline."""
    fig = _figure(10, 4)
    ax_loss, ax_metric = fig.subplots(1, 2)
    steps = np.arange(1, len(history.losses) + 1)
    ax_loss.plot(steps, history.losses, color="tab:blue", alpha=0.3, linewidth=0.8, label="batch loss")
    ax_loss.plot(steps, history.running_losses, color="tab:blue", label="running loss")
    ax_loss.set(xlabel="step", ylabel=f"training loss ({task.loss_name})",
                yscale="log", title="training loss")
    ax_loss.legend()
    ax_metric.plot(history.eval_steps, history.eval_metrics, marker="o", color="tab:green", label="GRU (test set)")
    ax_metric.axhline(task.baseline, color="tab:red", linestyle="--",
                      label=f"baseline {task.baseline:.3g}: {task.baseline_name}")
    ax_metric.set(xlabel="step", ylabel=f"test {task.metric_name}", title=f"test {task.metric_name}")
    if not task.higher_is_better:
        ax_metric.set_yscale("log")
    ax_metric.legend()
    fig.suptitle(f"jaxgru: {task.description}")
    fig.savefig(path, dpi=100)
    return path


def plot_predictions(task: Task, outputs: np.ndarray, path: Path) -> Path:
    """Test-set predictions: predicted against true sums (adding), or labelled digits (digits)."""
    test_x, test_y = np.asarray(task.test_x), np.asarray(task.test_y)
    if task.output_dim == 1:
        fig = _figure(5, 5)
        ax = fig.subplots()
        ax.scatter(test_y[:, 0], outputs[:, 0], s=6, alpha=0.5)
        ax.plot([0, 2], [0, 2], color="tab:red", linestyle="--", label="perfect prediction")
        ax.axhline(1.0, color="gray", linestyle=":", label="always predicting the mean sum, 1")
        ax.set(xlabel="true sum", ylabel="predicted sum", xlim=(0, 2), ylim=(0, 2), aspect="equal",
               title=f"test set: {task.metric_name} {float(task.metric(outputs, test_y)):.2g}")
        ax.legend()
    else:
        rows, cols = 4, 8
        fig = _figure(cols * 1.2, rows * 1.4)
        predicted = outputs.argmax(axis=-1)
        axes = fig.subplots(rows, cols).ravel()
        shown = min(len(axes), len(test_x))  # the first rows * cols test examples
        for ax, image, label, guess in zip(axes[:shown], test_x[:shown], test_y[:shown], predicted[:shown],
                                           strict=True):
            ax.imshow(image, cmap="gray_r")
            ax.set_title(f"{guess} ({label})", color="tab:green" if guess == label else "tab:red", fontsize=9)
            ax.set_axis_off()
        fig.suptitle("test digits: predicted (true)")
    fig.savefig(path, dpi=100)
    return path


# ---------------------------------------------------------------------------- the demo
def run(task: str = "adding", seq_len: int | None = None, steps: int | None = None, seed: int = 0,
        convention: str = "reset_after", out: Path | str = "jaxgru-demo", progress: bool = True) -> DemoResult:
    """Trains a GRU on ``task``, prints its test metric against the baseline, writes two PNGs.

    Args:
      task: "adding" or "digits" (see `jaxgru.demo_tasks`).
      seq_len: the adding problem's T (default 100); must be None for "digits".
      steps: training steps of batch `BATCH_SIZE` (default per task, `TASK_SETTINGS`).
      seed: fixes the initialization, the training batches and the test set / split.
      convention: "reset_after" (Keras's default, cuDNN/PyTorch) or "reset_before".
      out: folder for ``loss_curve.png`` and ``predictions.png`` (created if missing).
      progress: show the tqdm progress bar.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention: expected one of {CONVENTIONS}, got {convention!r}.")
    import_extra("matplotlib")
    import_extra("tqdm")
    key_train, key_test = jax.random.split(jax.random.key(seed))
    the_task = make_task(task, seq_len, seed, key_test)
    settings = TASK_SETTINGS[the_task.name]
    steps = settings.steps if steps is None else steps
    if steps < 1:
        raise ValueError(f"steps: expected a positive integer, got {steps}.")
    cell = GRUCell(settings.units, reset_after=convention == "reset_after")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    print(f"jaxgru demo: {the_task.description}")
    print(f"model: GRU({cell.units}, reset_after={cell.reset_after}) -> Dense({the_task.output_dim}); "
          f"Adam({LEARNING_RATE:g}) with gradient clipping {CLIP_NORM:g}, batch {BATCH_SIZE}, {steps} steps, "
          f"seed {seed}, JAX on {jax.default_backend()}")
    start = time.perf_counter()
    params, history = train(cell, the_task, steps, key_train, progress)
    seconds = time.perf_counter() - start
    outputs = np.asarray(jax.jit(lambda p: apply_model(cell, p, the_task.test_x))(params))
    metric = float(history.eval_metrics[-1])
    files = (plot_learning_curves(the_task, history, out / "loss_curve.png"),
             plot_predictions(the_task, outputs, out / "predictions.png"))
    comparison = "higher" if the_task.higher_is_better else "lower"
    print(f"test {the_task.metric_name}: {metric:.4g}  (baseline {the_task.baseline:.4g}, "
          f"{the_task.baseline_name}; {comparison} is better) after {seconds:.1f} s of training")
    print("wrote " + ", ".join(str(f) for f in files))
    return DemoResult(the_task, metric, the_task.baseline, history, files, seconds)
