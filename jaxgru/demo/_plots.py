"""The demo's two figures, rendered with matplotlib's Agg canvas directly (never pyplot), so
no display is needed or opened."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxgru.demo._extra import import_extra
from jaxgru.demo._tasks import Task
from jaxgru.demo._train import History

__all__ = ["plot_learning_curves", "plot_predictions"]


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
